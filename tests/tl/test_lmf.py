"""``tl.lmf`` on AnnData: what it stores, h5ad round trips, clustering on the codes, errors."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from anndata.tests.helpers import assert_equal
from sklearn.metrics import homogeneity_score

import lmf_omics as lmf
from lmf_omics import LinearMixedForms
from lmf_omics._modalities import MissingKeyError

from .planted import N_CELL_TYPES, N_FACTORS
from .planted import planted_adata as _planted_adata

OPTIONS = {"response": "obsm:protein", "fixed": "X", "random": "obs:batch", "n_factors": N_FACTORS, "tol": 1e-7}


@pytest.fixture(scope="module")
def fitted():
    adata = _planted_adata()
    lmf.tl.lmf(adata, mask_var="highly_variable", **OPTIONS)
    return adata


def test_stores_codes_loadings_and_results(fitted):
    n, k = fitted.n_obs, N_FACTORS
    for key in ("X_lmf", "X_lmf_fixed", "X_lmf_random"):
        assert fitted.obsm[key].shape == (n, k)
    np.testing.assert_allclose(fitted.obsm["X_lmf"], fitted.obsm["X_lmf_fixed"] + fitted.obsm["X_lmf_random"])
    loadings = fitted.varm["lmf_loadings_fixed"]
    assert loadings.shape == (fitted.n_vars, k)
    assert np.all(loadings[~fitted.var["highly_variable"]] == 0)
    assert np.abs(loadings[fitted.var["highly_variable"].to_numpy()]).min(axis=1).max() > 0
    stored = fitted.uns["lmf"]
    assert stored["params"]["response"] == "obsm:protein" and stored["params"]["mask_var"] == "highly_variable"
    assert stored["modalities"]["response"]["loadings"].shape == (12, k)  # not var-aligned: kept in uns
    assert list(stored["modalities"]["response"]["features"]) == [f"ADT{i}" for i in range(12)]
    assert list(stored["modalities"]["random"]["features"]) == ["batch=b0", "batch=b1", "batch=b2"]
    assert stored["converged"] and stored["n_iter"] == len(stored["objective_history"])
    assert stored["total_variance_explained"]["response"] > 0.95


def test_random_code_encodes_the_batches(fitted):
    """Z (3 one-hot batches) has rank 2: H takes one value per batch."""
    H = fitted.obsm["X_lmf_random"]
    for batch in fitted.obs["batch"].cat.categories:
        rows = H[(fitted.obs["batch"] == batch).to_numpy()]
        np.testing.assert_allclose(rows, np.broadcast_to(rows[0], rows.shape), atol=1e-8)
    assert np.linalg.matrix_rank(H, tol=1e-8) == 2


def test_same_numbers_as_the_numeric_core(fitted):
    mask = fitted.var["highly_variable"].to_numpy()
    Z = pd.get_dummies(fitted.obs["batch"]).to_numpy(dtype=float)
    model = LinearMixedForms(N_FACTORS, tol=1e-7).fit(fitted.obsm["protein"].to_numpy(), fitted.X[:, mask], Z)
    np.testing.assert_allclose(fitted.obsm["X_lmf"], model.codes_, atol=1e-10)
    np.testing.assert_allclose(fitted.varm["lmf_loadings_fixed"][mask], model.loadings_["fixed"], atol=1e-10)


def test_clustering_on_the_codes_finds_the_cell_types(fitted):
    adata = fitted.copy()
    sc.pp.neighbors(adata, use_rep="X_lmf_fixed", n_neighbors=15, random_state=0)
    sc.tl.leiden(adata, flavor="igraph", n_iterations=2, random_state=0)
    sc.tl.umap(adata, random_state=0)
    assert adata.obsm["X_umap"].shape == (adata.n_obs, 2)
    # every cluster holds one cell type (Leiden may split a type, never mix two)
    assert adata.obs["leiden"].nunique() >= N_CELL_TYPES
    assert homogeneity_score(adata.obs["cell_type"], adata.obs["leiden"]) > 0.95


def test_h5ad_round_trip_rebuilds_the_model(fitted, tmp_path):
    path = tmp_path / "fitted.h5ad"
    fitted.write_h5ad(path)
    back = ad.read_h5ad(path)
    for key in ("X_lmf", "X_lmf_fixed", "X_lmf_random"):
        np.testing.assert_array_equal(back.obsm[key], fitted.obsm[key])
    pd.testing.assert_frame_equal(lmf.get.variance_explained(back), lmf.get.variance_explained(fitted))
    mask = fitted.var["highly_variable"].to_numpy()
    X, Z = fitted.X[:, mask], pd.get_dummies(fitted.obs["batch"]).to_numpy(dtype=float)
    original, rebuilt = lmf.get.model(fitted), lmf.get.model(back)
    assert rebuilt.solver == "joint" and rebuilt.n_factors == N_FACTORS
    np.testing.assert_allclose(rebuilt.predict(X=X, Z=Z), original.predict(X=X, Z=Z), atol=1e-12)
    # the rebuilt model encodes the training cells back to their stored codes (up to convergence)
    codes = rebuilt.transform(Y=fitted.obsm["protein"].to_numpy(), X=X, Z=Z)
    np.testing.assert_allclose(codes.combined, fitted.obsm["X_lmf"], atol=1e-3 * np.abs(fitted.obsm["X_lmf"]).max())
    assert lmf.get.features(back)["fixed"] == list(fitted.var_names[mask])


def test_copy_and_key_added():
    adata = _planted_adata(seed=1, n=80)
    before = adata.copy()
    result = lmf.tl.lmf(adata, copy=True, key_added="prot", **OPTIONS)
    assert_equal(adata, before)  # the original is untouched
    assert {"X_prot", "X_prot_fixed", "X_prot_random"} <= set(result.obsm) and "prot" in result.uns
    assert lmf.tl.lmf(adata, **OPTIONS) is None and "X_lmf" in adata.obsm


def test_refit_under_the_same_key_replaces_everything():
    adata = _planted_adata(seed=2, n=80)
    lmf.tl.lmf(adata, **OPTIONS)
    without_random = {**OPTIONS, "random": None, "n_factors": 3}
    lmf.tl.lmf(adata, **without_random)
    assert "X_lmf_random" not in adata.obsm
    assert adata.obsm["X_lmf"].shape == (80, 3)
    np.testing.assert_array_equal(adata.obsm["X_lmf"], adata.obsm["X_lmf_fixed"])
    assert set(adata.uns["lmf"]["modalities"]) == {"response", "fixed"}
    assert "random" not in lmf.get.variance_explained(adata).columns


@pytest.mark.parametrize(
    ("override", "error", "message"),
    [
        ({"response": "obsm:adt"}, MissingKeyError, r"response='obsm:adt': 'adt' not found in adata.obsm; available"),
        (
            {"random": "obs:sample"},
            MissingKeyError,
            r"'sample' not found in adata.obs; available: \['batch', 'cell_type",
        ),
        ({"fixed": "layer:counts"}, MissingKeyError, r"'counts' not found in adata.layers; available: \[\]"),
        ({"n_factors": 13}, ValueError, r"n_factors=13 is larger than the features of response='obsm:protein' \(12\)"),
        ({"n_factors": 0}, ValueError, "n_factors must be a positive integer, got 0"),
        ({"solver": "em"}, ValueError, "solver must be one of"),
        ({"response": "obsm:nan_protein"}, ValueError, r"response='obsm:nan_protein' contains 1 NaN .*row 3, column 1"),
        ({"fixed": "obsm:text"}, ValueError, r"non-numeric columns \['label'\]"),
        ({"random": "obs:constant"}, ValueError, r"random='obs:constant' has no variance after centring"),
        ({"fixed": "raw"}, ValueError, "adata.raw is None"),
    ],
)
def test_bad_input_raises_before_any_change(override, error, message):
    adata = _planted_adata(seed=3, n=60)
    nan_protein = adata.obsm["protein"].copy()
    nan_protein.iloc[3, 1] = np.nan
    adata.obsm["nan_protein"] = nan_protein
    adata.obsm["text"] = pd.DataFrame({"x": np.ones(60), "label": ["a"] * 60}, index=adata.obs_names)
    adata.obs["constant"] = 2.0
    lmf.tl.lmf(adata, **OPTIONS)  # an earlier fit that a failed call must not disturb
    before = adata.copy()
    with pytest.raises(error, match=message):
        lmf.tl.lmf(adata, **{**OPTIONS, **override})
    assert_equal(adata, before)


def test_results_of_a_missing_fit_name_what_exists(fitted):
    with pytest.raises(MissingKeyError, match=r"no LMF fit under uns\['prot'\]; fits present: \['lmf'\]"):
        lmf.get.model(fitted, key="prot")
    with pytest.raises(TypeError, match="adata must be an AnnData, got ndarray"):
        lmf.tl.lmf(np.ones((3, 3)), **OPTIONS)


def test_n_factors_chosen_by_cross_validation():
    adata = _planted_adata(seed=6, n=150)
    lmf.tl.lmf(adata, **{**OPTIONS, "n_factors": (2, 4, 6), "tol": 1e-5}, cv_folds=3)
    scores = adata.uns["lmf"]["cross_validation"]
    np.testing.assert_array_equal(scores["n_factors"], [2, 4, 6])
    chosen = int(scores["n_factors"][np.argmin(scores["mse"])])
    assert adata.uns["lmf"]["params"]["n_factors"] == chosen >= N_FACTORS  # at least the planted rank
    assert scores["mse"][0] > 1.5 * scores["mse"].min()  # too few factors predict clearly worse
    assert adata.obsm["X_lmf"].shape == (150, chosen)
    with pytest.raises(ValueError, match="n_factors is an empty sequence"):
        lmf.tl.lmf(adata, **{**OPTIONS, "n_factors": ()})
    with pytest.raises(ValueError, match="n_factors must be a positive integer, got 0"):
        lmf.tl.lmf(adata, **{**OPTIONS, "n_factors": (3, 0)})
