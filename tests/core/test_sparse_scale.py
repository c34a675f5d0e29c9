"""Sparse input is never densified: a fit on matrices whose dense form could not exist here."""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse
from scipy import sparse

from lmf_omics import LinearMixedForms


def _huge_sparse(rng, n, p, nnz_per_row):
    rows = np.repeat(np.arange(n), nnz_per_row)
    cols = rng.integers(0, p, rows.size)
    return sparse.csr_matrix((rng.random(rows.size) + 0.5, (rows, cols)), shape=(n, p))


def test_fit_on_matrices_whose_dense_form_would_not_fit():
    rng = np.random.default_rng(0)
    n = 20_000
    Y = _huge_sparse(rng, n, 400_000, 5)  # dense float64: 64 GB, more than this machine has
    X = _huge_sparse(rng, n, 1_000_000, 10)  # dense: 160 GB
    Z = sparse.csr_matrix(np.eye(3)[rng.integers(0, 3, n)])
    input_bytes = sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes for m in (Y, X))
    tracemalloc.start()
    # the paper's random effect: "states" holds O(cells × states) memberships besides (measured in benchmarks/)
    model = LinearMixedForms(4, max_iter=3, progress=False, random_effect="response").fit(Y, X, Z)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert model.codes_.shape == (n, 4) and np.all(np.isfinite(model.codes_))
    # O(nnz + (n + p)·w) working memory, w = n_pcs + 10 = 60 the width of the principal sketch:
    # a few thin matrices (the dense X alone would be 160 GB)
    width = 50 + 10
    assert peak < 6 * input_bytes + 3 * (n + 1_000_000) * width * 8, peak


def test_no_sparse_matrix_is_ever_densified(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise AssertionError("a sparse matrix was densified")

    for cls in (scipy.sparse._base._spbase, scipy.sparse._compressed._cs_matrix):
        monkeypatch.setattr(cls, "toarray", refuse, raising=False)
        monkeypatch.setattr(cls, "todense", refuse, raising=False)
    rng = np.random.default_rng(1)
    Y, X = _huge_sparse(rng, 500, 300, 8), _huge_sparse(rng, 500, 800, 20)
    Z = sparse.csr_matrix(np.eye(4)[rng.integers(0, 4, 500)])
    for solver, codes in (("joint", "encoded"), ("joint", "free"), ("paper", "free")):
        model = LinearMixedForms(5, solver=solver, codes=codes, max_iter=10).fit(Y, X.tocsc(), Z)
        model.transform(X=X, Z=Z)
    with pytest.raises(AssertionError, match="densified"):
        X.toarray()  # the guard is live
