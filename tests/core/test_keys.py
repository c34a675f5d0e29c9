"""Content keys and the keyed sketch: order-free by construction, against direct computations."""

import numpy as np
import pytest
from scipy import sparse, stats

from lmf_omics._core import keys, parallel
from lmf_omics._core.backends import StreamedMatrix
from lmf_omics._core.operators import content_keys


def _counts(seed=0, n=300, p=40):
    rng = np.random.default_rng(seed)
    dense = np.log1p(rng.poisson(0.7, (n, p))).astype(np.float32)
    dense[:, 3] = 0.0  # an all-zero feature
    return dense


def test_a_features_key_is_its_hash_sum_computed_directly():
    dense = _counts()
    expected = [keys.mix(np.array([sum(keys.value_hashes(dense[:, j]))], np.uint64))[0] for j in range(dense.shape[1])]
    np.testing.assert_array_equal(content_keys(dense).features, np.array(expected, np.uint64))
    assert keys.value_hashes(np.zeros(3)).sum() == 0  # zeros hash to zero, stored or not


@pytest.mark.parametrize("form", ["dense", "csr", "csc", "float64"])
def test_keys_travel_with_permuted_cells_and_features_in_every_format(form):
    dense = _counts()
    convert = {
        "dense": lambda m: m,
        "csr": sparse.csr_matrix,
        "csc": sparse.csc_matrix,
        "float64": lambda m: m.astype(np.float64),
    }[form]
    rng = np.random.default_rng(1)
    cells, features = rng.permutation(dense.shape[0]), rng.permutation(dense.shape[1])
    first, second = content_keys(convert(dense)), content_keys(convert(dense[cells][:, features]))
    np.testing.assert_array_equal(first.features[features], second.features)
    np.testing.assert_array_equal(first.cells[cells], second.cells)
    reference = content_keys(dense)  # every format gives the same keys
    np.testing.assert_array_equal(first.features, reference.features)
    np.testing.assert_array_equal(first.cells, reference.cells)


def test_keys_do_not_depend_on_row_blocks_or_threads(monkeypatch):
    matrix = sparse.csr_matrix(_counts(n=3000))
    one = content_keys(matrix)
    monkeypatch.setattr(parallel, "BLOCK_NNZ", 97)  # many blocks, added in another grouping
    with parallel.workers(2):
        many = content_keys(matrix)
    np.testing.assert_array_equal(one.features, many.features)
    np.testing.assert_array_equal(one.cells, many.cells)


def test_unobserved_rows_count_as_zero_rows():
    dense = _counts()
    observed = np.arange(dense.shape[0]) % 3 != 0
    blanked = dense.copy()
    blanked[~observed] = 0.0
    masked = content_keys(sparse.csr_matrix(dense), observed)
    np.testing.assert_array_equal(masked.features, content_keys(blanked).features)


def test_streamed_keys_equal_in_memory_keys(tmp_path):
    h5py = pytest.importorskip("h5py")
    matrix = sparse.csr_matrix(_counts(n=2000))
    with h5py.File(tmp_path / "m.h5", "w") as f:
        group = f.create_group("X")
        group.attrs["encoding-type"], group.attrs["shape"] = "csr_matrix", matrix.shape
        for field in ("data", "indices", "indptr"):
            group[field] = getattr(matrix, field)
    with h5py.File(tmp_path / "m.h5", "r") as f:
        streamed = StreamedMatrix(f["X"], chunk_nnz=500)
        _, _, streamed_keys = streamed.summaries(None)
    np.testing.assert_array_equal(streamed_keys.features, content_keys(matrix).features)
    np.testing.assert_array_equal(streamed_keys.cells, content_keys(matrix).cells)


def test_keyed_gaussian_rows_follow_their_keys_and_are_standard_normal():
    rng = np.random.default_rng(2)
    features = rng.integers(0, 2**63, 4000, dtype=np.uint64)
    sketch = keys.keyed_gaussian(features, 8, seed=5, block=333)  # blocks: the rows do not see them
    order = rng.permutation(len(features))
    np.testing.assert_array_equal(keys.keyed_gaussian(features[order], 8, seed=5), sketch[order])
    assert not np.array_equal(keys.keyed_gaussian(features, 8, seed=6), sketch)
    values = sketch.ravel()
    assert abs(values.mean()) < 4 / np.sqrt(values.size) and abs(values.std() - 1) < 0.02
    assert stats.kstest(values, "norm").pvalue > 1e-3
    correlations = np.corrcoef(sketch.T)[np.triu_indices(8, 1)]
    assert np.abs(correlations).max() < 5 / np.sqrt(len(features))
