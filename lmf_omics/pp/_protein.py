"""Protein (ADT) counts: the centred log-ratio transform with muon's ``pt.pp.clr`` semantics."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from .._core.log import logger
from .._modalities import parse_spec, read_modality
from ._checks import check_adata, check_choice, check_key_added, check_non_negative, target


def clr(
    adata: AnnData,
    *,
    source: str = "obsm:protein_counts",
    axis: int = 0,
    key_added: str | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Centred log-ratio transform of protein counts, as ``muon.prot.pp.clr``.

    ``clr(x) = log1p(x / g)`` with ``g = exp(mean(log1p(x)))`` taken along ``axis``:

    - ``axis=0`` (default, as muon): for each protein across cells (Seurat's ``margin = 2``);
    - ``axis=1``: for each cell across proteins (Seurat's ``margin = 1``, the classic CLR).

    Sparse counts stay sparse (zeros map to zero). A cell without protein counts (a row of NaN, as
    ``tl.lmf`` reads a cell without a modality) stays NaN and is left out of the geometric means.

    Parameters
    ----------
    adata
        Annotated data matrix.
    source
        Where the counts are: ``"obsm:<key>"`` (array, sparse or DataFrame), ``"layer:<name>"``
        or ``"X"``.
    axis
        ``0`` or ``1``, as above.
    key_added
        Where to write: ``obsm[key_added]`` for an obsm source (a DataFrame with the same columns
        if the source is one), else ``layers[key_added]``. Default ``"<key>_clr"`` (``"X_clr"``
        for ``"X"``).
    copy
        Return a modified copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or a copy of ``adata`` when ``copy=True``, with the transformed values written as above.

    Raises
    ------
    TypeError
        If ``adata`` is not an AnnData.
    ValueError
        If ``source`` is not ``"obsm:<key>"``, ``"layer:<name>"`` or ``"X"``, ``axis`` is not 0 or 1,
        the counts are negative or not finite, or ``key_added`` is empty.
    MissingKeyError
        (a ``KeyError``) If a named key or column is absent; the message lists what is there.

    Examples
    --------
    >>> lmf.pp.clr(adata, source="obsm:protein_counts")  # -> obsm["protein_counts_clr"]
    >>> lmf.tl.lmf(adata, response="obsm:protein_counts_clr", fixed="X")
    """
    check_adata(adata)
    kind, name = _source_slot(source)
    check_choice("axis", axis, (0, 1))
    counts = read_modality(adata, source, role="source").matrix
    observed = check_non_negative(counts, f"source={source!r}", "clr", cells=adata.obs_names, missing_rows=True)
    key_added = f"{name or 'X'}_clr" if key_added is None else key_added
    check_key_added(key_added)

    if observed is None:
        values = clr_matrix(counts, axis=axis)
    else:  # cells without counts stay NaN and take no part in the geometric means
        values = np.full(counts.shape, np.nan)
        values[observed] = clr_matrix(np.asarray(counts)[observed], axis=axis)
    out = target(adata, copy)
    if kind == "obsm":
        original = adata.obsm[name]
        if isinstance(original, pd.DataFrame):
            values = pd.DataFrame(values, index=original.index, columns=original.columns)
        out.obsm[key_added] = values
    else:
        out.layers[key_added] = values
    logger.info("clr: %s (axis=%d) -> %s[%r]", source, axis, "obsm" if kind == "obsm" else "layers", key_added)
    return out if copy else None


def _source_slot(source) -> tuple[str, str]:
    """The slot (``"X"``, ``"obsm"`` or ``"layer"``) and key of a counts spec, parsed by :func:`parse_spec`."""
    try:
        parsed = parse_spec(source, role="source")
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.slot not in ("X", "obsm", "layer"):
        raise ValueError(f"source={source!r} must be 'obsm:<key>', 'layer:<name>' or 'X'")
    return parsed.slot, parsed.name


def clr_matrix(counts, *, axis: int = 0):
    """``log1p(x / exp(mean(log1p(x), axis)))``: a new float64 matrix, sparse if ``counts`` is."""
    if sparse.issparse(counts):
        counts = sparse.csr_matrix(counts, dtype=np.float64)
        geometric = np.exp(np.asarray(counts.log1p().mean(axis=axis)).ravel())
        divide = sparse.diags(1.0 / geometric)
        scaled = counts @ divide if axis == 0 else divide @ counts
        return sparse.csr_matrix(scaled).log1p()
    counts = np.asarray(counts, dtype=np.float64)
    geometric = np.exp(np.log1p(counts).mean(axis=axis, keepdims=True))
    return np.log1p(counts / geometric)
