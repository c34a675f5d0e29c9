"""Bad and odd inputs to the R entry point (``lmf_omics.r.fit`` / ``fit_h5ad``), as reticulate hands them over.

Matrices arrive features × cells (an R matrix as a numpy array, a dgCMatrix as scipy CSC), R's NA as
NaN or the int32 minimum, data frames as pandas DataFrames. The catalogue of tests/test_bad_inputs.py.
"""

from functools import partial

import numpy as np
import pandas as pd
from scipy import sparse

from lmf_omics import r

from .reliability import Case, counts_adata

R_NA = np.iinfo(np.int32).min
N = 40
OPTIONS = {"n_factors": 3.0, "max_iter": 20.0}  # R numbers are doubles


def _from_r(_tmp=None, **change):
    """What lmf.R sends: protein counts (int32, proteins × cells), a dgCMatrix of genes × cells, colData."""
    adata = counts_adata(n=N)
    inputs = {
        "response": adata.obsm["protein"].to_numpy(np.int32).T.copy(),
        "fixed": sparse.csc_matrix(adata.X.T.astype(np.float64)),
        "random": adata.obs[["batch", "depth"]].reset_index(drop=True),
        "cell_names": list(adata.obs_names),
    }
    for name, edit in change.items():
        inputs[name] = edit(inputs[name])
    return inputs


def _fit(inputs, **options):
    arguments = {"cells_in": {"random": "rows"}, **OPTIONS, **options}
    return r.fit(inputs["response"], inputs["fixed"], inputs["random"], cell_names=inputs["cell_names"], **arguments)


def _case(category, name, error=None, match=None, check=None, call=_fit, **change):
    return Case("r.fit", category, name, partial(_from_r, **change), call, error=error, match=match, check=check)


def _set(where, value, dtype=None):
    def change(matrix):
        matrix = matrix.astype(dtype or matrix.dtype, copy=True)
        matrix[where] = value
        return matrix

    return change


def _codes(inputs, result):
    assert result["codes"].shape == (len(inputs["cell_names"]), 3) and np.all(np.isfinite(result["codes"]))


def _index_beyond_the_shape(matrix):
    corrupt = matrix.copy()
    corrupt.indices = corrupt.indices.copy()
    corrupt.indices[3] = corrupt.shape[0] + 5  # a dgCMatrix whose @i was edited
    return corrupt


