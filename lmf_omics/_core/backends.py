"""Out-of-core matrices: data read in row chunks from a file, or reduced on a dask cluster.

A backend is a cells × features matrix that is never whole in memory. It offers what
:class:`~.operators.Operator` needs: ``A @ B`` (n × k), ``Aᵀ @ C`` (p × k), column moments and
one checking pass, each over row chunks in a fixed order, so results do not depend on threads
or workers beyond floating-point rounding.

* :class:`StreamedMatrix`: an HDF5 or zarr dataset read chunk by chunk — a dense dataset, a CSR
  group (``data``/``indices``/``indptr``, as AnnData writes sparse matrices) or an AnnData
  backed matrix (``AnnData(..., backed="r").X``). Memory: one chunk plus the thin products.
* :class:`DaskMatrix`: a dask array whose chunks are numpy arrays or scipy sparse matrices; every
  product is a dask reduction, computed where dask runs (threads, processes or ``distributed``).

Nothing here imports dask, h5py or anndata at module level; they are recognised by their type.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from . import keys as content
from . import parallel
from .validation import canonical_sparse, check_indptr

CHUNK_NNZ = 1 << 23  # stored entries per chunk read from a file


@dataclass(frozen=True)
class Scan:
    """What one checking pass over a matrix finds (see :meth:`ChunkedMatrix.scan`)."""

    nan_rows: np.ndarray | None  # dense rows that are all NaN (None for sparse data)
    n_bad: int  # non-finite stored values (in rows not excluded)
    first_bad: tuple[int, int] | None  # (row, column) of the first


class ChunkedMatrix:
    """A matrix read in row chunks; subclasses provide :meth:`chunks` (or override the products)."""

    shape: tuple[int, int]
    dtype: np.dtype
    is_sparse: bool

    @property
    def ndim(self) -> int:
        return 2

    def chunks(self) -> Iterator[tuple[int, int, np.ndarray | sparse.csr_matrix]]:
        """``(start, stop, rows)`` in order, ``rows`` in memory and checked (float dense, or canonical float CSR)."""
        raise NotImplementedError

    def matmul(self, right: np.ndarray, out=None, *, offset=None, divisor=None, gram: bool = False):
        """``(A @ right - offset) / divisor`` (see :func:`.parallel.matmul`, also for ``gram``), chunk by chunk."""
        right = np.asarray(right, dtype=np.float64)
        out = np.empty((self.shape[0], right.shape[1])) if out is None else out
        total = np.zeros((right.shape[1], right.shape[1]))
        for start, stop, rows in self.chunks():  # each chunk's product written in place: no chunk-sized copy
            done = parallel.matmul(
                _non_finite_as_zero(rows), right, out=out[start:stop], offset=offset, divisor=divisor, gram=gram
            )
            if gram:
                total += done[1]
        return (out, total) if gram else out

    def gram_product(self, right: np.ndarray, *, offset=None, divisor=None, observed=None, out=None, gram=True):
        """:func:`.parallel.gram_product` chunk by chunk: each chunk read once for both products."""
        parts = (
            parallel.gram_product(
                _non_finite_as_zero(rows),
                right,
                offset=offset,
                divisor=divisor,
                observed=None if observed is None else observed[start:stop],
                out=None if out is None else out[start:stop],
                gram=gram,
            )
            for start, stop, rows in self.chunks()
        )
        return parallel.summed_gram_parts(parts, self.shape[1], right.shape[1])

    def rmatmul(self, left) -> np.ndarray:
        total = np.zeros((self.shape[1], left.shape[1]))
        for start, stop, rows in self.chunks():
            total += parallel.rmatmul(_non_finite_as_zero(rows), left[start:stop])
        return total

    def column_moments(self, observed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        mean, var, _ = self.summaries(observed)
        return mean, var

    def content_keys(self, observed: np.ndarray | None) -> content.Keys:
        """Order-free keys of the features and cells (:mod:`.keys`), one pass over the chunks."""
        return self.summaries(observed)[2]

    def summaries(self, observed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, content.Keys]:
        """Column means and variances and the content keys, in one pass over the chunks."""
        sums, by_column, by_row = np.zeros((2, self.shape[1])), np.zeros(self.shape[1]), []
        count = 0
        for start, stop, rows in self.chunks():
            rows_observed = None if observed is None else observed[start:stop]
            sums += parallel.sums_and_squares(rows, rows_observed)
            columns, cells = content.block_sums(_non_finite_as_zero(rows), rows_observed)
            by_column += columns
            by_row.append(cells)
            count += stop - start if rows_observed is None else int(rows_observed.sum())
        keys = content.finish(by_column, np.hstack(by_row) if by_row else np.zeros(0))
        return (*_mean_and_variance(sums, count), keys)

    def scan(self, observed: np.ndarray | None) -> Scan:
        """All-NaN dense rows and non-finite values outside the rows ``observed`` excludes."""
        parts = [
            _scan_rows(rows, start, None if observed is None else observed[start:stop])
            for start, stop, rows in self.chunks()
        ]
        return _combine_scans(parts, self.is_sparse)

    def take(self, index) -> np.ndarray | sparse.csr_matrix:
        """Some rows, in memory, in the order ``index`` gives them (one pass over the chunks)."""
        rows = np.arange(self.shape[0])[index]
        order = np.argsort(rows, kind="stable")
        ascending = rows[order]
        parts = [
            chunk[ascending[(ascending >= start) & (ascending < stop)] - start] for start, stop, chunk in self.chunks()
        ]
        return _stack(parts)[np.argsort(order)]  # back from ascending to the order asked


# ------------------------------------------------------------------------- from files
class StreamedMatrix(ChunkedMatrix):
    """Rows streamed from an HDF5/zarr dataset, CSR group or AnnData backed matrix.

    Parameters
    ----------
    source
        ``h5py.Dataset``/``zarr.Array`` (dense, cells × features), a group holding a CSR matrix
        (``data``, ``indices``, ``indptr``, with a ``shape`` attribute), or AnnData's backed
        sparse dataset (``adata.X`` of ``anndata.read_h5ad(path, backed="r")``). A CSC matrix
        cannot be read by rows: rewrite it as CSR (``adata.X = adata.X.tocsr()``) first.
    chunk_nnz
        Stored entries (sparse) or values (dense) per chunk read.
    columns
        Boolean mask or indices of the features to use (applied to each chunk as it is read).
    """

    def __init__(self, source, *, chunk_nnz: int = CHUNK_NNZ, columns=None):
        if isinstance(source, np.ndarray) or sparse.issparse(source):
            raise TypeError("StreamedMatrix reads from a file; an in-memory matrix is used as it is")
        group = getattr(source, "group", source)  # AnnData's backed sparse dataset wraps a group
        self._group = group if _is_sparse_group(group) else None
        self._dense = None if self._group is not None else source
        if self._group is not None:
            encoding = _attr(group, "encoding-type") or _attr(group, "h5sparse_format") or "csr_matrix"
            if "csc" in str(encoding) or getattr(source, "format", "csr") == "csc":
                raise ValueError(
                    "a CSC matrix on disk cannot be read row by row; store it as CSR "
                    "(e.g. adata.X = adata.X.tocsr() before writing)"
                )
            self.shape = tuple(int(s) for s in _attr(group, "shape"))
            self.dtype = np.dtype(group["data"].dtype)
            self._indptr = _checked_indptr(group, self.shape, self._name)
        else:
            self.shape = tuple(int(s) for s in source.shape)
            self.dtype = np.dtype(source.dtype)
        self.is_sparse = self._group is not None
        self.chunk_nnz = int(chunk_nnz)
        self.columns = None if columns is None else np.arange(self.shape[1])[columns]
        if self.columns is not None:
            self.shape = (self.shape[0], len(self.columns))

    @property
    def _name(self) -> str:
        """How errors name the matrix: its file and path inside it."""
        where = getattr(self._group, "name", None) or "?"
        file = getattr(getattr(self._group, "file", None), "filename", None)
        return f"the matrix {where!r}" + (f" in the file {str(file)!r}" if file else " in a file")

    def __repr__(self) -> str:
        kind = "CSR" if self.is_sparse else "dense"
        return f"StreamedMatrix({kind}, shape={self.shape}, dtype={self.dtype})"

    def _edges(self) -> list[tuple[int, int]]:
        if self.is_sparse:
            return parallel.split_by_nnz(self._indptr, self.chunk_nnz)
        rows = max(1, self.chunk_nnz // max(self._width, 1))
        return [(a, min(a + rows, self.shape[0])) for a in range(0, self.shape[0], rows)]

    @property
    def _width(self) -> int:
        """Features stored in the file (before ``columns``)."""
        return int(self._dense.shape[1]) if self._group is None else int(_attr(self._group, "shape")[1])

    def chunks(self):
        for start, stop in self._edges():
            rows = self._read(start, stop)
            if self.columns is not None:  # integer columns out of order would leave a CSR chunk's indices unsorted
                rows = rows[:, self.columns]
                rows = canonical_sparse(rows, self._name, first_row=start) if self.is_sparse else rows
            yield start, stop, rows

    def _read(self, start: int, stop: int):
        if not self.is_sparse:
            return _float(np.asarray(self._dense[start:stop]))
        low, high = int(self._indptr[start]), int(self._indptr[stop])
        data = _float(np.asarray(self._group["data"][low:high]))
        indices = np.asarray(self._group["indices"][low:high])
        rows = sparse.csr_matrix((stop - start, self._width), dtype=data.dtype)
        rows.data, rows.indices, rows.indptr = data, indices, self._indptr[start : stop + 1] - low  # unchecked yet
        return canonical_sparse(rows, self._name, first_row=start)  # checked before scipy reads its indices


def _checked_indptr(group, shape: tuple[int, int], name: str) -> np.ndarray:
    """A CSR group's ``indptr`` (read whole, it is one entry per row), checked against its other arrays."""
    indptr = np.asarray(group["indptr"][:])
    n_data, n_indices = len(group["data"]), len(group["indices"])
    if n_indices != n_data:
        raise ValueError(f"{name} is corrupt: {n_indices} indices for {n_data} stored values; re-write the file")
    check_indptr(indptr, n_data, shape[0], name)  # the indices are checked chunk by chunk, as they are read
    return indptr.astype(np.int64)


