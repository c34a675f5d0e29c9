"""Centred, scaled views of data matrices: the only code that touches data.

An operator stands for ``Ã = (A - 1 μᵀ) diag(1/s)`` without ever forming it: products are
rewritten as ``Ã B = A (B/s) - 1 (μ/s)ᵀ B`` and ``Ãᵀ C = (Aᵀ C - μ 1ᵀC) / s``, so a sparse ``A``
stays sparse and each product costs O(nnz · k). The raw products ``A B`` and ``Aᵀ C`` run in
row blocks on the fit's threads (:mod:`.parallel`) for in-memory matrices, or in row chunks
streamed from a file or a dask cluster for the backends of :mod:`.backends`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import sparse

from . import keys as content
from . import parallel
from .backends import ChunkedMatrix, as_backend


def as_matrix(data) -> np.ndarray | sparse.csr_matrix | sparse.csc_matrix | ChunkedMatrix:
    """Return ``data`` as a float 2-D numpy array or a CSR/CSC matrix, never densifying.

    Integer and boolean inputs become float64; float32 stays float32. COO and other sparse
    formats become CSR; sparse arrays become sparse matrices (same buffers where possible).
    Out-of-core data (dask arrays, HDF5/zarr datasets, backed AnnData matrices) become a
    :class:`~.backends.ChunkedMatrix`, read in row chunks.
    """
    backend = as_backend(data)
    if backend is not None:
        return backend
    if sparse.issparse(data):
        if data.format not in ("csr", "csc"):
            data = data.tocsr()
        matrix = sparse.csr_matrix(data) if data.format == "csr" else sparse.csc_matrix(data)
        if matrix.dtype not in (np.float32, np.float64):
            matrix = matrix.astype(np.float64)
        return matrix
    array = np.asarray(data)
    if array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float64)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got an array of shape {array.shape}")
    return array


def column_moments(matrix, observed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Column means and (population) variances in float64 over the observed rows, without densifying.

    A dense or CSR matrix is summed in row blocks on the fit's threads (no float64 copy of its values).
    """
    if isinstance(matrix, ChunkedMatrix):
        return matrix.column_moments(observed)
    if not sparse.issparse(matrix):
        return parallel.dense_column_moments(matrix, observed)
    n = matrix.shape[0] if observed is None else int(observed.sum())
    if matrix.format == "csr":
        sums, squares = parallel.column_sums(matrix, observed)
    else:  # CSC: a column's entries are contiguous
        values = matrix.data.astype(np.float64)
        if observed is not None:
            values *= observed[matrix.indices]
        columns = np.repeat(np.arange(matrix.shape[1]), np.diff(matrix.indptr))
        sums = np.bincount(columns, weights=values, minlength=matrix.shape[1])
        squares = np.bincount(columns, weights=values * matrix.data, minlength=matrix.shape[1])
    mean = sums / n
    return mean, np.maximum(squares / n - mean**2, 0.0)


def content_keys(matrix, observed: np.ndarray | None = None) -> content.Keys:
    """Order-free keys of the features and cells (:mod:`.keys`), one pass in row blocks on the fit's threads."""
    if isinstance(matrix, ChunkedMatrix):
        return matrix.content_keys(observed)
    if sparse.issparse(matrix) and matrix.format == "csc":
        return content.finish(*content.block_sums(matrix, observed))

    def partial(edges):
        start, stop = edges
        return content.block_sums(
            parallel.row_block(matrix, start, stop), None if observed is None else observed[start:stop]
        )

    parts = list(parallel.ordered_map(partial, parallel.row_blocks(matrix)))
    by_column = parallel.accumulate(part[0] for part in parts)
    by_row = np.hstack([part[1] for part in parts]) if parts else np.zeros(0)
    return content.finish(np.zeros(matrix.shape[1]) if by_column is None else by_column, by_row)


