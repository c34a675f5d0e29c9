"""The operator layer against explicit dense centring and scaling."""

import tracemalloc

import numpy as np
import pytest
from scipy import sparse

from lmf_omics._core import parallel
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


def test_dense_column_moments_by_blocks_keep_a_small_variance_beside_a_large_mean(monkeypatch):
    monkeypatch.setattr(parallel, "BLOCK_ENTRIES", 64)  # many row blocks
    rng = np.random.default_rng(2)
    dense = 1e8 + rng.standard_normal((300, 4))  # raw sums of squares would lose every digit
    observed = rng.random(300) > 0.3
    dense[~observed] = np.inf  # unobserved rows are never read
    mean, var = column_moments(dense, observed)
    np.testing.assert_allclose(mean, dense[observed].mean(0), rtol=1e-15)
    np.testing.assert_allclose(var, dense[observed].var(0), rtol=1e-9)


def test_dense_column_moments_make_no_copy_of_the_matrix(monkeypatch):
    monkeypatch.setattr(parallel, "BLOCK_ENTRIES", 1 << 16)  # temporaries of one block: 0.5 MB
    dense = np.random.default_rng(3).standard_normal((20_000, 200)).astype(np.float32)
    observed = np.arange(20_000) % 3 != 0
    tracemalloc.start()
    column_moments(dense, observed)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < dense.nbytes / 4, peak  # a copy of the observed rows alone: 2/3 of it
