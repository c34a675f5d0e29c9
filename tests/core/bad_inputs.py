"""Bad and odd inputs to the estimator, ``LinearMixedForms`` (fit, transform, predict): the catalogue."""

from functools import cache, partial

import numpy as np
import pandas as pd
from scipy import sparse

from lmf_omics import LinearMixedForms

from ..reliability import Case, split_entries

ENTRY = "LinearMixedForms"
N = 40
OPTIONS = {"max_iter": 30, "tol": 1e-9, "progress": False}


@cache
def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((N, 3))
    Y = latent @ rng.standard_normal((3, 6)) + 0.1 * rng.standard_normal((N, 6))
    X = latent[:, :2] @ rng.standard_normal((2, 12)) + 0.1 * rng.standard_normal((N, 12))
    X[rng.random(X.shape) < 0.4] = 0.0  # sparse, like expression
    Z = np.eye(3)[rng.integers(0, 3, N)] + 0.1 * rng.standard_normal((N, 3))
    return Y, X, Z


def _inputs(_tmp=None, **change):
    Y, X, Z = (m.copy() for m in _data())
    inputs = {"Y": Y, "X": X, "Z": Z}
    for name, edit in change.items():
        inputs[name] = edit(inputs[name])
    return inputs


def _fit(inputs, k=2, **options):
    return LinearMixedForms(k, **{**OPTIONS, **options}).fit(inputs["Y"], inputs["X"], inputs.get("Z"))


@cache
def _reference():
    return _fit(_inputs())


def _codes_finite(inputs, model):
    assert np.all(np.isfinite(model.codes_)) and model.codes_.shape[0] == inputs["X"].shape[0]


def _same_fit_as_float64(inputs, model, atol=1e-8):
    _codes_finite(inputs, model)
    np.testing.assert_allclose(model.codes_, _reference().codes_, atol=atol)


def _set(matrix, where, value):
    matrix = np.array(matrix, dtype=np.float64)
    matrix[where] = value
    return matrix


def _one_at(row, column, shape):
    flags = np.zeros(shape, bool)
    flags[row, column] = True
    return flags


def _case(category, name, *, call=_fit, error=None, match=None, check=None, build=_inputs, **change):
    return Case(
        ENTRY,
        category,
        name,
        partial(build, **change) if change else build,
        call,
        error=error,
        match=match,
        check=check,
    )


