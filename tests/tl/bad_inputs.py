"""Bad and odd inputs to ``tl.lmf``, ``tl.transform`` and ``tl.predict``: the catalogue."""

from functools import cache, partial

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from lmf_omics import tl
from lmf_omics._modalities import MissingKeyError

from ..reliability import (
    Case,
    at,
    counts_adata,
    duplicate_names,
    edit_x,
    finite_codes,
    protein,
    set_obs,
    set_obsm,
    split_x,
)

FIT = {
    "response": "obsm:protein",
    "fixed": "X",
    "random": "obs:batch",
    "n_factors": 3,
    "max_iter": 20,
    "progress": False,
}
WRITES = ("obsm/X_lmf*", "varm/lmf_*", "uns/lmf*")
NAN = "NaN/inf in a modality"


def _adata(_tmp=None, edit=None):
    adata = counts_adata()
    if edit is not None:
        edit(adata)
    return {"adata": adata}


def _backed(tmp):
    """A file to open backed in the call (the harness fingerprints the file; a backed AnnData it cannot)."""
    counts_adata().write_h5ad(tmp / "cells.h5ad")
    return {"file": tmp / "cells.h5ad"}


def _lmf(inputs, **options):
    return tl.lmf(inputs["adata"], **{**FIT, **options})


FINITE_CODES = finite_codes()


def _fit(category, name, edit=None, error=None, match=None, check=FINITE_CODES, **options):
    return Case(
        "tl.lmf",
        category,
        name,
        partial(_adata, edit=edit),
        partial(_lmf, **options),
        error=error,
        match=match,
        writes=WRITES if error is None else (),
        check=None if error else check,
    )


def _x(values):
    def edit(adata):
        adata.X = values(adata)

    return edit


def _nan_row(row):
    def change(frame):
        frame.iloc[row, :] = np.nan
        return frame

    return change


def _centred_without(role, observed_values):
    """A check: every cell has codes, and the modality is centred on the cells that have it."""

    def check(inputs, result):
        finite_codes()(inputs, result)
        adata = inputs["adata"]
        means = np.asarray(adata.uns["lmf"]["modalities"][role]["mean"])
        np.testing.assert_allclose(means, np.asarray(observed_values(adata), dtype=np.float64).mean(axis=0), rtol=1e-12)

    return check


def _layer_inf(adata):
    adata.layers["dense"][2, 5] = np.inf


def _all_at(value, rows=slice(None), columns=slice(0, 3)):
    def edit(adata):
        dense = adata.X.toarray()
        dense[rows, columns] = value
        adata.X = sparse.csr_matrix(dense)

    return edit


