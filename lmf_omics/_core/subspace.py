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
from .keys import keyed_gaussian
from .operators import Operator

OVERSAMPLE = 10
FREE_START_POWER_ITERATIONS = 4  # the free codes' start: a randomised SVD of [Ỹ | X̃]
POWER_ITERATIONS = 1  # measured in benchmarks/principal_bases.py against 0, 2, 4: kept to the pass budget
EXACT_ENTRIES = 1 << 22  # an Ã of at most 4 M entries gets its exact basis (benchmarks/principal_bases.py)


FLOAT32_ABOVE_BYTES = 1 << 28  # thin n × (r + 10) arrays of float32 data larger than this (in float64) are float32


def thin_dtype(operator: Operator, width: int) -> np.dtype:
    """The dtype of a basis's thin arrays: float32 for float32 data whose n × width float64 array exceeds 256 MB.

    Halves the fit's largest arrays at scale (10⁶ cells: 280 MB instead of 560); every product and
    Gram matrix of them is still formed in float64. Smaller fits keep float64 whatever the data's
    dtype, so they agree with a float64 copy of the data (the R door passes doubles) to rounding.
    """
    large = operator.shape[0] * width * 8 > FLOAT32_ABOVE_BYTES
    return np.dtype(np.float32 if large and operator.dtype == np.float32 else np.float64)


@dataclass(frozen=True)
class Basis:
    """An orthonormal basis ``vectors = Ã @ encoder`` (n × r) of ``Ã``'s leading left singular subspace.

    ``frame`` (p × r, orthonormal) is ``Ãᵀ vectors = frame · values``, known without another pass.
    """

    vectors: np.ndarray
    encoder: np.ndarray
    values: np.ndarray  # singular values, decreasing
    frame: np.ndarray | None = None

    def __post_init__(self):  # p × r: C-ordered, as a stored fit reads them back, so products round alike
        object.__setattr__(self, "encoder", np.ascontiguousarray(self.encoder))
        if self.frame is not None:
            object.__setattr__(self, "frame", np.ascontiguousarray(self.frame))

    @property
    def rank(self) -> int:
        return self.vectors.shape[1]


def principal_basis(
    operator: Operator,
    max_rank: int,
    *,
    rng: np.random.Generator,
    power_iterations: int = POWER_ITERATIONS,
    dtype=np.float64,
) -> Basis:
    """The leading ``max_rank`` principal directions of ``Ã`` (fewer where its numerical rank is lower).

    Exact (:func:`exact_basis`) when ``Ã`` has at most ``max_rank + 10`` rows or columns, or at
    most ``EXACT_ENTRIES`` entries (wherever it is stored, so a file gives the in-memory fit). Otherwise a
    randomised range finder (Halko et al. 2011) whose Gaussian sketch is keyed by the features'
    contents (:func:`.keys.keyed_gaussian`), so the basis does not depend on the order of the
    features or the cells however far the range finder is from converged: ``S = Ã (ÃᵀÃ)^q Ω``
    with an orthonormalisation between products (:func:`fused_power_sketch`), ``S = Q R``, then
    Rayleigh–Ritz on ``Q``: ``ÃᵀQ = ÃᵀS R⁻¹ = F Σ Wᵀ`` gives ``vectors = Q W``, ``encoder = C R⁻¹ W``
    (``S = Ã C``) and ``frame = F``, since ``Ãᵀ Q W = F Σ`` (kept when ``Ã`` has no more features
    than cells). Products of ``Ã``: ``2q + 2``, in ``q + 1`` reads of it; memory: one
    n × (r + 10) array and two p × (r + 10), each rotated in place.
    ``vectors`` are stored as ``dtype`` (float32 halves the n × r arrays; every product and Gram
    matrix of them is still formed in float64, block by block).
    """
    if exact_applies(operator, max_rank):
        return exact_basis(operator, max_rank, dtype=dtype)
    sketch, gram, right, back = fused_power_sketch(
        operator, max_rank + OVERSAMPLE, seed=_seed(rng), iterations=power_iterations, dtype=dtype
    )
    rotation, triangle = orthonormalised_from_gram(sketch, gram)  # Q = sketch · rotation, S = Q R
    n, p = operator.shape
    # ÃᵀQ = ÃᵀS R⁻¹, rotated in place (no p × r copy for wide data); ÃᵀQ = F₀ R₀ = (F₀ A) Σ Wᵀ with R₀ = A Σ Wᵀ
    back = rotated_in_place(back, linalg.solve_triangular(triangle, np.eye(len(triangle)), check_finite=False))
    if p <= n:  # the frame F = F₀ A is kept (no larger than the basis), so no pass over Ã needs it
        _, square = householder_orthonormalised(back, triangle=True)
    else:
        square = triangular_factor(back)
    turn_left, values, turn = np.linalg.svd(square)
    keep = _numerical_rank(values, max_rank, max(n, p))
    frame = rotated_in_place(back, turn_left[:, :keep]) if p <= n else None
    del back
    vectors = rotated_in_place(sketch, rotation @ turn[:keep].T)  # U = Q W
    encoder = rotated_in_place(right, linalg.solve_triangular(triangle, turn[:keep].T, check_finite=False))
    return Basis(vectors=vectors, encoder=encoder, values=values[:keep], frame=frame)