NAN = "NaN/inf in a modality"
CASES = [
    # NaN and inf: a partly missing row is an error, a row of NaN is a cell without that modality
    _case(
        NAN,
        "NaN in one value of Y",
        Y=lambda m: _set(m, (4, 2), np.nan),
        error=ValueError,
        match=r"response Y contains 1 NaN .*row 4, column 2.*impute them, or mark a cell",
    ),
    _case(
        NAN,
        "inf in X",
        X=lambda m: _set(m, (7, 0), np.inf),
        error=ValueError,
        match=r"fixed-effect data X contains 1 NaN or infinite .*row 7, column 0",
    ),
    _case(
        NAN,
        "-inf in Z",
        Z=lambda m: _set(m, (1, 1), -np.inf),
        error=ValueError,
        match=r"random-effect covariates Z contains 1 .*row 1, column 1",
    ),
    _case(
        NAN,
        "NaN stored in a sparse X",
        X=lambda m: sparse.csr_matrix(_set(m, (3, 5), np.nan)),
        error=ValueError,
        match=r"fixed-effect data X contains 1 NaN .*row 3, column 5",
    ),
    _case(NAN, "a row of NaN in Y: a cell without the response", Y=lambda m: _set(m, 5, np.nan), check=_codes_finite),
    _case(
        NAN,
        "NaN and inf in one row",
        Y=lambda m: _set(_set(m, 5, np.nan), (5, 0), np.inf),
        error=ValueError,
        match=r"response Y contains 6 NaN or infinite .*row 5, column 0",
    ),
    _case(
        NAN,
        "Z entirely NaN",
        Z=lambda m: np.full_like(m, np.nan),
        error=ValueError,
        match=r"random-effect covariates Z is observed in 0 cell\(s\); it needs at least 2",
    ),
    _case(
        NAN,
        "values too large for float64 sums of squares",
        X=lambda m: m * 1e160,
        error=ValueError,
        match=r"fixed-effect data X has values as large as .*e\+160.*multiply it by a constant",
    ),
    _case(
        NAN,
        "values too small for float64 sums of squares",
        X=lambda m: m * 1e-160,
        error=ValueError,
        match=r"fixed-effect data X has no value larger than .*e-160.*multiply it by a constant",
    ),
    # cells
    _case(
        "mismatched cells",
        "X has one cell fewer",
        X=lambda m: m[:-1],
        error=ValueError,
        match=r"same number of cells .*response Y: 40, fixed-effect data X: 39",
    ),
    _case(
        "mismatched cells",
        "observed mask of the wrong length",
        call=lambda i: LinearMixedForms(2, **OPTIONS).fit(i["Y"], i["X"], observed={"response": np.ones(5, bool)}),
        error=ValueError,
        match=r"observed\['response'\] must be a boolean array of length 40",
    ),
    _case(
        "mismatched cells",
        "observed names a modality that was not given",
        call=lambda i: LinearMixedForms(2, **OPTIONS).fit(i["Y"], i["X"], observed={"random": np.ones(N, bool)}),
        error=ValueError,
        match=r"observed names modalities that were not given: \['random'\]",
    ),
    _case(
        "single cell",
        "one cell",
        Y=lambda m: m[:1],
        X=lambda m: m[:1],
        Z=lambda m: m[:1],
        call=partial(_fit, k=1),
        error=ValueError,
        match=r"1 cell\(s\); LMF needs at least 2 cells",
    ),
    _case(
        "single cell",
        "two cells, one factor",
        Y=lambda m: m[:2],
        X=lambda m: m[:2],
        Z=lambda m: m[:2],
        call=partial(_fit, k=1),
        check=_codes_finite,
    ),
    _case(
        "single feature",
        "Y with one feature, one factor",
        Y=lambda m: m[:, :1],
        call=partial(_fit, k=1),
        check=_codes_finite,
    ),
    _case("single feature", "X with one feature", X=lambda m: m[:, :1], call=partial(_fit, k=1), check=_codes_finite),
    _case("single feature", "Z with one feature, more factors than that", Z=lambda m: m[:, :1], check=_codes_finite),
    _case(
        "all-zero modality",
        "X all zero",
        X=np.zeros_like,
        error=ValueError,
        match=r"fixed-effect data X has no variance after centring .*drop it or choose another modality",
    ),
    _case(
        "all-zero modality",
        "sparse Y without a stored value",
        Y=lambda m: sparse.csr_matrix(m.shape),
        error=ValueError,
        match=r"response Y has no variance after centring",
    ),
    _case(
        "all-zero modality",
        "Z constant in the cells where it is observed",
        Z=lambda m: _set(np.ones_like(m), slice(0, 5), np.nan),
        error=ValueError,
        match=r"random-effect covariates Z has no variance after centring",
    ),
    _case(
        "constant feature",
        "a constant feature in X (scaled)",
        X=lambda m: _set(m, (slice(None), 0), 3.0),
        call=partial(_fit, scale=True),
        check=lambda i, model: np.testing.assert_allclose(model.loadings_["fixed"][0], 0.0, atol=1e-12),
    ),
    # n_factors
    *[
        _case(
            "n_factors",
            f"n_factors={k!r}",
            call=partial(_fit, k=k),
            error=ValueError,
            match=f"n_factors must be a positive integer, got {k!r}",
        )
        for k in (0, -1, 2.5, True)
    ],
    _case(
        "n_factors",
        "n_factors above Y's features",
        call=partial(_fit, k=7),
        error=ValueError,
        match=r"n_factors=7 is larger than the features of response Y \(6\); choose n_factors <= 6",
    ),
    _case(
        "n_factors",
        "n_factors above the cells",
        Y=lambda m: m[:5],
        X=lambda m: m[:5],
        Z=lambda m: m[:5],
        call=partial(_fit, k=5),
        error=ValueError,
        match=r"n_factors=5 is larger than the cells minus one \(centring\) \(4\); choose n_factors <= 4",
    ),
    _case(
        "n_factors",
        "n_factors above Z's features (allowed: a low-rank Z)",
        call=partial(_fit, k=4),
        check=_codes_finite,
    ),
    # dtypes: the same fit as float64
    *[
        _case("dtype", f"X as {np.dtype(t).name}", X=lambda m, t=t: np.round(m * 4).astype(t), check=_codes_finite)
        for t in (np.int32, np.int64, np.uint8, np.float16)
    ],
    _case("dtype", "X as float32", X=lambda m: m.astype(np.float32), check=partial(_same_fit_as_float64, atol=1e-4)),
    _case("dtype", "Z as bool (one-hot groups)", Z=lambda m: m > 0.5, check=_codes_finite),
    *[
        _case(
            "dtype",
            f"X as {t}",
            X=lambda m, t=t: m.astype(t),
            error=ValueError,
            match=f"fixed-effect data X must be numeric, got dtype {t}",
        )
        for t in ("complex128", "object", "<U4")
    ],
    _case(
        "dtype",
        "Y as a list of lists",
        Y=lambda m: m.tolist(),
        error=ValueError,
        match=r"response Y must be a 2-D matrix \(cells × features\), got list",
    ),
    _case(
        "dtype",
        "Y as a 1-D array",
        Y=lambda m: m[:, 0],
        error=ValueError,
        match=r"response Y must be a 2-D matrix .*shape \(40,\)",
    ),
    # sparse formats: never densified, the same fit as dense
    *[
        _case("sparse format", f"X as {f.__name__}", X=f, check=_same_fit_as_float64)
        for f in (
            sparse.csr_matrix,
            sparse.csc_matrix,
            sparse.coo_matrix,
            sparse.csr_array,
            sparse.csc_array,
            sparse.coo_array,
            sparse.lil_matrix,
            sparse.dok_array,
            sparse.dia_matrix,
            sparse.bsr_array,
        )
    ],
    _case("sparse format", "Y and Z sparse too", Y=sparse.csc_array, Z=sparse.coo_matrix, check=_same_fit_as_float64),
    # DataFrames
    _case("DataFrame", "X as a DataFrame with integer column names", X=pd.DataFrame, check=_same_fit_as_float64),
    _case(
        "DataFrame",
        "Y as a DataFrame with tuple and float column names",
        Y=lambda m: pd.DataFrame(m, columns=[(i, "x") if i % 2 else float(i) for i in range(6)]),
        check=_same_fit_as_float64,
    ),
    _case(
        "DataFrame",
        "nullable Float64 columns, a cell without Y as pd.NA",
        Y=lambda m: pd.DataFrame(m).astype("Float64").mask(np.repeat(np.arange(N)[:, None] == 3, 6, axis=1)),
        check=_codes_finite,
    ),
    _case(
        "DataFrame",
        "nullable Int64 columns with one pd.NA",
        X=lambda m: pd.DataFrame(np.round(m * 4)).astype("Int64").mask(_one_at(2, 0, (N, 12))),
        error=ValueError,
        match=r"fixed-effect data X contains 1 NaN .*row 2, column 0",
    ),
    _case(
        "DataFrame",
        "nullable Int64 columns",
        X=lambda m: pd.DataFrame(np.round(m * 4)).astype("Int64"),
        check=_codes_finite,
    ),
    _case(
        "DataFrame",
        "Y as a pandas Series",
        Y=lambda m: pd.Series(m[:, 0]),
        error=ValueError,
        match=r"response Y must be a 2-D matrix \(cells × features\), got ndarray of shape \(40,\)",
    ),
    _case(
        "DataFrame",
        "a text column",
        Z=lambda m: pd.DataFrame(m).assign(kind="a"),
        error=ValueError,
        match=r"random-effect covariates Z has non-numeric columns \['kind'\]; drop or encode them",
    ),
    # options, checked before the data
    *[
        _case("options", f"{name}={value!r}", call=partial(_fit, **{name: value}), error=ValueError, match=message)
        for name, value, message in (
            ("ridge", -1.0, r"ridge must be a finite number >= 0, got -1.0"),
            ("tol", 0, r"tol must be a finite number > 0, got 0"),
            ("max_iter", 0, r"max_iter must be a positive integer, got 0"),
            ("solver", "em", r"solver must be one of \('joint', 'paper'\), got 'em'"),
            ("codes", "dense", r"codes must be one of \('encoded', 'free'\) or None, got 'dense'"),
            ("n_pcs", 1, r"n_pcs must be an integer >= n_factors \(2\), got 1"),
            ("center", "no", r"center must be True or False, got 'no'"),
            ("weights", [1.0], r"weights must be a dict from role"),
            ("weights", {"protein": 1.0}, r"weights has unknown roles \['protein'\]"),
            ("random_state", "seed", r"random_state must be a non-negative integer seed \(or None\), got 'seed'"),
        )
    ],
]