LMF_CASES = [
    _fit(
        NAN,
        "NaN in one protein value",
        protein(at(3, 1, np.nan)),
        ValueError,
        r"response='obsm:protein' contains 1 NaN .*row 3, column 1.*impute them, or mark a cell",
    ),
    _fit(
        NAN,
        "inf in a layer",
        _layer_inf,
        ValueError,
        r"fixed='layer:dense' contains 1 NaN or infinite value\(s\) \(first at row 2, column 5\)",
        fixed="layer:dense",
    ),
    _fit(
        NAN,
        "a cell without protein (a row of NaN)",
        protein(_nan_row(4)),
        check=_centred_without("response", lambda a: a.obsm["protein"].drop(index="cell4")),
    ),
    _fit(
        NAN,
        "cells without protein flagged by observed=",
        set_obs("has_protein", lambda a: np.arange(a.n_obs) % 4 != 0),
        observed={"response": "has_protein"},
        check=_centred_without("response", lambda a: a.obsm["protein"][a.obs["has_protein"].to_numpy()]),
    ),
    _fit(
        "mismatched cells",
        "observed= with one flag too few",
        observed={"response": np.ones(39, bool)},
        error=ValueError,
        match=r"response='obsm:protein' observed must be a column name of adata.obs or a boolean "
        r"array of length 40, got dtype bool and shape \(39,\)",
    ),
    _fit(
        "options",
        "observed= for a role given no modality",
        observed={"random": np.ones(40, bool)},
        random=None,
        error=ValueError,
        match=r"observed names roles without a modality: \['random'\]; use \['fixed', 'response'\]",
    ),
    _fit("duplicated names", "duplicated obs names (rows are used by position)", duplicate_names("obs")),
    _fit(
        "duplicated names",
        "duplicated var names (new cells could not be matched by name)",
        duplicate_names("var"),
        ValueError,
        r"fixed='X' names 1 feature\(s\) more than once, e.g. \['gene0'\].*adata.var_names_make_unique\(\)",
    ),
    _fit(
        "duplicated names",
        "duplicated protein names (new cells could not be matched by name)",
        protein(lambda f: f.set_axis(["A", "A", *f.columns[2:]], axis=1)),
        ValueError,
        r"response='obsm:protein' names 1 feature\(s\) more than once, e.g. \['A'\]; .*rename the columns",
    ),
    _fit(
        "missing key",
        "an obsm key that is not there",
        response="obsm:adt",
        error=MissingKeyError,
        match=r"response='obsm:adt': 'adt' not found in adata.obsm; available: \['protein', 'spatial'\]",
    ),
    _fit(
        "missing key",
        "a layer that is not there",
        fixed="layer:counts",
        error=MissingKeyError,
        match=r"fixed='layer:counts': 'counts' not found in adata.layers; available: \['dense'\]",
    ),
    _fit(
        "missing key",
        "an obs column that is not there",
        random="obs:donor",
        error=MissingKeyError,
        match=r"random='obs:donor': 'donor' not found in adata.obs; available: \['batch', 'depth'\]",
    ),
    _fit(
        "missing key",
        "a mask_var column that is not there",
        mask_var="hvg",
        error=MissingKeyError,
        match=r"'hvg' not found in adata.var; available: \['highly_variable'\]",
    ),
    _fit(
        "missing key",
        "an observed column that is not there",
        observed={"response": "has_adt"},
        error=MissingKeyError,
        match=r"'has_adt' not found in adata.obs; available: \['batch', 'depth'\]",
    ),
    _fit(
        "missing key",
        "a spec that is not one",
        fixed="layers:dense",
        error=ValueError,
        match=r"fixed='layers:dense' is not a modality spec; use 'X', 'raw', 'layer:<name>'",
    ),
    _fit(
        "missing key",
        "raw when there is none",
        fixed="raw",
        error=ValueError,
        match=r"fixed='raw': adata.raw is None; use 'X' or a layer instead",
    ),
    _fit(
        "obs column", "a text obs column (one-hot)", set_obs("donor", lambda a: ["d1", "d2"] * 20), random="obs:donor"
    ),
    _fit(
        "obs column",
        "a numeric obs column with a missing value: that cell has no Z",
        set_obs("depth", lambda a: a.obs["depth"].mask(a.obs_names == "cell5")),
        random="obs:depth",
        check=_centred_without("random", lambda a: a.obs[["depth"]].dropna()),
    ),
    _fit(
        "obs column",
        "a missing value in one of two columns",
        set_obs("depth", lambda a: a.obs["depth"].mask(a.obs_names == "cell5")),
        random="obs:batch,depth",
        error=ValueError,
        match=r"obs column 'depth' has 1 missing value\(s\), the first for cell 'cell5'; fill them, or give",
    ),
    _fit(
        "obs column",
        "an obs column with no values",
        set_obs("depth", lambda a: np.nan),
        random="obs:depth",
        error=ValueError,
        match=r"random='obs:depth': obs column 'depth' has no values \(all 40 are missing\)",
    ),
    _fit(
        "obs column",
        "an infinite value in an obs column",
        set_obs("depth", lambda a: a.obs["depth"].mask(a.obs_names == "cell2", np.inf)),
        random="obs:depth",
        error=ValueError,
        match=r"obs column 'depth' has 1 infinite value\(s\), the first for cell 'cell2'",
    ),
    _fit(
        "obs column",
        "a categorical obs column with a missing level",
        set_obs("batch", lambda a: a.obs["batch"].mask(a.obs_names == "cell0")),
        error=ValueError,
        match=r"obs column 'batch' has 1 missing value\(s\); fill them \(e.g. with an 'unknown' category\)",
    ),
    _fit(
        "obs column",
        "a constant obs column",
        set_obs("one", lambda a: "x"),
        random="obs:one",
        error=ValueError,
        match=r"random='obs:one' has no variance after centring .*drop it or choose another modality",
    ),
    _fit(
        "obs column",
        "a nullable boolean obs column with pd.NA",
        set_obs("flag", lambda a: pd.array([True, False, None, True] * 10, dtype="boolean")),
        random="obs:flag",
        error=ValueError,
        match=r"obs column 'flag' has 10 missing value\(s\)",
    ),
    Case(
        "tl.lmf",
        "single cell",
        "one cell",
        lambda _t: {"adata": counts_adata()[:1].copy()},
        partial(_lmf, n_factors=1),
        error=ValueError,
        match=r"the modalities have 1 cell\(s\); LMF needs at least 2",
    ),
    _fit("single feature", "one protein, one factor", protein(lambda f: f.iloc[:, :1]), n_factors=1),
    _fit("single feature", "one gene, one factor", mask_var=np.arange(30) == 1, n_factors=1),
    _fit(
        "all-zero modality",
        "X all zero",
        _x(lambda a: sparse.csr_matrix(a.shape, dtype=np.float32)),
        ValueError,
        r"fixed='X' has no variance after centring",
    ),
    _fit(
        "all-zero modality",
        "mask_var keeps only constant genes",
        _all_at(1.0),
        mask_var=np.arange(30) < 3,
        error=ValueError,
        match=r"fixed='X' has no variance after centring",
    ),
    _fit(
        "all-zero modality",
        "observed= keeps only cells where Z is constant",
        set_obs("same_batch", lambda a: (a.obs["batch"] == "b1").to_numpy()),
        observed={"random": "same_batch"},
        error=ValueError,
        match=r"random='obs:batch' has no variance after centring",
    ),
    _fit(
        "all-zero modality",
        "observed= keeps no cell",
        observed={"response": np.zeros(40, bool)},
        error=ValueError,
        match=r"response='obsm:protein' is observed in 0 cell\(s\); it needs at least 2",
    ),
    _fit("constant feature", "three constant genes", _all_at(2.0)),
    _fit(
        "n_factors", "n_factors=0", n_factors=0, error=ValueError, match="n_factors must be a positive integer, got 0"
    ),
    _fit(
        "n_factors",
        "more factors than proteins",
        n_factors=7,
        error=ValueError,
        match=r"n_factors=7 is larger than the features of response='obsm:protein' \(6\); choose n_factors <= 6",
    ),
    _fit("dtype", "X as int64 counts", _x(lambda a: a.X.astype(np.int64))),
    _fit(
        "dtype", "a boolean layer", lambda a: a.layers.__setitem__("flags", a.layers["dense"] > 1), fixed="layer:flags"
    ),
    _fit("dtype", "protein counts as float32", protein(lambda f: f.astype(np.float32))),
    _fit("sparse format", "X as CSC", _x(lambda a: a.X.tocsc())),
    _fit(
        "sparse format",
        "a sparse obsm array",
        set_obsm("protein", lambda a: sparse.csr_array(a.obsm["protein"].to_numpy(np.float64))),
    ),
    _fit("DataFrame", "protein DataFrame with integer column names", protein(lambda f: f.set_axis(range(6), axis=1))),
    _fit("DataFrame", "protein DataFrame with nullable Int64 columns", protein(lambda f: f.astype("Int64"))),
    _fit(
        "DataFrame",
        "protein DataFrame with a text column",
        protein(lambda f: f.assign(kind="x")),
        ValueError,
        r"response='obsm:protein': obsm DataFrame has non-numeric columns \['kind'\]; drop or encode them",
    ),
    _fit(
        "options",
        "key_added with '/'",
        key_added="a/b",
        error=ValueError,
        match=r"key_added='a/b' contains '/', which an h5ad file cannot store in a key",
    ),
    _fit(
        "options", "empty key_added", key_added="", error=ValueError, match=r"key_added='' must be a non-empty string"
    ),
    _fit(
        "options",
        "a spec that is not a string",
        fixed=3,
        error=TypeError,
        match=r"fixed must be a modality spec string, got int",
    ),
    _fit(
        "options",
        "weights for an unknown modality",
        weights={"protein": 2.0},
        error=ValueError,
        match=r"weights has unknown roles \['protein'\]",
    ),
    Case(
        "tl.lmf",
        "options",
        "an array instead of an AnnData",
        lambda _t: {"X": np.ones((5, 3))},
        lambda i: tl.lmf(i["X"], **FIT),
        error=TypeError,
        match=r"adata must be an AnnData, got ndarray",
    ),
    Case(
        "tl.lmf",
        "options",
        "copy=True on a backed AnnData (anndata cannot copy it)",
        _backed,
        lambda i: tl.lmf(ad.read_h5ad(i["file"], backed="r"), **FIT, copy=True),
        error=ValueError,
        match=r"copy=True, but adata is backed by the file '.*cells.h5ad'.*pass copy=False",
    ),
    Case(
        "tl.lmf",
        "duplicated names",
        "a view (obs names of the parent): the parent stays as it was",
        lambda _t: {"adata": counts_adata()},
        lambda i: tl.lmf(i["adata"][:30], **FIT),
    ),
]