CASES = [
    _case(
        "sparse format",
        "a dgCMatrix with a row index beyond its dimensions",
        fixed=_index_beyond_the_shape,
        error=ValueError,
        match=r"index",
    ),
    _case(
        "NaN/inf in a modality",
        "R NA in an integer matrix",
        response=_set((4, 9), R_NA),
        error=ValueError,
        match=r"response has 1 missing value\(s\) \(R NA\), the first for cell 'cell9' and feature 'response5'; "
        r"drop those cells",
    ),
    _case(
        "NaN/inf in a modality",
        "R NA in a double matrix",
        response=_set((0, 3), np.nan, np.float64),
        error=ValueError,
        match=r"response has 1 missing value\(s\) \(R NA\), the first for cell 'cell3'",
    ),
    _case(
        "NaN/inf in a modality",
        "R Inf in a double matrix",
        response=_set((2, 7), np.inf, np.float64),
        error=ValueError,
        match=r"response has 1 infinite value\(s\) \(R Inf\), the first for cell 'cell7' and "
        r"feature 'response3'; replace them",
    ),
    _case(
        "NaN/inf in a modality",
        "R NA in a dgCMatrix",
        fixed=lambda m: _stored_nan(m),
        error=ValueError,
        match=r"fixed has 1 missing value\(s\) \(R NA\), the first for cell",
    ),
    _case(
        "obs column",
        "R NA in a factor covariate",
        random=lambda f: f.assign(batch=f["batch"].mask(f.index == 6)),
        error=ValueError,
        match=r"random: column 'batch' has 1 missing value\(s\) \(R NA\), the first for cell "
        r"'cell6'",
    ),
    _case(
        "obs column",
        "a covariate that is all NA",
        random=lambda f: f.assign(depth=np.nan),
        error=ValueError,
        match=r"random: column 'depth' has 40 missing value\(s\) \(R NA\)",
    ),
    _case(
        "obs column",
        "a character covariate (one-hot)",
        random=lambda f: f.assign(batch=f["batch"].astype(str)),
        check=_codes,
    ),
    _case(
        "mismatched cells",
        "cells_in says rows for a features × cells matrix",
        call=partial(_fit, cells_in="rows"),
        error=ValueError,
        match=r"modalities must describe the same cells; got cell counts response: 6, fixed: 30, "
        r"random: 40 \(check cells_in\)",
    ),
    _case(
        "mismatched cells",
        "cell_names of the wrong length",
        cell_names=lambda names: names[:3],
        error=ValueError,
        match=r"cell_names has 3 names for 40 cells; pass one name per cell",
    ),
    _case("duplicated names", "repeated cell names", cell_names=lambda names: ["cell0", *names[:-1]], check=_codes),
    _case(
        "single cell",
        "one cell",
        response=lambda m: m[:, :1],
        fixed=lambda m: m[:, :1],
        random=lambda f: f.iloc[:1],
        cell_names=lambda names: names[:1],
        call=partial(_fit, n_factors=1.0),
        error=ValueError,
        match=r"the modalities have 1 cell\(s\); LMF needs at least 2",
    ),
    _case(
        "single cell",
        "no cells (issue 18: was an obs column 'with no values')",
        response=lambda m: m[:, :0],
        fixed=lambda m: m[:, :0],
        random=lambda f: f.iloc[:0],
        cell_names=lambda names: [],
        error=ValueError,
        match=r"^the modalities have 0 cell\(s\); LMF needs at least 2$",
    ),
    _case(
        "obs column",
        "a covariate named ' batch' (issue 18: was looked up as 'batch')",
        random=lambda f: f.rename(columns={"batch": " batch"}),
        error=ValueError,
        match=r"random: column names may not be empty, contain ',' or start or end with a space \(\[' batch'\]\)",
    ),
    _case(
        "obs column",
        "R NA in an integer covariate under copy-on-write (issue 18: pandas 3 said 'output array is read-only')",
        random=lambda f: f.assign(count=np.where(np.arange(N) == 5, R_NA, np.arange(N)).astype(np.int32)),
        call=lambda inputs: _copy_on_write(_fit, inputs),
        error=ValueError,
        match=r"random: column 'count' has 1 missing value\(s\) \(R NA\), the first for cell 'cell5'",
    ),
    _case(
        "single feature",
        "one protein, one factor",
        response=lambda m: m[:1],
        call=partial(_fit, n_factors=1.0),
        check=lambda i, result: np.testing.assert_equal(result["feature_names"]["response"], ["response1"]),
    ),
    _case(
        "all-zero modality",
        "a protein matrix of zeros",
        response=np.zeros_like,
        error=ValueError,
        match=r"^response has no variance after centring",
    ),
    _case(
        "n_factors",
        "n_factors = 0",
        call=partial(_fit, n_factors=0.0),
        error=ValueError,
        match=r"n_factors must be a positive integer, got 0",
    ),
    _case(
        "n_factors",
        "n_factors = 2.5",
        call=partial(_fit, n_factors=2.5),
        error=ValueError,
        match=r"n_factors must be a positive integer, got 2.5",
    ),
    _case(
        "n_factors",
        "more factors than proteins",
        call=partial(_fit, n_factors=7.0),
        error=ValueError,
        match=r"n_factors=7 is larger than the features of response \(6\)",
    ),
    _case("dtype", "a logical matrix", response=lambda m: m > 3, check=_codes),
    _case("dtype", "a double matrix", response=lambda m: m.astype(np.float64), check=_codes),
    _case(
        "dtype",
        "a character matrix",
        response=lambda m: m.astype(str),
        error=ValueError,
        match=r"response must be numeric, got dtype <U\d+; convert it to numbers first",
    ),
    _case("sparse format", "a COO matrix", fixed=lambda m: m.tocoo(), check=_codes),
    _case("sparse format", "a CSR array", fixed=sparse.csr_array, check=_codes),
    _case(
        "DataFrame",
        "a data frame with integer column names",
        random=lambda f: f.set_axis([0, 1], axis=1),
        check=lambda i, result: np.testing.assert_equal(result["feature_names"]["random"][-1], "1"),
    ),
    _case(
        "options",
        "an unknown option",
        call=partial(_fit, n_factor=3.0),
        error=TypeError,
        match=r"unknown option\(s\) \['n_factor'\]; the options are \[.*'n_factors'",
    ),
    _case(
        "options",
        "weights that are not numbers",
        call=partial(_fit, weights={"response": "a"}),
        error=ValueError,
        match=r"weights\['response'\] must be a number, got 'a'",
    ),
]


def _copy_on_write(call, inputs):
    """As pandas 3 does by default: ``to_numpy()`` hands out read-only views."""
    with pd.option_context("mode.copy_on_write", True):
        return call(inputs)


def _stored_nan(matrix):
    matrix = matrix.copy()
    matrix.data[0] = np.nan
    return matrix


def _h5ad(tmp, write=True, junk=False):
    path = tmp / "cells.h5ad"
    if junk:
        path.write_bytes(b"junk")
    elif write:
        counts_adata(n=N).write_h5ad(path)
    return {"path": path}


def _fit_h5ad(inputs, **specs):
    specs = {"response": "obsm:protein", "fixed": "X", "random": "obs:batch", **specs}
    return r.fit_h5ad(str(inputs["path"]), **specs, **OPTIONS)


CASES += [
    Case(
        "r.fit_h5ad",
        "files",
        "a missing file",
        partial(_h5ad, write=False),
        _fit_h5ad,
        error=FileNotFoundError,
        match=r"^file '.*cells.h5ad' does not exist$",
    ),
    Case(
        "r.fit_h5ad",
        "files",
        "a file that is not h5ad",
        partial(_h5ad, junk=True),
        _fit_h5ad,
        error=ValueError,
        match=r"cannot read file '.*cells.h5ad' as an .h5ad file",
    ),
    Case(
        "r.fit_h5ad",
        "missing key",
        "an obsm key that is not there",
        _h5ad,
        partial(_fit_h5ad, response="obsm:adt"),
        error=KeyError,
        match=r"'adt' not found in adata.obsm; available: \['protein', 'spatial'\]",
    ),
    Case(
        "r.fit_h5ad",
        "files",
        "a good file is only read",
        _h5ad,
        _fit_h5ad,
        check=lambda i, result: np.testing.assert_equal(result["codes"].shape, (N, 3)),
    ),
]
