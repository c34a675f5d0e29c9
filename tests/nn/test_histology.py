"""histology_features on the shared Visium crop: shapes, seeded determinism, h5ad round trip, tl.lmf use."""

import inspect

import anndata as ad
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lmf_omics as lmf
from lmf_omics.nn import histology_features

SMALL = {"n_codes": 5, "n_features": 12, "widths": (8,), "tile_pixels": 16, "epochs": 3, "progress": False}


@pytest.fixture(scope="module")
def spots():
    return lmf.datasets.visium_mouse_brain_49spots()


@pytest.fixture(scope="module")
def image():
    return lmf.datasets.visium_mouse_brain_49spots_image()


@pytest.fixture(scope="module")
def featured(spots, image):
    return histology_features(spots, image, copy=True, **SMALL)


def test_features_loadings_and_history_have_the_right_shapes(spots, featured):
    assert "X_histology" not in spots.obsm  # copy=True left the input alone
    features = featured.obsm["X_histology"]
    assert features.shape == (49, 12) and features.dtype == np.float64 and np.isfinite(features).all()
    assert features.std(0).max() > 0
    stored = featured.uns["X_histology"]
    assert stored["loadings"].shape == (12, 5) and stored["target_mean"].shape == (5,)
    assert stored["params"]["tile_size"] == 137  # the spot pitch of this crop, in pixels
    assert len(stored["validation_indices"]) == 10  # round(0.2 · 49)
    history = stored["history"]
    assert history["n_epochs"] == 3 and history["validation_fit"].shape == (3,)
    np.testing.assert_allclose(
        history["metric_orthogonality_error"][history["best_epoch"] - 1], stored["orthogonality_error"], rtol=1e-6
    )


def test_stored_loadings_and_scaling_reproduce_the_validation_fit(spots, featured):
    stored = featured.uns["X_histology"]
    codes = spots.obsm["X_pca"][:, :5].astype(np.float64)
    np.testing.assert_allclose(stored["target_mean"], codes.mean(0), rtol=1e-10)
    np.testing.assert_allclose(stored["target_scale"], np.sqrt(codes.var(0).mean()), rtol=1e-10)
    # the restored (best) weights gave the best validation loss: recompute it from what is stored
    held_out = stored["validation_indices"]
    standardised = (codes[held_out] - stored["target_mean"]) / stored["target_scale"]
    predicted = featured.obsm["X_histology"][held_out] @ stored["loadings"]
    history = stored["history"]
    np.testing.assert_allclose(
        np.mean((standardised - predicted) ** 2), history["validation_fit"][history["best_epoch"] - 1], rtol=1e-4
    )


def test_same_seed_identical_other_seed_different(spots, image, featured):
    again = histology_features(spots, image, copy=True, **SMALL)
    assert np.array_equal(again.obsm["X_histology"], featured.obsm["X_histology"])
    assert np.array_equal(again.uns["X_histology"]["loadings"], featured.uns["X_histology"]["loadings"])
    other = histology_features(spots, image, copy=True, random_state=1, **SMALL)
    assert not np.allclose(other.obsm["X_histology"], featured.obsm["X_histology"])


def test_image_path_gives_the_same_result(spots, featured):
    path = lmf.datasets.shared_path("visium_mouse_brain_49spots_hne.jpg")
    from_path = histology_features(spots, path, copy=True, **SMALL)
    assert np.array_equal(from_path.obsm["X_histology"], featured.obsm["X_histology"])
    assert from_path.uns["X_histology"]["params"]["image"] == str(path)


def test_h5ad_round_trip_and_use_as_an_lmf_modality(featured, tmp_path):
    featured.write_h5ad(tmp_path / "spots.h5ad")
    back = ad.read_h5ad(tmp_path / "spots.h5ad")
    np.testing.assert_array_equal(back.obsm["X_histology"], featured.obsm["X_histology"])
    np.testing.assert_array_equal(back.uns["X_histology"]["loadings"], featured.uns["X_histology"]["loadings"])
    assert back.uns["X_histology"]["params"]["target"] == "obsm:X_pca"
    lmf.tl.lmf(back, response="X", fixed="obsm:X_histology", n_factors=4, max_iter=50)
    assert back.obsm["X_lmf"].shape == (49, 4)
    assert back.uns["lmf"]["params"]["fixed"] == "obsm:X_histology"


def test_writes_in_place_under_key_added(spots, image):
    adata = spots.copy()
    assert histology_features(adata, image, key_added="tiles", validation_fraction=0, **SMALL) is None
    assert adata.obsm["tiles"].shape == (49, 12) and "tiles" in adata.uns
    assert len(adata.uns["tiles"]["validation_indices"]) == 0
    assert adata.uns["tiles"]["history"]["best_epoch"] >= 1


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"n_codes": 20, "n_features": 12}, ValueError, "n_features=12 < n_codes=20"),
        ({"n_codes": 60}, ValueError, "n_codes=60 must be an integer between 1 and 50"),
        ({"n_codes": 2.5}, ValueError, "n_codes=2.5 must be an integer between 1 and 50"),
        ({"spatial_key": "xy"}, KeyError, "spatial_key='xy' not found in adata.obsm; available"),
        ({"scale_factor": 3.0}, ValueError, "outside the 950 × 1717 image .*set scale_factor="),
        ({"scale_factor": 0}, ValueError, "scale_factor=0 must be a positive number"),
        ({"key_added": "a/b"}, ValueError, "key_added='a/b'"),
        ({"target": "obsm:missing"}, KeyError, "'missing' not found"),
        ({"tile_pixels": 2}, ValueError, "tile_pixels=2 is too small"),
        ({"epochs": 0}, ValueError, "epochs=0"),
        ({"validation_fraction": 1.0}, ValueError, "validation_fraction"),
    ],
)
def test_bad_input_raises_and_leaves_adata_untouched(spots, image, options, error, match):
    adata = spots.copy()
    with pytest.raises(error, match=match):
        histology_features(adata, image, **{**SMALL, **options})
    assert set(adata.obsm) == set(spots.obsm) and set(adata.uns) == set(spots.uns)


def test_a_spot_without_coordinates_is_refused_before_any_work(spots, image):
    adata = spots.copy()
    adata.obsm["spatial"] = adata.obsm["spatial"].astype(float)
    adata.obsm["spatial"][3, 0] = np.nan
    with pytest.raises(ValueError, match=r"obsm\['spatial'\] has NaN or infinite coordinates"):
        histology_features(adata, image, **SMALL)
    assert set(adata.obsm) == set(spots.obsm) and set(adata.uns) == set(spots.uns)


def test_scanpy_conventions():
    params = inspect.signature(histology_features).parameters
    names = list(params)
    assert names[:2] == ["adata", "image"]
    assert all(params[name].kind is inspect.Parameter.KEYWORD_ONLY for name in names[2:])
    assert params["copy"].default is False and params["key_added"].default == "X_histology"
    assert len(histology_features.__doc__) > 200
