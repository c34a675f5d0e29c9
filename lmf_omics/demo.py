"""The main job on the bundled default dataset: ``lmf-omics demo``."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from . import pl, tl
from ._core.log import logger
from ._io import write_h5ad_atomic
from .datasets import pbmc68k_reduced

DEMO_COVARIATES = "obs:phase,S_score,G2M_score,percent_mito,n_counts"


def run_demo(outdir: str | Path = "lmf_demo", *, n_factors: int = 15) -> Path:
    """Fit LMF on scanpy's pbmc68k_reduced, cluster on the codes, write an .h5ad and figures.

    Response: the scaled expression (``X``); fixed effects: the log-normalised expression
    (``raw``); random effects: cell-cycle phase and scores, mitochondrial fraction and depth.
    The fixed code is expression structure the covariates do not explain; cells are clustered and
    embedded on it.

    Parameters
    ----------
    outdir
        Folder for ``lmf_demo.h5ad`` and the figures (created if needed).
    n_factors
        Number of factors of the fit.

    Returns
    -------
    Path of the written ``lmf_demo.h5ad`` (codes in ``obsm``, ``leiden_lmf`` in ``obs``, UMAP).

    Examples
    --------
    >>> from lmf_omics.demo import run_demo
    >>> run_demo("lmf_demo")  # same as `lmf-omics demo --outdir lmf_demo`
    """
    import scanpy as sc

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    adata = pbmc68k_reduced()
    tl.lmf(adata, response="X", fixed="raw", random=DEMO_COVARIATES, n_factors=n_factors, scale=True)
    sc.pp.neighbors(adata, use_rep="X_lmf_fixed", random_state=0)  # the fixed code: covariates removed
    sc.tl.leiden(adata, flavor="igraph", n_iterations=2, random_state=0, key_added="leiden_lmf")
    sc.tl.umap(adata, random_state=0)
    figures = _figures(adata, outdir)
    path = write_h5ad_atomic(adata, outdir / "lmf_demo.h5ad")
    logger.info("wrote %s and %d figures to %s", path.name, len(figures), outdir)
    return path


def _figures(adata, outdir: Path) -> list[Path]:
    import scanpy as sc

    paths = [outdir / "variance_explained.png", outdir / "convergence.png", outdir / "umap_lmf.png"]
    plt.close(pl.variance_explained(adata, save=paths[0]).figure)
    plt.close(pl.convergence(adata, save=paths[1]).figure)
    figure = sc.pl.umap(
        adata, color=["bulk_labels", "leiden_lmf", "phase"], ncols=2, wspace=0.55, show=False, return_fig=True
    )
    figure.savefig(paths[2], dpi=120, bbox_inches="tight")
    plt.close(figure)
    return paths
