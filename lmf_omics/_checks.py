"""Checks shared by every layer (``tl``, ``pp``, ``pl``): each raises before any work, naming the bad value."""

from __future__ import annotations

import numpy as np
from anndata import AnnData

from ._core.log import logger
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
        available = sorted(map(str, container.keys()))
        raise MissingKeyError(f"{name}={key!r} not found in {where}; available: {available}")


def spatial_coordinates(adata: AnnData, spatial_key: str) -> np.ndarray:
    """``obsm[spatial_key]`` as finite numeric (x, y) coordinates, cells × 2 (further columns ignored)."""
    check_key(adata.obsm, spatial_key, "adata.obsm", "spatial_key")
    coords = np.asarray(adata.obsm[spatial_key])
    if coords.ndim != 2 or coords.shape[1] < 2 or coords.dtype.kind not in "iuf":
        raise ValueError(
            f"obsm[{spatial_key!r}] must hold numeric coordinates (cells × 2), got dtype {coords.dtype} "
            f"and shape {coords.shape}"
        )
    if not np.all(np.isfinite(coords)):
        raise ValueError(f"obsm[{spatial_key!r}] has NaN or infinite coordinates")
    return coords[:, :2].astype(np.float64)


def target(adata: AnnData, copy: bool) -> AnnData:
    """The AnnData to write into: ``adata`` itself or a copy.

    A view is first made an AnnData of its own (as scanpy does), so that writing into it never
    writes into its parent (anndata writes ``X`` of a view into the parent's ``X``).
    """
    if copy:
        return adata.copy()
    if adata.is_view:
        logger.info("the view becomes an AnnData of its own, its parent unchanged, to hold the results")
        adata._init_as_actual(adata.copy())  # scanpy's view_to_actual
    return adata
