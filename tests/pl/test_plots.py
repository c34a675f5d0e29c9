"""Plots render real pixels into files."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from anndata import AnnData
from scipy import sparse

import lmf_omics as lmf


@pytest.fixture(scope="module")
def fitted_adata():
    rng = np.random.default_rng(0)
    codes = rng.standard_normal((80, 3))
    adata = AnnData(sparse.csr_matrix(codes @ rng.standard_normal((3, 20)) + 0.1 * rng.standard_normal((80, 20))))
    adata.obsm["protein"] = codes @ rng.standard_normal((3, 6))
    adata.obs["batch"] = rng.choice(["a", "b"], 80)
    lmf.tl.lmf(adata, response="obsm:protein", fixed="X", random="obs:batch", n_factors=3, tol=1e-4)
    return adata


@pytest.mark.parametrize("plot", [lmf.pl.variance_explained, lmf.pl.convergence], ids=lambda f: f.__name__)
def test_plot_saves_a_nonblank_png(fitted_adata, plot, tmp_path):
    path = tmp_path / "figure.png"
    ax = plot(fitted_adata, save=str(path))
    assert isinstance(ax, plt.Axes)
    image = plt.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0.05  # not a blank canvas
    plt.close(ax.figure)


def test_variance_explained_plot_labels(fitted_adata):
    ax = lmf.pl.variance_explained(fitted_adata)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Factor1", "Factor2", "Factor3"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["response (Y)", "fixed (X)", "random (Z)"]
    plt.close(ax.figure)


def test_import_leaves_the_users_backend_alone():
    """Importing lmf_omics must not switch matplotlib's backend (e.g. Jupyter's inline one) to Agg."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = "import lmf_omics, matplotlib; print(matplotlib.get_backend())"
    root = str(Path(lmf.__file__).resolve().parents[1])
    env = {**os.environ, "MPLBACKEND": "svg", "PYTHONPATH": root}
    printed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert printed.strip().lower() == "svg"
