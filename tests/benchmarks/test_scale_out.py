"""benchmarks/scale_out.py: the chunked h5ad writer, the row-prefix readers and the byte counters (small n)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

HERE = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(HERE))  # scale_out imports scale
spec = importlib.util.spec_from_file_location("scale_out", HERE / "scale_out.py")
scale_out = importlib.util.module_from_spec(spec)
spec.loader.exec_module(scale_out)

ad = pytest.importorskip("anndata")
h5py = pytest.importorskip("h5py")
N, CHUNK = 2_500, 1_000


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    path = tmp_path_factory.mktemp("scale_out") / "cells.h5ad"
    scale_out.write_h5ad(path, N, chunk_size=CHUNK)
    return path, scale_out.generate(N, chunk_size=CHUNK)


def _same(a, b):
    return sparse.issparse(a) and a.shape == b.shape and (a != b).nnz == 0


def test_the_written_h5ad_is_the_in_memory_generation(written):
    path, data = written
    backed = ad.read_h5ad(path, backed="r")
    assert backed.shape == (N, scale_out.SHAPE["p_y"])
    assert _same(backed.X[:], data["Y"])
    assert list(backed.obs_names[:2]) == ["cell0", "cell1"] and backed.var_names[-1] == "gene1999"
    backed.file.close()
    loaded = ad.read_h5ad(path)
    assert _same(loaded.X, data["Y"]) and _same(loaded.obsm["fixed"], data["X"])
    np.testing.assert_array_equal(loaded.obsm["covariates"], data["Z"])


def test_each_element_reads_with_anndata_io(written):
    from anndata.io import read_elem, sparse_dataset

    path, data = written
    with h5py.File(path, "r") as f:
        assert _same(sparse_dataset(f["X"])[:], data["Y"])
        assert _same(read_elem(f["obsm/fixed"]), data["X"])
        np.testing.assert_array_equal(read_elem(f["obsm/covariates"]), data["Z"])
        assert read_elem(f["obs"]).shape == (N, 0)


def test_whole_chunks_do_not_depend_on_how_many_cells_are_drawn():
    small, large = scale_out.generate(2 * CHUNK, chunk_size=CHUNK), scale_out.generate(N, chunk_size=CHUNK)
    assert _same(small["Y"], large["Y"][: 2 * CHUNK]) and _same(small["X"], large["X"][: 2 * CHUNK])
    assert small["Y"].dtype == np.float32 and 0.01 < small["Y"].nnz / np.prod(small["Y"].shape) < 0.1


def test_row_prefixes_stream_and_load_the_first_cells(written):
    path, data = written
    n, rng = 1_700, np.random.default_rng(0)
    with h5py.File(path, "r") as f:
        streamed, loaded = scale_out.h5ad_elements(f, n), scale_out.load_prefix(f, n)
        for name, matrix in streamed.items():
            expected = data[name][:n]
            assert matrix.shape == expected.shape
            right, left = rng.standard_normal((matrix.shape[1], 3)), rng.standard_normal((n, 3))
            np.testing.assert_allclose(matrix.matmul(right), expected @ right, rtol=1e-6)
            np.testing.assert_allclose(matrix.rmatmul(left), expected.T @ left, rtol=1e-6)
            if sparse.issparse(expected):
                assert _same(loaded[name], expected)
            else:
                np.testing.assert_array_equal(loaded[name], expected)


def test_the_counting_dask_matrix_counts_what_comes_back(tmp_path):
    pytest.importorskip("dask")
    import dask
    import scale

    data = scale.generate(3_000, p_y=50, p_x=40)
    scale.write_h5(data, tmp_path / "cells.h5")
    array = scale_out.dask_csr(tmp_path / "cells.h5", "Y", rows_per_chunk=700)
    matrix = scale_out.counting_dask_matrix()(array)
    with dask.config.set(scheduler="synchronous"):
        np.testing.assert_allclose(matrix.matmul(np.ones((50, 3))), data["Y"] @ np.ones((50, 3)), rtol=1e-6)
        matrix.rmatmul(np.ones((3_000, 4)))
        rows = sum(scale.csr_bytes(block) for _, _, block in matrix.chunks())
    assert matrix.counts["matmul"] == (1, 3_000 * 3 * 8)
    assert matrix.counts["rmatmul"] == (1, 50 * 4 * 8)
    assert matrix.counts["chunks"] == (5, rows)  # 3,000 rows in chunks of 700


def test_tcp_bytes_counts_a_result_once_from_the_scheduler():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://", dashboard_address=None
        ) as cluster,
        distributed.Client(cluster, direct_to_workers=False) as client,
    ):
        workers = client.scheduler_info()["workers"]
        future = client.submit(np.ones, 1_000_000)  # 8 MB made on the worker
        distributed.wait(future)
        with scale_out.TcpBytes(cluster.scheduler_address, workers) as tcp:
            result = future.result()
    assert result.nbytes == 8_000_000
    for kind in ("from_scheduler", "from_workers"):  # worker → scheduler → client, each leg counted once
        assert 8_000_000 <= tcp.bytes[kind] < 8_000_000 + 100_000
