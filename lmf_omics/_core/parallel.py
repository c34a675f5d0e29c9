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


def ordered_map(function: Callable, items: Sequence) -> Iterator:
    """``map(function, items)`` on the current threads, results in order, a few at a time."""
    current = _POOL.get()
    if current is None or len(items) < 2:
        yield from map(function, items)
        return
    pool, threads = current
    for first in range(0, len(items), threads):  # at most one pending result per thread
        yield from pool.map(function, items[first : first + threads])


def ordered_sum(function: Callable, items: Sequence):
    """``Σ function(item)`` added in the order of ``items`` (whatever the threads)."""
    return accumulate(ordered_map(function, items))


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


# ---------------------------------------------------------------------------- products
def matmul(matrix, right: np.ndarray) -> np.ndarray:
    """``A @ right`` (n × k, float64) for a dense, CSR or CSC ``A``."""
    if sparse.issparse(matrix) and matrix.format == "csc":
        return _transposed_product(matrix.T, right, wide=True)
    right = np.asarray(right, dtype=np.float64)
    out = np.empty((matrix.shape[0], right.shape[1]))

    def fill(edges):
        start, stop = edges
        out[start:stop] = row_block(matrix, start, stop) @ right  # float32 values promoted block by block

    for _ in ordered_map(fill, row_blocks(matrix)):
        pass
    return out


def rmatmul(matrix, left: np.ndarray) -> np.ndarray:
    """``Aᵀ @ left`` (p × k, float64) for a dense, CSR or CSC ``A``."""
    if sparse.issparse(matrix) and matrix.format == "csc":
        return matmul(matrix.T, left)
    return _transposed_product(matrix, left, wide=False)


def _transposed_product(matrix, left: np.ndarray, *, wide: bool) -> np.ndarray:
    """``Aᵀ @ left`` for a dense or CSR ``A``: block partials added in block order.

    ``wide``: the partials are as tall as the data (a CSC matrix's ``A @ B``), so fewer blocks.
    """
    left = np.asarray(left, dtype=np.float64)
    target = max(BLOCK_NNZ, -(-int(matrix.nnz) // MAX_WIDE_PARTIALS)) if wide and sparse.issparse(matrix) else None
    blocks = row_blocks(matrix, target)

    def partial(edges):
        start, stop = edges
        return np.asarray(row_block(matrix, start, stop).T @ left[start:stop])

    total = ordered_sum(partial, blocks)
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
    if sparse.issparse(block):
        values = block.data.astype(np.float64)
        if observed is not None:
            values = values * np.repeat(np.asarray(observed, np.float64), np.diff(block.indptr))
        columns, p = block.indices, block.shape[1]
        return np.stack(
            [
                np.bincount(columns, weights=values, minlength=p),
                np.bincount(columns, weights=values * block.data, minlength=p),
            ]
        )
    rows = block if observed is None else block[np.asarray(observed, bool)]
    rows = rows.astype(np.float64)
    return np.stack([rows.sum(axis=0), np.einsum("ij,ij->j", rows, rows)])
