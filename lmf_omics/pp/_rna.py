"""RNA: library-size normalisation, log1p and highly variable genes, by scanpy's own functions."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from .._core.log import logger
from .._modalities import sound_structure
from ._checks import (
    check_adata,
    check_choice,
    check_int,
    check_key,
    check_key_added,
    check_non_negative,
    check_positive,
    target,
)

HVG_FLAVORS = ("seurat", "cell_ranger")


def normalize_rna(
    adata: AnnData,
    *,
    layer: str | None = None,
    target_sum: float | None = 1e4,
    n_top_genes: int | None = 2000,
    flavor: str = "seurat",
    batch_key: str | None = None,
    key_added: str | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Normalise RNA counts per cell, log1p them and flag highly variable genes.

    Runs :func:`scanpy.pp.normalize_total`, :func:`scanpy.pp.log1p` and
    :func:`scanpy.pp.highly_variable_genes` on a scratch copy of the counts, then writes the
    results in one step, so ``adata`` is untouched if anything fails. Sparse counts stay sparse.

    Parameters
    ----------
    adata
        Annotated data matrix with raw counts.
    layer
        Layer holding the counts (``None``: ``adata.X``). The counts themselves are never changed
        unless ``key_added`` names the same place.
    target_sum
        Total counts per cell after normalisation (``None``: the median of the totals).
    n_top_genes
        Number of highly variable genes to flag; ``None`` skips gene selection.
    flavor
        ``"seurat"`` or ``"cell_ranger"`` (both work on log-normalised data).
    batch_key
        ``obs`` column: select genes within each batch and merge (scanpy's ``batch_key``).
    key_added
        Layer for the log-normalised values; ``None`` writes them to ``adata.X``.
    copy
        Return a modified copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or a copy of ``adata`` when ``copy=True``, with the log-normalised values in
    ``adata.X`` or ``layers[key_added]``; ``var["highly_variable"]``, ``var["means"]``,
    ``var["dispersions"]``, ``var["dispersions_norm"]`` and ``uns["hvg"]`` from scanpy; and
    ``uns["log1p"]``. Use ``lmf.tl.lmf(..., mask_var="highly_variable")`` to fit on the selected genes.

    Raises
    ------
    TypeError
        If ``adata`` is not an AnnData.
    ValueError
        If the counts are negative, not finite or all zero, no gene can be selected (fewer than 2
        cells, identical profiles), or an option is out of range (``target_sum``, ``n_top_genes``,
        ``flavor``, ``key_added``).
    MissingKeyError
        (a ``KeyError``) If a named key or column is absent; the message lists what is there.

    Examples
    --------
    >>> lmf.pp.normalize_rna(adata, layer="counts", n_top_genes=2000)
    >>> lmf.tl.lmf(adata, response="obsm:protein", fixed="X", mask_var="highly_variable")
    """
    import scanpy as sc

    counts = _check(adata, layer, target_sum, n_top_genes, flavor, batch_key, key_added)
    # float32 at least: float16 totals overflow (65504) and would turn every cell into zeros
    dtype = counts.dtype if np.issubdtype(counts.dtype, np.floating) and counts.dtype.itemsize >= 4 else np.float32
    obs = adata.obs[[batch_key]].copy() if batch_key else pd.DataFrame(index=adata.obs_names)
    work = AnnData(counts.astype(dtype, copy=True), obs=obs, var=pd.DataFrame(index=adata.var_names))
    sc.pp.normalize_total(work, target_sum=target_sum)
    sc.pp.log1p(work)
    if n_top_genes is not None:
        try:
            sc.pp.highly_variable_genes(work, n_top_genes=n_top_genes, flavor=flavor, batch_key=batch_key)
        except IndexError as error:  # scanpy's own failure when no gene has a finite dispersion
            raise ValueError(
                f"highly variable genes: no gene varies across the cells after normalisation ({error}); "
                "check the counts, or pass n_top_genes=None to skip gene selection"
            ) from None

    out = target(adata, copy)
    if key_added is None:
        out.X = work.X
    else:
        out.layers[key_added] = work.X
    for column in work.var.columns:
        out.var[column] = work.var[column].to_numpy()
    for key in ("hvg", "log1p"):
        if key in work.uns:
            out.uns[key] = dict(work.uns[key])
    logger.info(
        "normalize_rna: log-normalised %s into %s%s",
        f"layers[{layer!r}]" if layer else "X",
        f"layers[{key_added!r}]" if key_added else "X",
        f"; {int(work.var['highly_variable'].sum())} highly variable genes" if n_top_genes else "",
    )
    return out if copy else None


def _check(adata, layer, target_sum, n_top_genes, flavor, batch_key, key_added):
    check_adata(adata)
    if layer is None:
        counts, label = adata.X, "adata.X"
        if counts is None:
            raise ValueError("adata.X is None; name the layer holding the counts with layer=")
    else:
        check_key(adata.layers, layer, "adata.layers", "layer")
        counts, label = adata.layers[layer], f"layers[{layer!r}]"
    counts = sound_structure(counts, label)
    check_non_negative(counts, label, "normalize_rna", cells=adata.obs_names)
    if not (counts.nnz if sparse.issparse(counts) else np.count_nonzero(counts)):
        raise ValueError(f"{label} holds no counts (every value is 0); normalize_rna needs raw counts")
    if n_top_genes is not None and adata.n_obs < 2:
        raise ValueError(
            f"highly variable genes need at least 2 cells, adata has {adata.n_obs}; "
            "pass n_top_genes=None to skip gene selection"
        )
    if n_top_genes is not None and not _some_gene_varies(counts):
        raise ValueError(
            f"highly variable genes: every cell of {label} has the same profile (no gene's share of the "
            "counts varies), so none can be selected; check the counts, or pass n_top_genes=None"
        )
    if target_sum is not None:
        check_positive("target_sum", target_sum)
    if n_top_genes is not None:
        check_int("n_top_genes", n_top_genes, high=adata.n_vars)
    check_choice("flavor", flavor, HVG_FLAVORS)
    if batch_key is not None:
        check_key(adata.obs, batch_key, "adata.obs", "batch_key")
    if key_added is not None:
        check_key_added(key_added)
    return counts


def _some_gene_varies(counts) -> bool:
    """Whether any gene's share of a cell's counts differs between cells (O(nnz), nothing densified)."""
    totals = np.asarray(counts.sum(axis=1, dtype=np.float64)).ravel()  # float16 sums would overflow
    counted = totals > 0
    shares = (sparse.diags(1.0 / np.where(counted, totals, 1.0)) @ counts)[counted]
    if sparse.issparse(shares):
        shares = sparse.csr_matrix(shares)
        highest, lowest = shares.max(axis=0).toarray().ravel(), shares.min(axis=0).toarray().ravel()
    else:
        highest, lowest = shares.max(axis=0), shares.min(axis=0)
    return bool(np.any(highest - lowest > 1e-12 * np.maximum(highest, 1e-300)))
