"""Every stored result survives the stores scverse uses (h5ad, zarr) and rebuilds the same model."""

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pytest

import lmf_omics as lmf

from .tl.planted import N_FACTORS, planted_adata

STORES = {
    "h5ad": (lambda adata, path: adata.write_h5ad(path), ad.read_h5ad),
    "zarr": (lambda adata, path: adata.write_zarr(path), ad.read_zarr),
}
FITS = {
    "encoded": {"response": "obsm:protein", "fixed": "X", "random": "obs:batch", "mask_var": "highly_variable"},
    "free": {"response": "obsm:protein", "fixed": "X", "random": "obs:batch", "codes": "free"},
}


@pytest.fixture(scope="module", params=list(FITS))
def fitted(request):
    adata = planted_adata(seed=11, n=160)
    lmf.tl.lmf(adata, n_factors=N_FACTORS, tol=1e-8, **FITS[request.param])
    return adata


@pytest.mark.parametrize("store", list(STORES))
def test_stored_fit_rebuilds_the_same_model(fitted, store, tmp_path):
    write, read = STORES[store]
    write(fitted, tmp_path / f"fit.{store}")
    back = read(tmp_path / f"fit.{store}")
    for role in ("response", "fixed", "random"):
        original, again = lmf.get.loadings(fitted, role=role), lmf.get.loadings(back, role=role)
        assert list(again.index) == list(original.index)
        np.testing.assert_array_equal(again.to_numpy(), original.to_numpy())
    assert lmf.get.features(back) == lmf.get.features(fitted)
    # the rebuilt model encodes and predicts as the original
    for reference in (fitted, back):
        lmf.tl.transform(query := fitted.copy(), reference, key_added="again")
        lmf.tl.predict(query, reference, key_added="predicted")
        if reference is fitted:
            expected = query
    np.testing.assert_array_equal(query.obsm["X_again"], expected.obsm["X_again"])
    codes = fitted.obsm["X_lmf"]  # the training cells encoded again get their codes, on the same scale
    np.testing.assert_allclose(query.obsm["X_again"], codes, atol=1e-3 * np.abs(codes).max())
    np.testing.assert_array_equal(query.obsm["predicted"].to_numpy(), expected.obsm["predicted"].to_numpy())
    assert list(query.obsm["predicted"].columns) == list(expected.obsm["predicted"].columns)


@pytest.mark.parametrize("store", list(STORES))
def test_plots_read_a_stored_fit(fitted, store, tmp_path):
    write, read = STORES[store]
    write(fitted, tmp_path / f"fit.{store}")
    back = read(tmp_path / f"fit.{store}")
    axes = lmf.pl.loadings(back, n_top=3)
    assert np.shape(axes) == (3, 3)  # roles × factors
    top = lmf.get.loadings(fitted, role="response")["Factor1"].abs().nlargest(3).index
    assert {t.get_text() for t in axes[2, 0].get_yticklabels()} == set(top)
    lmf.pl.variance_explained(back)
    lmf.pl.convergence(back)
    plt.close("all")


@pytest.mark.parametrize("store", list(STORES))
def test_transform_results_survive_a_second_round_trip(fitted, store, tmp_path):
    write, read = STORES[store]
    query = fitted.copy()
    lmf.tl.transform(query, fitted, key_added="query")
    write(query, tmp_path / f"query.{store}")
    back = read(tmp_path / f"query.{store}")
    np.testing.assert_array_equal(back.obsm["X_query"], query.obsm["X_query"])
    assert [str(m) for m in back.uns["query_transform"]["params"]["modalities"]] == ["fixed", "random", "response"]