# transform and predict on a fitted model (which must not change either)
def _fitted(_tmp=None, **change):
    inputs = _inputs(**change)
    inputs["model"] = _fit(_inputs())
    return inputs


def _transform(inputs):
    return inputs["model"].transform(X=inputs["X"], Z=inputs["Z"])


CASES += [
    _case(
        NAN,
        "transform: NaN in one value of X",
        build=_fitted,
        X=lambda m: _set(m, (2, 3), np.nan),
        call=_transform,
        error=ValueError,
        match=r"fixed-effect data X contains 1 NaN .*row 2, column 3",
    ),
    _case(
        NAN,
        "transform: a cell without X gets its code from Z",
        build=_fitted,
        X=lambda m: _set(m, 0, np.nan),
        call=_transform,
        check=lambda i, codes: np.testing.assert_array_equal(np.isfinite(codes.combined), True),
    ),
    _case(
        "mismatched cells",
        "transform: X and Z of different cells",
        build=_fitted,
        Z=lambda m: m[:10],
        call=_transform,
        error=ValueError,
        match=r"same number of cells .*fixed-effect data X: 40, random-effect",
    ),
    _case(
        "single cell",
        "transform: one cell",
        build=_fitted,
        X=lambda m: m[:1],
        Z=lambda m: m[:1],
        call=_transform,
        check=lambda i, codes: np.testing.assert_allclose(codes.combined, i["model"].codes_[:1], atol=1e-10),
    ),
    _case(
        "single feature",
        "transform: X with features missing",
        build=_fitted,
        X=lambda m: m[:, :5],
        call=_transform,
        error=ValueError,
        match=r"fixed-effect data X has 5 features but the model was fitted with 12; pass the same features",
    ),
    _case(
        "options",
        "predict without any modality",
        build=_fitted,
        call=lambda i: i["model"].predict(),
        error=ValueError,
        match=r"transform needs at least one of Y, X or Z",
    ),
    _case(
        "sparse format",
        "predict from a DOK X",
        build=_fitted,
        X=sparse.dok_matrix,
        call=lambda i: i["model"].predict(X=i["X"], Z=i["Z"]),
        check=lambda i, p: np.testing.assert_allclose(p, _reference().predict(X=_data()[1], Z=_data()[2]), atol=1e-10),
    ),
    _case(
        NAN,
        "refitting a fitted model on bad data leaves it as it was",
        build=_fitted,
        Y=lambda m: _set(m, (0, 0), np.inf),
        call=lambda i: i["model"].fit(i["Y"], i["X"], i["Z"]),
        error=ValueError,
        match=r"response Y contains 1 NaN or infinite",
    ),
]


