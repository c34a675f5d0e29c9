"""LinearMixedForms end to end on simulated data with planted codes."""

import logging

import numpy as np
import pytest
from scipy import sparse

from lmf_omics import LinearMixedForms
from lmf_omics._core import subspace
from lmf_omics._core.operators import Operator
from lmf_omics._core.problems import FreeProblem

from .simulate import canonical_correlations, simulate


@pytest.fixture(scope="module")
def planted():
    return simulate()


@pytest.fixture(scope="module", params=["encoded", "free"])
def fitted(planted, request):
    # the paper's random effect: the planted K is recovered as generated (random_effect forms: test_random_effects)
    return LinearMixedForms(3, codes=request.param, random_effect="response", tol=1e-9, max_iter=2000).fit(
        planted["Y"], planted["X"], planted["Z"]
    )


def test_recovers_planted_codes(planted, fitted):
    assert fitted.converged_
    assert canonical_correlations(fitted.fixed_codes_, planted["K"]).min() > 0.99
    assert canonical_correlations(fitted.random_codes_, planted["H"]).min() > 0.99
    assert canonical_correlations(fitted.codes_, planted["K"] + planted["H"]).min() > 0.99
    for role in ("response", "fixed", "random"):
        assert fitted.total_variance_explained_[role] > 0.99


@pytest.mark.parametrize("codes", ["encoded", "free"])
def test_recovers_group_random_effect_from_low_rank_z(codes):
    sim = simulate(k=4, z_levels=3, seed=4)  # Z: 3 one-hot groups, centred rank 2 < k
    model = LinearMixedForms(4, codes=codes, random_effect="response", tol=1e-9, max_iter=3000).fit(
        sim["Y"], sim["X"], sim["Z"]
    )
    assert np.all(np.isfinite(model.codes_))
    assert canonical_correlations(model.fixed_codes_, sim["K"]).min() > 0.99
    # H lies in the span of the (centred) group indicators and matches the planted group effect
    Zc = sim["Z"] - sim["Z"].mean(0)
    residual = model.random_codes_ - Zc @ np.linalg.lstsq(Zc, model.random_codes_, rcond=None)[0]
    assert np.abs(residual).max() < 1e-8
    assert np.linalg.matrix_rank(model.random_codes_, tol=1e-8) == 2
    assert canonical_correlations(model.random_codes_, sim["H"])[:2].min() > 0.99


@pytest.mark.parametrize("codes", ["encoded", "free"])
def test_joint_objective_never_increases(codes):
    for seed, kwargs in enumerate([{}, {"z_levels": 4}, {"noise": 0.5}]):
        sim = simulate(n=150, k=4, seed=seed, **kwargs)
        observed = {"response": np.arange(150) % 7 != 0} if seed == 2 else None  # some cells without Y
        model = LinearMixedForms(4, codes=codes, max_iter=200, tol=1e-12).fit(
            sim["Y"], sim["X"], sim["Z"], observed=observed
        )
        steps = np.diff(model.objective_history_)
        assert np.all(steps <= 1e-12 * model.objective_history_[0]), steps.max()


@pytest.mark.parametrize("codes", ["encoded", "free"])
def test_sparse_fit_equals_dense_fit(codes):
    sim = simulate(n=200, seed=5)
    rng = np.random.default_rng(5)
    mask = rng.random(sim["X"].shape) < 0.3
    X = np.where(mask, sim["X"], 0.0)
    dense = LinearMixedForms(3, codes=codes, max_iter=50, tol=1e-12).fit(sim["Y"], X, sim["Z"])
    for fmt in (sparse.csr_matrix, sparse.csc_matrix, sparse.csr_array):
        fit = LinearMixedForms(3, codes=codes, max_iter=50, tol=1e-12).fit(fmt(sim["Y"]), fmt(X), sim["Z"])
        np.testing.assert_allclose(fit.codes_, dense.codes_, atol=1e-8)
        np.testing.assert_allclose(fit.loadings_["fixed"], dense.loadings_["fixed"], atol=1e-8)
        np.testing.assert_allclose(fit.objective_history_, dense.objective_history_, rtol=1e-10)


@pytest.mark.parametrize("codes", ["encoded", "free"])
def test_same_seed_identical_results(codes, monkeypatch):
    monkeypatch.setattr(subspace, "EXACT_ENTRIES", 0)  # X's basis randomised (it is exact at this size)
    sim = simulate(p_x=120, seed=9)  # X wider than the principal sketch

    def fit(seed):
        return LinearMixedForms(3, codes=codes, max_iter=30, random_state=seed).fit(sim["Y"], sim["X"], sim["Z"])

    first, second, other = fit(0), fit(0), fit(1)
    assert np.array_equal(first.codes_, second.codes_)
    assert np.array_equal(first.objective_history_, second.objective_history_)
    assert not np.array_equal(first.codes_, other.codes_)
    assert canonical_correlations(first.codes_, other.codes_).min() > 0.99


