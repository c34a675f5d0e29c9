"""The spatial niche of every spot: squidpy's neighbour graph (per section) times a modality."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from .._checks import spatial_coordinates
from .._core.log import logger
from .._modalities import read_modality
from .._optional import require
from .._spatialdata import spatial_input
from ._checks import check_choice, check_int, check_key, check_key_added, check_positive, target

GRAPH_METHODS = ("knn", "grid", "radius", "delaunay")


def spatial_context(
    adata: AnnData,
    *,
    source: str = "X",
    library_key: str | None = None,
    spatial_key: str = "spatial",
    method: str = "knn",
    n_neighs: int = 6,
    radius: float | None = None,
    include_self: bool = False,
    n_comps: int | None = None,
    random_state: int = 0,
    key_added: str = "spatial_context",
    table_key: str | None = None,
    coordinate_system: str | Mapping[str, str] = "global",
    copy: bool = False,
) -> AnnData | None:
    """Neighbourhood-averaged ``source`` (or its principal components) for every spot, in ``obsm``.

    The spatial graph is built by squidpy (``squidpy.gr.spatial_neighbors_<method>``), within each
    section when ``library_key`` names one, so no spot has neighbours in another section. Each
    spot's niche is the mean of ``source`` over its neighbours: ``W @ A`` with ``W`` the
    row-normalised sparse graph, so sparse data stay sparse and no dense n × n matrix is formed.
    Fit with ``random="obsm:<key_added>"`` to model the niche as the random effect Z.

    Parameters
    ----------
    adata
        Annotated data matrix with coordinates in ``obsm[spatial_key]``, or a SpatialData whose
        table ``table_key`` annotates shapes, labels or points: the coordinates are then the
        centroids of the annotated instances in ``coordinate_system`` (as squidpy reads them), the
        graph is built within each annotated element (its region column is the default
        ``library_key``), and the results are written into that table.
    source
        Modality spec to average: ``"X"``, ``"layer:<name>"``, ``"obsm:<key>"`` (e.g. PCs) or
        ``"obs:<col>"`` (a one-hot cell type gives the niche's composition).
    library_key
        ``obs`` column naming the section of each spot (several sections in one AnnData).
    spatial_key
        ``obsm`` key of the coordinates.
    method
        Graph: ``"knn"`` (``n_neighs`` nearest spots), ``"grid"`` (Visium/ST lattice: ``n_neighs``
        6 for hexagonal, 4 for square), ``"radius"`` (all spots within ``radius``) or ``"delaunay"``.
    n_neighs, radius
        Graph size for the methods that use them.
    include_self
        Count each spot in its own niche.
    n_comps
        Write the first ``n_comps`` principal components of the niche matrix
        (:func:`scanpy.pp.pca`, implicit centring for sparse data) instead of the matrix.
    random_state
        Seed of the PCA.
    key_added
        ``obsm`` key of the result; the graph goes to ``obsp["<key_added>_connectivities"]`` and
        ``obsp["<key_added>_distances"]``.
    table_key
        The table of a SpatialData (``None`` for an AnnData).
    coordinate_system
        With a SpatialData: the coordinate system of the centroids, or a dict from element to
        coordinate system (squidpy's ``elements_to_coordinate_systems``).
    copy
        Return a modified copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or a copy of ``adata`` when ``copy=True``, with ``obsm[key_added]`` (the niche
    matrix: sparse if the source is; a DataFrame with the source's feature names if it is dense
    and they are unique, else an array; or the PCs), the graph in ``obsp``, and ``uns[key_added]``
    (``params``, the ``obsp`` keys, ``features`` or ``variance_ratio``).

    Raises
    ------
    TypeError
        If ``adata`` is not an AnnData.
    ValueError
        If the coordinates are not numeric cells × 2 or not finite, ``source`` has NaN or infinite
        values, an option is out of range for ``method``, or a section has ``n_neighs`` spots or fewer.
    MissingKeyError
        (a ``KeyError``) If a named key or column is absent; the message lists what is there.

    Examples
    --------
    >>> lmf.pp.spatial_context(adata, library_key="slice", n_comps=15)
    >>> lmf.tl.lmf(adata, response="X", fixed="X", random="obsm:spatial_context", mask_var="highly_variable")
    """
    sq = require("squidpy")

    adata, centroids, region_key = spatial_input(adata, table_key, coordinate_system, copy=copy)
    library_key = region_key if library_key is None else library_key
    coords, sections = _check(
        adata, source, library_key, spatial_key, method, n_neighs, radius, n_comps, key_added, centroids
    )
    data = read_modality(adata, source, role="source")
    _check_finite(data.matrix, f"source={source!r}", adata.obs_names)
    if n_comps is not None:
        check_int("n_comps", n_comps, high=min(adata.n_obs, data.matrix.shape[1]) - 1)

    scratch = AnnData(obs=sections, obsm={"spatial": coords})
    builder = getattr(sq.gr, f"spatial_neighbors_{method}")
    options = {"knn": {"n_neighs": n_neighs}, "grid": {"n_neighs": n_neighs}, "radius": {"radius": radius}}
    builder(scratch, library_key=library_key, set_diag=include_self, **options.get(method, {}))
    graph = sparse.csr_matrix(scratch.obsp["spatial_connectivities"])
    niche = neighbourhood_mean(graph, data.matrix)

    params = {
        "source": source,
        "method": method,
        "n_neighs": n_neighs,
        "radius": radius,
        "include_self": include_self,
        "library_key": library_key,
        "spatial_key": spatial_key,
        "n_comps": n_comps,
    }
    uns = {
        "params": {name: value for name, value in params.items() if value is not None},  # h5ad stores no None
        "connectivities_key": f"{key_added}_connectivities",
        "distances_key": f"{key_added}_distances",
    }
    if n_comps is not None:
        import scanpy as sc

        niche, _, ratio, _ = sc.pp.pca(niche, n_comps, random_state=random_state, return_info=True, dtype="float64")
        uns["variance_ratio"] = np.asarray(ratio)
    elif not sparse.issparse(niche) and pd.Index(data.features).is_unique:
        niche = pd.DataFrame(niche, index=adata.obs_names, columns=data.features)
    else:  # sparse, or repeated feature names (h5ad refuses repeated DataFrame columns): names beside
        uns["features"] = np.asarray(data.features, dtype=str)

    out = target(adata, copy)
    out.obsm[key_added] = niche
    out.obsp[uns["connectivities_key"]] = scratch.obsp["spatial_connectivities"]
    out.obsp[uns["distances_key"]] = scratch.obsp["spatial_distances"]
    out.uns[key_added] = uns
    logger.info("spatial_context: %s graph, mean of %s over %d edges -> obsm[%r]", method, source, graph.nnz, key_added)
    return out if copy else None


def neighbourhood_mean(graph: sparse.csr_matrix, matrix):
    """``D⁻¹ G @ A``: each row the mean of ``matrix`` over the row's neighbours in ``graph``.

    A spot without neighbours (possible with ``radius``) keeps its own values.
    """
    graph = graph.astype(np.float64)
    degree = np.asarray(graph.sum(axis=1)).ravel()
    isolated = degree == 0
    if isolated.any():
        logger.warning("spatial_context: %d spot(s) have no neighbours and keep their own values", isolated.sum())
        graph = graph + sparse.diags(isolated.astype(np.float64))
        degree[isolated] = 1.0
    weights = sparse.diags(1.0 / degree) @ graph
    result = weights @ matrix
    return sparse.csr_matrix(result) if sparse.issparse(result) else np.asarray(result)


def _check_finite(matrix, label: str, cells) -> None:
    """A niche is a mean over neighbours: one NaN would spread to every neighbour's niche."""
    values = matrix.data if sparse.issparse(matrix) else np.asarray(matrix)
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        detail = ""
        if not sparse.issparse(matrix):
            detail = f", the first in cell {cells[int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])]!r}"
        raise ValueError(
            f"{label} has NaN or infinite values{detail}; the niche mean would spread them to the "
            "neighbours: fill them first (or average a modality every spot has)"
        )


def _check(adata, source, library_key, spatial_key, method, n_neighs, radius, n_comps, key_added, centroids=None):
    coords = spatial_coordinates(adata, spatial_key, centroids)
    check_choice("method", method, GRAPH_METHODS)
    if method in ("knn", "grid"):
        check_int("n_neighs", n_neighs)
    if method == "radius":
        check_positive("radius", radius)
    elif radius is not None:
        raise ValueError(f"radius={radius!r} is only used with method='radius', not method={method!r}")
    if n_comps is not None:
        check_int("n_comps", n_comps)
    check_key_added(key_added)
    index = pd.DataFrame(index=adata.obs_names)
    sizes = pd.Series({"all spots": adata.n_obs})
    if library_key is not None:
        check_key(adata.obs, library_key, "adata.obs", "library_key")
        column = adata.obs[library_key]
        if column.isna().any():
            raise ValueError(f"obs column {library_key!r} has missing values; every spot needs a section")
        index[library_key] = pd.Categorical(column.astype(str))
        sizes = index[library_key].value_counts()
    if method == "delaunay":
        _check_triangulable(coords, None if library_key is None else index[library_key])
    if method == "knn" and sizes.min() <= n_neighs:
        raise ValueError(
            f"section {sizes.idxmin()!r} has {sizes.min()} spots; n_neighs={n_neighs} needs more than "
            f"{n_neighs} in every section"
        )
    return coords, index


def _check_triangulable(coords: np.ndarray, sections) -> None:
    """A Delaunay graph needs, in every section, three spots not all on one line (qhull fails otherwise)."""
    groups = (
        {"all spots": np.arange(len(coords))} if sections is None else sections.groupby(sections, observed=True).indices
    )
    for name, rows in groups.items():
        centred = coords[rows] - coords[rows].mean(axis=0)
        if len(rows) < 3 or np.linalg.matrix_rank(centred) < 2:
            raise ValueError(
                f"method='delaunay' needs spots that are not all on one line, but section {name!r} has "
                f"{len(rows)} spot(s) on a line or a point; use method='knn' or 'radius' for it"
            )
