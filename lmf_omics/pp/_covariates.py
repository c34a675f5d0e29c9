"""Covariates from ``obs`` as a design matrix (e.g. the random-effect modality Z)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from .._core.log import logger
from .._modalities import _read_obs, check_obs_dtype  # the encoding tl.lmf uses for "obs:<col>,..." specs
from ._checks import check_adata, check_int, check_key, check_key_added, target


def covariates(
    adata: AnnData,
    *,
    keys: str | Sequence[str],
    scale: bool = True,
    max_levels: int = 200,
    key_added: str = "covariates",
    copy: bool = False,
) -> AnnData | None:
    """Write ``obs`` columns as a design matrix to ``obsm[key_added]`` (a DataFrame).

    Numeric columns enter as they are (standardised to mean 0 and variance 1 with ``scale=True``,
    so that, e.g., total counts do not outweigh a cell-cycle score); categorical, string and
    boolean columns are one-hot encoded, one indicator per observed level, exactly as
    ``tl.lmf(random="obs:<col>,...")`` encodes them. Fit with ``random="obsm:<key_added>"``.

    Parameters
    ----------
    adata
        Annotated data matrix.
    keys
        ``obs`` column(s).
    scale
        Standardise numeric columns (indicators stay 0/1). A constant column is only centred.
    max_levels
        Refuse categorical columns with more levels than this (an identifier column by mistake
        would make a huge design).
    key_added
        ``obsm`` key of the design matrix.
    copy
        Return a modified copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or a copy of ``adata`` when ``copy=True``, with ``obsm[key_added]``: a DataFrame
    with columns ``<numeric column>`` and ``<categorical column>=<level>``, and
    ``uns[key_added]["params"]``.

    Raises
    ------
    TypeError
        If ``adata`` is not an AnnData.
    ValueError
        If ``keys`` is empty or repeats a column, a numeric column has NaN or infinite values, a
        categorical column has more than ``max_levels`` levels, or ``key_added`` is empty.
    MissingKeyError
        (a ``KeyError``) If a named key or column is absent; the message lists what is there.

    Examples
    --------
    >>> lmf.pp.covariates(adata, keys=["phase", "S_score", "n_counts"])
    >>> lmf.tl.lmf(adata, response="X", fixed="raw", random="obsm:covariates")
    """
    check_adata(adata)
    keys = [keys] if isinstance(keys, str) else list(keys)
    if not keys or not all(isinstance(k, str) for k in keys):
        raise ValueError(f"keys={keys!r} must name one or more obs columns")
    if len(set(keys)) < len(keys):
        raise ValueError(f"keys={keys!r} names a column more than once; name each column once")
    check_int("max_levels", max_levels)
    check_key_added(key_added)
    numeric = []
    for key in keys:
        check_key(adata.obs, key, "adata.obs", "keys")
        column = adata.obs[key]
        check_obs_dtype(column, key, f"keys={keys!r}")
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            _check_finite(column, key)
            numeric.append(key)
        elif column.nunique() > max_levels:
            raise ValueError(
                f"obs column {key!r} has {column.nunique()} levels (> max_levels={max_levels}); "
                "is it an identifier? Raise max_levels if it really is a covariate"
            )
    matrix, names = _read_obs(adata, keys, f"keys={keys!r}")
    design = pd.DataFrame(matrix.toarray() if sparse.issparse(matrix) else matrix, index=adata.obs_names, columns=names)
    if scale and numeric:
        spread = design[numeric].std(ddof=0).replace(0.0, 1.0)
        design[numeric] = (design[numeric] - design[numeric].mean()) / spread

    out = target(adata, copy)
    out.obsm[key_added] = design
    out.uns[key_added] = {"params": {"keys": keys, "scale": scale}}
    logger.info("covariates: %d columns from %s -> obsm[%r]", design.shape[1], keys, key_added)
    return out if copy else None


def _check_finite(column: pd.Series, key: str) -> None:
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(
            f"numeric covariate {key!r} has {int(bad.sum())} NaN or infinite value(s), the first for "
            f"cell {column.index[np.flatnonzero(bad)[0]]!r}; fill or drop them first"
        )
