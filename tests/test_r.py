"""lmf_omics.r, the reticulate entry point, fed what reticulate 1.28 delivers from R.

(tests/r runs the same from real R; here the R values are built as reticulate hands them over:
dgCMatrix -> scipy CSC features x cells, integer matrix -> int32, NA -> NaN or the int32 minimum.)
"""

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from scipy import sparse

from lmf_omics import r, tl

from .core.simulate import simulate

R_NA = np.iinfo(np.int32).min
OPTIONS = {"n_factors": 3, "max_iter": 40, "tol": 1e-9}


@pytest.fixture(scope="module")
def data():
    """Cells x features modalities: counts-like Y (integers), sparse X, a batch and a numeric covariate."""
    sim = simulate(n=80, k=3, p_y=12, p_x=40, z_levels=3, seed=7)
    rng = np.random.default_rng(7)
    Y = np.rint(np.abs(sim["Y"]) * 5)
    X = sparse.csr_matrix(np.where(rng.random(sim["X"].shape) < 0.3, np.abs(sim["X"]), 0.0))
    covariates = pd.DataFrame(
        {
            "batch": pd.Categorical(np.array(["b1", "b2", "b3"])[sim["Z"].argmax(1)]),
            "depth": rng.random(80),
        }
    )
    cells = [f"cell{i}" for i in range(80)]
    return {
        "Y": Y,
        "X": X,
        "covariates": covariates,
        "cells": cells,
        "proteins": [f"p{i}" for i in range(12)],
        "genes": [f"g{i}" for i in range(40)],
    }


@pytest.fixture(scope="module")
def reference(data):
    """The Python user's fit: tl.lmf on an AnnData with cells as rows."""
    adata = AnnData(obs=data["covariates"].set_axis(data["cells"]))
    adata.obsm["Y"], adata.obsm["X"] = data["Y"], data["X"]
    tl.lmf(adata, response="obsm:Y", fixed="obsm:X", random="obs:batch,depth", **OPTIONS)
    return adata


def fit_as_from_r(data, **changes):
    """r.fit called as lmf.R calls it: features x cells, an int32 matrix, a dgCMatrix (CSC), a data frame."""
    arguments = {
        "response": data["Y"].T.astype(np.int32),
        "fixed": sparse.csc_matrix(data["X"].T),
        "random": data["covariates"],
        "cell_names": data["cells"],
        "feature_names": {"response": data["proteins"], "fixed": data["genes"], "random": None},
        "labels": {"response": "altExp:ADT", "fixed": "assay:counts", "random": "colData:batch,depth"},
        "cells_in": {"response": "columns", "fixed": "columns", "random": "rows"},
        "n_factors": 3.0,
        "max_iter": 40.0,
        "tol": 1e-9,
    }
    arguments.update(changes)
    return r.fit(**arguments)


def test_fit_from_r_orientation_equals_the_python_fit(data, reference):
    result = fit_as_from_r(data)
    for name, key in (("codes", "X_lmf"), ("fixed_codes", "X_lmf_fixed"), ("random_codes", "X_lmf_random")):
        np.testing.assert_allclose(result[name], reference.obsm[key], rtol=0, atol=1e-12)
    stored = reference.uns["lmf"]["modalities"]
    for role in ("response", "fixed", "random"):
        np.testing.assert_allclose(result["loadings"][role], stored[role]["loadings"], rtol=0, atol=1e-12)
    assert result["cell_names"] == data["cells"]
    assert result["feature_names"] == {
        "response": data["proteins"],
        "fixed": data["genes"],
        "random": ["batch=b1", "batch=b2", "batch=b3", "depth"],
    }
    assert result["factor_names"] == ["Factor1", "Factor2", "Factor3"]
    np.testing.assert_allclose(
        result["variance_explained"]["response"],
        reference.uns["lmf"]["variance_explained"]["response"],
        rtol=0,
        atol=1e-12,
    )
    assert result["params"]["response"] == "altExp:ADT" and result["params"]["n_factors"] == 3


def test_cells_as_rows_and_named_lists_give_the_same_fit(data):
    as_columns = fit_as_from_r(data)
    covariates = {"batch": list(data["covariates"]["batch"].astype(str)), "depth": data["covariates"]["depth"]}
    as_rows = fit_as_from_r(data, response=data["Y"], fixed=data["X"], random=covariates, cells_in="rows")
    np.testing.assert_allclose(as_rows["codes"], as_columns["codes"], rtol=0, atol=1e-12)


def test_dgcmatrix_is_used_through_its_transpose_without_a_copy(data):
    csc = sparse.csc_matrix(data["X"].T)
    view = r._matrix(csc, "fixed", "columns")
    assert view.format == "csr" and view.shape == (80, 40)
    assert np.shares_memory(view.data, csc.data)


