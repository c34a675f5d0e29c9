"""``tl.transform`` / ``tl.predict``: a reference fit applied to query cells, features matched by name."""

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from anndata.tests.helpers import assert_equal
from sklearn.linear_model import RidgeCV

import lmf_omics as lmf

from .planted import N_FACTORS, planted_adata

OPTIONS = {"response": "obsm:protein", "fixed": "X", "random": "obs:batch", "n_factors": N_FACTORS, "tol": 1e-8}


@pytest.fixture(scope="module")
def cells():
    return planted_adata(seed=5, n=400)


@pytest.fixture(scope="module")
def reference(cells):
    reference = cells[:300].copy()
    lmf.tl.lmf(reference, **OPTIONS)
    return reference


def _r2(truth, predicted):
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    return 1 - np.sum((truth - predicted) ** 2) / np.sum((truth - truth.mean(0)) ** 2)


def _ridge_r2(train_inputs, train_truth, test_inputs, test_truth):
    """An independent reference: ridge regression tuned by leave-one-out on the training cells."""
    ridge = RidgeCV(alphas=np.logspace(-2, 4, 25)).fit(train_inputs, train_truth)
    return _r2(test_truth, ridge.predict(test_inputs))


def _design(adata):
    return np.hstack([adata.X.toarray(), pd.get_dummies(adata.obs["batch"]).to_numpy(dtype=float)])


def test_transform_gives_training_cells_their_stored_codes(reference):
    query = reference.copy()
    for key in ("X_lmf", "X_lmf_fixed", "X_lmf_random"):
        del query.obsm[key]
    lmf.tl.transform(query, reference, key_added="again")
    for stored, again in (("X_lmf", "X_again"), ("X_lmf_fixed", "X_again_fixed"), ("X_lmf_random", "X_again_random")):
        np.testing.assert_allclose(query.obsm[again], reference.obsm[stored], atol=1e-12)
    assert query.uns["again_transform"]["params"] == {
        "reference_key": "lmf",
        "modalities": ["fixed", "random", "response"],
    }


def test_predict_protein_of_new_cells(cells, reference):
    query = cells[300:].copy()
    truth = query.obsm.pop("protein")  # the query has RNA and batch only
    lmf.tl.predict(query, reference)
    predicted = query.obsm["lmf_predicted"]
    assert isinstance(predicted, pd.DataFrame)
    assert list(predicted.columns) == list(truth.columns) and list(predicted.index) == list(query.obs_names)
    ridge = _ridge_r2(_design(reference), reference.obsm["protein"], _design(query), truth)
    assert ridge > 0.95 and _r2(truth, predicted) > ridge - 0.03  # 4 factors vs full-rank ridge
    # the same as the estimator on matrices in the training feature order
    model = lmf.get.model(reference)
    Z = pd.get_dummies(query.obs["batch"]).to_numpy(dtype=float)
    np.testing.assert_allclose(predicted, model.predict(X=query.X, Z=Z), atol=1e-12)


def test_features_are_matched_by_name(cells, reference):
    query = cells[300:].copy()
    lmf.tl.predict(query, reference)
    shuffled = query[:, np.random.default_rng(0).permutation(query.n_vars)].copy()
    shuffled.obsm["protein"] = shuffled.obsm["protein"].iloc[:, ::-1]  # reordered columns: same numbers
    lmf.tl.transform(shuffled, reference)
    lmf.tl.predict(shuffled, reference)
    pd.testing.assert_frame_equal(shuffled.obsm["lmf_predicted"], query.obsm["lmf_predicted"], atol=1e-12)
    missing = query[:, 5:].copy()
    with pytest.raises(ValueError, match=r"fixed='X': the query lacks 5 of the 50 features .*\['gene0', 'gene1'"):
        lmf.tl.predict(missing, reference)


def test_unseen_batch_gets_a_zero_random_code(cells, reference, caplog):
    query = cells[300:].copy()
    query.obs["batch"] = query.obs["batch"].cat.add_categories("new_donor")
    query.obs.iloc[:10, query.obs.columns.get_loc("batch")] = "new_donor"
    with caplog.at_level(logging.INFO, logger="lmf_omics"):
        lmf.tl.transform(query, reference)
    assert "10 of 100 query cells have a random-effect level not seen in training" in caplog.text
    H = query.obsm["X_lmf_random"]
    assert np.all(H[:10] == 0) and np.abs(H[10:]).min(axis=1).max() > 0
    np.testing.assert_allclose(query.obsm["X_lmf"][:10], query.obsm["X_lmf_fixed"][:10])
    # without the batch column at all, every cell is predicted from its fixed code
    no_batch = cells[300:].copy()
    del no_batch.obs["batch"]
    lmf.tl.transform(no_batch, reference)
    assert "X_lmf_random" in no_batch.obsm and np.all(no_batch.obsm["X_lmf_random"] == 0)


def test_a_query_without_predictors_is_an_error_and_changes_nothing(cells, reference):
    query = cells[300:].copy()
    query.X = None
    del query.obs["batch"]
    before = query.copy()
    with pytest.raises(ValueError, match="the query has neither the fixed-effect .*'X'.* nothing to predict from"):
        lmf.tl.predict(query, reference)
    del query.obsm["protein"]
    with pytest.raises(ValueError, match=r"the query has none of the fit's modalities"):
        lmf.tl.transform(query, reference)
    del before.obsm["protein"]
    assert_equal(query, before)
    with pytest.raises(KeyError, match=r"no LMF fit under uns\['other'\]"):
        lmf.tl.predict(cells[300:].copy(), reference, key="other")


