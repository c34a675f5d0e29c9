"""Centred, scaled views of data matrices: the only code that touches data.

An operator stands for ``Ã = (A - 1 μᵀ) diag(1/s)`` without ever forming it: products are
rewritten as ``Ã B = A (B/s) - 1 (μ/s)ᵀ B`` and ``Ãᵀ C = (Aᵀ C - μ 1ᵀC) / s``, so a sparse ``A``
stays sparse and each product costs O(nnz · k).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse


def as_matrix(data) -> np.ndarray | sparse.csr_matrix | sparse.csc_matrix:
    """Return ``data`` as a float 2-D numpy array or a CSR/CSC matrix, never densifying.

    Integer and boolean inputs become float64; float32 stays float32. COO and other sparse
    formats become CSR; sparse arrays become sparse matrices (same buffers where possible).
    """
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


def column_moments(matrix) -> tuple[np.ndarray, np.ndarray]:
    """Column means and (population) variances in float64, without densifying."""
    n = matrix.shape[0]
    if sparse.issparse(matrix):
        values = matrix.data.astype(np.float64)
        mean = _column_sums(matrix, values) / n
        var = np.maximum(_column_sums(matrix, values**2) / n - mean**2, 0.0)
    else:
        mean = matrix.mean(axis=0, dtype=np.float64)
        var = matrix.var(axis=0, dtype=np.float64)
    return mean, var


def _column_sums(matrix, values: np.ndarray) -> np.ndarray:
    """Column sums of a CSR/CSC matrix whose stored values are replaced by ``values``."""
    p = matrix.shape[1]
    if matrix.format == "csr":
        columns = matrix.indices
    else:
        columns = np.repeat(np.arange(p), np.diff(matrix.indptr))
    return np.bincount(columns, weights=values, minlength=p)


@dataclass(frozen=True)
class Operator:
    """Implicitly centred and scaled view ``Ã = (A - 1 μᵀ) diag(1/s)`` of a data matrix ``A``.

    Parameters
    ----------
    matrix
        Dense array or CSR/CSC matrix (see :func:`as_matrix`), ``n × p``.
    mean
        Column offsets ``μ`` (zeros for no centring).
    scale
        Column divisors ``s`` (ones for no scaling); must be positive.
    """

    matrix: np.ndarray | sparse.spmatrix
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def from_data(cls, data, *, center: bool = True, scale: bool = False) -> Operator:
        """Centre (and scale to unit variance) by the data's own column moments.

        Constant columns keep a divisor of 1: they are centred to zero and contribute nothing.
        """
        matrix = as_matrix(data)
        mean, var = column_moments(matrix)
        std = np.sqrt(var)
        divisor = np.where(std > 0, std, 1.0) if scale else np.ones_like(mean)
        return cls(matrix, mean if center else np.zeros_like(mean), divisor)

    def reweighted(self, factor: float) -> Operator:
        """The same view multiplied by ``factor`` (folded into the column divisors)."""
        return Operator(self.matrix, self.mean, self.scale / factor)

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def matmul(self, right: np.ndarray) -> np.ndarray:
        """``Ã @ right`` for a thin dense ``right`` (p × k), as an n × k array."""
        scaled = right / self.scale[:, None]
        product = np.asarray(self.matrix @ scaled, dtype=np.float64)
        return product - (self.mean @ scaled)[None, :]

    def rmatmul(self, left: np.ndarray) -> np.ndarray:
        """``Ãᵀ @ left`` for a thin dense ``left`` (n × k), as a p × k array."""
        product = np.asarray(self.matrix.T @ left, dtype=np.float64)
        product -= np.outer(self.mean, left.sum(axis=0))
        return product / self.scale[:, None]

    def squared_norm(self) -> float:
        """``‖Ã‖²_F`` from column moments (the trace identity; no n × p temporary)."""
        n = self.shape[0]
        raw_mean, raw_var = column_moments(self.matrix)
        centred_sq = n * (raw_var + (raw_mean - self.mean) ** 2)
        return float(np.sum(centred_sq / self.scale**2))

    def rows(self, index) -> Operator:
        """The operator restricted to some rows (same centring and scaling)."""
        return Operator(self.matrix[index], self.mean, self.scale)
