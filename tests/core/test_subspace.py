"""Principal bases against numpy's exact SVD, on the randomised path (X wider than the sketch)."""

import numpy as np
import pytest
from scipy import sparse

from lmf_omics._core import parallel
from lmf_omics._core.operators import Operator
from lmf_omics._core.subspace import OVERSAMPLE, principal_basis, triangular_factor


def _wide(seed, n=60, p=80, signal=(3.0, 2.0, 1.5, 1.2), noise=0.3):
    """A planted rank-4 signal with a clear gap to the noise, wider than any sketch used below."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, len(signal))) * np.asarray(signal)
    return latent @ rng.standard_normal((len(signal), p)) + noise * rng.standard_normal((n, p))


@pytest.mark.parametrize("seed", [0, 1])
def test_randomised_basis_is_the_leading_principal_subspace(seed):
    X = _wide(seed)
    rank = 3  # inside the planted signal: the subspace is determined
    assert X.shape[1] > rank + OVERSAMPLE  # so the randomised range finder is used
    centred = X - X.mean(0)
    left, singular, _ = np.linalg.svd(centred, full_matrices=False)
    basis = principal_basis(Operator.from_data(sparse.csr_matrix(X)), rank, rng=np.random.default_rng(seed))
    assert basis.rank == rank
    np.testing.assert_allclose(basis.vectors.T @ basis.vectors, np.eye(rank), atol=1e-10)
    np.testing.assert_allclose(centred @ basis.encoder, basis.vectors, atol=1e-8)  # an exact encoding of Ã
    np.testing.assert_allclose(basis.values, singular[:rank], rtol=1e-8)
    cosines = np.linalg.svd(basis.vectors.T @ left[:, :rank], compute_uv=False)  # of the principal angles
    assert cosines.min() > 1 - 1e-8


@pytest.mark.parametrize("seed", [0, 1])
def test_randomised_basis_into_the_noise_captures_the_optimal_variance(seed):
    X = _wide(seed)
    centred = X - X.mean(0)
    singular = np.linalg.svd(centred, compute_uv=False)
    basis = principal_basis(Operator.from_data(X), 10, rng=np.random.default_rng(seed))
    captured = np.sum((centred.T @ basis.vectors) ** 2)
    assert captured >= (1 - 1e-4) * np.sum(singular[:10] ** 2)
    assert np.all(basis.values <= singular[:10] * (1 + 1e-10))  # Ritz values never exceed Ã's
    np.testing.assert_allclose(basis.values, singular[:10], rtol=1e-2)


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
