"""normalize_rna: scanpy's normalise → log1p → HVG, written in one step."""

import numpy as np
import pytest
import scanpy as sc
from anndata import AnnData
from scipy import sparse

import lmf_omics as lmf


def _counts(n_obs=120, n_vars=300, seed=0):
    rng = np.random.default_rng(seed)
    counts = rng.negative_binomial(2, 0.3, size=(n_obs, n_vars)) * (rng.random((n_obs, n_vars)) < 0.4)
    adata = AnnData(sparse.csr_matrix(counts.astype(np.float32)))
    adata.var_names = [f"g{i}" for i in range(n_vars)]
    adata.obs["batch"] = rng.choice(["a", "b"], n_obs)
    adata.layers["counts"] = adata.X.copy()
    return adata


def test_log_normalised_values_match_the_formula_and_counts_stay():
    adata = _counts()
    counts = adata.layers["counts"].toarray()
    lmf.pp.normalize_rna(adata, layer="counts", n_top_genes=50)
    expected = np.log1p(counts / counts.sum(axis=1, keepdims=True) * 1e4)
    assert sparse.issparse(adata.X)
    np.testing.assert_allclose(adata.X.toarray(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(adata.layers["counts"].toarray(), counts)
    assert adata.var["highly_variable"].sum() == 50
    assert adata.uns["hvg"]["flavor"] == "seurat"


def test_same_genes_as_scanpy_directly():
    adata, reference = _counts(), _counts()
    lmf.pp.normalize_rna(adata, n_top_genes=40, batch_key="batch")
    sc.pp.normalize_total(reference, target_sum=1e4)
    sc.pp.log1p(reference)
    sc.pp.highly_variable_genes(reference, n_top_genes=40, batch_key="batch")
    np.testing.assert_array_equal(adata.var["highly_variable"], reference.var["highly_variable"])


def test_key_added_writes_a_layer_and_leaves_x():
    adata = _counts()
    before = adata.X.toarray()
    out = lmf.pp.normalize_rna(adata, key_added="lognorm", n_top_genes=None, copy=True)
    np.testing.assert_array_equal(adata.X.toarray(), before)
    assert "lognorm" not in adata.layers and "lognorm" in out.layers
    np.testing.assert_array_equal(out.X.toarray(), before)
    assert "highly_variable" not in out.var


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layer": "spliced"}, "'spliced' not found in adata.layers"),
        ({"n_top_genes": 10_000}, "n_top_genes=10000 must be an integer between 1 and 300"),
        ({"flavor": "seurat_v4"}, "flavor='seurat_v4'"),
        ({"batch_key": "donor"}, "'donor' not found in adata.obs"),
        ({"target_sum": -1}, "target_sum=-1"),
        ({"key_added": ""}, "key_added=''"),
    ],
)
def test_bad_options_raise_before_any_change(kwargs, message):
    adata = _counts()
    before = adata.copy()
    with pytest.raises((ValueError, KeyError), match=message):
        lmf.pp.normalize_rna(adata, **{"n_top_genes": 50, **kwargs})
    _assert_unchanged(adata, before)


def test_negative_values_are_not_counts():
    adata = _counts()
    adata.X = adata.X.toarray() - 1.0
    with pytest.raises(ValueError, match="negative values"):
        lmf.pp.normalize_rna(adata)


def _assert_unchanged(adata, before):
    assert adata.var.columns.tolist() == before.var.columns.tolist()
    assert set(adata.uns) == set(before.uns) and set(adata.layers) == set(before.layers)
    np.testing.assert_array_equal(adata.X.toarray(), before.X.toarray())