# transform and predict: a reference fitted once, queries built per case
@cache
def _reference_state():
    reference = counts_adata(seed=1)
    tl.lmf(reference, **FIT)
    return reference


def _query(_tmp=None, edit=None, edit_reference=None):
    """A query (``edit`` changes it in place or returns a replacement) and a copy of the reference."""
    query, reference = counts_adata(seed=2), _reference_state().copy()
    if edit is not None:
        query = edit(query) or query
    if edit_reference is not None:
        edit_reference(reference)
    return {"adata": query, "reference": reference}


def _extra_genes(query):
    """The query with two more genes, both called 'extra' (the fit knows neither)."""
    extra = ad.AnnData(sparse.csr_matrix(np.ones((query.n_obs, 2), np.float32)), obs=query.obs[[]])
    extra.var_names = ["extra", "extra"]
    joined = ad.concat([query, extra], axis=1, merge="first")
    joined.obs = query.obs.copy()
    return joined


def _transfer(function, category, name, edit=None, error=None, match=None, check=None, writes=(), **options):
    return Case(
        f"tl.{function.__name__}",
        category,
        name,
        partial(_query, edit=edit),
        lambda i: function(i["adata"], i["reference"], **options),
        error=error,
        match=match,
        writes=writes if error is None else (),
        check=None if error else check,
    )


