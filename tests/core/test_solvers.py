"""Each solver step against an independent brute-force reference on small problems."""

import numpy as np
import pytest

from lmf_omics._core.operators import Operator
from lmf_omics._core.solvers import Data, Factors, rebalance, update_codes

RIDGE = 0.05


def _problem(seed=0, n=9, k=2, p=(5, 4, 3)):
    rng = np.random.default_rng(seed)
    mats = [rng.standard_normal((n, q)) for q in p]
    ops = [Operator.from_data(m) for m in mats]
    centred = [m - m.mean(0) for m in mats]
    loadings = [rng.standard_normal((q, k)) for q in p]
    return rng, ops, centred, loadings


def _factors(n, k, loadings, with_random=True):
    return Factors(K=np.zeros((n, k)), H=np.zeros((n, k)) if with_random else None,
                   alpha=loadings[0], beta=loadings[1], u=loadings[2] if with_random else None)


def test_joint_code_update_is_exact_row_least_squares():
    _, ops, (Y, X, Z), (a, b, u) = _problem()
    n, k = Y.shape[0], a.shape[1]
    codes = update_codes(Data(*ops), _factors(n, k, [a, b, u]), RIDGE)
    zeros_x, zeros_z = np.zeros_like(b), np.zeros_like(u)
    design = np.block([
        [a, a], [b, zeros_x], [zeros_z, u],
        [np.sqrt(RIDGE) * np.eye(k), np.zeros((k, k))], [np.zeros((k, k)), np.sqrt(RIDGE) * np.eye(k)],
    ])
    for i in range(n):
        target = np.concatenate([Y[i], X[i], Z[i], np.zeros(2 * k)])
        reference = np.linalg.lstsq(design, target, rcond=None)[0]
        np.testing.assert_allclose(np.concatenate([codes.K[i], codes.H[i]]), reference, atol=1e-10)


def test_code_update_without_random_is_ridge_regression():
    _, ops, (Y, X, _), (a, b, _) = _problem(seed=1)
    n, k = Y.shape[0], a.shape[1]
    codes = update_codes(Data(ops[0], ops[1]), _factors(n, k, [a, b, None], with_random=False), RIDGE)
    design = np.vstack([a, b, np.sqrt(RIDGE) * np.eye(k)])
    targets = np.hstack([Y, X, np.zeros((n, k))])
    reference = np.linalg.lstsq(design, targets.T, rcond=None)[0].T
    np.testing.assert_allclose(codes.K, reference, atol=1e-10)
    assert codes.H is None


def test_confined_code_update_is_exact_least_squares():
    """With H = Q G the update couples cells; compare with least squares over vec(K), vec(G)."""
    rng, ops, (Y, X, Z), (a, b, u) = _problem(seed=2)
    n, k = Y.shape[0], a.shape[1]
    Q, _ = np.linalg.qr(rng.standard_normal((n, 2)))
    codes = update_codes(Data(*ops, random_basis=Q), _factors(n, k, [a, b, u]), RIDGE)
    eye_n, r = np.eye(n), Q.shape[1]
    # vec(K Lᵀ) = (L ⊗ I_n) vec(K); vec(Q G Lᵀ) = (L ⊗ Q) vec(G)   (column-major vec)
    blocks = [
        (np.kron(a, eye_n), np.kron(a, Q), Y), (np.kron(b, eye_n), np.zeros((n * len(b), r * k)), X),
        (np.zeros((n * len(u), n * k)), np.kron(u, Q), Z),
    ]
    design = np.vstack([np.hstack(blk[:2]) for blk in blocks] + [np.sqrt(RIDGE) * np.eye(n * k + r * k)])
    target = np.concatenate([blk[2].ravel(order="F") for blk in blocks] + [np.zeros(n * k + r * k)])
    solution = np.linalg.lstsq(design, target, rcond=None)[0]
    K = solution[: n * k].reshape((n, k), order="F")
    G = solution[n * k:].reshape((r, k), order="F")
    np.testing.assert_allclose(codes.K, K, atol=1e-9)
    np.testing.assert_allclose(codes.H, Q @ G, atol=1e-9)


def test_rebalance_keeps_fits_and_lowers_the_penalty():
    rng = np.random.default_rng(3)
    K, H = rng.standard_normal((20, 3)) * 5, rng.standard_normal((20, 3)) * 5
    a, b, u = (rng.standard_normal((q, 3)) * 0.1 for q in (6, 7, 4))
    before = Factors(K, H, a, b, u)
    after = rebalance(before)
    np.testing.assert_allclose(after.combined @ after.alpha.T, before.combined @ a.T, atol=1e-10)
    np.testing.assert_allclose(after.K @ after.beta.T, K @ b.T, atol=1e-10)
    np.testing.assert_allclose(after.H @ after.u.T, H @ u.T, atol=1e-10)

    def penalty(f):
        return sum(np.sum(m**2) for m in f._fields())

    assert penalty(after) < 0.5 * penalty(before)
    # at the optimum the codes' and loadings' Gram sums agree: rebalancing again changes nothing
    again = rebalance(after)
    assert penalty(again) == pytest.approx(penalty(after), rel=1e-10)
