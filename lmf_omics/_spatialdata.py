"""A SpatialData table and its spots' coordinates, read as squidpy reads them (no arithmetic here).

squidpy (``squidpy.gr.spatial_neighbors(sdata, table_key=..., elements_to_coordinate_systems=...)``)
takes the table ``sdata.tables[table_key]``, finds the elements it annotates from its
``spatialdata_attrs`` (region, region key, instance key) and uses the centroids of their
instances in a coordinate system (:func:`spatialdata.get_centroids`). Here the centroids are
matched to the table's rows by instance id, per region, so rows in any order are placed right.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ._checks import is_spatialdata, resolve_data, spatial_table


def spatial_input(data, table_key, coordinate_system, *, copy: bool = False):
    """``(adata, coordinates, region_key)``: an AnnData as it is (no coordinates read), or a SpatialData's table.

    The door of ``pp.spatial_context`` and ``pl.factors_spatial``: with a SpatialData the
    coordinates are the centroids of the annotated instances and the region column names the
    sections; a table annotating no element keeps its ``obsm`` coordinates.
    """
    if not is_spatialdata(data):
        return resolve_data(data, table_key=table_key, copy=copy, mudata=False), None, None
    resolve_data(data, table_key=table_key, copy=copy)
    return table_and_coordinates(data, table_key, coordinate_system)


def annotated_regions(table) -> tuple[list[str], str, str] | None:
    """``(regions, region_key, instance_key)`` of a SpatialData table; ``None`` if it annotates no element."""
    attrs = table.uns.get("spatialdata_attrs")
    if not isinstance(attrs, Mapping) or "region_key" not in attrs or "instance_key" not in attrs:
        return None
    regions = attrs.get("region")
    regions = [regions] if isinstance(regions, str) else [str(r) for r in np.atleast_1d(regions)]
    return regions, str(attrs["region_key"]), str(attrs["instance_key"])


def table_and_coordinates(sdata, table_key, coordinate_system, name: str = "sdata"):
    """The table, the (x, y) centroid of each row's instance and the region column (the sections).

    ``coordinate_system`` is one name, or a dict from region to name (squidpy's
    ``elements_to_coordinate_systems``). ``None`` coordinates for a table that annotates no element.
    """
    table = spatial_table(sdata, table_key, name)
    found = annotated_regions(table)
    if found is None:
        return table, None, None
    regions, region_key, instance_key = found
    coords = np.empty((table.n_obs, 2))
    for region in table.obs[region_key].astype(str).unique():
        rows = (table.obs[region_key].astype(str) == region).to_numpy()
        coords[rows] = _centroids(sdata, region, _system(coordinate_system, region), table.obs[instance_key][rows])
    return table, coords, region_key


def _system(coordinate_system, region: str) -> str:
    if isinstance(coordinate_system, Mapping):
        if region not in coordinate_system:
            raise ValueError(
                f"coordinate_system has no entry for region {region!r} the table annotates; "
                f"got {sorted(coordinate_system)}"
            )
        return coordinate_system[region]
    return coordinate_system


def _centroids(sdata, region: str, system: str, instances) -> np.ndarray:
    """Centroids (x, y) of ``instances`` of element ``region`` in ``system``, in the order of ``instances``."""
    from spatialdata import get_centroids
    from spatialdata.transformations import get_transformation

    if region not in sdata:
        raise ValueError(f"the table annotates element {region!r}, which the SpatialData does not hold")
    systems = sorted(get_transformation(sdata[region], get_all=True))
    if system not in systems:
        raise ValueError(
            f"coordinate_system={system!r}: element {region!r} is in the coordinate systems {systems}; pick one"
        )
    centroids = get_centroids(sdata[region], coordinate_system=system)
    centroids = centroids.compute() if hasattr(centroids, "compute") else centroids
    positions = centroids.index.get_indexer(np.asarray(instances))
    if (positions < 0).any():
        missing = np.asarray(instances)[positions < 0]
        raise ValueError(
            f"{int((positions < 0).sum())} table row(s) name instances of {region!r} that the element lacks, "
            f"e.g. {missing[0]!r}; the table's instance ids must match the element's"
        )
    return centroids[["x", "y"]].to_numpy(dtype=np.float64)[positions]