# non-canonical and corrupt sparse structure: canonicalised on a copy, or refused before any work
def _corrupt(edit, fmt=sparse.csr_matrix):
    def change(matrix):
        corrupt = fmt(np.asarray(matrix, dtype=np.float64))
        edit(corrupt)
        return corrupt

    return change


def _set_item(name, position, value):
    def edit(matrix):
        getattr(matrix, name)[position] = value

    return edit


def _swap_indptr(matrix):
    matrix.indptr[3], matrix.indptr[4] = matrix.indptr[4], matrix.indptr[3] + 1


def _h5_csr(tmp, edit=None, matrix_of=lambda X: sparse.csr_matrix(X)):
    """X stored as a CSR group in an HDF5 file (anndata's layout), optionally edited on disk."""
    import h5py

    inputs = _inputs()
    X = matrix_of(inputs["X"])
    path = tmp / "x.h5"
    with h5py.File(path, "w") as handle:
        group = handle.create_group("X")
        group.attrs["encoding-type"], group.attrs["shape"] = "csr_matrix", X.shape
        for name in ("data", "indices", "indptr"):
            group[name] = getattr(X, name)
        if edit is not None:
            edit(group)
    return {**inputs, "file": path}


def _fit_h5(inputs):
    import h5py

    from lmf_omics._core.backends import StreamedMatrix

    with h5py.File(inputs["file"], "r") as handle:
        return _fit({**inputs, "X": StreamedMatrix(handle["X"], chunk_nnz=64)})


