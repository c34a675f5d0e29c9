"""The README's main Python examples run as written, top to bottom, in one namespace."""

import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt

README = Path(__file__).parents[1] / "README.md"
RUNNABLE_SECTIONS = ("## Use it from Python", "## Predict one modality from another, in new cells")


def _examples() -> list[str]:
    """The ```python blocks of the sections above (the others sketch calls on other datasets)."""
    sections = re.split(r"\n(?=## )", README.read_text())
    chosen = [s for s in sections if s.startswith(RUNNABLE_SECTIONS)]
    assert len(chosen) == len(RUNNABLE_SECTIONS)
    return [block for section in chosen for block in re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)]


def test_readme_python_examples_run(shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write figures to the working directory
    namespace = {}
    for block in _examples():
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - our own documentation
    plt.close("all")
    assert namespace["adata"].obsm["X_umap"].shape == (500, 2)
    assert namespace["query"].obsm["lmf_predicted"].shape == (100, 49)
    assert (tmp_path / "ve.png").is_file()


def test_first_example_runs_offline_from_any_directory(tmp_path):
    """The README's first block needs no data folder, no network and no checkout directory (scanpy ships the data).

    Run in a fresh interpreter in an empty directory, without $LMF_OMICS_DATA, with an empty cache and a
    download address where nothing listens: any attempt to fetch a dataset would fail.
    """
    first = _examples()[0]
    assert "pbmc68k_reduced()" in first
    env = {k: v for k, v in os.environ.items() if k != "LMF_OMICS_DATA"}
    env |= {
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "LMF_OMICS_DATA_URL": "http://127.0.0.1:9/",
        "PYTHONPATH": str(README.parent),  # this checkout's package, as an installed copy would be found
        "MPLBACKEND": "Agg",
    }
    check = "\nassert adata.obsm['X_umap'].shape == (700, 2)\nassert len(lmf.get.enrichment(adata)) == 30\n"
    done = subprocess.run(
        [sys.executable, "-c", first + check], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "ve.png").is_file()
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.h5ad"))
