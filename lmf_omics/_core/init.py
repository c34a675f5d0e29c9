"""Seeded randomised SVD of (side-by-side) operators, used to initialise free codes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .operators import Operator
from .subspace import OVERSAMPLE, range_finder


def randomized_svd(
    operators: Sequence[Operator], rank: int, *, rng: np.random.Generator
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
    basis = range_finder(operators, rank + OVERSAMPLE, rng=rng)
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


def initial_free_codes(sources: Sequence[Operator], n_factors: int, random_basis, *, rng: np.random.Generator):
    """``(K, H)`` from a randomised SVD of ``[Ỹ | X̃]``: the part in ``Z̃``'s subspace is ``H``.

    ``K + H`` starts as the best rank-k shared code of Y and X (scores ``U √S``, balanced with
    the loadings); ``H`` is its projection onto ``random_basis`` (the leading left singular
    vectors of ``Z̃``) and ``K`` the rest, so a random code starts as what the covariates explain.
    ``random_basis=None`` means no random code.
    """
    left, values = randomized_svd(sources, n_factors, rng=rng)
    combined = left * np.sqrt(values)
    if random_basis is None:
        return combined, None
    H = random_basis @ (random_basis.T @ combined)
    return combined - H, H
