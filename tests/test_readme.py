"""The README's main Python examples run as written, top to bottom, in one namespace."""

import re
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
