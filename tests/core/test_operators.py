"""The operator layer against explicit dense centring and scaling."""

import numpy as np
import pytest
from scipy import sparse

from lmf_omics._core.operators import Operator, as_matrix, column_moments


def _data(rng, n=40, p=15, density=0.3):
    dense = rng.poisson(2.0, size=(n, p)) * (rng.random((n, p)) < density)
    dense[:, 3] = 5  # a constant feature
    return dense.astype(np.float64)


FORMATS = {
    "dense": lambda a: a,
    "csr": sparse.csr_matrix,
    "csc": sparse.csc_matrix,
    "coo": sparse.coo_matrix,
    "csr_array": sparse.csr_array,
    "int_csr": lambda a: sparse.csr_matrix(a.astype(np.int64)),
    "float32": lambda a: a.astype(np.float32),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("center", "scale"), [(True, False), (True, True), (False, False)])
def test_products_match_explicit_centring(fmt, center, scale):
    rng = np.random.default_rng(0)
    dense = _data(rng)
    op = Operator.from_data(FORMATS[fmt](dense), center=center, scale=scale)
    mean = dense.mean(0) if center else np.zeros(dense.shape[1])
    std = dense.std(0)
    divisor = np.where(std > 0, std, 1.0) if scale else np.ones(dense.shape[1])
    explicit = (dense - mean) / divisor
    B, C = rng.standard_normal((15, 4)), rng.standard_normal((40, 4))
    tol = 1e-5 if fmt == "float32" else 1e-10
    np.testing.assert_allclose(op.matmul(B), explicit @ B, rtol=tol, atol=tol)
    np.testing.assert_allclose(op.rmatmul(C), explicit.T @ C, rtol=tol, atol=tol)
    assert op.squared_norm() == pytest.approx(np.sum(explicit**2), rel=tol)


def test_as_matrix_keeps_sparse_and_float32():
    csr = sparse.random(10, 5, density=0.3, format="csr", dtype=np.float32, random_state=0)
    assert sparse.issparse(as_matrix(csr)) and as_matrix(csr).dtype == np.float32
    assert as_matrix(sparse.coo_matrix(csr)).format == "csr"
    assert as_matrix(np.ones((2, 2), dtype=bool)).dtype == np.float64
    with pytest.raises(ValueError, match="2-D"):
        as_matrix(np.ones(3))


def test_column_moments_sparse_equals_dense():
    rng = np.random.default_rng(1)
    dense = _data(rng)
    for fmt in (sparse.csr_matrix, sparse.csc_matrix):
        mean, var = column_moments(fmt(dense))
        np.testing.assert_allclose(mean, dense.mean(0), atol=1e-12)
        np.testing.assert_allclose(var, dense.var(0), atol=1e-10)
