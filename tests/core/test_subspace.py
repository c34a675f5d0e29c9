"""Principal bases against numpy's exact SVD, on the randomised path (X wider than the sketch)."""

import numpy as np
import pytest
from scipy import sparse

from lmf_omics._core import parallel
from lmf_omics._core.operators import Operator
from lmf_omics._core.subspace import OVERSAMPLE, POWER_ITERATIONS, principal_basis, triangular_factor


def _wide(seed, n=60, p=80, signal=(3.0, 2.0, 1.5, 1.2), noise=0.3):
    """A planted rank-4 signal with a clear gap to the noise, wider than any sketch used below."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, len(signal))) * np.asarray(signal)
    return latent @ rng.standard_normal((len(signal), p)) + noise * rng.standard_normal((n, p))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("power_iterations", "angle"), [(POWER_ITERATIONS, 1e-7), (2, 1e-12)])
def test_randomised_basis_is_the_leading_principal_subspace(seed, power_iterations, angle):
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
def test_randomised_basis_into_the_noise_captures_the_optimal_variance(seed, power_iterations, lost, values):
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
def test_a_tall_basis_keeps_its_frame_the_projection_of_the_data(sparse_input):
    """Fewer features than cells: ``Ãᵀ U = F Σ`` is kept, so no pass over Ã computes it again."""
    X = _wide(3, n=300, p=90)
    centred = X - X.mean(0)
    basis = principal_basis(
        Operator.from_data(sparse.csr_matrix(X) if sparse_input else X), 20, rng=np.random.default_rng(0)
    )
    np.testing.assert_allclose(centred.T @ basis.vectors, basis.frame * basis.values, atol=1e-9 * basis.values[0])
    np.testing.assert_allclose(basis.frame.T @ basis.frame, np.eye(20), atol=1e-12)
    np.testing.assert_allclose(centred @ basis.encoder, basis.vectors, atol=1e-9)


def test_the_seed_does_not_move_a_well_separated_subspace():
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
