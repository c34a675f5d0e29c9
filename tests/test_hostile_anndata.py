"""Hypothesis-generated hostile AnnData objects against the contract of the bad-input catalogues.

The strategy draws X in many forms (dense of several dtypes, CSR/CSC, canonical or with split and
unsorted entries, or corrupt: an index outside the shape, a decreasing indptr), a covariate column
of many dtypes (strings, integer or float categories, booleans, numbers stored as objects,
complex numbers, dates, with or without a missing value), repeated var names, NaN patterns in the
response, and views or backed files. Whatever it draws, ``tl.lmf`` and ``pp.normalize_rna`` either
raise a clean error before any work (ValueError/TypeError/KeyError with a message, nothing changed)
or handle the input as documented (finite codes, only their own keys added, a view's parent and a
backed file byte-identical). Where the input is merely non-canonical or a view, the result equals
that of the canonical copy. Examples are few and derandomised under CI (as tests/core/test_properties.py).
"""

import os
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse

from lmf_omics import pp, tl

from .reliability import _changes, counts_adata, fingerprint, split_entries, work_spy

FEW = settings(
    max_examples=int(os.environ.get("LMF_HYPOTHESIS_EXAMPLES", "10")),
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
FIT = {"response": "obsm:protein", "fixed": "X", "n_factors": 2, "max_iter": 5, "tol": 1e-3, "progress": False}
WRITES = ("obsm/X_lmf*", "varm/lmf_*", "uns/lmf*")
CLEAN_ERRORS = (ValueError, TypeError, KeyError)

X_FORMS = ("dense", "float32", "int64", "float16", "csr", "csc", "split", "unsorted", "out of range", "indptr")
COVARIATES = ("strings", "int categories", "float categories", "bool", "object numbers", "complex", "dates")


def _x_form(dense: np.ndarray, form: str):
    if form in ("dense", "float32", "int64", "float16"):
        return dense.astype({"dense": np.float64}.get(form, form))
    if form in ("csr", "csc"):
        return getattr(sparse, f"{form}_matrix")(dense)
    if form in ("split", "unsorted"):
        return split_entries(dense, fraction=0.5, shuffle=form == "unsorted")
    corrupt = sparse.csr_matrix(dense)
    if form == "out of range" and corrupt.nnz:
        corrupt.indices[corrupt.nnz // 2] = dense.shape[1] + 3
    elif form == "indptr" and dense.shape[0] > 3:
        corrupt.indptr[2] = corrupt.indptr[-1]
    return corrupt


def _covariate(kind: str, n: int, rng, missing: bool):
    levels = rng.integers(0, 3, n)
    values = {
        "strings": lambda: pd.Categorical(np.array(["a", "b", "c"])[levels]),
        "int categories": lambda: pd.Categorical(levels),
        "float categories": lambda: pd.Categorical(levels.astype(float)),
        "bool": lambda: levels > 0,
        "object numbers": lambda: pd.array(levels, dtype=object),
        "complex": lambda: levels + 1j,
        "dates": lambda: pd.Timestamp("2024-01-01") + pd.to_timedelta(levels, unit="D"),
    }[kind]()
    series = pd.Series(values)
    if missing and kind not in ("bool", "complex"):
        series.iloc[0] = None
    return series.to_numpy() if kind == "complex" else series.array


@st.composite
def hostile_adata(draw):
    """``(adata, how)``: an AnnData drawn as above and what was drawn."""
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    adata = counts_adata(n=draw(st.integers(8, 30)), n_genes=draw(st.integers(4, 12)), seed=seed)
    how = {
        "x": draw(st.sampled_from(X_FORMS)),
        "covariate": draw(st.sampled_from(COVARIATES)),
        "missing level": draw(st.booleans()),
        "repeated var names": draw(st.booleans()),
        "nan": draw(st.sampled_from(["none", "a row", "one value"])),
        "view": draw(st.booleans()),
    }
    adata.X = _x_form(adata.X.toarray(), how["x"])
    adata.obs["group"] = _covariate(how["covariate"], adata.n_obs, rng, how["missing level"])
    if how["repeated var names"]:
        adata.var_names = ["g0", "g0", *adata.var_names[2:]]
    protein = adata.obsm["protein"].astype(np.float64)
    if how["nan"] != "none":
        protein.iloc[1, slice(None) if how["nan"] == "a row" else 0] = np.nan
    adata.obsm["protein"] = protein
    return adata, how


def _assert_contract(adata, call, writes):
    """A clean error before any work with nothing changed, or handling that adds only ``writes``."""
    before = fingerprint(adata, writes)
    with pytest.MonkeyPatch.context() as patch, work_spy(patch) as started, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = call()
        except CLEAN_ERRORS as error:
            assert str(error).strip(), f"an empty {type(error).__name__}"
            assert not started, f"{type(error).__name__} after work started: {error}"
            assert not _changes({"adata": adata}, {"adata": before}, ()), "changed by a failed call"
            return None
    assert not _changes({"adata": adata}, {"adata": before}, writes), "changed beyond the documented keys"
    return result


@FEW
@given(hostile_adata())
def test_lmf_on_hostile_anndata_errs_cleanly_or_handles_as_documented(drawn):
    adata, how = drawn
    parent = adata
    if how["view"]:
        view = adata[: max(6, adata.n_obs - 3)]

        def call():
            tl.lmf(view, **FIT, random="obs:group")
            assert not view.is_view and np.isfinite(view.obsm["X_lmf"]).all()

        _assert_contract(parent, call, ())  # the parent never changes
        return

    def fit():
        tl.lmf(adata, **FIT, random="obs:group")
        assert np.isfinite(adata.obsm["X_lmf"]).all()

    _assert_contract(adata, fit, WRITES)


@FEW
@given(hostile_adata())
def test_normalize_rna_on_hostile_anndata_errs_cleanly_or_handles_as_documented(drawn):
    adata, how = drawn
    target = adata[: max(6, adata.n_obs - 3)] if how["view"] else adata
    writes = () if how["view"] else ("layers/lognorm", "var/*", "uns/hvg*", "uns/log1p*")
    _assert_contract(adata, lambda: pp.normalize_rna(target, n_top_genes=None, key_added="lognorm"), writes)


@FEW
@given(st.integers(0, 2**16), st.sampled_from(["split", "unsorted"]), st.booleans())
def test_non_canonical_sparse_and_views_fit_as_their_canonical_copies(seed, form, view):
    clean = counts_adata(n=30, n_genes=10, seed=seed)
    if view:
        clean = clean[clean.obs["batch"] != "b3"]
    hostile = clean.copy() if not view else counts_adata(n=30, n_genes=10, seed=seed)
    hostile.X = _x_form(hostile.X.toarray(), form).astype(np.float32)
    if view:
        hostile = hostile[hostile.obs["batch"] != "b3"]
    reference = clean.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.lmf(reference, **FIT, random="obs:batch", mask_var="highly_variable")
        tl.lmf(hostile, **FIT, random="obs:batch", mask_var="highly_variable")
    np.testing.assert_allclose(hostile.obsm["X_lmf"], reference.obsm["X_lmf"], atol=1e-8)


def test_a_backed_file_with_a_corrupt_index_is_refused_and_left_as_it_was(tmp_path):
    import h5py

    path = tmp_path / "cells.h5ad"
    counts_adata().write_h5ad(path)
    with h5py.File(path, "r+") as handle:
        handle["X/indices"][11] = 10**6
    before = path.read_bytes()
    backed = ad.read_h5ad(path, backed="r")
    with pytest.raises(ValueError, match=r"corrupt CSR matrix: column index 1000000"):
        tl.lmf(backed, **FIT)
    backed.file.close()
    assert path.read_bytes() == before
