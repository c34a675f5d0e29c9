"""Checks shared by every layer (``tl``, ``pp``, ``pl``): each raises before any work, naming the bad value."""

from __future__ import annotations

import numpy as np
from anndata import AnnData

from ._core.log import logger
from ._modalities import MissingKeyError, is_mudata


def is_spatialdata(data) -> bool:
    """Whether ``data`` is a SpatialData (without importing spatialdata)."""
    return any(c.__name__ == "SpatialData" and c.__module__.startswith("spatialdata") for c in type(data).__mro__)


def resolve_data(data, name: str = "adata", *, table_key: str | None = None, copy: bool = False, mudata: bool = True):
    """The object a door reads and writes: an AnnData, a MuData, or the table ``table_key`` of a SpatialData.

    A SpatialData table is returned itself (results land in it); ``copy=True`` is refused there,
    since a copy of the table would be detached from the SpatialData.
    """
    if is_spatialdata(data):
        table = spatial_table(data, table_key, name)
        if copy:
            raise ValueError(
                f"copy=True with a SpatialData: the results are written into {name}.tables[{table_key!r}]; "
                "pass copy=False (copy the SpatialData first if you need the original)"
            )
        return table
    if table_key is not None:
        raise ValueError(
            f"table_key={table_key!r} names a table of a SpatialData, but {name} is a {type(data).__name__}; "
            "leave table_key=None"
        )
    if mudata and is_mudata(data):
        if copy and data.isbacked:
            raise ValueError(f"copy=True, but {name} is a backed MuData; pass copy=False or load it first")
        return data
    check_adata(data, name, copy=copy)
    return data


def spatial_table(sdata, table_key: str | None, name: str = "sdata") -> AnnData:
    """``sdata.tables[table_key]`` (checked, as squidpy reads it)."""
    tables = sorted(map(str, sdata.tables.keys()))
    if table_key is None:
        raise ValueError(f"{name} is a SpatialData: name its table with table_key=, one of {tables}")
    if not isinstance(table_key, str) or table_key not in sdata.tables:
        raise MissingKeyError(f"table_key={table_key!r} not found in {name}.tables; available: {tables}")
    return sdata.tables[table_key]


def check_adata(adata, name: str = "adata", *, copy: bool = False) -> None:
    """``adata`` is an AnnData, and with ``copy=True`` one that can be copied (not backed)."""
    if not isinstance(adata, AnnData):
        raise TypeError(f"{name} must be an AnnData{_others(adata)}, got {type(adata).__name__}")
    if copy and adata.isbacked:
        raise ValueError(
            f"copy=True, but {name} is backed by the file {str(adata.filename)!r}, which anndata cannot copy in "
            "memory; pass copy=False (results are added to the object, the file is not changed) or load it "
            f"first with {name}.to_memory()"
        )


def _others(data) -> str:
    """What else a door takes, said when a SpatialData or MuData reaches one that does not."""
    if is_spatialdata(data):
        return " (a SpatialData is read by tl.lmf, pp.spatial_context and pl.factors_spatial, with table_key=)"
    return (
        " (a MuData is read by tl, get, pl.loadings, pl.variance_explained and pl.convergence)"
        if is_mudata(data)
        else ""
    )


def check_key(container, key: str, where: str, name: str) -> None:
    """``key`` is in ``container``; the error lists what is."""
    if key not in container:
        available = sorted(str(k) for k in container.keys() if k is not None)  # anndata 0.13: layers[None] is X
        raise MissingKeyError(f"{name}={key!r} not found in {where}; available: {available}")


def spatial_coordinates(adata: AnnData, spatial_key: str, centroids=None) -> np.ndarray:
    """``obsm[spatial_key]`` (or a SpatialData's ``centroids``) as finite (x, y) coordinates, cells × 2."""
    if centroids is None:
        check_key(adata.obsm, spatial_key, "adata.obsm", "spatial_key")
    coords = np.asarray(adata.obsm[spatial_key] if centroids is None else centroids)
    where = f"obsm[{spatial_key!r}]" if centroids is None else "the SpatialData's centroids"
    if coords.ndim != 2 or coords.shape[1] < 2 or coords.dtype.kind not in "iuf":
        raise ValueError(
            f"{where} must hold numeric coordinates (cells × 2), got dtype {coords.dtype} and shape {coords.shape}"
        )
    if not np.all(np.isfinite(coords)):
        raise ValueError(f"{where} has NaN or infinite coordinates")
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


def factor_numbers(factors, n_factors: int, *, name: str = "factors") -> list[int]:
    """1-based factor numbers (one or several), each between 1 and ``n_factors``."""
    factors = [factors] if isinstance(factors, int | np.integer) else list(factors)
    bad = [f for f in factors if isinstance(f, bool) or not isinstance(f, int | np.integer) or not 1 <= f <= n_factors]
    if bad or not factors:
        raise ValueError(f"{name}={factors!r} must be factor numbers between 1 and {n_factors} (1-based)")
    return [int(f) for f in factors]
