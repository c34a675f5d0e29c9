"""Checks shared by every layer (``tl``, ``pp``, ``pl``): each raises before any work, naming the bad value."""

from __future__ import annotations

import numpy as np
from anndata import AnnData

from ._modalities import MissingKeyError


def check_adata(adata, name: str = "adata", *, copy: bool = False) -> None:
    """``adata`` is an AnnData, and with ``copy=True`` one that can be copied (not backed)."""
    if not isinstance(adata, AnnData):
        raise TypeError(f"{name} must be an AnnData, got {type(adata).__name__}")
    if copy and adata.isbacked:
        raise ValueError(
            f"copy=True, but {name} is backed by the file {str(adata.filename)!r}, which anndata cannot copy in "
            "memory; pass copy=False (results are added to the object, the file is not changed) or load it "
            f"first with {name}.to_memory()"
        )


def check_key(container, key: str, where: str, name: str) -> None:
    """``key`` is in ``container``; the error lists what is."""
    if key not in container:
        available = sorted(str(k) for k in container.keys() if k is not None)  # anndata 0.13: layers[None] is X
        raise MissingKeyError(f"{name}={key!r} not found in {where}; available: {available}")


def target(adata: AnnData, copy: bool) -> AnnData:
    """The AnnData to write into: ``adata`` itself or a copy."""
    return adata.copy() if copy else adata


def factor_numbers(factors, n_factors: int, *, name: str = "factors") -> list[int]:
    """1-based factor numbers (one or several), each between 1 and ``n_factors``."""
    factors = [factors] if isinstance(factors, int | np.integer) else list(factors)
    bad = [f for f in factors if isinstance(f, bool) or not isinstance(f, int | np.integer) or not 1 <= f <= n_factors]
    if bad or not factors:
        raise ValueError(f"{name}={factors!r} must be factor numbers between 1 and {n_factors} (1-based)")
    return [int(f) for f in factors]