def test_predict_held_out_genes_into_a_layer(cells):
    """A var-aligned response: genes 0-9 predicted from genes 10-49 of new cells."""
    panel = np.arange(cells.n_vars) < 10
    reference, query = cells[:300].copy(), cells[300:].copy()
    reference.var["panel"], reference.var["rest"] = panel, ~panel
    lmf.tl.lmf(reference, response="X", fixed="X", mask_var={"response": "panel", "fixed": "rest"}, n_factors=4)
    lmf.tl.predict(query, reference, layer="predicted")
    layer = query.layers["predicted"]
    assert np.isnan(layer[:, ~panel]).all() and np.isfinite(layer[:, panel]).all()
    train, test = reference.X.toarray(), query.X.toarray()  # 40% of the entries are dropouts
    ridge = _ridge_r2(train[:, ~panel], train[:, panel], test[:, ~panel], test[:, panel])
    assert ridge > 0.45 and _r2(test[:, panel], layer[:, panel]) > ridge - 0.03
    with pytest.raises(ValueError, match="layer='p' needs a var-aligned response"):
        lmf.tl.predict(query, planted_reference_with_obsm_response(cells), layer="p")


def planted_reference_with_obsm_response(cells):
    reference = cells[:100].copy()
    lmf.tl.lmf(reference, **{**OPTIONS, "max_iter": 5, "tol": 1e-3})
    return reference


def test_fit_with_cells_missing_the_response(cells):
    """Cells without protein (NaN rows, or observed=) still get codes and count for the RNA."""
    adata = cells.copy()
    without = np.arange(adata.n_obs) % 2 == 0
    adata.obsm["protein"] = adata.obsm["protein"].astype(float)
    adata.obsm["protein"].iloc[without] = np.nan
    lmf.tl.lmf(adata, **OPTIONS)
    assert np.all(np.isfinite(adata.obsm["X_lmf"]))
    truth = cells.obsm["protein"].iloc[without]
    model = lmf.get.model(adata)
    Z = pd.get_dummies(adata.obs["batch"]).to_numpy(dtype=float)
    complete = ~without
    ridge = _ridge_r2(_design(cells)[complete], cells.obsm["protein"].iloc[complete], _design(cells)[without], truth)
    assert _r2(truth, model.predict(X=adata.X[without], Z=Z[without])) > ridge - 0.03
    flagged = cells.copy()
    flagged.obs["has_protein"] = ~without
    lmf.tl.lmf(flagged, observed={"response": "has_protein"}, **OPTIONS)
    np.testing.assert_allclose(flagged.obsm["X_lmf"], adata.obsm["X_lmf"], atol=1e-10)
    with pytest.raises(KeyError, match=r"'protein_flag' not found in adata.obs"):
        lmf.tl.lmf(flagged, observed={"response": "protein_flag"}, **OPTIONS)


def test_a_numeric_obs_column_whose_name_has_an_equals_sign_round_trips(cells):
    """random='obs:batch,dose=mg': the fit reads 'dose=mg' as a numeric column, and so does transform."""
    reference = cells[:300].copy()
    reference.obs["dose=mg"] = np.random.default_rng(1).random(reference.n_obs)
    lmf.tl.lmf(reference, **{**OPTIONS, "random": "obs:batch,dose=mg", "max_iter": 50})
    assert "dose=mg" in lmf.get.features(reference)["random"]
    query = reference.copy()
    lmf.tl.transform(query, reference, key_added="again")
    np.testing.assert_allclose(query.obsm["X_again_random"], reference.obsm["X_lmf_random"], atol=1e-12)
    np.testing.assert_allclose(query.obsm["X_again"], reference.obsm["X_lmf"], atol=1e-12)


@pytest.mark.filterwarnings("ignore:Variable names are not unique:UserWarning")
def test_predict_into_a_layer_ignores_repeated_names_the_fit_does_not_use(cells):
    """Two genes both called 'extra' that the fit never saw do not stop predictions into a layer."""
    panel = np.arange(cells.n_vars) < 10
    reference, query = cells[:300].copy(), cells[300:].copy()
    reference.var["panel"], reference.var["rest"] = panel, ~panel
    lmf.tl.lmf(reference, response="X", fixed="X", mask_var={"response": "panel", "fixed": "rest"}, n_factors=4)
    extra = ad.AnnData(np.ones((query.n_obs, 2), np.float32), obs=query.obs[[]])
    extra.var_names = ["extra", "extra"]
    joined = ad.concat([query, extra], axis=1, merge="first")
    joined.obs = query.obs.copy()
    lmf.tl.predict(joined, reference, layer="predicted")
    lmf.tl.predict(query, reference, layer="predicted")
    layer = joined.layers["predicted"]
    np.testing.assert_allclose(layer[:, : cells.n_vars], query.layers["predicted"], atol=1e-12, equal_nan=True)
    assert np.isnan(layer[:, cells.n_vars :]).all() and np.isfinite(layer[:, :10]).all()
