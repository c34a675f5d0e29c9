"""Each exact block update against an independent brute-force least-squares reference."""

import numpy as np
import pytest

from lmf_omics._core.operators import Operator
from lmf_omics._core.parts import Data, Factors, Loadings, gram
from lmf_omics._core.problems import EncodedProblem, FreeProblem
from lmf_omics._core.rows import solve_rows
from lmf_omics._core.solvers import rebalance
from lmf_omics._core.subspace import principal_basis

RIDGE = 0.05


def _problem(seed=0, n=9, k=2, p=(5, 4, 3), missing_response=()):
    rng = np.random.default_rng(seed)
    mats = [rng.standard_normal((n, q)) for q in p]
    observed = np.ones(n, bool)
    observed[list(missing_response)] = False
    ops = [Operator.from_data(mats[0], observed=observed)] + [Operator.from_data(m) for m in mats[1:]]
    centred = [m - m[mask].mean(0) for m, mask in zip(mats, (observed, np.ones(n, bool), np.ones(n, bool)))]
    centred[0][~observed] = 0.0  # an unobserved cell is a zero row
    loadings = [rng.standard_normal((q, k)) for q in p]
    return rng, ops, centred, loadings, observed


def _factors(n, k, loadings, with_random=True):
    return Factors(
        K=np.zeros((n, k)),
        H=np.zeros((n, k)) if with_random else None,
        loadings=Loadings(alpha=loadings[0], beta=loadings[1], u=loadings[2] if with_random else None),
    )


def _vec_least_squares(blocks, unknown_size):
    """Minimise Σ‖design_b x − target_b‖² + ρ‖x‖² over x by dense least squares."""
    design = np.vstack([d for d, _ in blocks] + [np.sqrt(RIDGE) * np.eye(unknown_size)])
    target = np.concatenate([t for _, t in blocks] + [np.zeros(unknown_size)])
    return np.linalg.lstsq(design, target, rcond=None)[0]


@pytest.mark.parametrize("missing", [(), (2, 5)], ids=["all observed", "two cells without Y"])
def test_free_joint_code_update_is_exact_row_least_squares(missing):
    _, ops, (Y, X, Z), (a, b, u), observed = _problem(missing_response=missing)
    n, k = Y.shape[0], a.shape[1]
    codes = FreeProblem(Data(*ops)).update_codes(_factors(n, k, [a, b, u]), RIDGE)
    for i in range(n):
        y = float(observed[i])
        blocks = [(y * np.hstack([a, a]), y * Y[i]), (np.hstack([b, 0 * b]), X[i]), (np.hstack([0 * u, u]), Z[i])]
        reference = _vec_least_squares(blocks, 2 * k)
        np.testing.assert_allclose(np.concatenate([codes.K[i], codes.H[i]]), reference, atol=1e-10)


def test_code_update_without_random_is_ridge_regression():
    _, ops, (Y, X, _), (a, b, _), _ = _problem(seed=1)
    n, k = Y.shape[0], a.shape[1]
    codes = FreeProblem(Data(ops[0], ops[1])).update_codes(_factors(n, k, [a, b, None], with_random=False), RIDGE)
    design = np.vstack([a, b, np.sqrt(RIDGE) * np.eye(k)])
    targets = np.hstack([Y, X, np.zeros((n, k))])
    reference = np.linalg.lstsq(design, targets.T, rcond=None)[0].T
    np.testing.assert_allclose(codes.K, reference, atol=1e-10)
    assert codes.H is None


def _confined_reference(Y, Z, K_known, Q, a, u, observed):
    """min over G of ‖D(Y − (K + QG)aᵀ)‖² + ‖Z − QGuᵀ‖² + ρ‖G‖² (column-major vec; Q orthonormal)."""
    r = Q.shape[1]
    D = np.diag(observed.astype(float))
    # vec(D Q G aᵀ) = (a ⊗ D Q) vec(G)
    blocks = [(np.kron(a, D @ Q), (D @ (Y - K_known @ a.T)).ravel(order="F")), (np.kron(u, Q), Z.ravel(order="F"))]
    return _vec_least_squares(blocks, r * a.shape[1]).reshape((r, a.shape[1]), order="F")


def test_free_code_update_with_a_confined_random_code():
    """K row by row given the old H, then H = Q G exactly given the new K."""
    rng, ops, (Y, X, Z), (a, b, u), observed = _problem(seed=2, missing_response=(4,))
    n, k = Y.shape[0], a.shape[1]
    basis = principal_basis(ops[2], 2, rng=rng)
    H_old = basis.vectors @ rng.standard_normal((2, k))
    start = Factors(K=np.zeros((n, k)), H=H_old, loadings=Loadings(alpha=a, beta=b, u=u))
    codes = FreeProblem(Data(*ops), basis).update_codes(start, RIDGE)
    for i in range(n):
        y = float(observed[i])
        blocks = [(y * a, y * (Y[i] - H_old[i] @ a.T)), (b, X[i])]
        np.testing.assert_allclose(codes.K[i], _vec_least_squares(blocks, k), atol=1e-10)
    G = _confined_reference(Y, Z, codes.K, basis.vectors, a, u, observed)
    np.testing.assert_allclose(codes.H, basis.vectors @ G, atol=1e-10)