def _csr_summaries(matrix, observed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, content.Keys]:
    """Column means, variances and content keys of a CSR matrix in one pass of row blocks on the fit's threads."""

    def partial(edges):
        start, stop = edges
        block, rows = parallel.row_block(matrix, start, stop), None if observed is None else observed[start:stop]
        return parallel.sums_and_squares(block, rows), content.block_sums(block, rows)

    parts = list(parallel.ordered_map(partial, parallel.row_blocks(matrix)))
    p = matrix.shape[1]
    sums = parallel.accumulate(part[0] for part in parts) if parts else np.zeros((2, p))
    by_column = parallel.accumulate(part[1][0] for part in parts) if parts else np.zeros(p)
    by_row = np.hstack([part[1][1] for part in parts]) if parts else np.zeros(0)
    n = matrix.shape[0] if observed is None else int(observed.sum())
    mean = sums[0] / n
    return mean, np.maximum(sums[1] / n - mean**2, 0.0), content.finish(by_column, by_row)


@dataclass(frozen=True)
class Operator:
    """Implicitly centred and scaled view ``Ã = D (A - 1 μᵀ) diag(1/s)`` of a data matrix ``A``.

    ``D`` is the diagonal 0/1 matrix of observed rows: a cell without this modality is a zero
    row of ``Ã`` and so contributes nothing to any product or norm.

    Parameters
    ----------
    matrix
        Dense array or CSR/CSC matrix (see :func:`as_matrix`), ``n × p``.
    mean
        Column offsets ``μ`` (zeros for no centring).
    scale
        Column divisors ``s`` (ones for no scaling); must be positive.
    observed
        Boolean mask of the observed rows, or ``None`` when every row is observed. The stored
        values of unobserved rows are never read (dense rows may hold anything finite).
    """

    matrix: np.ndarray | sparse.spmatrix | ChunkedMatrix
    mean: np.ndarray
    scale: np.ndarray
    observed: np.ndarray | None = None
    raw_moments: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)
    keys: dict = field(default_factory=dict, repr=False, compare=False)  # "keys" → content.Keys, once computed

    @classmethod
    def from_data(
        cls, data, *, center: bool = True, scale: bool = False, observed=None, with_keys: bool = False
    ) -> Operator:
        """Centre (and scale to unit variance) by the data's own column moments over observed rows.

        Constant columns keep a divisor of 1: they are centred to zero and contribute nothing.
        The content keys (:mod:`.keys`) come from the same pass for data on disk or on dask, and for
        a CSR matrix ``with_keys``; otherwise when a sketch first needs them.
        """
        matrix = as_matrix(data)
        observed = None if observed is None or np.all(observed) else np.asarray(observed, dtype=bool)
        keys = {}
        if isinstance(matrix, ChunkedMatrix):
            mean, var, keys["keys"] = matrix.summaries(observed)
        elif with_keys and sparse.issparse(matrix) and matrix.format == "csr":
            mean, var, keys["keys"] = _csr_summaries(matrix, observed)
        else:
            mean, var = column_moments(matrix, observed)
        std = np.sqrt(var)
        divisor = np.where(std > 0, std, 1.0) if scale else np.ones_like(mean)
        return cls(
            matrix,
            mean if center else np.zeros_like(mean),
            divisor,
            observed,
            raw_moments=(mean, var),
            keys=keys,
        )

    def content_keys(self) -> content.Keys:
        """The order-free keys of the features and cells (:mod:`.keys`), computed once."""
        if "keys" not in self.keys:
            self.keys["keys"] = content_keys(self.matrix, self.observed)
        return self.keys["keys"]

    def reweighted(self, factor: float) -> Operator:
        """The same view multiplied by ``factor`` (folded into the column divisors)."""
        return replace(self, scale=self.scale / factor)

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    @property
    def row_mask(self) -> np.ndarray:
        """1.0 for observed rows, 0.0 for the others (not the modality weights of ``Options.weights``)."""
        return np.ones(self.shape[0]) if self.observed is None else self.observed.astype(np.float64)

    def matmul(self, right: np.ndarray, out: np.ndarray | None = None, *, gram: bool = False):
        """``Ã @ right`` for a thin dense ``right`` (p × k), as an n × k array (written into ``out`` if given).

        Centred block by block before a float32 ``out`` rounds it. With ``gram``, also the k × k Gram
        matrix of the result as stored, formed on the way: ``(product, gram)``.
        """
        single = self.scale.min() == self.scale.max()  # one divisor (no per-feature scaling): no p × k copy
        scaled = right if single else right / self.scale[:, None]
        fused = gram and self.observed is None  # unobserved rows are zeroed after the product
        product = _raw_matmul(
            self.matrix, scaled, out, offset=self.mean @ scaled, divisor=self.scale[0] if single else None, gram=fused
        )
        if fused:
            return product
        if self.observed is not None:
            product[~self.observed] = 0.0
        return (product, parallel.gram_of(product)) if gram else product

    def gram_product(
        self, right: np.ndarray, out: np.ndarray | None = None, *, gram: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(Ãᵀ S, SᵀS)`` for ``S = Ã @ right`` (written into ``out`` if given, and used as stored there).

        Each row block (chunk) of ``A`` is read once for both products; in memory the result equals
        ``rmatmul(matmul(right))`` bit for bit. A CSC ``A`` (no row blocks) takes the two products.
        Without ``gram``: ``(Ãᵀ S, None)``, and no k × k sums are formed.
        """
        if sparse.issparse(self.matrix) and self.matrix.format == "csc":
            product, small = self.matmul(right, out, gram=True) if gram else (self.matmul(right, out), None)
            return self.rmatmul(product), small
        single = self.scale.min() == self.scale.max()
        scaled = right if single else right / self.scale[:, None]
        back, totals, small = _raw_gram_product(
            self.matrix,
            scaled,
            offset=self.mean @ scaled,
            divisor=self.scale[0] if single else None,
            observed=self.observed,
            out=out,
            gram=gram,
        )
        for column, total in enumerate(totals):  # Ãᵀ S = (Aᵀ S − μ 1ᵀS) / s, in place
            back[:, column] -= total * self.mean
        back /= self.scale[:, None]
        return back, small if gram else None

    def rmatmul(self, left) -> np.ndarray:
        """``Ãᵀ @ left`` for a thin dense ``left`` (n × k, or a :class:`~.parallel.SideBySide`), as p × k float64."""
        if self.observed is not None:
            left = (
                left.masked(self.observed) if isinstance(left, parallel.SideBySide) else left * self.observed[:, None]
            )
        product = _raw_rmatmul(self.matrix, left)
        for column, total in enumerate(parallel.column_totals(left)):  # in place: no second p × k array
            product[:, column] -= total * self.mean
        product /= self.scale[:, None]
        return product

    @property
    def dtype(self) -> np.dtype:
        """The stored values' dtype (float32 or float64)."""
        return np.dtype(self.matrix.dtype)

    def raw_columns(self) -> np.ndarray:
        """``A`` itself as a dense n × p array (for few columns): ``A @ I``, exact (no centring to undo)."""
        return _raw_matmul(self.matrix, np.eye(self.shape[1]))

    def small_gram(self) -> np.ndarray:
        """The smaller Gram matrix of ``Ã`` in float64: ``ÃᵀÃ`` (p × p) if p ≤ n, else ``ÃÃᵀ`` (n × n).

        In memory, from ``A``'s own product (sparse × sparse for a sparse ``A``: one pass over the
        non-zeros, never densified) with the centring applied to the small result,
        ``ÃᵀÃ = S⁻¹(AᵀA − c μᵀ − μ cᵀ + m μμᵀ)S⁻¹`` over the observed rows (``c`` their column
        sums, ``m`` their count); a dense ``A`` is centred first (no cancellation). On disk or dask:
        ``Ã`` times the identity (an n × p array: the exact basis is used only for small ``Ã``).
        """
        n, p = self.shape
        if isinstance(self.matrix, ChunkedMatrix):
            if p <= n:
                return parallel.gram_of(self.matmul(np.eye(p)))
            transposed = self.rmatmul(np.eye(n))
            return transposed.T @ transposed
        if sparse.issparse(self.matrix):
            rows = self.matrix if self.observed is None else self.matrix[self.observed]
            gram = self._sparse_gram(rows.astype(np.float64, copy=False), by_rows=p > n)
            if p > n and self.observed is not None:  # unobserved cells are zero rows of Ã
                full = np.zeros((n, n))
                full[np.ix_(self.observed, self.observed)] = gram
                gram = full
        elif p > n:  # n × n from an n × p centred copy: small whenever the exact basis is used
            centred = self._centred_rows((0, n))
            gram = centred @ centred.T
        else:  # p × p, by row blocks added in order: no n × p copy of a tall dense matrix

            def block_gram(edges):
                centred = self._centred_rows(edges)
                return centred.T @ centred

            gram = parallel.ordered_sum(block_gram, parallel.row_blocks(self.matrix))
        return gram

    def _centred_rows(self, edges: tuple[int, int]) -> np.ndarray:
        """Rows ``start:stop`` of a dense ``Ã`` as a float64 array (unobserved rows zero)."""
        rows = slice(*edges)
        centred = (np.asarray(self.matrix[rows], dtype=np.float64) - self.mean) / self.scale
        if self.observed is not None:
            centred[~self.observed[rows]] = 0.0
        return centred

    def _sparse_gram(self, rows: sparse.spmatrix, *, by_rows: bool) -> np.ndarray:
        scaled_mean = self.mean / self.scale
        unscaled = np.all(self.scale == 1.0)
        scaled = rows if unscaled else rows @ sparse.diags(1.0 / self.scale)  # B = A S⁻¹: Ã = B − 1 (μ/s)ᵀ
        if by_rows:  # ÃÃᵀ = BBᵀ − b1ᵀ − 1bᵀ + ‖μ/s‖² 11ᵀ, b = B μ/s
            shifted = np.asarray(scaled @ scaled_mean).ravel()
            gram = _filled(scaled @ scaled.T) - shifted[:, None] - shifted[None, :]
            return gram + scaled_mean @ scaled_mean
        sums = np.asarray(scaled.sum(axis=0)).ravel()
        gram = _filled(scaled.T @ scaled) - np.outer(sums, scaled_mean) - np.outer(scaled_mean, sums)
        return gram + rows.shape[0] * np.outer(scaled_mean, scaled_mean)

    def gram(self, code: np.ndarray) -> np.ndarray:
        """``Cᵀ D C``: the Gram matrix of a code over the observed rows."""
        rows = code if self.observed is None else code[self.observed]
        return rows.T @ rows

    def squared_norm(self) -> float:
        """``‖Ã‖²_F`` from column moments (the trace identity; no n × p temporary)."""
        n = self.shape[0] if self.observed is None else int(self.observed.sum())
        raw_mean, raw_var = self.raw_moments or column_moments(self.matrix, self.observed)
        centred_sq = n * (raw_var + (raw_mean - self.mean) ** 2)
        return float(np.sum(centred_sq / self.scale**2))

    def rows(self, index) -> Operator:
        """The operator restricted to some rows (same centring and scaling)."""
        observed = None if self.observed is None else self.observed[index]
        matrix = self.matrix.take(index) if isinstance(self.matrix, ChunkedMatrix) else self.matrix[index]
        return Operator(matrix, self.mean, self.scale, observed)


def _filled(small: sparse.spmatrix) -> np.ndarray:
    """A small sparse product (a Gram matrix of at most ``EXACT_ENTRIES``) as a dense array."""
    small = sparse.csr_matrix(small)
    small.sum_duplicates()
    out = np.zeros(small.shape)
    out[np.repeat(np.arange(small.shape[0]), np.diff(small.indptr)), small.indices] = small.data
    return out


def _raw_matmul(matrix, right: np.ndarray, out=None, *, offset=None, divisor=None, gram=False):
    """``(A @ right - offset) / divisor`` as a float64 array (or into ``out``), whatever holds ``A``."""
    if isinstance(matrix, ChunkedMatrix):
        return matrix.matmul(right, out=out, offset=offset, divisor=divisor, gram=gram)
    return parallel.matmul(matrix, right, out=out, offset=offset, divisor=divisor, gram=gram)


def _raw_gram_product(matrix, right: np.ndarray, **options) -> list:
    """:func:`.parallel.gram_product` (``[Aᵀy, 1ᵀy, yᵀy]``), whatever holds ``A``."""
    if isinstance(matrix, ChunkedMatrix):
        return matrix.gram_product(right, **options)
    return parallel.gram_product(matrix, right, **options)


def _raw_rmatmul(matrix, left: np.ndarray) -> np.ndarray:
    """``Aᵀ @ left`` as a float64 array, whatever holds ``A``."""
    if isinstance(matrix, ChunkedMatrix):
        return matrix.rmatmul(left)
    return parallel.rmatmul(matrix, left)
