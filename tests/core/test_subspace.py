"""Principal bases against numpy's exact SVD: the randomised path (forced on these small matrices) and the exact one."""

import numpy as np
import pytest
from scipy import sparse

from lmf_omics._core import parallel, subspace
from lmf_omics._core.operators import Operator
from lmf_omics._core.subspace import (
    OVERSAMPLE,
    POWER_ITERATIONS,
    exact_applies,
    exact_basis,
    principal_basis,
    triangular_factor,
)


@pytest.fixture
def randomised(monkeypatch):
    """The randomised range finder even for matrices small enough for the exact basis."""
    monkeypatch.setattr(subspace, "EXACT_ENTRIES", 0)


def _wide(seed, n=60, p=80, signal=(3.0, 2.0, 1.5, 1.2), noise=0.3):
    """A planted rank-4 signal with a clear gap to the noise, wider than any sketch used below."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, len(signal))) * np.asarray(signal)
    return latent @ rng.standard_normal((len(signal), p)) + noise * rng.standard_normal((n, p))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("power_iterations", "angle"), [(POWER_ITERATIONS, 1e-7), (2, 1e-12)])
def test_randomised_basis_is_the_leading_principal_subspace(seed, power_iterations, angle, randomised):
    X = _wide(seed)
    rank = 3  # inside the planted signal: the subspace is determined
    assert X.shape[1] > rank + OVERSAMPLE  # so the randomised range finder is used
    centred = X - X.mean(0)
    left, singular, _ = np.linalg.svd(centred, full_matrices=False)
    operator = Operator.from_data(sparse.csr_matrix(X))
    basis = principal_basis(operator, rank, rng=np.random.default_rng(seed), power_iterations=power_iterations)
    assert basis.rank == rank
    np.testing.assert_allclose(basis.vectors.T @ basis.vectors, np.eye(rank), atol=1e-10)
    np.testing.assert_allclose(centred @ basis.encoder, basis.vectors, atol=1e-8)  # an exact encoding of Ã
    assert basis.frame is None  # more features than cells: the p × r frame is not kept
    np.testing.assert_allclose(basis.values, singular[:rank], rtol=angle)
    cosines = np.linalg.svd(basis.vectors.T @ left[:, :rank], compute_uv=False)  # of the principal angles
    assert cosines.min() > 1 - angle


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("power_iterations", "lost", "values"), [(POWER_ITERATIONS, 3e-4, 0.1), (4, 1e-5, 5e-3)])
def test_randomised_basis_into_the_noise_captures_the_optimal_variance(
    seed, power_iterations, lost, values, randomised
):
    """Into the noise the subspace is not determined; the variance it captures is (measured: the
    default's single power iteration loses at most 1.2e-4 of it here, four lose 3e-6)."""
    X = _wide(seed)
    centred = X - X.mean(0)
    singular = np.linalg.svd(centred, compute_uv=False)
    basis = principal_basis(
        Operator.from_data(X), 10, rng=np.random.default_rng(seed), power_iterations=power_iterations
    )
    captured = np.sum((centred.T @ basis.vectors) ** 2)
    assert captured >= (1 - lost) * np.sum(singular[:10] ** 2)
    assert np.all(basis.values <= singular[:10] * (1 + 1e-10))  # Ritz values never exceed Ã's
    np.testing.assert_allclose(basis.values, singular[:10], rtol=values)


@pytest.mark.parametrize("sparse_input", [False, True])
def test_a_tall_basis_keeps_its_frame_the_projection_of_the_data(sparse_input, randomised):
    """Fewer features than cells: ``Ãᵀ U = F Σ`` is kept, so no pass over Ã computes it again."""
    X = _wide(3, n=300, p=90)
    centred = X - X.mean(0)
    basis = principal_basis(
        Operator.from_data(sparse.csr_matrix(X) if sparse_input else X), 20, rng=np.random.default_rng(0)
    )
    np.testing.assert_allclose(centred.T @ basis.vectors, basis.frame * basis.values, atol=1e-9 * basis.values[0])
    np.testing.assert_allclose(basis.frame.T @ basis.frame, np.eye(20), atol=1e-12)
    np.testing.assert_allclose(centred @ basis.encoder, basis.vectors, atol=1e-9)


def test_the_seed_does_not_move_a_well_separated_subspace(randomised):
    X = _wide(2)
    operator = Operator.from_data(X)
    first, second = (principal_basis(operator, 3, rng=np.random.default_rng(seed)) for seed in (0, 7))
    cosines = np.linalg.svd(first.vectors.T @ second.vectors, compute_uv=False)
    assert cosines.min() > 1 - 1e-8


@pytest.mark.parametrize("rows", [5_000, 60_001])  # one row block (numpy's QR itself), and several
def test_triangular_factor_is_r_of_the_qr_up_to_row_signs_and_leaves_its_input(rows):
    matrix = np.random.default_rng(2).standard_normal((rows, 40))
    original = matrix.copy()
    assert (len(parallel.row_blocks(matrix, parallel.BLOCK_ENTRIES)) > 1) == (rows > 60_000)
    R = triangular_factor(matrix)
    direct = np.linalg.qr(matrix, mode="r")
    signs = np.sign(np.diag(R)) * np.sign(np.diag(direct))
    np.testing.assert_allclose(signs[:, None] * R, direct, rtol=0, atol=1e-9 * np.abs(direct).max())
    assert np.array_equal(np.triu(R), R) and np.array_equal(matrix, original)


def _centred(A, op):
    B = (np.asarray(A) - op.mean) / op.scale
    if op.observed is not None:
        B[~op.observed] = 0.0
    return B


@pytest.mark.parametrize("shape", [(300, 80), (80, 300), (300, 25)])  # ÃᵀÃ, ÃÃᵀ, or Ã I (few columns)
@pytest.mark.parametrize("sparse_input", [False, True])
@pytest.mark.parametrize("with_missing", [False, True])
@pytest.mark.parametrize("scaled", [False, True])
def test_exact_basis_is_numpys_svd(shape, sparse_input, with_missing, scaled):
    """Offsets of 5 on columns of spread up to 3, half the entries zero: the centring of a sparse
    Gram matrix (applied to the small result) loses nothing measurable."""
    rng = np.random.default_rng(sum(shape) + 2 * sparse_input + with_missing)
    n, p = shape
    A = rng.standard_normal(shape) * rng.random(p) * 3 + rng.random(p) * 5
    A[rng.random(shape) < 0.5] = 0.0
    observed = rng.random(n) > 0.2 if with_missing else None
    op = Operator.from_data(sparse.csr_matrix(A) if sparse_input else A, scale=scaled, observed=observed)
    assert exact_applies(op, 20)
    centred = _centred(A, op)
    left, singular, _ = np.linalg.svd(centred, full_matrices=False)
    basis = exact_basis(op, 20)
    assert basis.rank == 20
    np.testing.assert_allclose(basis.values, singular[:20], rtol=1e-12)
    assert np.linalg.svd(basis.vectors.T @ left[:, :20], compute_uv=False).min() > 1 - 1e-12
    np.testing.assert_allclose(centred @ basis.encoder, basis.vectors, atol=1e-12)
    np.testing.assert_allclose(centred.T @ basis.vectors, basis.frame * basis.values, atol=1e-12 * singular[0])
    np.testing.assert_allclose(basis.vectors.T @ basis.vectors, np.eye(20), atol=1e-12)


@pytest.mark.parametrize("shape", [(300, 80), (80, 300)])
def test_exact_basis_follows_any_order_of_cells_and_features_signs_included(shape):
    rng = np.random.default_rng(5)
    A = sparse.random(*shape, density=0.3, random_state=5, format="csr") * 4.0
    cells, features = rng.permutation(shape[0]), rng.permutation(shape[1])
    basis = exact_basis(Operator.from_data(A), 12)
    moved = exact_basis(Operator.from_data(A[cells][:, features]), 12)
    np.testing.assert_allclose(moved.vectors, basis.vectors[cells], atol=1e-12)
    np.testing.assert_allclose(moved.frame, basis.frame[features], atol=1e-12)
    np.testing.assert_allclose(moved.encoder, basis.encoder[features], atol=1e-10)


def test_the_exact_rule_is_the_size_of_the_matrix(monkeypatch):
    monkeypatch.setattr(subspace, "EXACT_ENTRIES", 100 * 50)
    assert exact_applies(Operator.from_data(np.ones((100, 50))), 10)
    assert not exact_applies(Operator.from_data(np.ones((100, 51))), 10)
    assert exact_applies(Operator.from_data(np.ones((1000, 20))), 10)  # few columns: exact at any size