def test_encoded_code_update_is_exact_least_squares_in_each_basis():
    rng, ops, (Y, X, Z), (a, b, u), observed = _problem(seed=3, n=12, missing_response=(0, 7))
    k = a.shape[1]
    data = Data(*ops)
    fixed, random = principal_basis(ops[1], 3, rng=rng), principal_basis(ops[2], 2, rng=rng)
    problem = EncodedProblem.build(data, fixed, random)
    G_H_old = rng.standard_normal((2, k))
    # loadings live in the span of the projections (where every fitted loading lies), as coordinates
    coordinates = {
        name: rng.standard_normal((problem.cross[(role, basis)].shape[0], k))
        for name, role, basis in (("alpha", "response", "fixed"), ("beta", "fixed", "fixed"), ("u", "random", "random"))
    }
    a, b, u = (
        problem.in_features(role, coordinates[name])
        for name, role in (("alpha", "response"), ("beta", "fixed"), ("u", "random"))
    )
    codes = problem.update_codes(Factors(K=np.zeros((3, k)), H=G_H_old, loadings=Loadings(**coordinates)), RIDGE)
    U, Q = fixed.vectors, random.vectors
    D = np.diag(observed.astype(float))
    blocks = [(np.kron(a, D @ U), (D @ (Y - Q @ G_H_old @ a.T)).ravel(order="F")), (np.kron(b, U), X.ravel(order="F"))]
    G_K = _vec_least_squares(blocks, 3 * k).reshape((3, k), order="F")
    np.testing.assert_allclose(codes.K, G_K, atol=1e-10)
    np.testing.assert_allclose(codes.H, _confined_reference(Y, Z, U @ G_K, Q, a, u, observed), atol=1e-10)


def test_encoded_moments_match_dense_products():
    rng, ops, (Y, X, Z), _, observed = _problem(seed=4, n=15, missing_response=(3,))
    fixed, random = principal_basis(ops[1], 4, rng=rng), principal_basis(ops[2], 3, rng=rng)
    problem = EncodedProblem.build(Data(*ops), fixed, random)
    factors = Factors(K=rng.standard_normal((4, 2)), H=rng.standard_normal((3, 2)))
    moments = problem.moments(factors)
    K, H = problem.codes(factors)
    C, D = K + H, observed[:, None]
    features = {role: problem.in_features(role, cross) for role, cross in moments.cross.items()}  # from coordinates
    np.testing.assert_allclose(features["response"], Y.T @ C, atol=1e-12)
    np.testing.assert_allclose(moments.gram["response"], (C * D).T @ C, atol=1e-12)
    np.testing.assert_allclose(features["fixed"], X.T @ K, atol=1e-12)
    np.testing.assert_allclose(features["random"], Z.T @ H, atol=1e-12)
    np.testing.assert_allclose(moments.gram["random"], H.T @ H, atol=1e-12)
    np.testing.assert_allclose(moments.codes_gram, C.T @ C, atol=1e-12)


def test_rebalance_keeps_fits_and_lowers_the_penalty():
    rng = np.random.default_rng(3)
    K, H = rng.standard_normal((20, 3)) * 5, rng.standard_normal((20, 3)) * 5
    a, b, u = (rng.standard_normal((q, 3)) * 0.1 for q in (6, 7, 4))
    before = Factors(K, H, Loadings(a, b, u))
    after = rebalance(before)
    np.testing.assert_allclose(after.combined @ after.loadings.alpha.T, before.combined @ a.T, atol=1e-10)
    np.testing.assert_allclose(after.K @ after.loadings.beta.T, K @ b.T, atol=1e-10)
    np.testing.assert_allclose(after.H @ after.loadings.u.T, H @ u.T, atol=1e-10)

    def penalty(f):
        return sum(np.sum(m**2) for m in f.arrays())

    assert penalty(after) < 0.5 * penalty(before)
    # at the optimum the codes' and loadings' Gram sums agree: rebalancing again changes nothing
    again = rebalance(after)
    assert penalty(again) == pytest.approx(penalty(after), rel=1e-10)


def test_solve_rows_never_writes_its_inputs_and_keeps_what_it_does_not_solve():
    rng = np.random.default_rng(4)
    n, k = 12, 2
    grams = {role: gram(rng.standard_normal((5, k))) for role in ("response", "fixed", "random")}
    products = {role: rng.standard_normal((n, k)) for role in grams}
    observed = {"response": (np.arange(n) % 3 != 0).astype(float), "fixed": np.ones(n), "random": np.ones(n)}
    K, H = rng.standard_normal((n, k)), rng.standard_normal((n, k))
    before = K.copy(), H.copy()
    partly = np.arange(n) % 2 == 0
    new_K, new_H = solve_rows(grams, products, observed, RIDGE, K=K, H=H, unknown_K=partly, unknown_H=np.zeros(n, bool))
    np.testing.assert_array_equal(K, before[0])
    np.testing.assert_array_equal(new_K[~partly], before[0][~partly])
    assert not np.array_equal(new_K[partly], before[0][partly])
    assert new_H is H  # no row of H to solve: not copied
    everyone = np.ones(n, bool)
    new_K, new_H = solve_rows(grams, products, observed, RIDGE, K=K, H=H, unknown_K=everyone, unknown_H=everyone)
    np.testing.assert_array_equal(K, before[0])
    np.testing.assert_array_equal(H, before[1])
    assert np.all(np.isfinite(new_K)) and np.all(np.isfinite(new_H))
