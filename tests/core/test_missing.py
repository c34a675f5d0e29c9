"""Cells without a modality (NaN rows or ``observed=``) and encoded codes of new cells."""

import numpy as np
import pytest
from scipy import sparse

from lmf_omics import LinearMixedForms

from .simulate import canonical_correlations, simulate

N = 300


@pytest.fixture(scope="module")
def sim():
    return simulate(n=N, k=3, seed=21)


def _with_nan_rows(matrix, rows):
    matrix = matrix.copy()
    matrix[rows] = np.nan
    return matrix


@pytest.mark.parametrize("codes", ["encoded", "free"])
def test_cells_without_the_response_still_get_codes_and_predictions(sim, codes):
    """70% of the cells have no Y: they still inform the fit through X and Z, and get good codes."""
    without = np.arange(N) % 10 < 7
    Y = _with_nan_rows(sim["Y"], without)
    model = LinearMixedForms(3, codes=codes, random_effect="response", tol=1e-10, max_iter=3000).fit(
        Y, sim["X"], sim["Z"]
    )
    assert model.converged_ and np.all(np.isfinite(model.codes_))
    assert canonical_correlations(model.fixed_codes_[without], sim["K"][without]).min() > 0.99
    predicted = model.predict(X=sim["X"][without], Z=sim["Z"][without])
    truth = sim["Y"][without]
    r2 = 1 - np.sum((truth - predicted) ** 2) / np.sum((truth - truth.mean(0)) ** 2)
    assert r2 > 0.98
    # the response is centred on the cells that have it
    np.testing.assert_allclose(model.means_["response"], sim["Y"][~without].mean(0), atol=1e-12)


@pytest.mark.parametrize("codes", ["encoded", "free"])
def test_nan_rows_and_observed_mask_are_the_same_and_unobserved_values_are_never_read(sim, codes):
    without = np.arange(N) % 4 == 0

    def fit(Y, observed=None):
        return LinearMixedForms(3, codes=codes, max_iter=40, tol=1e-12).fit(Y, sim["X"], sim["Z"], observed=observed)

    by_nan = fit(_with_nan_rows(sim["Y"], without))
    garbage = sim["Y"].copy()
    garbage[without] = 1e6
    sparse_mask = fit(sparse.csr_matrix(garbage), {"response": ~without})
    garbage[0, 0] = np.inf  # not finite, but unobserved: never read (inf · 0 would be NaN)
    by_mask = fit(garbage, {"response": ~without})
    np.testing.assert_allclose(by_mask.codes_, by_nan.codes_, atol=1e-10)
    np.testing.assert_allclose(by_mask.objective_history_, by_nan.objective_history_, rtol=1e-12)
    np.testing.assert_allclose(sparse_mask.codes_, by_nan.codes_, atol=1e-10)


@pytest.mark.parametrize("codes", ["encoded", "free"])
def test_a_new_cell_without_z_gets_a_zero_random_code(sim, codes):
    """As a mixed model predicts an unseen group, whichever other modalities the cell has (Y included)."""
    model = LinearMixedForms(3, codes=codes, max_iter=50).fit(sim["Y"], sim["X"], sim["Z"])
    assert np.all(model.transform(Y=sim["Y"][:20], X=sim["X"][:20]).random == 0)
    partly = model.transform(Y=sim["Y"][:20], X=sim["X"][:20], Z=_with_nan_rows(sim["Z"][:20], [0, 1]))
    assert np.all(partly.random[:2] == 0) and np.all(partly.random[2:] != 0)


def test_free_codes_of_cells_without_y_are_least_squares_from_what_they_have(sim):
    without = np.arange(N) % 3 == 0
    model = LinearMixedForms(3, codes="free", tol=1e-12, max_iter=5000).fit(
        _with_nan_rows(sim["Y"], without), sim["X"], sim["Z"]
    )
    again = model.transform(X=sim["X"][without], Z=sim["Z"][without])
    scale = np.abs(model.codes_).max()
    np.testing.assert_allclose(again.combined, model.codes_[without], atol=1e-4 * scale)