TRANSFORM = ("obsm/X_lmf*", "uns/lmf_transform*")
PREDICT = ("obsm/lmf_predicted", "uns/lmf_predicted*")


def _without_x_and_batch(query):
    query.X = None
    del query.obs["batch"]


def _forget_levels(query):
    query.obs["batch"] = pd.Categorical(["new"] * query.n_obs)


def _zero_random_code(inputs, result):
    np.testing.assert_array_equal(inputs["adata"].obsm["X_lmf_random"], 0.0)


def _own_fit(query):
    tl.lmf(query, **FIT)


def _own_fit_replaced(written: str):
    """A check: nothing of the query's own fit is left beside what the transfer wrote under ``written``."""

    def check(inputs, result):
        query = inputs["adata"]
        assert "lmf" not in query.uns or "modalities" not in query.uns["lmf"], "the old fit's results are left"
        assert not [key for key in query.varm if key.startswith("lmf_")], "the old fit's loadings are left"
        assert written in query.obsm, f"obsm[{written!r}] was not written"
        if written == "lmf":  # predictions under the fit's key: the fit's codes go
            assert not [key for key in query.obsm if key.startswith("X_lmf")], "the old fit's codes are left"

    return check


def _backed_query(tmp):
    inputs = _query()
    inputs.pop("adata").write_h5ad(tmp / "query.h5ad")
    return {**inputs, "file": tmp / "query.h5ad"}


TRANSFORM_B = ("obsm/X_lmf_b*", "uns/lmf_b_transform*")
TRANSFER_CASES = [
    _transfer(
        tl.transform,
        NAN,
        "NaN in the query's X",
        _all_at(np.nan, rows=3, columns=4),
        ValueError,
        r"fixed='X' contains 1 NaN or infinite value\(s\) \(first at row 3, column 4\)",
    ),
    _transfer(
        tl.transform, NAN, "a query cell without protein", protein(_nan_row(0)), check=finite_codes(), writes=TRANSFORM
    ),
    _transfer(
        tl.transform,
        "missing key",
        "no fit under the key",
        key="lmf2",
        error=MissingKeyError,
        match=r"no LMF fit under uns\['lmf2'\]; fits present: \['lmf'\]. Run lmf_omics.tl.lmf first",
    ),
    _transfer(
        tl.transform,
        "missing key",
        "the query lacks genes",
        lambda q: q._inplace_subset_var(np.arange(30) > 4),
        ValueError,
        r"fixed='X': the query lacks 5 of the 30 features .*\['gene0', 'gene1'",
    ),
    _transfer(
        tl.predict,
        "missing key",
        "the query has no modality of the fit",
        _without_x_and_batch,
        ValueError,
        r"the query has neither the fixed-effect \('X'\) nor the random-effect modality of the fit",
    ),
    _transfer(
        tl.transform,
        "duplicated names",
        "the query repeats a gene of the fit",
        duplicate_names("var"),
        ValueError,
        r"fixed='X': the query names 1 of the fit's features more than once, e.g. \['gene0'\]; "
        r"make the names unique",
    ),
    _transfer(
        tl.transform,
        "duplicated names",
        "the query repeats a gene the fit does not use",
        _extra_genes,
        check=finite_codes(),
        writes=TRANSFORM,
    ),
    _transfer(
        tl.predict,
        "duplicated names",
        "duplicated query cell names",
        duplicate_names("obs"),
        writes=PREDICT,
        check=lambda i, r: np.testing.assert_array_equal(np.isfinite(i["adata"].obsm["lmf_predicted"]), True),
    ),
    _transfer(
        tl.transform,
        "obs column",
        "a batch never seen in training",
        _forget_levels,
        writes=TRANSFORM,
        check=_zero_random_code,
    ),
    _transfer(
        tl.transform,
        "obs column",
        "a query cell without a batch",
        set_obs("batch", lambda a: a.obs["batch"].astype(str).mask(a.obs_names == "cell1")),
        writes=TRANSFORM,
        check=finite_codes(),
    ),
    _transfer(
        tl.predict,
        "single cell",
        "one query cell",
        lambda q: q._inplace_subset_obs(np.arange(40) == 0),
        writes=PREDICT,
        check=lambda i, r: np.testing.assert_equal(i["adata"].obsm["lmf_predicted"].shape, (1, 6)),
    ),
    _transfer(
        tl.transform,
        "dtype",
        "the query's X as float32 dense",
        _x(lambda a: a.X.toarray()),
        writes=TRANSFORM,
        check=finite_codes(),
    ),
    _transfer(
        tl.transform,
        "sparse format",
        "the query's X as CSC",
        _x(lambda a: a.X.tocsc()),
        writes=TRANSFORM,
        check=finite_codes(),
    ),
    _transfer(
        tl.predict,
        "DataFrame",
        "the query's protein with integer column names",
        protein(lambda f: f.set_axis(range(6), axis=1)),
        writes=PREDICT,
        check=lambda i, r: np.testing.assert_equal(
            list(i["adata"].obsm["lmf_predicted"].columns), [f"ADT{j}" for j in range(6)]
        ),
    ),
    _transfer(
        tl.predict,
        "options",
        "key_added with '/'",
        key_added="pred/x",
        error=ValueError,
        match=r"key_added='pred/x' contains '/'",
    ),
    _transfer(
        tl.predict,
        "options",
        "layer= for a response that is not var-aligned",
        layer="predicted",
        error=ValueError,
        match=r"layer='predicted' needs a var-aligned response .*leave layer=None",
    ),
    _transfer(
        tl.transform,
        "options",
        "a query with a fit of its own under the key (replaced whole)",
        _own_fit,
        writes=(*TRANSFORM, "uns/lmf*", "varm/lmf_*"),
        check=_own_fit_replaced("X_lmf"),
    ),
    _transfer(
        tl.predict,
        "options",
        "key_added naming a fit of the query (replaced whole)",
        _own_fit,
        writes=(*PREDICT, "obsm/X_lmf*", "uns/lmf*", "varm/lmf_*", "obsm/lmf"),
        key_added="lmf",
        check=_own_fit_replaced("lmf"),
    ),
    Case(
        "tl.predict",
        "options",
        "the reference as its own query, key_added naming its fit",
        _query,
        lambda i: tl.predict(i["reference"], i["reference"], key_added="lmf"),
        error=ValueError,
        match=r"key_added='lmf' would overwrite the fit stored in the reference under uns\['lmf'\], which is also "
        r"the query; pass another key_added, e.g. key_added='lmf_query'",
    ),
    _transfer(
        tl.transform,
        "options",
        "another key_added beside the query's own fit",
        _own_fit,
        writes=TRANSFORM_B,
        check=finite_codes("X_lmf_b"),
        key_added="lmf_b",
    ),
    Case(
        "tl.transform",
        "options",
        "copy=True on a backed query",
        _backed_query,
        lambda i: tl.transform(ad.read_h5ad(i["file"], backed="r"), i["reference"], copy=True),
        error=ValueError,
        match=r"copy=True, but adata is backed by the file '.*query.h5ad'.*or load it first with adata.to_memory\(\)",
    ),
    Case(
        "tl.transform",
        "options",
        "a reference that is not an AnnData",
        _query,
        lambda i: tl.transform(i["adata"], i["reference"].X),
        error=TypeError,
        match=r"reference must be an AnnData, got csr_matrix",
    ),
    Case(
        "tl.transform",
        "missing key",
        "a reference whose fit was edited",
        partial(_query, edit_reference=lambda r: r.uns["lmf"]["modalities"]["fixed"].pop("mean")),
        lambda i: tl.transform(i["adata"], i["reference"]),
        error=ValueError,
        match=r"the fit under uns\['lmf'\] is incomplete: the modality of role 'fixed' has no \['mean'\]",
    ),
]