def _edit_h5(name, position, value):
    def edit(group):
        group[name][position] = value

    return edit


SPARSE = "sparse format"
CASES += [
    _case(SPARSE, "CSR with every entry stored twice (halves)", X=split_entries, check=_same_fit_as_float64),
    _case(
        SPARSE,
        "CSR with a few split entries, unsorted",
        X=partial(split_entries, fraction=0.05, shuffle=True),
        check=_same_fit_as_float64,
    ),
    _case(SPARSE, "CSC with split entries", X=partial(split_entries, fmt="csc"), check=_same_fit_as_float64),
    _case(
        SPARSE,
        "COO with repeated coordinates",
        X=lambda m: sparse.coo_matrix(split_entries(m).tocoo(copy=True)),
        check=_same_fit_as_float64,
    ),
    _case(
        SPARSE,
        "CSR column index beyond the shape (segfaulted)",
        X=_corrupt(_set_item("indices", 3, 10**6)),
        error=ValueError,
        match=r"fixed-effect data X is a corrupt CSR matrix: column index 1000000 of row 0 is outside 0\.\.11",
    ),
    _case(
        SPARSE,
        "CSR negative column index",
        X=_corrupt(_set_item("indices", 0, -3)),
        error=ValueError,
        match=r"corrupt CSR matrix: column index -3 of row 0 is outside",
    ),
    _case(
        SPARSE,
        "CSR with a decreasing indptr",
        X=_corrupt(_swap_indptr),
        error=ValueError,
        match=r"fixed-effect data X is a corrupt CSR matrix: indptr decreases after row 3",
    ),
    _case(
        SPARSE,
        "CSR indptr beyond the stored values",
        X=_corrupt(_set_item("indptr", -1, 10**6)),
        error=ValueError,
        match=r"corrupt CSR matrix: indptr runs from 0 to 1000000, not from 0 to at most",
    ),
    _case(
        SPARSE,
        "CSC row index beyond the shape",
        X=_corrupt(_set_item("indices", 1, 40), fmt=sparse.csc_matrix),
        error=ValueError,
        match=r"corrupt CSC matrix: row index 40 of column 0 is outside 0\.\.39",
    ),
    _case(
        SPARSE,
        "COO row beyond the shape",
        Y=_corrupt(_set_item("row", 2, 99), fmt=sparse.coo_matrix),
        error=ValueError,
        match=r"response Y is a corrupt COO matrix: row index 99 of stored entry 2 is outside 0\.\.39",
    ),
    _case(
        SPARSE,
        "BSR block index beyond the shape",
        X=_corrupt(_set_item("indices", 0, 50), fmt=lambda m: sparse.bsr_matrix(m, blocksize=(2, 2))),
        error=ValueError,
        match=r"corrupt BSR matrix: block column index 50 of block row 0 is outside 0\.\.5",
    ),
    Case(
        ENTRY,
        SPARSE,
        "streamed CSR group whose indices were edited on disk",
        partial(_h5_csr, edit=_edit_h5("indices", 5, 10**6)),
        _fit_h5,
        error=ValueError,
        match=r"the matrix '/X' in the file '.*x.h5' is a corrupt CSR matrix: column index 1000000 of row \d+",
    ),
    Case(
        ENTRY,
        SPARSE,
        "streamed CSR group with a decreasing indptr",
        partial(_h5_csr, edit=_edit_h5("indptr", 3, 10**5)),
        _fit_h5,
        error=ValueError,
        match=r"the matrix '/X' in the file '.*x.h5' is a corrupt CSR matrix: indptr (decreases|runs)",
    ),
    Case(
        ENTRY,
        SPARSE,
        "streamed CSR group with split entries",
        partial(_h5_csr, matrix_of=split_entries),
        _fit_h5,
        check=_same_fit_as_float64,
    ),
    _case(
        "dtype",
        "Y as a DataFrame with a complex column",
        Y=lambda m: pd.DataFrame(m).assign(extra=m[:, 0] + 1j),
        error=ValueError,
        match=r"response Y has non-numeric columns \['extra'\]",
    ),
]
