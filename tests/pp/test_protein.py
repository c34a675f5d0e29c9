"""clr: muon's pt.pp.clr semantics, checked against a per-column/per-row loop."""

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from scipy import sparse

import lmf_omics as lmf


def _adata(seed=0):
    rng = np.random.default_rng(seed)
    adt = rng.poisson(rng.gamma(2.0, 20.0, size=(1, 8)), size=(60, 8)).astype(float)
    adt[rng.random(adt.shape) < 0.2] = 0
    adata = AnnData(np.zeros((60, 3)))
    adata.obsm["protein_counts"] = pd.DataFrame(adt, index=adata.obs_names, columns=[f"CD{i}" for i in range(8)])
    return adata, adt


def _reference(counts, axis):
    """log1p(x / exp(mean(log1p(x)))) one protein (axis=0) or one cell (axis=1) at a time."""
    out = np.empty_like(counts)
    lines = counts.T if axis == 0 else counts
    target = out.T if axis == 0 else out
    for i, line in enumerate(lines):
        target[i] = np.log1p(line / np.exp(np.mean(np.log1p(line))))
    return out


@pytest.mark.parametrize("axis", [0, 1])
def test_matches_the_reference_and_keeps_columns(axis):
    adata, counts = _adata()
    lmf.pp.clr(adata, source="obsm:protein_counts", axis=axis)
    result = adata.obsm["protein_counts_clr"]
    assert list(result.columns) == [f"CD{i}" for i in range(8)]
    np.testing.assert_allclose(result.to_numpy(), _reference(counts, axis), rtol=1e-12)


@pytest.mark.parametrize("axis", [0, 1])
def test_sparse_layer_stays_sparse_and_equals_dense(axis):
    adata, counts = _adata()
    adata = AnnData(sparse.csr_matrix(counts))
    adata.layers["adt"] = adata.X.copy()
    lmf.pp.clr(adata, source="layer:adt", axis=axis, key_added="adt_clr")
    assert sparse.issparse(adata.layers["adt_clr"])
    np.testing.assert_allclose(adata.layers["adt_clr"].toarray(), _reference(counts, axis), rtol=1e-12)
    assert adata.layers["adt_clr"].nnz == adata.layers["adt"].nnz  # zeros stay zero


def test_copy_leaves_the_original():
    adata, _ = _adata()
    out = lmf.pp.clr(adata, source="obsm:protein_counts", key_added="clr", copy=True)
    assert "clr" in out.obsm and "clr" not in adata.obsm


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": "obs:batch"}, "must be 'obsm:<key>'"),
        ({"source": "obsm:adt"}, "'adt' not found in adata.obsm"),
        ({"axis": 2}, "axis=2"),
    ],
)
def test_bad_options(kwargs, message):
    adata, _ = _adata()
    with pytest.raises((ValueError, KeyError), match=message):
        lmf.pp.clr(adata, **kwargs)
    assert list(adata.obsm) == ["protein_counts"]


def test_negative_counts_are_refused():
    adata, _ = _adata()
    adata.obsm["protein_counts"].iloc[0, 0] = -2
    with pytest.raises(ValueError, match="negative values"):
        lmf.pp.clr(adata)