# second round: corrupt sparse data, views, dtypes that lie, keys, options, edited fits
_split_x = split_x(0.3)


@cache
def _clean_codes(**options):
    adata = counts_adata()
    tl.lmf(adata, **{**FIT, **options})
    return adata.obsm["X_lmf"]


def _same_codes_as_clean(inputs, result):
    np.testing.assert_allclose(inputs["adata"].obsm["X_lmf"], _clean_codes(), atol=1e-6)


def _backed_edited(tmp, name="indices", position=5, value=10**6):
    import h5py

    counts_adata().write_h5ad(tmp / "cells.h5ad")
    with h5py.File(tmp / "cells.h5ad", "r+") as handle:
        handle[f"X/{name}"][position] = value
    return {"file": tmp / "cells.h5ad"}


def _fit_backed(inputs, **options):
    backed = ad.read_h5ad(inputs["file"], backed="r")
    try:
        return tl.lmf(backed, **{**FIT, **options})
    finally:
        backed.file.close()


def _parent(_tmp=None, edit=None):
    adata = counts_adata()
    if edit is not None:
        edit(adata)
    return {"parent": adata}


def _view_fit(inputs, **options):
    parent = inputs["parent"]
    view = parent[parent.obs["batch"] != "b3"]
    tl.lmf(view, **{**FIT, **options})
    assert not view.is_view and view.obsm["X_lmf"].shape[0] == view.n_obs
    return view


def _set_column(column, values):
    return set_obs(column, lambda a: values(a.n_obs))


def _uns_spatial(adata):
    adata.uns["spatial"] = {"section": {"scalefactors": {"spot_diameter_fullres": 9.0}}}


