"""Leading principal subspaces of operators, and the seeded start of free codes.

A code confined to a basis ``Q = Ã E`` is ``Q G = Ã (E G)``: a linear encoding of its modality,
so new cells are encoded exactly as the training cells were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import linalg

from . import parallel
from .operators import Operator

OVERSAMPLE = 10
POWER_ITERATIONS = 4


@dataclass(frozen=True)
class Basis:
    """An orthonormal basis ``vectors = Ã @ encoder`` (n × r) of ``Ã``'s leading left singular subspace."""

    vectors: np.ndarray
    encoder: np.ndarray
    values: np.ndarray  # singular values, decreasing

    @property
    def rank(self) -> int:
        return self.vectors.shape[1]


def principal_basis(operator: Operator, max_rank: int, *, rng: np.random.Generator) -> Basis:
    """The leading ``max_rank`` principal directions of ``Ã`` (fewer where its numerical rank is lower).

    Right singular vectors come from a randomised range finder (exact when ``Ã`` has at most
    ``max_rank + 10`` columns): ``V`` is an orthonormal basis of ``ÃᵀQ``, ``Q`` the range finder's.
    The basis is then made exactly orthonormal from one more product, ``T = Ã V`` with
    ``TᵀT = E Λ Eᵀ`` (Rayleigh–Ritz: ``V`` must be orthonormal for ``Λ`` to be ``Ã``'s squared
    singular values and the leading ``E`` its principal directions), so ``vectors = T E Λ^{-½}``
    and ``encoder = V E Λ^{-½}``.
    """
    p = operator.shape[1]
    if p <= max_rank + OVERSAMPLE:
        right = np.eye(p)
    else:
        left = range_finder([operator], max_rank + OVERSAMPLE, rng=rng)
        right = orthonormalised(operator.rmatmul(left))  # orthonormal, or the Ritz values below are not Ã's
        del left  # n × (r + 10): not held while the next n × r arrays are made
    projected = operator.matmul(right)
    values, vectors = np.linalg.eigh(projected.T @ projected)
    order = np.argsort(values)[::-1][:max_rank]
    values, vectors = values[order], vectors[:, order]
    keep = values > max(values[0], 0.0) * max(operator.shape) * 1e-12
    whiten = vectors[:, keep] / np.sqrt(values[keep])
    return Basis(vectors=projected @ whiten, encoder=right @ whiten, values=np.sqrt(values[keep]))


def range_finder(
    operators: Sequence[Operator], size: int, *, rng: np.random.Generator, power_iterations: int = POWER_ITERATIONS
) -> np.ndarray:
    """Orthonormal n × size basis approximating the range of ``[Ã₁ | Ã₂ | ...]`` (Halko et al. 2011).

    The power iterations are kept from collapsing by LU factors (``P L`` of the iterate, as
    scikit-learn's ``randomized_range_finder``: a quarter of the flops of a QR, same span); the
    last iterate is made orthonormal by QR.
    """
    widths = [op.shape[1] for op in operators]
    size = min(size, sum(widths))
    basis = parallel.accumulate(op.matmul(rng.standard_normal((w, size))) for op, w in zip(operators, widths))
    for _ in range(power_iterations):  # one p × size temporary at a time
        basis = _normalised(basis)
        basis = parallel.accumulate(op.matmul(op.rmatmul(basis)) for op in operators)
    return orthonormalised(basis)