def test_encoded_codes_are_linear_encodings_of_x_and_z(sim):
    # with the paper's random effect (the default "states" corrects K by the cell's state: not linear)
    model = LinearMixedForms(3, random_effect="response", tol=1e-9).fit(sim["Y"], sim["X"], sim["Z"])
    centred = {
        role: (m - model.means_[role]) / model.scales_[role] for role, m in (("fixed", sim["X"]), ("random", sim["Z"]))
    }
    np.testing.assert_allclose(model.fixed_codes_, centred["fixed"] @ model.encoders_["fixed"], atol=1e-12)
    np.testing.assert_allclose(model.random_codes_, centred["random"] @ model.encoders_["random"], atol=1e-12)
    # new cells: the same encoders, and predictions μ + (K + H) αᵀ · s
    new = simulate(n=50, k=3, seed=22)  # other cells (and loadings): the identities hold for any input
    codes = model.transform(X=new["X"], Z=new["Z"])
    K = (new["X"] - model.means_["fixed"]) / model.scales_["fixed"] @ model.encoders_["fixed"]
    np.testing.assert_allclose(codes.fixed, K, atol=1e-12)
    expected = model.means_["response"] + (codes.combined @ model.loadings_["response"].T) * model.scales_["response"]
    np.testing.assert_allclose(model.predict(X=new["X"], Z=new["Z"]), expected, atol=1e-12)
    # a cell without Z (an unseen group) gets a zero random code
    assert np.all(model.transform(X=new["X"]).random == 0)
    without_z = model.transform(X=new["X"], Z=_with_nan_rows(new["Z"], [0, 1]))
    assert np.all(without_z.random[:2] == 0)
    np.testing.assert_allclose(without_z.random[2:], codes.random[2:], atol=1e-12)


def test_encoded_fixed_code_of_a_cell_without_x_comes_from_its_response(sim):
    model = LinearMixedForms(3, random_effect="response", tol=1e-9).fit(sim["Y"], sim["X"], sim["Z"])
    codes = model.transform(Y=sim["Y"][:20], X=_with_nan_rows(sim["X"][:20], [0, 1]), Z=sim["Z"][:20])
    np.testing.assert_allclose(codes.fixed[2:], model.fixed_codes_[2:20], atol=1e-12)
    # solved from Y given H: close to the training codes at low noise
    np.testing.assert_allclose(codes.fixed[:2], model.fixed_codes_[:2], atol=0.05 * np.abs(model.fixed_codes_).max())


@pytest.mark.parametrize(
    ("observed", "message"),
    [
        ({"response": np.ones(N)}, r"observed\['response'\] must be a boolean array of length 300 .*got dtype float64"),
        ({"response": np.ones(10, bool)}, r"observed\['response'\] must be a boolean array of length 300"),
        ({"protein": np.ones(N, bool)}, r"observed names modalities that were not given: \['protein'\]"),
        ({"fixed": np.arange(N) < 1}, r"fixed-effect data X is observed in 1 cell\(s\); it needs at least 2"),
    ],
)
def test_bad_observed_masks(sim, observed, message):
    with pytest.raises(ValueError, match=message):
        LinearMixedForms(3).fit(sim["Y"], sim["X"], sim["Z"], observed=observed)


def test_paper_solver_needs_complete_data(sim):
    with pytest.raises(ValueError, match="solver='paper' needs every modality in every cell"):
        LinearMixedForms(3, solver="paper").fit(_with_nan_rows(sim["Y"], [0]), sim["X"], sim["Z"])
    with pytest.raises(ValueError, match="solver='paper' .* fits free codes"):
        LinearMixedForms(3, solver="paper", codes="encoded").fit(sim["Y"], sim["X"])
    with pytest.raises(ValueError, match=r"n_pcs must be an integer >= n_factors \(3\), got 2"):
        LinearMixedForms(3, n_pcs=2).fit(sim["Y"], sim["X"])
