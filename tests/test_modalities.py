"""Modality specs read from every AnnData slot, and their errors (before any fitting)."""

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from scipy import sparse

from lmf_omics._modalities import MissingKeyError, masks_for, read_aligned, read_modality


@pytest.fixture
def adata():
    rng = np.random.default_rng(0)
    counts = sparse.random(30, 8, density=0.4, format="csr", random_state=0) * 10
    adata = AnnData(counts)
    adata.var_names = [f"g{i}" for i in range(8)]
    adata.layers["dense"] = rng.standard_normal((30, 8))
    adata.obsm["protein"] = pd.DataFrame(rng.poisson(5, (30, 3)), index=adata.obs_names, columns=["CD3", "CD4", "CD8"])
    adata.obsm["mixed"] = pd.DataFrame({0: np.arange(30.0), 1: np.arange(30) % 2 == 0}, index=adata.obs_names)
    adata.obsm["sparse"] = sparse.random(30, 4, density=0.5, format="csc", random_state=1)
    adata.obsm["pcs"] = rng.standard_normal((30, 5))
    adata.obs["batch"] = pd.Categorical(["b", "a", "c"] * 10)
    adata.obs["donor"] = ["d1", "d2"] * 15
    adata.obs["treated"] = [True, False, False] * 10
    adata.obs["depth"] = rng.random(30)
    adata.var["highly_variable"] = [True, False] * 4
    adata.raw = AnnData(np.ones((30, 5)), var=pd.DataFrame(index=[f"r{i}" for i in range(5)]))
    return adata


def test_x_and_layers_are_var_aligned_and_not_copied(adata):
    modality = read_modality(adata, "X", role="fixed")
    assert modality.matrix is adata.X and modality.var_aligned
    assert list(modality.features) == list(adata.var_names)
    layer = read_modality(adata, "layer:dense", role="fixed")
    assert layer.matrix is adata.layers["dense"] and layer.var_mask.all()


def test_raw_has_its_own_features(adata):
    modality = read_modality(adata, "raw", role="fixed")
    assert modality.matrix.shape == (30, 5) and not modality.var_aligned
    assert list(modality.features) == [f"r{i}" for i in range(5)]


@pytest.mark.parametrize(
    ("key", "features", "is_sparse"),
    [
        ("protein", ["CD3", "CD4", "CD8"], False),
        ("mixed", ["0", "1"], False),
        ("sparse", [f"sparse_{i}" for i in range(4)], True),
        ("pcs", [f"pcs_{i}" for i in range(5)], False),
    ],
)
def test_obsm_arrays_sparse_and_dataframes(adata, key, features, is_sparse):
    modality = read_modality(adata, f"obsm:{key}", role="response")
    assert list(modality.features) == features
    assert sparse.issparse(modality.matrix) == is_sparse
    assert modality.matrix.dtype.kind == "f"
    if key == "mixed":  # an int + bool DataFrame becomes float, not object
        np.testing.assert_array_equal(modality.matrix[:4, 1], [1.0, 0.0, 1.0, 0.0])