def orthonormalised(matrix: np.ndarray) -> np.ndarray:
    """``Q`` of ``matrix = Q R``, written over ``matrix`` (a tall n × k array).

    One Householder QR when ``matrix`` is one row block; otherwise a tall-skinny QR: each row block
    ``A_i = Q_i R_i`` (in place, on the fit's threads), then ``[R_1; R_2; ...] = S R`` and
    ``Q = blockdiag(Q_i) S``. About one n × k array of memory instead of three.
    """
    k = matrix.shape[1]
    blocks = parallel.row_blocks(matrix, max(parallel.BLOCK_ENTRIES, 4 * k * k))
    if len(blocks) > 1 and blocks[-1][1] - blocks[-1][0] < k:  # every block at least k rows tall
        blocks[-2:] = [(blocks[-2][0], blocks[-1][1])]
    if len(blocks) < 2:
        q, _ = np.linalg.qr(matrix)
        return q

    def factor(edges):
        start, stop = edges
        q, r = np.linalg.qr(matrix[start:stop])
        matrix[start:stop] = q
        return r

    triangles = list(parallel.ordered_map(factor, blocks))
    stacked, _ = np.linalg.qr(np.vstack(triangles))

    def rotate(edges_and_index):
        (start, stop), i = edges_and_index
        matrix[start:stop] = matrix[start:stop] @ stacked[i * k : (i + 1) * k]

    list(parallel.ordered_map(rotate, list(zip(blocks, range(len(blocks))))))
    return matrix


def triangular_factor(matrix: np.ndarray) -> np.ndarray:
    """``R`` of ``matrix = Q R`` (a tall p × k array, left as it is), without a copy of ``matrix``.

    ``np.linalg.qr(matrix, mode="r")`` holds two more p × k arrays (its copy of the input and
    LAPACK's column-major one; numpy 2.5 reports the second to tracemalloc, 2.4 did not). Over more
    than one row block this is a tall-skinny QR instead: ``R_i`` of each block (on the fit's
    threads), then ``R`` of ``[R_1; R_2; ...]``, equal to the direct ``R`` up to the signs of its
    rows (the implicit ``Q``'s column signs), with one block's copy at a time per thread.
    """
    k = matrix.shape[1]
    blocks = parallel.row_blocks(matrix, max(parallel.BLOCK_ENTRIES, 4 * k * k))
    if len(blocks) > 1 and blocks[-1][1] - blocks[-1][0] < k:  # every block at least k rows tall
        blocks[-2:] = [(blocks[-2][0], blocks[-1][1])]
    if len(blocks) < 2:
        return np.linalg.qr(matrix, mode="r")
    triangles = list(parallel.ordered_map(lambda edges: np.linalg.qr(matrix[edges[0] : edges[1]], mode="r"), blocks))
    return np.linalg.qr(np.vstack(triangles), mode="r")


def _normalised(matrix: np.ndarray) -> np.ndarray:
    """``P L`` of ``matrix = P L U`` (``matrix`` is overwritten): same column span, entries of ``L`` at most 1."""
    permuted, _ = linalg.lu(matrix, permute_l=True, overwrite_a=True, check_finite=False)
    return permuted


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


def well_conditioned(T: np.ndarray) -> bool:
    """A square triangular ``T`` whose inverse is accurate (diagonal ratio above 1e-8)."""
    diagonal = np.abs(np.diag(T))
    return T.shape[0] == T.shape[1] and diagonal.min(initial=np.inf) > 1e-8 * diagonal.max(initial=0.0)


def leading(operator, rank, rng):
    """Leading left singular vectors of one operator (its numerical rank at most)."""
    left, values = randomized_svd([operator], min(rank, operator.shape[1]), rng=rng)
    return left[:, values > values.max(initial=0.0) * 1e-10]


def corrected_basis(corrected: np.ndarray, scores_encoder: np.ndarray) -> tuple[Basis, np.ndarray]:
    """The orthonormal basis of the corrected scores' leading directions, and ``T`` with ``U = S_c T``."""
    values, vectors = np.linalg.eigh(corrected.T @ corrected)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    keep = values > max(values[0], 0.0) * max(corrected.shape) * 1e-12
    to_basis = vectors[:, keep] / np.sqrt(values[keep])
    basis = Basis(vectors=corrected @ to_basis, encoder=scores_encoder @ to_basis, values=np.sqrt(values[keep]))
    return basis, to_basis