LMF_CASES += [
    _fit(
        "sparse format",
        "X with split and unsorted entries (a fit as of the canonical X)",
        _split_x,
        check=_same_codes_as_clean,
    ),
    _fit(
        "sparse format",
        "X with a column index beyond the shape (segfaulted)",
        edit_x(lambda X: X.indices.__setitem__(7, 10**6)),
        ValueError,
        r"fixed='X' is a corrupt CSR matrix: column index 1000000 of row 0 is outside 0\.\.29",
    ),
    _fit(
        "sparse format",
        "X with a column index beyond the shape, masked (sliced before the core's check)",
        edit_x(lambda X: X.indices.__setitem__(7, 10**6)),
        ValueError,
        r"fixed='X' is a corrupt CSR matrix: column index 1000000",
        mask_var="highly_variable",
    ),
    _fit(
        "sparse format",
        "X with a decreasing indptr",
        edit_x(lambda X: X.indptr.__setitem__(3, X.indptr[5])),
        ValueError,
        r"fixed='X' is a corrupt CSR matrix: indptr decreases after row 3",
    ),
    Case(
        "tl.lmf",
        "sparse format",
        "backed X whose indices were edited on disk",
        _backed_edited,
        _fit_backed,
        error=ValueError,
        match=r"the matrix '/X' in the file '.*cells.h5ad' is a corrupt CSR matrix: column index 1000000",
    ),
    Case(
        "tl.lmf",
        "sparse format",
        "backed X whose indptr was edited on disk",
        partial(_backed_edited, name="indptr", position=4, value=0),
        _fit_backed,
        error=ValueError,
        match=r"the matrix '/X' in the file '.*cells.h5ad' is a corrupt CSR matrix: indptr decreases after row 3",
    ),
    Case(
        "tl.lmf",
        "view",
        "a view, mask_var (taken for on-disk data); the parent untouched",
        _parent,
        partial(_view_fit, mask_var="highly_variable"),
    ),
    Case("tl.lmf", "view", "a view, random from obs; the parent untouched", _parent, _view_fit),
    _fit(
        "dtype",
        "numbers stored as object dtype in an obs column",
        _set_column("dose", lambda n: pd.array(np.arange(n) % 4, dtype=object)),
        ValueError,
        r"random='obs:dose': obs column 'dose' holds object values that are not strings \(\['int'\]\); convert",
        random="obs:dose",
    ),
    _fit(
        "dtype",
        "complex numbers in an obs column",
        _set_column("phase", lambda n: np.arange(n) + 1j),
        ValueError,
        r"obs column 'phase' holds complex numbers",
        random="obs:phase",
    ),
    _fit(
        "dtype",
        "complex column in an obsm DataFrame",
        protein(lambda f: f.assign(ADT0=f["ADT0"] + 1j)),
        ValueError,
        r"response='obsm:protein': obsm DataFrame has non-numeric columns \['ADT0'\]",
    ),
    _fit(
        "dtype",
        "dates as levels",
        _set_column("day", lambda n: pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n) % 3, unit="D")),
        ValueError,
        # the unit is pandas' choice: ns in pandas 2, us in pandas 3
        r"obs column 'day' holds datetime64\[[mun]?s\] values; convert them to numbers .* or to strings",
        random="obs:day",
    ),
    _fit(
        "dtype",
        "durations as levels (categorical)",
        _set_column("lag", lambda n: pd.Categorical(pd.to_timedelta(np.arange(n) % 3, unit="h"))),
        ValueError,
        r"obs column 'lag' holds category values",
        random="obs:lag",
    ),
    _fit(
        "duplicated names",
        "an obs column named twice in a spec",
        error=ValueError,
        match=r"random='obs:batch,batch' names the obs column\(s\) \['batch'\] more than once",
        random="obs:batch,batch",
    ),
    *[
        _fit("keys", f"key_added={key!r}", error=ValueError, match=message, key_added=key)
        for key, message in (
            (".", r"key_added='\.' names the group itself in an h5ad file"),
            ("..", r"key_added='\.\.' names the group itself"),
            ("lmf\0x", r"key_added='lmf\\x00x' holds control characters"),
            (" lmf", r"key_added=' lmf' holds control characters or surrounding spaces"),
        )
    ],
    _fit(
        "keys",
        "key_added='spatial' over uns['spatial'] (images, scale factors)",
        _uns_spatial,
        ValueError,
        r"key_added='spatial' would overwrite uns\['spatial'\], which LMF did not write; .*del adata.uns\['spatial'\]",
        key_added="spatial",
    ),
    _fit(
        "keys",
        "key_added whose code key is a measured obsm entry",
        set_obsm("X_pca", lambda a: np.ones((a.n_obs, 2))),
        ValueError,
        r"key_added='pca' would overwrite obsm\['X_pca'\], which LMF did not write",
        key_added="pca",
    ),
    *[
        _fit("options", f"cv_folds={folds!r}", error=ValueError, match=message, n_factors=(2, 3), cv_folds=folds)
        for folds, message in (
            ("3", r"cv_folds must be an integer between 2 and the number of cells \(40\), got .3."),
            (2.5, r"cv_folds must be an integer between 2 and the number of cells \(40\), got 2\.5"),
            (True, r"cv_folds must be an integer .* got True"),
            (1, r"cv_folds must be an integer .* got 1"),
            (41, r"cv_folds must be an integer between 2 and the number of cells \(40\), got 41"),
        )
    ],
    _fit(
        "n_factors",
        "a candidate too large for a training fold, checked before any fold runs",
        error=ValueError,
        match=r"n_factors candidate 20 does not fit a training fold of 2-fold cross-validation \(20 cells\): "
        r"n_factors=20 is larger than the cells minus one",
        n_factors=(2, 20),
        cv_folds=2,
        response="layer:dense",
    ),
]


