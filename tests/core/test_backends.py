"""Out-of-core inputs: HDF5 / backed AnnData streamed in row chunks, and dask arrays reduced on a cluster."""

import importlib
import os
import tracemalloc

import anndata as ad
import h5py
import numpy as np
import pytest
from scipy import sparse

from lmf_omics import LinearMixedForms
from lmf_omics._core.backends import DaskMatrix, StreamedMatrix
from lmf_omics._core.operators import Operator

from .simulate import simulate

OPTIONS = {"max_iter": 40, "tol": 1e-12, "progress": False}


@pytest.fixture(scope="module")
def data():
    sim = simulate(n=240, k=3, p_y=30, p_x=70, seed=8)
    X = np.where(np.abs(sim["X"]) > 0.8, sim["X"], 0.0)  # about half the entries stored
    return {"Y": sim["Y"], "X": sparse.csr_matrix(X.astype(np.float32)), "Z": sim["Z"]}


@pytest.fixture(scope="module", params=["encoded", "free"])
def in_memory(data, request):
    return LinearMixedForms(3, codes=request.param, **OPTIONS).fit(data["Y"], data["X"], data["Z"])


def _same_fit(fit, reference):
    np.testing.assert_allclose(fit.codes_, reference.codes_, atol=1e-8 * np.abs(reference.codes_).max())
    for role, loading in reference.loadings_.items():
        np.testing.assert_allclose(fit.loadings_[role], loading, atol=1e-8 * np.abs(loading).max())
    np.testing.assert_allclose(fit.objective_history_, reference.objective_history_, rtol=1e-10)