def exact_applies(operator: Operator, max_rank: int) -> bool:
    """Whether :func:`principal_basis` is exact for ``operator`` (a rule on its size alone, not its order)."""
    n, p = operator.shape
    return min(n, p) <= max_rank + OVERSAMPLE or n * p <= EXACT_ENTRIES


def exact_basis(operator: Operator, max_rank: int, *, dtype=np.float64) -> Basis:
    """The leading principal directions of ``Ã`` from the eigenvectors of its smaller Gram matrix.

    ``ÃᵀÃ = V Λ Vᵀ`` (p ≤ n): ``frame = V``, ``encoder = V Λ^{-½}``, ``vectors = Ã encoder``.
    ``ÃÃᵀ = U Λ Uᵀ`` (n < p): ``vectors = U``, ``frame = Ãᵀ U Λ^{-½}``, ``encoder = frame Λ^{-½}``.
    One product of ``Ã`` after the Gram matrix (:meth:`.Operator.small_gram`); with at most
    ``max_rank + 10`` columns, ``Ã I`` alone, its Gram matrix and its rotation. Each direction's sign
    puts the largest entry of its frame positive, so no order of the cells or features flips it.
    """
    n, p = operator.shape
    projected = None
    if p <= min(n, max_rank + OVERSAMPLE):  # few columns: Ã is as thin as a basis; one product gives both
        projected = operator.matmul(np.eye(p), out=np.empty((n, p), dtype=dtype))
        gram = parallel.gram_of(projected)
    else:
        gram = operator.small_gram()
    size = len(gram)
    top = min(max_rank, size)
    squares, eigen = linalg.eigh(gram, subset_by_index=[size - top, size - 1], check_finite=False)
    squares, eigen = squares[::-1], eigen[:, ::-1]
    values = np.sqrt(np.maximum(squares, 0.0))
    keep = _numerical_rank(values, max_rank, max(n, p))
    values, eigen = values[:keep], np.ascontiguousarray(eigen[:, :keep])
    if p <= n:
        frame = eigen * _signs(eigen)
        encoder = frame / values
        if projected is not None:
            vectors = rotated_in_place(projected, encoder)
        else:
            vectors = operator.matmul(encoder, out=np.empty((n, keep), dtype=dtype))
        return Basis(vectors=vectors, encoder=encoder, values=values, frame=frame)
    frame = operator.rmatmul(eigen) / values
    signs = _signs(frame)
    frame *= signs
    vectors = (eigen * signs).astype(dtype)
    return Basis(vectors=vectors, encoder=frame / values, values=values, frame=frame)


def _signs(frame: np.ndarray) -> np.ndarray:
    """+1 or −1 per column: the sign of the column's largest entry in absolute value."""
    largest = frame[np.argmax(np.abs(frame), axis=0), np.arange(frame.shape[1])]
    return np.where(largest < 0, -1.0, 1.0)


def _numerical_rank(values: np.ndarray, max_rank: int, size: int) -> int:
    """How many of the decreasing singular ``values`` (at most ``max_rank``) are above rounding."""
    top = values[0] if len(values) else 0.0
    return int(min(max_rank, np.count_nonzero(values**2 > max(top, 0.0) ** 2 * size * 1e-12)))


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**63))