def _view_query(function, **options):
    def call(inputs):
        parent = inputs["parent"]
        view = parent[:25]
        function(view, inputs["reference"], **options)
        assert not view.is_view

    return call


def _query_parent(_tmp=None):
    return {"parent": counts_adata(seed=2), "reference": _reference_state().copy()}


def _typed_levels(reference_levels, query_levels):
    """Reference and query fitted/encoded on the same groups, typed differently."""

    def build(_tmp=None):
        reference, query = counts_adata(seed=1), counts_adata(seed=2)
        reference.obs["group"] = pd.Categorical(reference_levels(np.arange(40) % 3))
        query.obs["group"] = pd.Categorical(query_levels(np.arange(40) % 3))
        tl.lmf(reference, **{**FIT, "random": "obs:group"})
        return {"adata": query, "reference": reference}

    return build


def _random_codes_everywhere(inputs, result):
    assert (np.abs(inputs["adata"].obsm["X_lmf_random"]).sum(axis=1) > 0).all(), "some cells got a zero random code"


def _edited_reference(edit):
    return partial(_query, edit_reference=edit)


def _stored(role, field, value):
    def edit(reference):
        reference.uns["lmf"]["modalities"][role][field] = value

    return edit


INCONSISTENT = r"the fit under uns\['lmf'\] is inconsistent: "
TRANSFER_CASES += [
    Case("tl.transform", "view", "a view of the query; its parent untouched", _query_parent, _view_query(tl.transform)),
    Case("tl.predict", "view", "a view of the query; its parent untouched", _query_parent, _view_query(tl.predict)),
    Case(
        "tl.transform",
        "dtype",
        "integer levels in the reference, the same as float in the query",
        _typed_levels(lambda v: v, lambda v: v.astype(float)),
        lambda i: tl.transform(i["adata"], i["reference"]),
        writes=TRANSFORM,
        check=_random_codes_everywhere,
    ),
    Case(
        "tl.transform",
        "dtype",
        "dates in the query where the reference had strings",
        _typed_levels(lambda v: v.astype(str), lambda v: pd.Timestamp("2024-01-01") + pd.to_timedelta(v, unit="D")),
        lambda i: tl.transform(i["adata"], i["reference"]),
        error=ValueError,
        match=r"random='obs:group': obs column 'group' holds category values",
    ),
    _transfer(
        tl.transform,
        "sparse format",
        "a query X with a column index beyond the shape",
        edit=edit_x(lambda X: X.indices.__setitem__(2, 999)),
        error=ValueError,
        match=r"fixed='X' is a corrupt CSR matrix: column index 999 of row 0",
    ),
    _transfer(
        tl.predict,
        "sparse format",
        "a query X with split entries",
        edit=_split_x,
        writes=PREDICT,
        check=lambda i, r: np.testing.assert_allclose(
            i["adata"].obsm["lmf_predicted"].to_numpy(), _clean_prediction(), atol=1e-8
        ),
    ),
    _transfer(
        tl.predict,
        "keys",
        "key_added naming a measured obsm entry",
        error=ValueError,
        match=r"key_added='protein' would overwrite obsm\['protein'\], which LMF did not write",
        key_added="protein",
    ),
    _transfer(
        tl.predict,
        "keys",
        "layer naming a measured layer",
        error=ValueError,
        match=r"layer='dense' would overwrite layers\['dense'\], which LMF did not write",
        layer="dense",
    ),
    _transfer(
        tl.transform,
        "keys",
        "key_added='.'",
        error=ValueError,
        match=r"key_added='\.' names the group itself",
        key_added=".",
    ),
    *[
        Case(
            "tl.transform",
            "stored fit",
            name,
            _edited_reference(edit),
            lambda i: tl.transform(i["adata"], i["reference"]),
            error=ValueError,
            match=INCONSISTENT + message,
        )
        for name, edit, message in (
            (
                "the reference's encoder deleted from varm",
                lambda r: r.varm.pop("lmf_encoder_fixed"),
                r"the encoder of modality 'fixed' is missing",
            ),
            ("a stored scale of zeros", _stored("fixed", "scale", np.zeros(30)), r"the scale of modality 'fixed' has"),
            (
                "a truncated stored mean",
                _stored("fixed", "mean", np.zeros(12)),
                r"the mean of modality 'fixed' has shape \(12,\), expected \(30,\)",
            ),
            ("a stored weight as text", _stored("random", "weight", "heavy"), r"the random weight is not numeric"),
            (
                "stored loadings of the wrong shape",
                _stored("response", "loadings", np.zeros((6, 5))),
                r"the loadings of modality 'response' has shape \(6, 5\), expected \(6, 3\)",
            ),
            (
                "stored NaN loadings",
                _stored("response", "loadings", np.full((6, 3), np.nan)),
                r"the response loadings has NaN or infinite values",
            ),
            (
                "stored params edited",
                lambda r: r.uns["lmf"]["params"].__setitem__("n_factors", -3),
                r"its params are not valid options \(n_factors must be a positive integer, got -3\)",
            ),
        )
    ],
    Case(
        "tl.predict",
        "stored fit",
        "a reference whose var names were made to repeat after fitting",
        partial(_query, edit_reference=duplicate_names("var")),
        lambda i: tl.predict(i["adata"], i["reference"]),
        error=ValueError,
        match=r"reads 'lmf_(loadings|encoder)_fixed' by var name, but adata.var_names repeat names",
    ),
]