def test_obs_columns_one_hot_and_numeric(adata):
    modality = read_modality(adata, "obs:batch, donor,treated,depth", role="random")
    assert sparse.issparse(modality.matrix) and modality.matrix.shape == (30, 3 + 2 + 2 + 1)
    assert list(modality.features) == [
        "batch=a",
        "batch=b",
        "batch=c",
        "donor=d1",
        "donor=d2",
        "treated=False",
        "treated=True",
        "depth",
    ]
    dense = modality.matrix.toarray()
    np.testing.assert_array_equal(dense[:3, :3], [[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(dense.sum(axis=1)[:3], 3 + adata.obs["depth"].to_numpy()[:3])
    np.testing.assert_allclose(dense[:, -1], adata.obs["depth"])


def test_numeric_obs_columns_stay_dense(adata):
    modality = read_modality(adata, "obs:depth", role="random")
    assert isinstance(modality.matrix, np.ndarray) and modality.matrix.shape == (30, 1)


def test_mask_var_by_column_and_array(adata):
    masked = read_modality(adata, "X", role="fixed", mask_var="highly_variable")
    assert masked.matrix.shape == (30, 4) and list(masked.features) == ["g0", "g2", "g4", "g6"]
    np.testing.assert_array_equal(masked.var_mask, adata.var["highly_variable"])
    by_array = read_modality(adata, "layer:dense", role="fixed", mask_var=np.arange(8) < 3)
    np.testing.assert_array_equal(by_array.matrix, adata.layers["dense"][:, :3])


def test_masks_spread_over_var_aligned_roles_only():
    roles = {"response": "obsm:protein", "fixed": "X", "random": "obs:batch"}
    assert masks_for(roles, "highly_variable") == {"fixed": "highly_variable"}
    assert masks_for(roles, None) == {}
    with pytest.raises(ValueError, match=r"mask_var has unknown roles \['genes'\]"):
        masks_for(roles, {"genes": "highly_variable"})


@pytest.mark.parametrize(
    ("spec", "kwargs", "error", "message"),
    [
        ("layer:counts", {}, MissingKeyError, r"'counts' not found in adata.layers; available: \['dense'\]"),
        ("obsm:adt", {}, MissingKeyError, r"'adt' not found in adata.obsm; available: \['mixed', 'pcs', 'protein'"),
        ("obs:sample", {}, MissingKeyError, r"'sample' not found in adata.obs; available: \['batch', 'depth'"),
        ("obsm", {}, ValueError, "is not a modality spec; use 'X', 'raw'"),
        ("layers:dense", {}, ValueError, "is not a modality spec"),
        (3, {}, TypeError, "must be a modality spec string, got int"),
        ("obsm:protein", {"mask_var": "highly_variable"}, ValueError, "mask_var applies to var-aligned modalities"),
        ("X", {"mask_var": "missing"}, MissingKeyError, r"'missing' not found in adata.var"),
        ("X", {"mask_var": "depth_var"}, ValueError, "must be boolean, got dtype float64"),
        ("X", {"mask_var": np.ones(3, bool)}, ValueError, "boolean array of length 8, got dtype bool and shape"),
        ("X", {"mask_var": np.zeros(8, bool)}, ValueError, "mask_var selects no features"),
    ],
)
def test_spec_errors_name_the_problem(adata, spec, kwargs, error, message):
    adata.var["depth_var"] = np.linspace(0, 1, 8)
    with pytest.raises(error, match=message):
        read_modality(adata, spec, role="fixed", **kwargs)


def test_missing_slots_and_bad_values(adata):
    adata.obs["with_na"] = pd.Categorical(["a", None, "b"] * 10)
    with pytest.raises(ValueError, match=r"obs column 'with_na' has 10 missing value\(s\)"):
        read_modality(adata, "obs:with_na", role="random")
    adata.obsm["labels"] = pd.DataFrame({"x": np.ones(30), "kind": ["a"] * 30}, index=adata.obs_names)
    with pytest.raises(ValueError, match=r"obsm DataFrame has non-numeric columns \['kind'\]"):
        read_modality(adata, "obsm:labels", role="fixed")
    no_raw = AnnData(np.ones((3, 2)))
    with pytest.raises(ValueError, match="adata.raw is None"):
        read_modality(no_raw, "raw", role="fixed")
    with pytest.raises(ValueError, match="adata.X is None"):
        read_modality(AnnData(obs=pd.DataFrame(index=["a", "b"])), "X", role="fixed")


def test_query_obs_encoding_equals_the_training_encoding(adata):
    """read_aligned encodes obs columns as read_modality did in training, sparse, also for a name with '='."""
    adata.obs["dose=mg"] = np.linspace(0.0, 2.0, 30)
    spec = "obs:batch,dose=mg,donor,treated"
    training = read_modality(adata, spec, role="random")
    assert "dose=mg" in training.features and "batch=a" in training.features
    query = adata.copy()
    query.obs["batch"] = pd.Categorical(query.obs["batch"].astype(str), categories=["c", "b", "a"])  # other order
    matrix, observed = read_aligned(query, spec, training.features, role="random")
    assert sparse.issparse(matrix) and observed is None
    np.testing.assert_array_equal(matrix.toarray(), training.matrix.toarray())
    # a level the fit never saw, or a missing value, leaves the cell outside every level: unobserved
    query.obs["donor"] = ["d3", *query.obs["donor"][1:29], None]
    query.obs.loc[query.obs_names[5], "dose=mg"] = np.nan
    matrix, observed = read_aligned(query, spec, training.features, role="random")
    np.testing.assert_array_equal(np.flatnonzero(~observed), [0, 5, 29])
    donors = [i for i, f in enumerate(training.features) if f.startswith("donor=")]
    np.testing.assert_array_equal(matrix[[0, 29]][:, donors].toarray(), 0.0)
    np.testing.assert_array_equal(matrix[1:5].toarray(), training.matrix[1:5].toarray())