def fused_power_sketch(
    operator: Operator, size: int, *, seed: int, iterations: int, dtype=np.float64
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``S = Ã C`` (n × size), ``SᵀS``, ``C`` and ``ÃᵀS`` after ``iterations`` power iterations, one read of ``Ã`` each.

    ``C`` starts as :func:`power_sketch`'s keyed Gaussian and each iteration is ``C ← Q`` of
    ``ÃᵀÃ C = Q R`` (a p × size Householder QR, so ``C`` is orthonormal whatever the spectrum),
    both products of a pass formed from one read of each row block (:meth:`.Operator.gram_product`):
    the ``2q + 2`` products of :func:`power_sketch` in ``q + 1`` reads, and on dask one n × size
    array to the client, not ``q + 1``. Only the last pass stores ``S`` (as ``dtype``).
    """
    size = min(size, operator.shape[1])
    right = keyed_gaussian(operator.content_keys().features, size, seed)
    for _ in range(iterations):
        back, _ = operator.gram_product(right, gram=False)
        right = householder_orthonormalised(back)  # span(ÃᵀÃ C), written over ÃᵀÃ C
    sketch = np.empty((operator.shape[0], size), dtype=dtype)
    back, gram = operator.gram_product(right, out=sketch)
    return sketch, gram, right, back


def power_sketch(
    operators: Sequence[Operator], size: int, *, seed: int, iterations: int, dtype=np.float64
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """``S = Σ_i Ã_i C_i`` (n × size), its Gram matrix, and the ``C_i``, after ``iterations`` power iterations.

    ``C_i`` starts as a Gaussian sketch keyed by ``Ã_i``'s feature contents (each operator salted
    by its position), and each iteration is ``C_i = Ã_iᵀ S R⁻¹`` with ``SᵀS = RᵀR`` (the Gram
    matrix formed with the product, so ``S R⁻¹`` is never stored). One n × size array (of
    ``dtype``) is held.
    """
    size = min(size, sum(op.shape[1] for op in operators))
    rights = [keyed_gaussian(op.content_keys().features, size, seed + i) for i, op in enumerate(operators)]
    sketch, gram = _summed_products(operators, rights, out=np.empty((operators[0].shape[0], size), dtype=dtype))
    for _ in range(iterations):
        inverse = _cholesky_inverse(gram)
        if inverse is None:  # too ill-conditioned for Cholesky: orthonormalise the sketch itself
            householder_orthonormalised(sketch)
            inverse = np.eye(size)
        del rights  # one set of p × size arrays at a time
        rights = [rotated_in_place(op.rmatmul(sketch), inverse) for op in operators]
        sketch, gram = _summed_products(operators, rights, out=sketch)
    return sketch, gram, rights


def _summed_products(operators, rights, out) -> tuple[np.ndarray, np.ndarray]:
    if len(operators) == 1:
        return operators[0].matmul(rights[0], out=out, gram=True)
    out[...] = operators[0].matmul(rights[0])
    for op, right in zip(operators[1:], rights[1:]):
        out += op.matmul(right)
    return out, parallel.gram_of(out)


def _cholesky_inverse(gram: np.ndarray) -> np.ndarray | None:
    """``R⁻¹`` of ``gram = RᵀR`` (upper ``R``), or ``None`` when ``gram`` is too ill-conditioned (cond > 10¹⁴)."""
    try:
        upper = linalg.cholesky(gram, lower=False, check_finite=False)
    except linalg.LinAlgError:
        return None
    if not well_conditioned(upper, 1e-7):
        return None
    return linalg.solve_triangular(upper, np.eye(len(gram)), check_finite=False)


def range_finder(
    operators: Sequence[Operator], size: int, *, rng: np.random.Generator, power_iterations: int = POWER_ITERATIONS
) -> np.ndarray:
    """Orthonormal n × size basis approximating the range of ``[Ã₁ | Ã₂ | ...]`` (Halko et al. 2011).

    Keyed by the features' contents (:func:`power_sketch`), so independent of their order.
    """
    sketch, gram, _ = power_sketch(operators, size, seed=_seed(rng), iterations=power_iterations)
    rotation, _ = orthonormalised_from_gram(sketch, gram)
    return rotated_in_place(sketch, rotation)


def rotated_in_place(matrix: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """``matrix @ rotation`` (n × l times l × r, r ≤ l) written over ``matrix``'s first r columns, by row blocks."""
    r = rotation.shape[1]

    def rotate(edges):
        start, stop = edges
        matrix[start:stop, :r] = np.asarray(matrix[start:stop], dtype=np.float64) @ rotation

    list(parallel.ordered_map(rotate, parallel.row_blocks(matrix, max(parallel.BLOCK_ENTRIES, 4 * r * r))))
    return matrix[:, :r]