@pytest.fixture(scope="module")
def h5_file(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("backed") / "cells.h5ad"
    adata = ad.AnnData(X=data["X"], obsm={"response": data["Y"], "covariates": data["Z"]})
    adata.write_h5ad(path)
    return path


def test_backed_anndata_fit_matches_in_memory(h5_file, in_memory):
    backed = ad.read_h5ad(h5_file, backed="r")
    X = StreamedMatrix(backed.X, chunk_nnz=997)  # many chunks
    assert X.is_sparse and X.shape == (240, 70) and len(X._edges()) > 5
    fit = LinearMixedForms(3, codes=in_memory.codes_form, **OPTIONS).fit(
        backed.obsm["response"], X, backed.obsm["covariates"]
    )
    _same_fit(fit, in_memory)
    # passed as it is, the backed matrix is recognised and streamed too
    again = LinearMixedForms(3, codes=in_memory.codes_form, **OPTIONS).fit(
        backed.obsm["response"], backed.X, backed.obsm["covariates"]
    )
    _same_fit(again, in_memory)
    backed.file.close()


def test_hdf5_dense_dataset_with_rows_of_nan_is_streamed(data, tmp_path):
    Y = data["Y"].copy()
    Y[::5] = np.nan  # cells without the response
    path = tmp_path / "dense.h5"
    with h5py.File(path, "w") as f:
        f["Y"] = Y
    reference = LinearMixedForms(3, **OPTIONS).fit(Y, data["X"], data["Z"])
    with h5py.File(path, "r") as f:
        fit = LinearMixedForms(3, **OPTIONS).fit(StreamedMatrix(f["Y"], chunk_nnz=500), data["X"], data["Z"])
    _same_fit(fit, reference)
    np.testing.assert_allclose(fit.means_["response"], np.nanmean(Y, axis=0), atol=1e-12)


def test_streamed_unobserved_rows_are_never_read(data, tmp_path):
    observed = np.arange(data["Y"].shape[0]) % 5 != 0
    Y = data["Y"].copy()
    Y[~observed] = 1e6
    Y[0, :2] = np.inf, np.nan  # inf · 0 would be NaN
    path = tmp_path / "garbage.h5"
    with h5py.File(path, "w") as f:
        f["Y"] = Y
    reference = LinearMixedForms(3, **OPTIONS).fit(np.where(observed[:, None], Y, np.nan), data["X"], data["Z"])
    with h5py.File(path, "r") as f:
        fit = LinearMixedForms(3, **OPTIONS).fit(
            StreamedMatrix(f["Y"], chunk_nnz=500), data["X"], data["Z"], observed={"response": observed}
        )
    _same_fit(fit, reference)


def test_streamed_operator_products_equal_in_memory(data, h5_file):
    with h5py.File(h5_file, "r") as f:
        streamed = Operator.from_data(StreamedMatrix(f["X"], chunk_nnz=300), scale=True)
        memory = Operator.from_data(data["X"], scale=True)
        rng = np.random.default_rng(0)
        B, C = rng.standard_normal((70, 4)), rng.standard_normal((240, 4))
        np.testing.assert_allclose(streamed.matmul(B), memory.matmul(B), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(streamed.rmatmul(C), memory.rmatmul(C), rtol=1e-10, atol=1e-10)
        assert streamed.squared_norm() == pytest.approx(memory.squared_norm(), rel=1e-12)
        rows = streamed.rows(np.arange(10, 50))
        np.testing.assert_allclose(rows.matmul(B), memory.rows(np.arange(10, 50)).matmul(B), atol=1e-12)


def test_streamed_columns_out_of_order_give_canonical_chunks(data, h5_file):
    """Integer ``columns`` in any order: chunks are canonical CSR and products are those of the column subset."""
    columns = np.array([50, 3, 17, 69, 0, 8])
    with h5py.File(h5_file, "r") as f:
        matrix = StreamedMatrix(f["X"], chunk_nnz=300, columns=columns)
        for _, _, rows in matrix.chunks():
            assert rows.has_canonical_format
        streamed = Operator.from_data(matrix, scale=True)
        memory = Operator.from_data(data["X"][:, columns], scale=True)
        rng = np.random.default_rng(1)
        B, C = rng.standard_normal((len(columns), 3)), rng.standard_normal((240, 3))
        np.testing.assert_allclose(streamed.matmul(B), memory.matmul(B), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(streamed.rmatmul(C), memory.rmatmul(C), rtol=1e-10, atol=1e-10)


def test_streamed_input_is_checked_before_any_work(data, tmp_path):
    X = data["X"].copy()
    X.data[17] = np.inf
    row = int(np.searchsorted(X.indptr, 17, side="right") - 1)
    path = tmp_path / "bad.h5ad"
    ad.AnnData(X=X).write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    with pytest.raises(
        ValueError, match=f"fixed-effect data X contains 1 NaN or infinite value.*row {row}, column {X.indices[17]}"
    ):
        LinearMixedForms(3).fit(data["Y"], backed.X)
    backed.file.close()
    csc = tmp_path / "csc.h5ad"
    ad.AnnData(X=data["X"].tocsc()).write_h5ad(csc)
    backed = ad.read_h5ad(csc, backed="r")
    with pytest.raises(ValueError, match="CSC matrix on disk cannot be read row by row"):
        LinearMixedForms(3).fit(data["Y"], backed.X)
    backed.file.close()


def test_backed_fit_holds_far_less_than_the_file(tmp_path):
    """A backed fit's peak allocation is a fraction of the matrix it streams (chunks + thin products)."""
    rng = np.random.default_rng(2)
    n, p = 8000, 4000
    X = sparse.random(n, p, density=0.2, format="csr", dtype=np.float32, random_state=rng)
    Y = X[:, :100].copy()
    path = tmp_path / "big.h5ad"
    ad.AnnData(X=X, obsm={"Y": Y}).write_h5ad(path)
    matrix_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    del X
    backed = ad.read_h5ad(path, backed="r")
    streamed = StreamedMatrix(backed.X, chunk_nnz=1 << 17)
    tracemalloc.start()
    model = LinearMixedForms(4, n_pcs=8, max_iter=5, progress=False).fit(backed.obsm["Y"], streamed)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    backed.file.close()
    assert np.all(np.isfinite(model.codes_))
    assert peak < 0.2 * matrix_bytes, (peak, matrix_bytes)


# ------------------------------------------------------------------------------ dask
def _optional(name: str):
    """An optional backend's module: missing, it fails under CI (the test extra installs it) and skips elsewhere."""
    try:
        return importlib.import_module(name)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; install the test extra (dask[array], distributed)")
        pytest.skip(f"{name} is not installed")


def _dask(matrix, rows=50):
    da = _optional("dask.array")
    return da.from_array(matrix, chunks=(rows, matrix.shape[1]), asarray=False)


def _dask_data(data):
    return (_dask(data[m], rows) for m, rows in (("Y", 64), ("X", 37), ("Z", 100)))


def test_dask_fit_on_a_local_cluster_matches_in_memory(data):
    distributed = _optional("distributed")
    Y, X, Z = _dask_data(data)
    assert sparse.issparse(X._meta)  # chunks of scipy sparse
    reference = LinearMixedForms(3, **OPTIONS).fit(data["Y"], data["X"], data["Z"])
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster),
    ):
        fit = LinearMixedForms(3, **OPTIONS).fit(Y, X, Z)
    _same_fit(fit, reference)


def test_dask_fit_matches_in_memory(data, in_memory):
    dask = _optional("dask")

    with dask.config.set(scheduler="threads"):
        fit = LinearMixedForms(3, codes=in_memory.codes_form, **OPTIONS).fit(*_dask_data(data))
    _same_fit(fit, in_memory)


def test_dask_results_do_not_depend_on_workers(data):
    dask = _optional("dask")

    X = _dask(data["X"], 29)
    fits = []
    for scheduler, workers in (("synchronous", 1), ("threads", 3)):
        with dask.config.set(scheduler=scheduler, num_workers=workers):
            fits.append(LinearMixedForms(3, **OPTIONS).fit(_dask(data["Y"]), X, data["Z"]))
    assert np.array_equal(fits[0].codes_, fits[1].codes_)


def test_dask_matrix_products_and_checks(data):
    da = _optional("dask.array")
    dense = data["X"].toarray()
    X = DaskMatrix(da.from_array(dense, chunks=(41, 20)))  # column chunks are merged
    assert not X.is_sparse and len(X.array.chunks[1]) == 1
    rng = np.random.default_rng(4)
    B, C = rng.standard_normal((70, 3)), rng.standard_normal((240, 3))
    np.testing.assert_allclose(X.matmul(B), dense @ B, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(X.rmatmul(C), dense.T @ C, rtol=1e-10, atol=1e-10)
    bad = dense.copy()
    bad[100, 7] = np.nan
    with pytest.raises(ValueError, match=r"fixed-effect data X contains 1 NaN .*row 100, column 7"):
        LinearMixedForms(3).fit(data["Y"], da.from_array(bad, chunks=(41, 70)))


@pytest.mark.parametrize("key", ["X", "response"])
def test_streamed_rows_come_in_the_order_asked(data, h5_file, key):
    with h5py.File(h5_file, "r") as f:
        source = f["X"] if key == "X" else f["obsm"]["response"]
        streamed = StreamedMatrix(source, chunk_nnz=300)  # many chunks
        memory = data["X"] if key == "X" else data["Y"]
        index = [170, 2, 55, 2, 239, 0]  # unsorted, across chunks, one repeated
        taken = streamed.take(index)
        expected = memory[index]
        np.testing.assert_array_equal(
            taken.toarray() if sparse.issparse(taken) else taken,
            expected.toarray() if sparse.issparse(expected) else expected,
        )
        B = np.random.default_rng(1).standard_normal((memory.shape[1], 2))
        in_memory = Operator.from_data(memory)
        rows = Operator(streamed, in_memory.mean, in_memory.scale).rows(index)
        np.testing.assert_allclose(rows.matmul(B), in_memory.rows(index).matmul(B), atol=1e-12)


class _CountedReads(StreamedMatrix):
    """A streamed matrix that counts its passes over the file."""

    reads = 0

    def chunks(self):
        type(self).reads += 1
        yield from super().chunks()


@pytest.mark.parametrize("where", ["memory", "dense", "streamed", "dask"])
def test_gram_product_reads_once_and_equals_two_products(data, h5_file, where):
    """``Ãᵀ(ÃC)`` and the Gram of the stored ``ÃC`` from one read, as ``rmatmul(matmul(C))`` gives them."""
    observed = np.ones(240, bool)
    observed[::7] = False
    reference = Operator.from_data(data["X"], scale=True, observed=observed)
    with h5py.File(h5_file, "r") as f:
        if where == "streamed":
            _CountedReads.reads = 0
            matrix = _CountedReads(f["X"], chunk_nnz=300)
        elif where == "dask":
            matrix = _dask(data["X"], 37) if _optional("dask") else None
        else:
            matrix = data["X"] if where == "memory" else data["X"].toarray()
        operator = Operator.from_data(matrix, scale=True, observed=observed)
        C = np.random.default_rng(5).standard_normal((70, 6))
        for dtype in (np.float64, np.float32):
            kept = np.empty((240, 6), dtype)
            back, gram = operator.gram_product(C, out=kept)
            stored = reference.matmul(C, np.empty((240, 6), dtype))
            np.testing.assert_allclose(kept, stored, rtol=1e-6 if dtype == np.float32 else 1e-12, atol=1e-12)
            np.testing.assert_allclose(back, reference.rmatmul(kept), rtol=1e-10, atol=1e-10)
            np.testing.assert_allclose(gram, kept.astype(np.float64).T @ kept, rtol=1e-10, atol=1e-10)
        alone, none = operator.gram_product(C, gram=False)
        assert none is None
        np.testing.assert_allclose(alone, reference.rmatmul(reference.matmul(C)), rtol=1e-10, atol=1e-10)
        if where == "streamed":
            assert _CountedReads.reads == 1 + 3  # the moments' read, then one per product pair
        if where == "memory":  # the same row blocks and sums as the two products: equal bit for bit
            assert np.array_equal(alone, reference.rmatmul(reference.matmul(C)))


def test_randomised_basis_is_the_same_streamed_and_on_dask(data, h5_file, monkeypatch):
    """The sketch's passes (one read each) give the in-memory basis from a file and from dask chunks."""
    from lmf_omics._core import subspace

    monkeypatch.setattr(subspace, "EXACT_ENTRIES", 0)  # the range finder, not the exact basis
    memory = Operator.from_data(data["X"])
    assert not subspace.exact_applies(memory, 20)
    reference = subspace.principal_basis(memory, 20, rng=np.random.default_rng(2))
    with h5py.File(h5_file, "r") as f:
        _CountedReads.reads = 0
        sources = {"streamed": _CountedReads(f["X"], chunk_nnz=300)}
        if _optional("dask"):
            sources["dask"] = _dask(data["X"], 37)
        for name, source in sources.items():
            operator = Operator.from_data(source)
            basis = subspace.principal_basis(operator, 20, rng=np.random.default_rng(2))
            np.testing.assert_allclose(basis.values, reference.values, rtol=1e-10, err_msg=name)
            np.testing.assert_allclose(np.abs(basis.vectors.T @ reference.vectors), np.eye(20), atol=1e-8, err_msg=name)
            np.testing.assert_allclose(basis.encoder, reference.encoder, rtol=1e-8, atol=1e-10, err_msg=name)
        # one read for the moments and keys, then one per pass: q + 1 passes of two products each
        assert _CountedReads.reads == 1 + (subspace.POWER_ITERATIONS + 1)