def test_small_data_get_the_same_encoded_fit_whatever_the_seed():
    """Their bases are exact (``subspace.EXACT_ENTRIES``): no sketch, so the seed has nothing to choose."""
    sim = simulate(p_x=120, seed=9)

    def fit(seed):
        return LinearMixedForms(3, max_iter=30, random_state=seed).fit(sim["Y"], sim["X"], sim["Z"])

    first, other = fit(0), fit(1)
    np.testing.assert_allclose(other.codes_, first.codes_, rtol=0, atol=1e-12 * np.abs(first.codes_).max())


def test_canonical_form(fitted):
    gram = fitted.codes_.T @ fitted.codes_
    off_diagonal = gram - np.diag(np.diag(gram))
    assert np.abs(off_diagonal).max() < 1e-10 * np.abs(gram).max()
    explained = fitted.variance_explained_["response"]
    assert np.all(np.diff(explained) <= 1e-12)
    largest = fitted.codes_[np.argmax(np.abs(fitted.codes_), axis=0), range(3)]
    assert np.all(largest > 0)


def test_variance_explained_matches_dense_computation(planted, fitted):
    Yc = planted["Y"] - planted["Y"].mean(0)
    total = np.sum(Yc**2)
    C, a = fitted.codes_, fitted.loadings_["response"]
    for j in range(3):
        r2 = 1 - np.sum((Yc - np.outer(C[:, j], a[:, j])) ** 2) / total
        assert fitted.variance_explained_["response"][j] == pytest.approx(r2, abs=1e-10)
    assert fitted.total_variance_explained_["response"] == pytest.approx(
        1 - np.sum((Yc - C @ a.T) ** 2) / total, abs=1e-10
    )
    by_fixed = 1 - np.sum((Yc - fitted.fixed_codes_ @ a.T) ** 2) / total
    assert fitted.total_variance_explained_["response_fixed_code"] == pytest.approx(by_fixed, abs=1e-10)


def test_transform_of_training_data_reproduces_codes(planted, fitted):
    codes = fitted.transform(Y=planted["Y"], X=planted["X"], Z=planted["Z"])
    size = np.abs(fitted.codes_).max()  # codes on the data's scale (code_scale_): a relative tolerance
    np.testing.assert_allclose(codes.fixed, fitted.fixed_codes_, atol=1e-5 * size)
    np.testing.assert_allclose(codes.random, fitted.random_codes_, atol=1e-5 * size)


def test_predict_response_from_x_and_z(planted, fitted):
    predicted = fitted.predict(X=planted["X"], Z=planted["Z"])
    assert predicted.shape == planted["Y"].shape
    residual = np.sum((planted["Y"] - predicted) ** 2) / np.sum((planted["Y"] - planted["Y"].mean(0)) ** 2)
    assert residual < 0.01
    expected = fitted.transform(X=planted["X"], Z=planted["Z"]).combined @ fitted.loadings_["response"].T
    np.testing.assert_allclose(predicted, expected + fitted.means_["response"], atol=1e-12)


def test_state_round_trip(planted, fitted):
    rebuilt = LinearMixedForms.from_state(fitted.get_state())
    np.testing.assert_allclose(
        rebuilt.predict(X=planted["X"], Z=planted["Z"]), fitted.predict(X=planted["X"], Z=planted["Z"]), atol=1e-12
    )


def test_without_random_effects(planted):
    model = LinearMixedForms(3, tol=1e-9).fit(planted["Y"], planted["X"])
    assert model.random_codes_ is None and "random" not in model.loadings_
    np.testing.assert_array_equal(model.codes_, model.fixed_codes_)
    assert model.transform(X=planted["X"]).random is None
    with pytest.raises(ValueError, match="without a random-effect modality"):
        model.transform(X=planted["X"], Z=planted["Z"])


