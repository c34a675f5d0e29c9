"""lmf_omics.r, the reticulate entry point, fed what reticulate 1.28 delivers from R.

(tests/r runs the same from real R; here the R values are built as reticulate hands them over:
dgCMatrix -> scipy CSC features x cells, integer matrix -> int32, NA -> NaN or the int32 minimum.)
"""

import inspect
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from scipy import sparse

from lmf_omics import _rdoor, r, tl

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
    view = _rdoor._matrix(csc, "fixed", "columns")
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
    assert isinstance(result.pop("model"), str)
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
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['n_factor'\]; the options are \[.*'max_iter'"):
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


def test_path_prints_the_r_package_folder(capsys):
    assert r.main(["--path"]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed == r.R_PACKAGE and printed.name == "lmfomics"
    description = (printed / "DESCRIPTION").read_text()
    assert "Package: lmfomics" in description and "reticulate" in description
    assert "runLMF" in (printed / "NAMESPACE").read_text()


def test_r_module_imports_only_the_standard_library():
    """``python -m lmf_omics.r --path`` needs no numeric stack: r.py loaded alone imports none of it."""
    printed = _printed_without_numeric_stack(
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('r_alone', {str(Path(r.__file__))!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "assert module.main(['--path']) == 0\n"
    )
    assert printed.endswith("lmfomics")


def _printed_without_numeric_stack(script: str) -> str:
    """What ``script`` prints in a new Python, which fails if it imported any of the numeric stack."""
    script += (
        "import sys\n"
        "heavy = sorted({'numpy', 'pandas', 'scipy', 'anndata', 'scanpy'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_model_options_are_tl_lmf_keyword_options():
    options = r.model_options()
    assert {"solver", "max_iter", "tol", "weights", "random_state", "n_factors"} <= set(options)
    assert not set(options) & set(r.NOT_MODEL_OPTIONS)
    assert options["max_iter"] == inspect.signature(tl.lmf).parameters["max_iter"].default


def test_call_returns_errors_and_warnings_as_values(data):
    arguments = {"response": data["Y"], "fixed": data["X"], "cells_in": "rows", "labels": {"response": "ADT"}}
    done = r.call("fit", {**arguments, "n_factors": 3.0, "max_iter": 2.0})
    assert done["ok"] and done["value"]["n_iter"] == 2
    assert [w["type"] for w in done["warnings"]] == ["LoggedWarning"]
    assert "did not converge in 2 iterations" in done["warnings"][0]["message"]
    failed = r.call("fit", {**arguments, "n_factors": 13.0})
    assert failed == {
        "ok": False,
        "type": "ValueError",
        "message": "n_factors=13 is larger than the features of ADT (12); choose n_factors <= 12",
        "warnings": [],
    }
    assert r.call("fit", {"response": None})["type"] == "TypeError"
    assert r.call("shutil.rmtree", {})["message"] == "no entry point 'shutil.rmtree'"


def test_user_warnings_reach_r_and_deprecations_of_other_packages_do_not(monkeypatch):
    def noisy(**_):
        warnings.warn("a user-facing warning", UserWarning, stacklevel=1)
        warnings.warn("an API change elsewhere", FutureWarning, stacklevel=1)
        return 1

    monkeypatch.setattr(r, "ENTRY_POINTS", (*r.ENTRY_POINTS, "noisy"))
    monkeypatch.setattr(r, "noisy", noisy, raising=False)
    done = r.call("noisy", {})
    assert done["warnings"] == [{"type": "UserWarning", "message": "a user-facing warning"}]


def test_transform_and_predict_from_r_equal_tl_transform_and_predict(data, reference):
    fitted = fit_as_from_r(data)
    order = np.random.default_rng(0).permutation(len(data["genes"]))  # the query's genes in another order
    query = {
        "fixed": sparse.csc_matrix(data["X"].T)[order],
        "random": data["covariates"],
        "cell_names": data["cells"],
        "feature_names": {"fixed": [data["genes"][i] for i in order]},
        "cells_in": {"fixed": "columns", "random": "rows"},
    }
    codes = r.transform(fitted["model"], **query)
    query_adata = AnnData(obs=data["covariates"].set_axis(data["cells"]))
    query_adata.obsm["X"] = data["X"]
    tl.transform(query_adata, reference)
    np.testing.assert_allclose(codes["codes"], query_adata.obsm["X_lmf"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(codes["random_codes"], query_adata.obsm["X_lmf_random"], rtol=0, atol=1e-12)
    predicted = r.predict(fitted["model"], **query)
    tl.predict(query_adata, reference)
    np.testing.assert_allclose(predicted["predicted"], query_adata.obsm["lmf_predicted"].to_numpy(), rtol=0, atol=1e-10)
    assert predicted["feature_names"] == data["proteins"]
    with pytest.raises(ValueError, match=r"assay:counts lacks 1 of the 40 features the fit used, e\.g\. \['g0'\]"):
        r.transform(
            fitted["model"],
            **{**query, "feature_names": {"fixed": ["x", *data["genes"][1:]]}, "labels": {"fixed": "assay:counts"}},
        )
    with pytest.raises(ValueError, match="model is not a fit made by lmf_omics.r.fit"):
        r.transform("{}", **query)


def test_python_m_r_path_imports_no_numeric_stack():
    """The command the R README gives, run as written: the package's lazy ``__init__`` keeps numpy out."""
    printed = _printed_without_numeric_stack(
        "import runpy, sys\n"
        "sys.argv = ['lmf_omics.r', '--path']\n"
        "try:\n"
        "    runpy.run_module('lmf_omics.r', run_name='__main__')\n"
        "except SystemExit as stop:\n"
        "    assert stop.code in (0, None), stop.code\n"
    )
    assert Path(printed) == r.R_PACKAGE