def _is_sparse_group(obj) -> bool:
    """An HDF5/zarr group (mapping of datasets) holding ``data``, ``indices`` and ``indptr``."""
    if not hasattr(obj, "keys"):
        return False
    return {"data", "indices", "indptr"} <= set(obj.keys())


def _attr(group, name):
    value = group.attrs.get(name) if hasattr(group, "attrs") else None
    return value.decode() if isinstance(value, bytes) else value


# ----------------------------------------------------------------------------- on dask
class DaskMatrix(ChunkedMatrix):
    """A dask array (chunks of numpy arrays or scipy sparse matrices); products are dask reductions.

    Chunks along the features are merged (``rechunk({1: -1})``): every task holds whole rows.
    Partial results are added pairwise in chunk order, so the result does not depend on the
    number of workers.
    """

    def __init__(self, array):
        if array.ndim != 2:
            raise ValueError(f"expected a 2-D dask array (cells × features), got shape {array.shape}")
        if any(np.isnan(s) for s in array.shape):
            raise ValueError("the dask array has unknown chunk sizes; call .compute_chunk_sizes() first")
        self.array = array.rechunk({1: -1}) if len(array.chunks[1]) > 1 else array
        self.shape = tuple(int(s) for s in array.shape)
        meta = getattr(array, "_meta", None)
        self.is_sparse = sparse.issparse(meta)
        self.dtype = np.dtype(array.dtype)
        self._edges = np.concatenate([[0], np.cumsum(self.array.chunks[0])]).astype(int)

    def __repr__(self) -> str:
        return f"DaskMatrix(shape={self.shape}, dtype={self.dtype}, row chunks={len(self._edges) - 1})"

    def _blocks(self):
        return self.array.to_delayed().ravel()

    def _row_slices(self):
        return list(zip(self._edges[:-1], self._edges[1:]))

    def matmul(self, right: np.ndarray, out=None, *, offset=None, divisor=None, gram: bool = False):
        from dask import compute, delayed

        right = np.asarray(right, dtype=np.float64)
        pending = delayed(right)  # sent once, shared by every task
        parts = compute(*[delayed(_block_matmul)(block, pending) for block in self._blocks()])
        out = np.empty((self.shape[0], right.shape[1])) if out is None else out
        total = np.zeros((right.shape[1], right.shape[1]))
        for part, (a, b) in zip(parts, self._row_slices()):
            out[a:b] = parallel.centred(part, offset, divisor)
            if gram:
                total += parallel.stored_gram(out[a:b])
        return (out, total) if gram else out

    def gram_product(self, right: np.ndarray, *, offset=None, divisor=None, observed=None, out=None, gram=True):
        """:func:`.parallel.gram_product` as one dask graph: each chunk read once by its task.

        The p × k, k and k × k partials are added pairwise on the workers (in chunk order); only
        with ``out`` do the n × k rows come to the client.
        """
        from dask import compute, delayed

        right = np.asarray(right, dtype=np.float64)
        pending = delayed(right)
        keep = None if out is None else out.dtype  # the rows stored (and sent) in out's dtype
        parts = [
            delayed(_block_gram, nout=2)(
                block, pending, offset, divisor, None if observed is None else observed[a:b], keep, gram
            )
            for block, (a, b) in zip(self._blocks(), self._row_slices())
        ]
        summed = _pairwise([part[0] for part in parts], delayed(_added))
        total, *rows = compute(summed, *([part[1] for part in parts] if out is not None else []))
        if out is not None:  # the rows as the workers stored them: their partials were formed from the same values
            for block_rows, (a, b) in zip(rows, self._row_slices()):
                out[a:b] = block_rows
        return total

    def rmatmul(self, left: np.ndarray) -> np.ndarray:
        parts = [(_block_rmatmul, block, left[a:b]) for block, (a, b) in zip(self._blocks(), self._row_slices())]
        return _tree_sum(parts)

    def column_moments(self, observed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        rows_observed = [None if observed is None else observed[a:b] for a, b in self._row_slices()]
        sums = _tree_sum([(_block_sums, block, w) for block, w in zip(self._blocks(), rows_observed)])
        count = self.shape[0] if observed is None else int(observed.sum())
        return _mean_and_variance(sums, count)

    def summaries(self, observed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, content.Keys]:
        return (*self.column_moments(observed), self.content_keys(observed))

    def content_keys(self, observed: np.ndarray | None) -> content.Keys:
        from dask import compute, delayed

        tasks = [
            delayed(_block_keys)(block, None if observed is None else observed[a:b])
            for block, (a, b) in zip(self._blocks(), self._row_slices())
        ]
        parts = compute(*tasks)  # per block: p and rows floats (n in all)
        by_column = sum((part[0] for part in parts), np.zeros(self.shape[1]))
        return content.finish(by_column, np.hstack([part[1] for part in parts]) if parts else np.zeros(0))

    def scan(self, observed: np.ndarray | None) -> Scan:
        from dask import compute, delayed

        tasks = [
            delayed(_scan_rows)(block, a, None if observed is None else observed[a:b])
            for block, (a, b) in zip(self._blocks(), self._row_slices())
        ]
        return _combine_scans(list(compute(*tasks)), self.is_sparse)

    def chunks(self):
        from dask import compute

        for block, (a, b) in zip(self._blocks(), self._row_slices()):
            yield a, b, _in_memory(compute(block)[0])


def _tree_sum(tasks: list) -> np.ndarray:
    """Compute ``Σ f(block, extra)`` on dask, adding partials pairwise in a fixed order."""
    from dask import compute, delayed

    return compute(_pairwise([delayed(f)(block, extra) for f, block, extra in tasks], delayed(np.add)))[0]


def _pairwise(level: list, add):
    """The delayed sum of ``level``, added pairwise in order (neighbours first, an odd last one carried up)."""
    while len(level) > 1:
        level = [add(a, b) for a, b in zip(level[::2], level[1::2])] + level[len(level) - len(level) % 2 :]
    return level[0]


def _block_matmul(block, right):
    return parallel.matmul(_non_finite_as_zero(_in_memory(block)), right)


def _block_gram(block, right, offset, divisor, observed, keep, gram):
    """One chunk's ``[Aᵀy, 1ᵀy, yᵀy]`` and, if ``keep`` (a dtype), its rows ``y`` stored in that dtype."""
    block = _non_finite_as_zero(_in_memory(block))
    rows = None if keep is None else np.empty((block.shape[0], right.shape[1]), dtype=keep)
    total = parallel.gram_product(block, right, offset=offset, divisor=divisor, observed=observed, out=rows, gram=gram)
    return total, rows


def _added(left: list, right: list) -> list:
    return [a + b for a, b in zip(left, right)]


def _block_rmatmul(block, left):
    return parallel.rmatmul(_non_finite_as_zero(_in_memory(block)), left)


def _block_keys(block, rows_observed):
    return content.block_sums(_non_finite_as_zero(_in_memory(block)), rows_observed)


def _block_sums(block, rows_observed):
    return parallel.sums_and_squares(_in_memory(block), rows_observed)


def _non_finite_as_zero(block):
    """Non-finite values as zeros.

    They can only be in unobserved rows (checked before any work), whose weight is 0, and
    ``inf · 0`` would be NaN.
    """
    if sparse.issparse(block):
        return block
    finite = np.isfinite(block)
    return block if finite.all() else np.where(finite, block, 0.0).astype(block.dtype, copy=False)


# ---------------------------------------------------------------------- shared pieces
def _in_memory(block):
    """A chunk as float64/float32 numpy or CSR (sparse: checked, and canonical)."""
    if sparse.issparse(block):
        block = sparse.csr_matrix(canonical_sparse(block, "a sparse chunk of the dask array"))
        return block if block.dtype in (np.float32, np.float64) else block.astype(np.float64)
    return _float(np.asarray(block))


def _float(array: np.ndarray) -> np.ndarray:
    return array if array.dtype in (np.float32, np.float64) else array.astype(np.float64)


def _mean_and_variance(sums: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    mean = sums[0] / count
    return mean, np.maximum(sums[1] / count - mean**2, 0.0)


def _scan_rows(block, start: int, observed) -> tuple:
    """``(nan_rows, n_bad, first_bad)`` of one chunk (rows ``start:``), dense NaN rows excused."""
    block = _in_memory(block)
    if sparse.issparse(block):
        bad = ~np.isfinite(block.data)
        if not bad.any():
            return None, 0, None
        index = int(np.flatnonzero(bad)[0])
        row = int(np.searchsorted(block.indptr, index, side="right") - 1)
        return None, int(bad.sum()), (start + row, int(block.indices[index]))
    nan_rows = np.isnan(block).all(axis=1)
    keep = ~nan_rows if observed is None else (~nan_rows & np.asarray(observed, bool))
    bad = ~np.isfinite(block) & keep[:, None]
    if not bad.any():
        return nan_rows, 0, None
    row, col = np.argwhere(bad)[0]
    return nan_rows, int(bad.sum()), (start + int(row), int(col))


def _combine_scans(parts: list[tuple], is_sparse: bool) -> Scan:
    firsts = [first for _, _, first in parts if first is not None]
    nan_rows = None if is_sparse or not parts else np.concatenate([rows for rows, _, _ in parts])
    return Scan(nan_rows, sum(n for _, n, _ in parts), firsts[0] if firsts else None)


def _stack(parts: list):
    if parts and sparse.issparse(parts[0]):
        return sparse.vstack(parts, format="csr")
    return np.vstack(parts)


# -------------------------------------------------------------------------- recognising
def as_backend(data) -> ChunkedMatrix | None:
    """The backend for ``data``, or ``None`` for in-memory numpy/scipy data."""
    if isinstance(data, ChunkedMatrix):
        return data
    if isinstance(data, np.ndarray) or sparse.issparse(data):
        return None
    if type(data).__module__.split(".")[0] == "dask" and hasattr(data, "to_delayed"):
        return DaskMatrix(data)
    if is_on_disk(data):
        return StreamedMatrix(data)
    return None


def is_on_disk(data) -> bool:
    """An HDF5/zarr dataset or AnnData backed matrix (read in chunks, never whole).

    anndata's in-memory views (``ArrayView``, ``SparseCSRView``: subclasses of numpy arrays and
    scipy matrices) are not on disk.
    """
    if isinstance(data, np.ndarray) or sparse.issparse(data):
        return False
    module = type(data).__module__.split(".")[0]
    return module in ("h5py", "zarr", "anndata") and hasattr(data, "shape")
