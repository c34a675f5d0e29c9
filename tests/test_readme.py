"""The README's main Python examples run as written, top to bottom, in one namespace."""

import re
from pathlib import Path

import matplotlib.pyplot as plt

from lmf_omics import datasets

README = Path(__file__).parents[1] / "README.md"
RUNNABLE_SECTIONS = ("## Use it from Python", "## Predict one modality from another, in new cells")


def _examples() -> list[str]:
    """The ```python blocks of the sections above (the others sketch calls on other datasets)."""
    sections = re.split(r"\n(?=## )", README.read_text())
    chosen = [s for s in sections if s.startswith(RUNNABLE_SECTIONS)]
    assert len(chosen) == len(RUNNABLE_SECTIONS)
    return [block for section in chosen for block in re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)]


def test_readme_python_examples_run(shared_data, tmp_path, monkeypatch):
    """The first block runs with no data folder and no network (scanpy ships its data); the others read the data."""
    monkeypatch.chdir(tmp_path)  # the examples write figures to the working directory
    first, *others = _examples()
    assert "pbmc68k_reduced()" in first
    with monkeypatch.context() as offline:  # any attempt to fetch a dataset would fail
        offline.delenv(datasets.ENV_VAR)
        offline.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        offline.setenv(datasets.URL_ENV_VAR, "http://127.0.0.1:9/")
        namespace = {}
        exec(compile(first, str(README), "exec"), namespace)  # noqa: S102 - our own documentation
    assert namespace["adata"].obsm["X_umap"].shape == (700, 2)
    assert len(namespace["lmf"].get.enrichment(namespace["adata"])) == 2 * 15
    assert not (tmp_path / "cache").exists()
    for block in others:
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - our own documentation
    plt.close("all")
    assert namespace["adata"].obsm["X_umap"].shape == (500, 2)
    assert namespace["query"].obsm["lmf_predicted"].shape == (100, 49)
    assert (tmp_path / "ve.png").is_file()
