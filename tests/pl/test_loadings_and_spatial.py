"""Top-loadings bars and factors on tissue: real pixels in files, the right panels and labels."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from scipy import sparse

import lmf_omics as lmf


@pytest.fixture(scope="module")
def spatial_fit():
    """Two sections of a smooth spatial pattern; genes in var, proteins in obsm, section as random effect."""
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(np.arange(12), np.arange(10)), -1).reshape(-1, 2).astype(float)
    coords = np.vstack([grid, grid])
    codes = np.column_stack([np.sin(coords[:, 0] / 3), np.cos(coords[:, 1] / 3), rng.standard_normal(len(coords))])
    genes = codes @ rng.standard_normal((3, 40)) + 0.1 * rng.standard_normal((len(coords), 40))
    adata = AnnData(sparse.csr_matrix(genes))
    adata.var_names = [f"gene{i}" for i in range(40)]
    adata.obsm["spatial"] = coords
    adata.obs["section"] = pd.Categorical(np.repeat(["A", "B"], len(grid)))
    proteins = codes @ rng.standard_normal((3, 6))
    adata.obsm["protein"] = pd.DataFrame(proteins, index=adata.obs_names, columns=[f"CD{i}" for i in range(6)])
    lmf.tl.lmf(adata, response="obsm:protein", fixed="X", random="obs:section", n_factors=3, tol=1e-5)
    return adata


def _nonblank(path):
    image = plt.imread(path)
    assert image.shape[0] > 200 and image.shape[1] > 200
    assert image[..., :3].std() > 0.05


def test_get_loadings_reads_varm_and_uns(spatial_fit):
    genes = lmf.get.loadings(spatial_fit, role="fixed")
    np.testing.assert_array_equal(genes.to_numpy(), spatial_fit.varm["lmf_loadings_fixed"])
    assert list(genes.index) == list(spatial_fit.var_names) and list(genes.columns) == ["Factor1", "Factor2", "Factor3"]
    proteins = lmf.get.loadings(spatial_fit, role="response")
    assert list(proteins.index) == [f"CD{i}" for i in range(6)]
    np.testing.assert_array_equal(proteins.to_numpy(), lmf.get.model(spatial_fit).loadings_["response"])
    with pytest.raises(ValueError, match="role='protein'"):
        lmf.get.loadings(spatial_fit, role="protein")


def test_loadings_panels_show_the_largest_features(spatial_fit, tmp_path):
    path = tmp_path / "loadings.png"
    axes = lmf.pl.loadings(spatial_fit, factors=[1, 3], n_top=4, save=str(path))
    _nonblank(path)
    assert axes.shape == (3, 2)
    assert [ax.get_title() for ax in axes[:, 1]] == [
        "Factor 3 · response (Y)",
        "Factor 3 · fixed (X)",
        "Factor 3 · random (Z)",
    ]
    table = lmf.get.loadings(spatial_fit, role="fixed")["Factor1"]
    largest = table.abs().sort_values(ascending=False).index[:4]
    shown = [t.get_text() for t in axes[1, 0].get_yticklabels()]
    assert shown[::-1] == list(largest)  # largest at the top
    bars = [p.get_width() for p in axes[1, 0].patches]
    np.testing.assert_allclose(bars[::-1], table[largest].to_numpy())
    plt.close(axes[0, 0].figure)


def test_loadings_bad_options(spatial_fit):
    with pytest.raises(ValueError, match=r"\['protein'\] not fitted"):
        lmf.pl.loadings(spatial_fit, roles="protein")
    with pytest.raises(ValueError, match="factors=\\[4\\]"):
        lmf.pl.loadings(spatial_fit, factors=[4])
    with pytest.raises(ValueError, match="n_top=0"):
        lmf.pl.loadings(spatial_fit, n_top=0)


def test_factors_on_tissue_one_panel_per_section(spatial_fit, tmp_path):
    path = tmp_path / "tissue.png"
    axes = lmf.pl.factors_spatial(spatial_fit, library_key="section", factors=[1, 2], code="fixed", save=str(path))
    _nonblank(path)
    assert axes.shape == (2, 2)
    assert [ax.get_title() for ax in axes.ravel()] == ["Factor 1 · A", "Factor 1 · B", "Factor 2 · A", "Factor 2 · B"]
    figure = axes[0, 0].figure
    colorbars = [ax.get_ylabel() for ax in figure.axes if ax not in set(axes.ravel())]
    assert colorbars == ["Factor 1 (fixed code K)", "Factor 2 (fixed code K)"]
    points = axes[0, 1].collections[0]
    assert len(points.get_offsets()) == 120  # section B's spots only
    plt.close(figure)


def test_factors_on_an_image(spatial_fit, tmp_path):
    single = spatial_fit[spatial_fit.obs["section"] == "A"].copy()
    image = np.full((12, 14, 3), 0.8)
    path = tmp_path / "image.png"
    axes = lmf.pl.factors_spatial(single, img=image, spot_diameter=0.9, save=str(path))
    _nonblank(path)
    assert axes.shape == (1, 3) and [ax.get_title() for ax in axes[0]] == ["Factor 1", "Factor 2", "Factor 3"]
    assert axes[0, 0].images  # the image is drawn under the spots
    plt.close(axes[0, 0].figure)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"code": "noise"}, "code='noise'"),
        ({"library_key": "slide"}, "'slide' not found in adata.obs"),
        ({"spatial_key": "xy"}, "'xy' not found in adata.obsm"),
        ({"library_key": "section", "img": np.zeros((4, 4, 3))}, "gives 2 sections"),
        ({"img": np.zeros((4, 4, 3))}, "pass spot_diameter="),
    ],
)
def test_factors_spatial_bad_options(spatial_fit, kwargs, message):
    with pytest.raises((ValueError, KeyError), match=message):
        lmf.pl.factors_spatial(spatial_fit, **kwargs)


@pytest.mark.parametrize(
    ("coordinates", "message"),
    [
        (lambda c: c[:, :1], r"must hold numeric coordinates \(cells × 2\), got dtype float64 and shape \(\d+, 1\)"),
        (lambda c: c.astype(str), r"must hold numeric coordinates .*got dtype <U"),
        (lambda c: np.where(np.arange(len(c))[:, None] == 0, np.nan, c), r"has NaN or infinite coordinates"),
    ],
)
def test_factors_spatial_bad_coordinates(spatial_fit, coordinates, message):
    """The coordinates are checked as pp.spatial_context checks them ((n, 1) raised IndexError)."""
    adata = spatial_fit.copy()
    adata.obsm["odd"] = coordinates(np.asarray(adata.obsm["spatial"], dtype=np.float64))
    with pytest.raises(ValueError, match=message):
        lmf.pl.factors_spatial(adata, spatial_key="odd")
