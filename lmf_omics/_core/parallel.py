"""Products of in-memory matrices in row blocks, on a few threads, in an order fixed by the data alone.

scipy's sparse products run on one core. Here a CSR (or dense) matrix is cut into row blocks of
about ``BLOCK_NNZ`` stored entries; ``A @ B`` fills each block's rows of the result and
``Aᵀ @ C`` adds the blocks' partial products in block order. The blocks depend only on the
matrix, never on the number of threads, so a fit gives bit-identical results on 1 or 8 threads.
A block of a float32 matrix is promoted to float64 on its own (scipy would copy the whole matrix
at every product). A CSC matrix is used through its transpose (a CSR view).

:func:`workers` sets the threads for the products of one fit and holds BLAS to one thread
meanwhile: the thin dense algebra then never competes with the product threads or with other
processes for cores (measured in ``benchmarks/README.md``, ``scale.py``, "Threads").
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from itertools import pairwise

import numpy as np
from scipy import sparse

BLOCK_NNZ = 1 << 20  # stored entries per row block of a sparse matrix
BLOCK_ENTRIES = 1 << 21  # entries per row block of a dense matrix
MAX_WIDE_PARTIALS = 8  # blocks of a reduction whose partial results are as tall as the data (CSC ``A @ B``)

_POOL: ContextVar[tuple[ThreadPoolExecutor, int] | None] = ContextVar("lmf_omics_pool", default=None)


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_jobs(n_jobs: int | None) -> int:
    """``None`` or ``-1``: every usable core; otherwise ``n_jobs`` itself (checked by the caller)."""
    return usable_cores() if n_jobs is None or n_jobs == -1 else int(n_jobs)


@contextmanager
def workers(n_jobs: int | None):
    """Run the products inside on ``n_jobs`` threads, with BLAS held to one thread."""
    threads = resolve_jobs(n_jobs)
    with _single_threaded_blas(), ThreadPoolExecutor(threads) if threads > 1 else nullcontext() as pool:
        token = _POOL.set(None if pool is None else (pool, threads))
        try:
            yield threads
        finally:
            _POOL.reset(token)


_BLAS_LOCK = threading.Lock()
_blas_limit: list = []  # [limiter, fits running]: while any fit of the process runs, BLAS has one thread
_BLAS_CONTROL: list[ThreadPoolExecutor] = []  # the one thread that sets and restores the limit


@contextmanager
def _single_threaded_blas():
    """BLAS held to one thread while any fit of the process runs, whichever Python thread runs it.

    The limit is process-wide, and threadpoolctl lets only one thread set it (others are silently
    ignored): so one dedicated thread sets it when the first fit starts and restores it when the
    last one ends. A fit in a thread then runs its algebra on as many BLAS threads as the same fit
    in the main thread (sums on more threads round differently), and no fit ending lifts the limit
    under another that is still running.
    """
    try:
        from threadpoolctl import threadpool_limits  # a dependency of scikit-learn (so of scanpy)
    except ImportError:  # pragma: no cover - the limit is an optimisation only
        yield
        return
    with _BLAS_LOCK:
        if not _blas_limit:
            _blas_limit[:] = [_on_control_thread(lambda: threadpool_limits(limits=1, user_api="blas")), 0]
        _blas_limit[1] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _blas_limit[1] -= 1
            if not _blas_limit[1]:
                _on_control_thread(_blas_limit.pop(0).restore_original_limits)
                _blas_limit.clear()


def _on_control_thread(function: Callable):
    if not _BLAS_CONTROL:
        _BLAS_CONTROL.append(ThreadPoolExecutor(1, thread_name_prefix="lmf_omics_blas_limit"))
    return _BLAS_CONTROL[0].submit(function).result()


def ordered_map(function: Callable, items: Sequence, *, ahead: int = 1) -> Iterator:
    """``map(function, items)`` on the current threads, results in order.

    A sliding window: ``ahead`` calls beyond one per thread wait in the queue, so while the caller
    takes a result (adds a block's partial, say) every thread already runs its next item, and a
    slow item holds back no thread but its own; at most ``threads + ahead`` results are alive at a
    time. ``ahead=0`` starts the next call only once the caller has taken a result, for results as
    large as the data (at most ``threads`` alive).
    """
    current = _POOL.get()
    if current is None or len(items) < 2:
        yield from map(function, items)
        return
    pool, threads = current
    window = threads + ahead
    pending = deque(pool.submit(function, item) for item in items[:window])
    for item in items[window:]:
        done = pending.popleft().result()
        if ahead:
            pending.append(pool.submit(function, item))
            yield done
        else:
            yield done
            del done  # the caller is done with it: freed before the next call starts
            pending.append(pool.submit(function, item))
    while pending:
        yield pending.popleft().result()


def ordered_sum(function: Callable, items: Sequence, *, ahead: int = 1):
    """``Σ function(item)`` added in the order of ``items`` (whatever the threads; ``ahead``: :func:`ordered_map`)."""
    return accumulate(ordered_map(function, items, ahead=ahead))


def accumulate(arrays) -> np.ndarray | None:
    """The sum of fresh arrays, added in place into the first in their order (``None`` for none)."""
    total = None
    for part in arrays:
        if total is None:
            total = part
        else:
            total += part
    return total


# ------------------------------------------------------------------------------ blocks
def row_blocks(matrix, target: int | None = None) -> list[tuple[int, int]]:
    """Row ranges ``(start, stop)`` of about ``target`` stored entries each (a property of the data)."""
    if sparse.issparse(matrix):
        return split_by_nnz(matrix.indptr, target or BLOCK_NNZ)
    n = matrix.shape[0]
    rows = max(1, (target or BLOCK_ENTRIES) // max(matrix.shape[1], 1))
    return [(a, min(a + rows, n)) for a in range(0, n, rows)]


def split_by_nnz(indptr: np.ndarray, target: int) -> list[tuple[int, int]]:
    """Row ranges of a CSR matrix (its ``indptr``) holding about ``target`` stored entries each."""
    n, nnz = len(indptr) - 1, int(indptr[-1])
    count = max(1, -(-nnz // target))
    cuts = np.searchsorted(indptr, np.arange(1, count) * (nnz / count))
    edges = np.unique(np.concatenate([[0], np.clip(cuts, 0, n), [n]]))
    return [(int(a), int(b)) for a, b in pairwise(edges)]


def row_block(matrix, start: int, stop: int):
    """Rows ``start:stop`` of a CSR or dense matrix, without copying the stored entries."""
    if not sparse.issparse(matrix):
        return matrix[start:stop]
    low, high = matrix.indptr[start], matrix.indptr[stop]
    indptr = matrix.indptr[start : stop + 1] - low
    return sparse.csr_matrix(
        (matrix.data[low:high], matrix.indices[low:high], indptr), shape=(stop - start, matrix.shape[1]), copy=False
    )


# ------------------------------------------------------------------------- thin arrays
class SideBySide:
    """Thin n × k_i arrays read as one n × Σk_i array, a row block at a time (no n × Σk copy)."""

    def __init__(self, *parts: np.ndarray):
        self.parts = parts
        self.shape = (parts[0].shape[0], sum(part.shape[1] for part in parts))

    def __getitem__(self, rows: slice) -> np.ndarray:
        return np.hstack([np.asarray(part[rows], dtype=np.float64) for part in self.parts])

    def masked(self, weights: np.ndarray) -> SideBySide:
        """Each row times its weight (a copy of every part)."""
        return SideBySide(*(part * weights[:, None].astype(part.dtype) for part in self.parts))


def column_totals(left) -> np.ndarray:
    """Column sums of a thin array or :class:`SideBySide`, in float64."""
    parts = left.parts if isinstance(left, SideBySide) else (left,)
    return np.concatenate([part.sum(axis=0, dtype=np.float64) for part in parts])


def gram_of(matrix, weights: np.ndarray | None = None) -> np.ndarray:
    """``Aᵀ diag(w) A`` in float64 for a thin array or :class:`SideBySide`, by row blocks added in order."""
    n, k = matrix.shape

    def partial(edges):
        block = np.asarray(matrix[edges[0] : edges[1]], dtype=np.float64)
        return block.T @ (block if weights is None else block * weights[edges[0] : edges[1], None])

    rows = max(BLOCK_ENTRIES // max(k, 1), 1)
    total = ordered_sum(partial, [(start, min(start + rows, n)) for start in range(0, n, rows)])
    return np.zeros((k, k)) if total is None else total


def thin_product(matrix: np.ndarray, small: np.ndarray, dtype=None) -> np.ndarray:
    """``matrix @ small`` (n × r times r × k) by row blocks in float64, stored as ``dtype`` (``matrix``'s)."""
    out = np.empty((matrix.shape[0], small.shape[1]), dtype=dtype or matrix.dtype)

    def fill(edges):
        out[edges[0] : edges[1]] = np.asarray(matrix[edges[0] : edges[1]], dtype=np.float64) @ small

    for _ in ordered_map(fill, row_blocks(matrix, max(BLOCK_ENTRIES // 4, 1))):
        pass
    return out


# ---------------------------------------------------------------------------- products
def matmul(matrix, right: np.ndarray, out=None, *, offset=None, divisor=None, gram: bool = False):
    """``(A @ right - offset) / divisor`` (n × k) for a dense, CSR or CSC ``A``, block by block in float64.

    Written into ``out`` if given (in its dtype: a float32 ``out`` is rounded once, after the
    centring ``offset``, a row of k values, so no digit is lost to a large uncentred product).
    With ``gram``, also the k × k Gram matrix of the stored result (float64, blocks added in
    order), formed while each block is at hand: ``(out, gram)``.
    """
    if sparse.issparse(matrix) and matrix.format == "csc":
        product = centred(_transposed_product(matrix.T, right, wide=True), offset, divisor)
        if out is None:
            out = product
        else:
            out[...] = product
        return (out, stored_gram(out)) if gram else out
    right = np.asarray(right, dtype=np.float64)
    out = np.empty((matrix.shape[0], right.shape[1])) if out is None else out

    def fill(edges):
        start, stop = edges
        out[start:stop] = centred(row_block(matrix, start, stop) @ right, offset, divisor)  # float32 promoted
        return stored_gram(out[start:stop]) if gram else None

    grams = list(ordered_map(fill, row_blocks(matrix)))
    if not gram:
        return out
    total = accumulate(grams)
    return out, np.zeros((out.shape[1], out.shape[1])) if total is None else total


def gram_product(
    matrix, right: np.ndarray, *, offset=None, divisor=None, observed=None, out=None, gram: bool = True
) -> list:
    """``[Aᵀy, 1ᵀy, yᵀy]`` (float64) for ``y = (A @ right - offset) / divisor`` with unobserved rows zero.

    (``yᵀy`` is a k × k of zeros unless ``gram``.)
    One read of each row block for both products: ``y`` is formed block by block and multiplied
    back at once (stored into ``out`` first if given, in its dtype, and used as stored). The
    blocks and the order their partials are added in are :func:`matmul`'s and :func:`rmatmul`'s, so
    ``Aᵀy`` equals ``rmatmul(A, matmul(A, right))`` bit for bit. A dense or CSR ``A``.
    """
    right = np.asarray(right, dtype=np.float64)
    k = right.shape[1]

    def partial(edges):
        start, stop = edges
        block = row_block(matrix, start, stop)
        rows = centred(block @ right, offset, divisor)
        if observed is not None:
            rows[~observed[start:stop]] = 0.0
        if out is not None:
            out[start:stop] = rows
            rows = np.asarray(out[start:stop], dtype=np.float64)
        return [np.asarray(block.T @ rows), rows.sum(axis=0), rows.T @ rows if gram else np.zeros((k, k))]

    return summed_gram_parts(ordered_map(partial, row_blocks(matrix)), matrix.shape[1], k)


def summed_gram_parts(parts, p: int, k: int) -> list:
    """:func:`gram_product`'s ``[p × k, k, k × k]`` partials added in place in their order (zeros for none)."""
    total = None
    for part in parts:
        total = part if total is None else [a.__iadd__(b) for a, b in zip(total, part)]
    return total or [np.zeros((p, k)), np.zeros(k), np.zeros((k, k))]


def stored_gram(block: np.ndarray) -> np.ndarray:
    """``BᵀB`` in float64 of a block as stored (a float32 block is promoted for it)."""
    block = np.asarray(block, dtype=np.float64)
    return block.T @ block


def centred(product, offset, divisor):
    """``(product - offset) / divisor`` in place (either may be ``None``)."""
    product = np.asarray(product)
    if offset is not None:
        product -= offset
    if divisor is not None:
        product /= divisor
    return product


def rmatmul(matrix, left: np.ndarray) -> np.ndarray:
    """``Aᵀ @ left`` (p × k, float64) for a dense, CSR or CSC ``A``."""
    if sparse.issparse(matrix) and matrix.format == "csc":
        return matmul(matrix.T, left[0 : left.shape[0]] if isinstance(left, SideBySide) else left)
    return _transposed_product(matrix, left, wide=False)


def _transposed_product(matrix, left: np.ndarray, *, wide: bool) -> np.ndarray:
    """``Aᵀ @ left`` for a dense or CSR ``A``: block partials added in block order, in float64.

    ``left`` is read block by block (a float32 ``left`` is promoted one block at a time).
    ``wide``: the partials are as tall as the data (a CSC matrix's ``A @ B``), so fewer blocks.
    """
    target = max(BLOCK_NNZ, -(-int(matrix.nnz) // MAX_WIDE_PARTIALS)) if wide and sparse.issparse(matrix) else None
    blocks = row_blocks(matrix, target)

    def partial(edges):
        start, stop = edges
        return np.asarray(row_block(matrix, start, stop).T @ np.asarray(left[start:stop], dtype=np.float64))

    total = ordered_sum(partial, blocks, ahead=0 if wide else 1)  # wide partials: as many alive as before
    return np.zeros((matrix.shape[1], left.shape[1])) if total is None else total


# ------------------------------------------------------------------------------ moments
def column_sums(matrix, observed: np.ndarray | None = None) -> np.ndarray:
    """Column sums and sums of squares (2 × p, float64) of a CSR matrix's observed rows, by row blocks."""

    def partial(edges):
        start, stop = edges
        return sums_and_squares(row_block(matrix, start, stop), None if observed is None else observed[start:stop])

    total = ordered_sum(partial, row_blocks(matrix))
    return np.zeros((2, matrix.shape[1])) if total is None else total


def dense_column_moments(matrix: np.ndarray, observed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Column means and variances (float64) of a dense matrix's observed rows, by row blocks.

    Two passes (the mean, then squares about it), as ``numpy.var``: sums of raw squares would lose
    every digit of a variance small beside its mean. No copy of the matrix, one block's temporaries.
    """
    blocks = row_blocks(matrix)
    count = matrix.shape[0] if observed is None else int(observed.sum())
    mean = ordered_sum(lambda edges: _observed_block(matrix, edges, observed).sum(axis=0, dtype=np.float64), blocks)
    mean /= count

    def centred_squares(edges):
        centred = _observed_block(matrix, edges, observed) - mean  # float64, one block
        return np.einsum("ij,ij->j", centred, centred)

    return mean, ordered_sum(centred_squares, blocks) / count


def _observed_block(matrix: np.ndarray, edges: tuple[int, int], observed: np.ndarray | None) -> np.ndarray:
    start, stop = edges
    return matrix[start:stop] if observed is None else matrix[start:stop][observed[start:stop]]


def sums_and_squares(block, observed=None) -> np.ndarray:
    """Column sums and sums of squares (2 × p, float64) of the rows of ``block`` with ``observed`` 1."""
    if sparse.issparse(block):  # two of scipy's products (threads run them at once; bincount is twice as slow)
        block = sparse.csr_matrix(block)
        values = block.data.astype(np.float64)
        rows = np.ones(block.shape[0]) if observed is None else np.asarray(observed, np.float64)
        same = sparse.csr_matrix((values, block.indices, block.indptr), shape=block.shape, copy=False)
        sums = same.T @ rows
        values *= values  # the same matrix, squared in place
        return np.stack([sums, same.T @ rows])
    rows = block if observed is None else block[np.asarray(observed, bool)]
    rows = rows.astype(np.float64)
    return np.stack([rows.sum(axis=0), np.einsum("ij,ij->j", rows, rows)])