def test_result_holds_only_plain_values(data):
    def check(value, where):
        if isinstance(value, dict):
            for key, item in value.items():
                assert isinstance(key, str), where
                check(item, f"{where}.{key}")
        elif isinstance(value, list):
            assert all(isinstance(item, (str, float)) for item in value), where
        elif isinstance(value, np.ndarray):
            assert value.dtype == np.float64 and value.ndim == 2 and value.flags.c_contiguous, where
        else:
            assert value is None or type(value) in (str, int, float, bool), (where, type(value))

    result = fit_as_from_r(data)
    check(result, "result")
    assert fit_as_from_r(data, random=None)["random_codes"] is None


def test_r_na_is_reported_with_cell_and_feature(data):
    Y = data["Y"].T.astype(np.int32)
    Y[4, 9] = R_NA  # protein p4 of cell9
    with pytest.raises(
        ValueError,
        match=r"altExp:ADT has 1 missing value\(s\) \(R NA\), the first for cell "
        r"'cell9' and feature 'p4'",
    ):
        fit_as_from_r(data, response=Y)
    X = sparse.csc_matrix(data["X"].T, copy=True)
    X.data[5] = np.nan
    gene, cell = X.indices[5], np.searchsorted(X.indptr, 5, side="right") - 1  # CSC: columns are cells
    with pytest.raises(ValueError, match=f"assay:counts has 1 missing.*cell 'cell{cell}' and feature 'g{gene}'"):
        fit_as_from_r(data, fixed=X)


@pytest.mark.parametrize("column, value", [("batch", np.nan), ("depth", np.nan), ("count", R_NA)])
def test_r_na_in_covariates_is_reported(data, column, value):
    covariates = data["covariates"].assign(count=np.arange(80, dtype=np.int32))
    covariates.loc[6, column] = value
    with pytest.raises(
        ValueError, match=f"column '{column}' has 1 missing value\\(s\\) \\(R NA\\), the first for cell 'cell6'"
    ):
        fit_as_from_r(data, random=covariates)


def test_r_scalars_and_names(data):
    one = fit_as_from_r(
        data, response=data["Y"].T[:1], feature_names={"response": "p0", "fixed": data["genes"]}, n_factors=1.0
    )
    assert one["feature_names"]["response"] == ["p0"]
    unnamed = fit_as_from_r(data, cell_names=None, feature_names=None)
    assert unnamed["cell_names"][:2] == ["1", "2"] and unnamed["feature_names"]["fixed"][:2] == ["fixed1", "fixed2"]
    with pytest.raises(ValueError, match="n_factors must be a positive integer, got 2.5"):
        fit_as_from_r(data, n_factors=2.5)
    with pytest.raises(ValueError, match="cell_names has 2 names for 80 cells"):
        fit_as_from_r(data, cell_names=["a", "b"])
    with pytest.raises(ValueError, match=r"feature_names\['fixed'\] has 3 names but assay:counts has 40 features"):
        fit_as_from_r(data, feature_names={"fixed": ["a", "b", "c"]})
    with pytest.raises(ValueError, match="same cells.*altExp:ADT: 12.*check cells_in"):
        fit_as_from_r(data, cells_in="rows")
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['n_factor'\]"):
        r.fit(data["Y"], data["X"], cells_in="rows", n_factor=3)


def test_fit_h5ad_equals_tl_lmf(data, reference, tmp_path):
    adata = AnnData(obs=data["covariates"].set_axis(data["cells"]))
    adata.obsm["Y"], adata.obsm["X"] = data["Y"], data["X"]
    adata.write_h5ad(tmp_path / "cells.h5ad")
    result = r.fit_h5ad(str(tmp_path / "cells.h5ad"), "obsm:Y", "obsm:X", "obs:batch,depth", **OPTIONS)
    np.testing.assert_allclose(result["codes"], reference.obsm["X_lmf"], rtol=0, atol=1e-12)
    assert result["cell_names"] == data["cells"]
    with pytest.raises(FileNotFoundError, match=r"file '.*missing.h5ad' does not exist"):
        r.fit_h5ad(str(tmp_path / "missing.h5ad"), "obsm:Y", "obsm:X")


@pytest.mark.parametrize("transpose", [False, True])
def test_sparse_parts_rebuild_the_matrix(transpose):
    matrix = sparse.random(30, 20, density=0.2, format="csr", random_state=3)
    matrix.indices = matrix.indices.copy()
    matrix.has_sorted_indices = False
    parts = r.sparse_parts(matrix, transpose=transpose)
    assert parts["i"].dtype == np.int32 and parts["p"].dtype == np.int32 and parts["x"].dtype == np.float64
    rebuilt = sparse.csc_matrix((parts["x"], parts["i"], parts["p"]), shape=parts["dim"])
    assert rebuilt.has_sorted_indices
    np.testing.assert_array_equal(rebuilt.toarray(), (matrix.T if transpose else matrix).toarray())
    with pytest.raises(TypeError, match="needs a scipy sparse matrix"):
        r.sparse_parts(matrix.toarray())


def test_path_prints_the_shipped_r_file(capsys):
    assert r.main(["--path"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str(r.R_FILE) and r.R_FILE.is_file()
    assert "lmf_sce <- function(sce, response, fixed, random = NULL, n_factors" in r.R_FILE.read_text()
