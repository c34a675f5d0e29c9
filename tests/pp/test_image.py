"""image_features: squidpy's per-spot features of the real Visium H&E crop, checked against the pixels."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

import lmf_omics as lmf


@pytest.fixture(scope="module")
def visium():
    return lmf.datasets.visium_mouse_brain_49spots(), lmf.datasets.visium_mouse_brain_49spots_image()


def _crop_mean(image, x, y, radius, channel):
    return image[int(y) - radius : int(y) + radius + 1, int(x) - radius : int(x) + radius + 1, channel].mean()


def test_summary_features_are_the_mean_of_each_spot_crop(visium):
    adata, path = visium
    lmf.pp.image_features(adata, img=path, features="summary")
    table = adata.obsm["img_features"]
    assert table.shape == (49, 15) and list(table.index) == list(adata.obs_names)
    image = plt.imread(path)
    diameter = adata.uns["spatial"]["V1_Adult_Mouse_Brain"]["scalefactors"]["spot_diameter_fullres"]
    radius = round(diameter // 2)
    for channel in range(3):
        expected = [_crop_mean(image, x, y, radius, channel) for x, y in adata.obsm["spatial"]]
        np.testing.assert_allclose(table[f"summary_ch-{channel}_mean"], expected, rtol=1e-10)
    assert adata.uns["img_features"]["params"]["spot_diameter"] == pytest.approx(diameter)


def test_all_default_families_from_an_array(visium):
    adata, path = visium
    out = lmf.pp.image_features(adata, img=plt.imread(path), key_added="hne", spot_scale=1.5, copy=True)
    table = out.obsm["hne"]
    families = {name.split("_")[0] for name in table.columns}
    assert families == {"summary", "histogram", "texture"}
    assert np.isfinite(table.to_numpy()).all() and (table.std() > 0).sum() > 50
    assert "hne" not in adata.obsm


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"img": "missing.jpg"}, "'missing.jpg' is not a file"),
        ({"features": ["summary", "colour"]}, r"unknown \['colour'\]"),
        ({"scale": 10.0}, "49 spot\\(s\\) lie outside the 950 × 1717 image"),
        ({"library_id": "other"}, "pass spot_diameter="),
        ({"spot_diameter": -3}, "spot_diameter=-3"),
        ({"img": np.zeros(5)}, "img must be an image file"),
    ],
)
def test_bad_input_raises_before_any_work(visium, kwargs, message):
    adata, path = visium
    with pytest.raises((ValueError, FileNotFoundError, KeyError), match=message):
        lmf.pp.image_features(adata, **{"img": path, **kwargs})
    assert "img_features" not in adata.obsm or adata.obsm["img_features"].shape[1] == 15


def test_n_jobs_none_follows_scanpys_setting_and_does_not_change_the_features(visium, monkeypatch):
    import scanpy as sc
    import squidpy as sq

    adata, path = visium
    serial = lmf.pp.image_features(adata, img=path, features="summary", n_jobs=1, copy=True).obsm["img_features"]
    calculate, passed = sq.im.calculate_image_features, []

    def spy(*args, n_jobs, **kwargs):  # squidpy's jobs as threads: loky's processes would re-import squidpy
        passed.append(n_jobs)
        return calculate(*args, n_jobs=n_jobs, backend="threading", **kwargs)

    monkeypatch.setattr(sq.im, "calculate_image_features", spy)
    saved, sc.settings.n_jobs = sc.settings.n_jobs, 2
    try:
        parallel = lmf.pp.image_features(adata, img=path, features="summary", copy=True).obsm["img_features"]
    finally:
        sc.settings.n_jobs = saved
    assert passed == [2]
    np.testing.assert_array_equal(parallel.to_numpy(), serial.to_numpy())