@cache
def _clean_prediction():
    query = counts_adata(seed=2)
    tl.predict(query, _reference_state().copy())
    return query.obsm["lmf_predicted"].to_numpy()


def _spaced_column(adata):
    adata.obs[" batch"] = pd.Categorical(np.where(np.arange(adata.n_obs) % 2, "odd", "even"))


LMF_CASES += [
    _fit(
        "obs column",
        "a column named ' batch' beside 'batch' is itself, not 'batch'",
        _spaced_column,
        random="obs: batch",
        check=lambda i, r: np.testing.assert_array_equal(
            i["adata"].uns["lmf"]["modalities"]["random"]["features"], [" batch=even", " batch=odd"]
        ),
    ),
]


def gene_sets(n_sets: int = 3, size: int = 6) -> pd.DataFrame:
    """A small net over counts_adata's genes: set S<i> holds genes i*size ... (i+1)*size - 1, weights ±1."""
    rows = [
        (f"S{i}", f"gene{g}", 1.0 if g % 2 else -1.0) for i in range(n_sets) for g in range(i * size, (i + 1) * size)
    ]
    return pd.DataFrame(rows, columns=["source", "target", "weight"])


def _fitted(_tmp=None):
    return {"adata": _reference_state().copy()}


def _enrich(category, name, error=None, match=None, check=None, **options):
    options = {"net": gene_sets(), **options}
    return Case(
        "tl.enrich",
        category,
        name,
        _fitted,
        lambda i: tl.enrich(i["adata"], **options),
        error=error,
        match=match,
        writes=("uns/lmf_enrich_fixed*",) if error is None else (),
        check=check,
    )


def _has_scores_of(sets):
    def check(inputs, result):
        assert list(inputs["adata"].uns["lmf_enrich_fixed"]["scores"].columns) == sets

    return check


ENRICH_CASES = [
    _enrich(
        "DataFrame", "net is a dict", net={"source": ["S0"]}, error=TypeError, match="net must be a pandas DataFrame"
    ),
    _enrich(
        "DataFrame",
        "net without a weight column",
        net=gene_sets().drop(columns="weight"),
        error=ValueError,
        match=r"net has no column\(s\) \['weight'\]; its columns are \['source', 'target'\] \(name them with",
    ),
    _enrich(
        "DataFrame",
        "weight=None weighs every feature 1",
        net=gene_sets().drop(columns="weight"),
        weight=None,
        check=_has_scores_of(["S0", "S1", "S2"]),
    ),
    _enrich(
        "duplicated names",
        "a feature twice in one set",
        net=pd.concat([gene_sets(), gene_sets().iloc[:1]]),
        error=ValueError,
        match=r"net lists feature 'gene0' twice in set 'S0'",
    ),
    _enrich(
        "missing key",
        "gene IDs instead of symbols",
        net=gene_sets().assign(target=lambda f: "ENSG" + f["target"]),
        error=ValueError,
        match=r"no target of net is a fitted feature \(e.g. net has 'ENSGgene0', the fit has 'gene0'\)",
    ),
    _enrich("missing key", "a role that was not fitted", role="protein", error=ValueError, match="role='protein'"),
    _enrich(
        "missing key",
        "no fit under the key",
        key="other",
        error=MissingKeyError,
        match=r"no LMF fit under uns\['other'\]",
    ),
    _enrich("options", "an unknown method", method="t-test", error=ValueError, match="method='t-test' is not one of"),
    _enrich("options", "tmin=0", tmin=0, error=ValueError, match="tmin=0 must be a positive integer"),
    _enrich(
        "options",
        "a set smaller than tmin is left out",
        net=pd.concat([gene_sets(), gene_sets(1, 3).assign(source="tiny")]),
        check=_has_scores_of(["S0", "S1", "S2"]),
    ),
    _enrich(
        "options",
        "every set smaller than tmin",
        tmin=7,
        error=ValueError,
        match=r"no set of net has at least tmin=7 features among the fitted ones \(largest: 6\); lower tmin",
    ),
]
