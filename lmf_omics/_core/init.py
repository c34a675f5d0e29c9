"""Seeded randomised SVD of (side-by-side) operators, used to initialise the codes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .operators import Operator
from .solvers import Data, Factors


def randomized_svd(
    operators: Sequence[Operator],
    rank: int,
    *,
    rng: np.random.Generator,
    oversample: int = 10,
    power_iterations: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Leading left singular vectors and values of ``[Ã₁ | Ã₂ | ...]`` (Halko et al. 2011).

    Only ``Ã @ B`` and ``Ãᵀ @ C`` products are used, so sparse operators stay sparse.

    Returns
    -------
    left
        ``n × rank`` orthonormal columns.
    values
        ``rank`` singular values, decreasing (zeros where the operators have lower rank).
    """
    widths = [op.shape[1] for op in operators]
    sketch_size = min(rank + oversample, sum(widths))
    probes = [rng.standard_normal((w, sketch_size)) for w in widths]
    basis = _orthonormal(sum(op.matmul(probe) for op, probe in zip(operators, probes)))
    for _ in range(power_iterations):
        back = [op.rmatmul(basis) for op in operators]
        basis = _orthonormal(sum(op.matmul(b) for op, b in zip(operators, back)))
    # B = Qᵀ Ã (sketch × p_total) is only needed through B Bᵀ (sketch × sketch)
    back = [op.rmatmul(basis) for op in operators]
    eigenvalues, eigenvectors = np.linalg.eigh(sum(b.T @ b for b in back))
    order = np.argsort(eigenvalues)[::-1][:rank]
    left = basis @ eigenvectors[:, order]
    values = np.sqrt(np.maximum(eigenvalues[order], 0.0))
    if left.shape[1] < rank:  # fewer columns than requested: pad with zeros
        pad = rank - left.shape[1]
        left = np.hstack([left, np.zeros((left.shape[0], pad))])
        values = np.concatenate([values, np.zeros(pad)])
    return left, values


def _orthonormal(matrix: np.ndarray) -> np.ndarray:
    q, _ = np.linalg.qr(matrix)
    return q


def initial_factors(data: Data, n_factors: int, *, rng: np.random.Generator) -> Factors:
    """Codes from a randomised SVD of ``[Ỹ | X̃]``: its part in ``Z̃``'s leading subspace is ``H``.

    ``K + H`` starts as the best rank-k shared code of Y and X (scores ``U √S``, balanced with
    the loadings); ``H`` is its projection onto the leading left singular vectors of ``Z̃`` and
    ``K`` the rest, so a random code starts as what the covariates can explain.
    """
    sources = [op for op in (data.response, data.fixed) if op is not None]
    left, values = randomized_svd(sources, n_factors, rng=rng)
    K = left * np.sqrt(values)
    if data.random is None:
        return Factors(K=K, H=None)
    basis = data.random_basis
    if basis is None:
        basis, z_values = randomized_svd([data.random], min(n_factors, data.random.shape[1]), rng=rng)
        basis = basis[:, z_values > _rank_tolerance(z_values)]
    H = basis @ (basis.T @ K)
    return Factors(K=K - H, H=H)


def _rank_tolerance(values: np.ndarray) -> float:
    return values.max(initial=0.0) * max(values.shape[0], 1) * 1e-10