def test_paper_solver_matches_independent_algorithm_1():
    """Algorithm 1 written out with dense numpy from the same starting codes."""
    sim = simulate(n=12, k=2, p_y=5, p_x=4, p_z=3, noise=0.3, seed=7)
    Y, X, Z = (sim[m] - sim[m].mean(0) for m in "YXZ")
    steps = 7
    model = LinearMixedForms(2, solver="paper", max_iter=steps, tol=1e-300).fit(sim["Y"], sim["X"], sim["Z"])
    data = model._weighted({r: Operator.from_data(sim[m]) for r, m in zip(("response", "fixed", "random"), "YXZ")})
    start = FreeProblem(data).initial(2, rng=np.random.default_rng(0))
    K, H = start.K, start.H
    pinv = np.linalg.pinv
    for t in range(steps):
        alpha = Y.T @ (K + H) @ pinv((K + H).T @ (K + H))
        beta = X.T @ K @ pinv(K.T @ K)
        u = Z.T @ H @ pinv(H.T @ H)
        if t == steps - 1:
            break
        if t % 3 == 0:
            H = Y @ alpha @ pinv(alpha.T @ alpha) - K
        elif t % 3 == 1:
            K = X @ beta @ pinv(beta.T @ beta)
        else:
            H = Z @ u @ pinv(u.T @ u)
    # the fit is reported after an orthogonal rotation: compare rotation-invariant products
    np.testing.assert_allclose(model.fixed_codes_ @ model.loadings_["fixed"].T, K @ beta.T, atol=1e-8)
    np.testing.assert_allclose(model.random_codes_ @ model.loadings_["random"].T, H @ u.T, atol=1e-8)
    np.testing.assert_allclose(model.codes_ @ model.loadings_["response"].T, (K + H) @ alpha.T, atol=1e-8)
    np.testing.assert_allclose(model.fixed_codes_ @ model.fixed_codes_.T, K @ K.T, atol=1e-8)
    assert model.n_iter_ == steps


def test_not_converging_warns_and_returns_usable_output(planted, caplog):
    with caplog.at_level(logging.WARNING, logger="lmf_omics"):
        model = LinearMixedForms(3, max_iter=3).fit(planted["Y"], planted["X"], planted["Z"])
    assert not model.converged_ and model.n_iter_ == 3
    assert "did not converge" in caplog.text
    assert np.all(np.isfinite(model.codes_))


def test_zero_ridge_with_rank_deficient_z_falls_back_cleanly():
    sim = simulate(n=100, k=4, z_levels=2, seed=8)
    model = LinearMixedForms(4, ridge=0.0, max_iter=30).fit(sim["Y"], sim["X"], sim["Z"])
    assert np.all(np.isfinite(model.codes_)) and np.all(np.isfinite(model.objective_history_))


@pytest.mark.parametrize("rank_deficient", [False, True])
def test_encoded_loadings_over_the_features_are_the_least_squares_loadings(rank_deficient):
    """Loadings formed at the end from r-space coordinates satisfy the normal equations, also when the
    projection of Y on the bases is rank-deficient (p_y = 10 > r = 8, but Y of rank 4)."""
    sim = simulate(n=120, k=3, p_y=10, p_x=40, p_z=3, seed=13)
    Y = sim["Y"]
    if rank_deficient:
        Y = np.hstack([Y[:, :4], Y[:, :4] * 2.0, Y[:, :2]])
    model = LinearMixedForms(3, n_pcs=5, ridge=0.01, max_iter=50, tol=1e-12).fit(Y, sim["X"], sim["Z"])
    Yc = (Y - model.means_["response"]) * np.sqrt(model.modality_weights_["response"])
    C = model.codes_ / model.code_scale_  # the ridge applies where the fit balanced codes and loadings
    weighted = Yc.T @ C @ np.linalg.inv(C.T @ C + 0.01 * np.eye(3))
    np.testing.assert_allclose(
        model.loadings_["response"] * np.sqrt(model.modality_weights_["response"]) * model.code_scale_,
        weighted,
        atol=1e-9 * np.abs(weighted).max(),
    )
    total = np.sum((Y - Y.mean(0)) ** 2)
    r2 = 1 - np.sum((Y - Y.mean(0) - model.codes_ @ model.loadings_["response"].T) ** 2) / total
    assert model.total_variance_explained_["response"] == pytest.approx(r2, abs=1e-10)


@pytest.mark.parametrize("codes", ["encoded", "free"])
def test_codes_are_scores_on_the_data_scale_as_pca(codes):
    """With Y = X and no Z, K is X's rank-k PCA scores ``U S`` (numpy's SVD), loadings of unit norm."""
    X = simulate(n=150, k=3, p_y=12, p_x=30, p_z=2, seed=5)["X"]
    model = LinearMixedForms(3, codes=codes, ridge=1e-9, tol=1e-12, max_iter=3000).fit(X, X)
    U, S, _ = np.linalg.svd(X - X.mean(0), full_matrices=False)
    scores = U[:, :3] * S[:3]
    np.testing.assert_allclose(np.linalg.norm(model.loadings_["fixed"], axis=0), 1.0, rtol=1e-10)
    np.testing.assert_allclose(np.abs(model.fixed_codes_), np.abs(scores), atol=1e-4 * S[0])


def test_paper_solver_keeps_its_own_scale(planted):
    model = LinearMixedForms(3, solver="paper", max_iter=30).fit(planted["Y"], planted["X"], planted["Z"])
    np.testing.assert_array_equal(model.code_scale_, np.ones(3))