def orthonormalised_from_gram(matrix: np.ndarray, gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Make ``matrix`` (n × k) orthonormal up to a last rotation ``T``: returns ``(T, R)``.

    ``Q = matrix_after · T`` is orthonormal and ``matrix_before = Q R``.

    Cholesky QR twice with one pass over the rows: ``gram = R₁ᵀR₁`` (given: formed with the
    product that made ``matrix``), ``matrix ← matrix R₁⁻¹`` in place with the Gram matrix of the
    stored result ``R₂ᵀR₂``, and ``T = R₂⁻¹`` left for the caller's own rotation of the rows (so
    ``Q`` is orthonormal to rounding of ``matrix``'s dtype, for ``cond(matrix)`` up to about 10⁷).
    Otherwise (or with fewer rows than columns) Householder QR in place, ``T = I``.
    """
    k = matrix.shape[1]
    first = _cholesky_inverse(gram) if matrix.shape[0] >= k else None
    if first is not None:
        second = _cholesky_inverse(_rotated_with_gram(matrix, first))
        if second is not None:
            triangle = linalg.solve_triangular(first @ second, np.eye(k), check_finite=False)  # R = R₂ R₁
            return second, triangle
    _, triangle = householder_orthonormalised(matrix, triangle=True)  # only rounding of the first rotation lost
    return np.eye(k), triangle if first is None else triangle @ linalg.solve_triangular(first, np.eye(k))


def _rotated_with_gram(matrix: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """``matrix ← matrix @ rotation`` (square) in place by row blocks; the Gram matrix of the stored result."""
    k = matrix.shape[1]

    def rotate(edges):
        start, stop = edges
        matrix[start:stop] = np.asarray(matrix[start:stop], dtype=np.float64) @ rotation
        return parallel.stored_gram(matrix[start:stop])

    return parallel.ordered_sum(rotate, parallel.row_blocks(matrix, max(parallel.BLOCK_ENTRIES, 4 * k * k)))


def orthonormalised(matrix: np.ndarray, *, triangle: bool = False):
    """``Q`` of ``matrix = Q R``, written over ``matrix`` (a tall n × k array); with ``triangle``, ``R`` too."""
    rotation, upper = orthonormalised_from_gram(matrix, parallel.gram_of(matrix))
    rotated_in_place(matrix, rotation)
    return (matrix, upper) if triangle else matrix


def householder_orthonormalised(matrix: np.ndarray, *, triangle: bool = False, prior: np.ndarray | None = None):
    """:func:`orthonormalised` by Householder QR: a tall-skinny QR over row blocks (``R`` times ``prior``).

    Each row block ``A_i = Q_i R_i`` (in place, on the fit's threads), then ``[R_1; R_2; ...] = S R``
    and ``Q = blockdiag(Q_i) S``. About one n × k array of memory instead of three.
    """
    k = matrix.shape[1]
    prior = np.eye(k) if prior is None else prior
    blocks = parallel.row_blocks(matrix, max(parallel.BLOCK_ENTRIES, 4 * k * k))
    if len(blocks) > 1 and blocks[-1][1] - blocks[-1][0] < k:  # every block at least k rows tall
        blocks[-2:] = [(blocks[-2][0], blocks[-1][1])]
    if len(blocks) < 2:
        q, r = np.linalg.qr(matrix)
        matrix[:, : q.shape[1]] = q
        if q.shape[1] < k:  # fewer rows than columns: the rest of the columns are zero
            matrix[:, q.shape[1] :] = 0.0
            r = np.vstack([r, np.zeros((k - r.shape[0], k))])
        return (matrix, r @ prior) if triangle else matrix

    def factor(edges):
        start, stop = edges
        q, r = np.linalg.qr(matrix[start:stop])
        matrix[start:stop] = q
        return r

    triangles = list(parallel.ordered_map(factor, blocks))
    stacked, r = np.linalg.qr(np.vstack(triangles))

    def rotate(edges_and_index):
        (start, stop), i = edges_and_index
        matrix[start:stop] = matrix[start:stop] @ stacked[i * k : (i + 1) * k]

    list(parallel.ordered_map(rotate, list(zip(blocks, range(len(blocks))))))
    return (matrix, r @ prior) if triangle else matrix


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
    basis = range_finder(operators, rank + OVERSAMPLE, rng=rng, power_iterations=FREE_START_POWER_ITERATIONS)
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


def well_conditioned(T: np.ndarray, ratio: float = 1e-8) -> bool:
    """A square triangular ``T`` whose inverse is accurate (diagonal ratio above ``ratio``)."""
    diagonal = np.abs(np.diag(T))
    return T.shape[0] == T.shape[1] and diagonal.min(initial=np.inf) > ratio * diagonal.max(initial=0.0)


def leading(operator, rank, rng):
    """Leading left singular vectors of one operator (its numerical rank at most)."""
    left, values = randomized_svd([operator], min(rank, operator.shape[1]), rng=rng)
    return left[:, values > values.max(initial=0.0) * 1e-10]


def corrected_basis(corrected: np.ndarray, scores_encoder: np.ndarray) -> tuple[Basis, np.ndarray]:
    """The orthonormal basis of the corrected scores' leading directions, and ``T`` with ``U = S_c T``.

    The basis is written over ``corrected`` (its first columns).
    """
    values, vectors = np.linalg.eigh(parallel.gram_of(corrected))
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    keep = values > max(values[0], 0.0) * max(corrected.shape) * 1e-12
    to_basis = vectors[:, keep] / np.sqrt(values[keep])
    vectors = rotated_in_place(corrected, to_basis)
    basis = Basis(vectors=vectors, encoder=scores_encoder @ to_basis, values=np.sqrt(values[keep]))
    return basis, to_basis
