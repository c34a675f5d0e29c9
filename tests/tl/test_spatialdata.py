"""SpatialData in tl.lmf, pp.spatial_context and pl.factors_spatial.

The table annotating the shapes is fitted; coordinates are the centroids, as squidpy reads them.
"""

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import lmf_omics as lmf

from .planted import N_FACTORS, planted_adata

sd = pytest.importorskip("spatialdata")
OPTIONS = {"response": "obsm:protein", "fixed": "X", "random": "obsm:niche", "n_factors": N_FACTORS, "tol": 1e-8}
SECTIONS = ("section_a", "section_b")


def _sdata(seed=3, n=120):
    """Two shapes elements (sections) of circles; the table lists their spots in a shuffled order."""
    import geopandas as gpd
    from shapely.geometry import Point
    from spatialdata.models import ShapesModel, TableModel
    from spatialdata.transformations import Scale

    rng = np.random.default_rng(seed)
    adata = planted_adata(seed=seed, n=n)
    xy = rng.uniform(0, 20, size=(n, 2))
    region = np.repeat(SECTIONS, n // 2)
    instance = np.concatenate([np.arange(1, n // 2 + 1)] * 2) * 10  # ids, not positions
    shapes = {}
    for name in SECTIONS:
        rows = region == name
        frame = gpd.GeoDataFrame(geometry=[Point(*p) for p in xy[rows] / 2.0], index=instance[rows])
        frame["radius"] = 0.4
        shapes[name] = ShapesModel.parse(frame, transformations={"global": Scale([2.0, 2.0], axes=("x", "y"))})
    adata.obs["region"] = pd.Categorical(region)
    adata.obs["spot_id"] = instance
    order = rng.permutation(n)
    table = TableModel.parse(adata[order].copy(), region=list(SECTIONS), region_key="region", instance_key="spot_id")
    return sd.SpatialData(shapes=shapes, tables={"spots": table}), pd.DataFrame(xy[order], index=table.obs_names)


def _anndata(sdata, coords):
    """The AnnData a squidpy user passes today: the table with the centroids in obsm['spatial']."""
    adata = sdata.tables["spots"].copy()
    adata.obsm["spatial"] = coords.loc[adata.obs_names].to_numpy()
    return adata


@pytest.fixture(scope="module")
def fitted():
    sdata, coords = _sdata()
    lmf.pp.spatial_context(sdata, table_key="spots", source="obsm:protein", key_added="niche")
    lmf.tl.lmf(sdata, table_key="spots", **OPTIONS)
    return sdata, coords


def test_niche_and_fit_on_the_table_equal_those_of_the_anndata(fitted):
    sdata, coords = fitted
    adata = _anndata(_sdata()[0], coords)
    lmf.pp.spatial_context(adata, library_key="region", source="obsm:protein", key_added="niche")
    lmf.tl.lmf(adata, **OPTIONS)
    table = sdata.tables["spots"]
    np.testing.assert_allclose(table.obsm["niche"].to_numpy(), adata.obsm["niche"].to_numpy(), atol=1e-12)
    assert table.uns["niche"]["params"]["library_key"] == "region"  # one graph per annotated element
    for key in ("X_lmf", "X_lmf_fixed", "X_lmf_random"):
        np.testing.assert_allclose(table.obsm[key], adata.obsm[key], atol=1e-10)
    np.testing.assert_allclose(table.varm["lmf_loadings_fixed"], adata.varm["lmf_loadings_fixed"], atol=1e-10)


def test_a_written_spatialdata_keeps_a_usable_fit(fitted, tmp_path):
    sdata, _ = fitted
    sdata.write(tmp_path / "fit.zarr")
    back = sd.read_zarr(tmp_path / "fit.zarr").tables["spots"]
    table = sdata.tables["spots"]
    for role in ("response", "fixed", "random"):
        pd.testing.assert_frame_equal(lmf.get.loadings(back, role=role), lmf.get.loadings(table, role=role))
    lmf.tl.transform(back, back, key_added="again")
    np.testing.assert_allclose(back.obsm["X_again"], table.obsm["X_lmf"], atol=1e-10)
    lmf.tl.predict(query := table.copy(), back)
    assert np.isfinite(query.obsm["lmf_predicted"].to_numpy()).all()


def test_factors_drawn_at_the_centroids_one_panel_per_element(fitted):
    sdata, coords = fitted
    axes = lmf.pl.factors_spatial(sdata, table_key="spots", factors=[1, 2], code="fixed")
    assert axes.shape == (2, 2)  # factors × annotated elements
    table = sdata.tables["spots"]
    first = table.obs["region"].to_numpy() == SECTIONS[0]
    drawn = np.asarray(axes[0, 0].collections[0].get_offsets())
    np.testing.assert_allclose(np.sort(drawn, axis=0), np.sort(coords.to_numpy()[first], axis=0), atol=1e-9)
    plt.close("all")


def test_a_table_annotating_no_element_uses_its_obsm_coordinates():
    table = planted_adata(seed=1, n=60)
    table.obsm["spatial"] = np.random.default_rng(0).uniform(0, 5, (60, 2))
    sdata = sd.SpatialData(tables={"cells": table})
    lmf.pp.spatial_context(sdata, table_key="cells", source="obsm:protein")
    expected = lmf.pp.spatial_context(table.copy(), source="obsm:protein", copy=True)
    np.testing.assert_allclose(table.obsm["spatial_context"], expected.obsm["spatial_context"], atol=1e-12)


def test_anndata_entry_points_still_reject_a_spatialdata_clearly(fitted):
    sdata, _ = fitted
    with pytest.raises(TypeError, match="a SpatialData is read by tl.lmf, pp.spatial_context and pl.factors_spatial"):
        lmf.pp.normalize_rna(sdata)
    with pytest.raises(TypeError, match=r"pass its table: sdata.tables\['spots'\]"):
        lmf.get.model(sdata)
    with pytest.raises(ValueError, match=r"name its table with table_key=, one of \['spots'\]"):
        lmf.tl.lmf(sdata, **OPTIONS)
    assert isinstance(sdata.tables["spots"], ad.AnnData)
