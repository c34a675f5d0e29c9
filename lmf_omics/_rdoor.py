"""The conversions behind :mod:`lmf_omics.r`: R values in, an AnnData for ``tl``, plain values out.

Matrices come as R stores them, **features × cells** (``cells_in="columns"``, the default), like
the assays of a SingleCellExperiment. A ``dgCMatrix`` arrives as a scipy CSC matrix and is used
through its transpose, a CSR view with cells as rows (no copy, never densified).
``cells_in="rows"`` takes cells × features (reducedDims, data frames); it may be a dict by role.

What reticulate 1.28 delivers (checked from R 4.2 with NumPy 1.26)
    R ``NA`` is ``NaN`` in double vectors and matrices, ``-2147483648`` in integer ones (int32)
    and data-frame columns; both are reported here as missing values, with the first cell and
    feature named. In a *data frame*, a factor's ``NA`` arrives as a missing pandas category,
    but a character ``NA`` arrives as the string ``"NA"`` and a logical ``NA`` as ``TRUE``: the
    R package therefore turns character and logical columns into factors before sending them.
    Dimnames do not cross: pass ``cell_names`` and ``feature_names``. A length-one character
    vector arrives as a string, and R numbers as floats (``10`` for ``n_factors`` is accepted).
    The way back: every array returned here is a dense float64 numpy array (an R matrix), every
    name list a Python list of strings (a character vector); reticulate 1.28 cannot turn scipy ≥
    1.11 sparse matrices into R ones, so :func:`sparse_parts` gives the slots of a ``dgCMatrix``.

Every modality of a fit from R is an ``obsm`` matrix or ``obs`` columns, so the whole fit lives in
``uns["lmf"]``: :func:`fit` returns it as a JSON string (``model``), which :func:`transform` and
:func:`predict` turn back into a reference AnnData for ``tl.transform`` / ``tl.predict``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from . import get, tl
from ._core.validation import _first_position, canonical_sparse
from ._keys import Keys
from .r import _message, model_options

KEY = "lmf"
R_INTEGER_NA = np.iinfo(np.int32).min
ORIENTATIONS = ("columns", "rows")
INTEGER_OPTIONS = ("n_factors", "max_iter", "random_state", "n_pcs", "cv_folds", "n_jobs")
NA_HELP = "drop those cells (in R: sce[, keep]) or impute the values before fitting"


def fit(
    response,
    fixed,
    random=None,
    *,
    cell_names: Sequence[str] | str | None = None,
    feature_names: Mapping[str, Sequence[str] | str | None] | None = None,
    labels: Mapping[str, str] | None = None,
    cells_in: str | Mapping[str, str] = "columns",
    **options,
) -> dict:
    """Fit Linear Mixed Forms on modalities passed from R; return the result as plain values.

    Parameters
    ----------
    response, fixed, random
        Each either a matrix — a numpy array (an R matrix, double, integer or logical) or a
        scipy sparse matrix (a ``dgCMatrix``) — oriented as ``cells_in`` says, or a table of
        per-cell covariates: a pandas DataFrame (an R ``data.frame``) or a dict of columns (a
        named list), numeric columns used as they are, categorical, string and boolean columns
        one-hot encoded. ``random=None`` fits without random effects.
    cell_names
        Names of the cells (R: ``colnames(sce)``); default ``"1"``, ``"2"``, ...
    feature_names
        Dict from role to the feature names of a matrix modality (R: ``rownames(assay)``);
        default ``"<role>1"``, ... Tables name their features after their columns.
    labels
        Dict from role to how the R user named the modality (e.g. ``'altExp(x, "ADT")'``): errors
        name modalities by these words; default the role.
    cells_in
        ``"columns"`` (features × cells, Bioconductor) or ``"rows"`` (cells × features), or a
        dict from role to either.
    **options
        The options of :func:`lmf_omics.tl.lmf` (``lmf_omics.r.model_options()`` lists them);
        integer-valued floats are accepted for the integer ones.

    Returns
    -------
    dict
        See :func:`result`; ``model`` holds the whole fit for :func:`transform` and :func:`predict`.
    """
    options = _options(options, tuple(model_options()))
    given = _given(response, fixed, random)
    data = _FromR(given, labels, cells_in, cell_names, feature_names)
    _check_cells(data.cells)
    adata = data.anndata({role: role for role in data.matrices})
    specs = data.specs({role: role for role in data.matrices})
    with in_r_words({f"{role}={spec!r}": data.labels[role] for role, spec in specs.items()}):
        tl.lmf(adata, **specs, **options, progress=False)
    out = result(adata, features=data.features, labels=data.labels)
    out["model"] = _model_json(adata, data.features)
    return out


def transform(
    model: str,
    response=None,
    fixed=None,
    random=None,
    *,
    cell_names=None,
    feature_names=None,
    labels=None,
    cells_in="columns",
) -> dict:
    """Codes of new cells under a fit from :func:`fit` (its ``model``): ``tl.transform``.

    The modalities are given as to :func:`fit` (any of them; the features of matrices matched by
    name, covariate levels by value). Returns ``codes``, ``fixed_codes``, ``random_codes`` and
    ``cell_names``.
    """
    stored, query, adata = _query(model, _given(response, fixed, random), labels, cells_in, cell_names, feature_names)
    with in_r_words(stored.r_words(query.labels)):
        tl.transform(adata, stored.reference, key=KEY)
    return {**_codes(adata, KEY), "cell_names": query.cells}


def predict(
    model: str, fixed=None, random=None, *, cell_names=None, feature_names=None, labels=None, cells_in="columns"
):
    """The response predicted for new cells from their fixed and random modalities: ``tl.predict``.

    Returns ``predicted`` (cells × response features, dense), ``feature_names`` (the response's,
    as fitted) and ``cell_names``.
    """
    stored, query, adata = _query(model, _given(None, fixed, random), labels, cells_in, cell_names, feature_names)
    with in_r_words(stored.r_words(query.labels)):
        tl.predict(adata, stored.reference, key=KEY)
    return {
        "predicted": _dense(adata.obsm[Keys(KEY).predicted].to_numpy()),
        "feature_names": stored.features["response"],
        "cell_names": query.cells,
    }


def fit_h5ad(path: str, response: str, fixed: str, random: str | None = None, **options) -> dict:
    """Read an ``.h5ad`` file, fit :func:`lmf_omics.tl.lmf` on it and return the result.

    ``response``, ``fixed`` and ``random`` are AnnData modality specs (``"X"``,
    ``"layer:<name>"``, ``"obsm:<key>"``, ``"obs:<col>"``, ...); ``options`` as in :func:`fit`,
    plus ``mask_var``. The file is only read.
    """
    from ._io import read_h5ad

    options = _options(options, (*model_options(), "mask_var"))
    adata = read_h5ad(path, "file")
    tl.lmf(adata, response=response, fixed=fixed, random=random, **options, progress=False)
    return result(adata)


def result(adata: AnnData, key: str = KEY, *, features=None, labels=None) -> dict:
    """A fit stored by :func:`lmf_omics.tl.lmf`, as values reticulate converts cleanly.

    Keys: ``codes`` (K + H), ``fixed_codes`` (K), ``random_codes`` (H or ``None``), cells × k;
    ``cell_names``; ``factor_names`` (``Factor1`` ...); ``loadings`` and ``feature_names`` by
    role (features × k, in the order fitted); ``variance_explained`` (R² per factor, by role);
    ``total_variance_explained``; ``objective_history``; ``n_iter``; ``converged``; ``params``.
    """
    stored = get.results(adata, key)
    features = {**get.features(adata, key), **(features or {})}
    k = int(stored["params"]["n_factors"])
    loadings = {role: get.loadings(adata, key, role=role).to_numpy() for role in stored["modalities"]}
    params = {name: _plain(value) for name, value in stored["params"].items()}
    params.update({role: label for role, label in (labels or {}).items()})
    return {
        **_codes(adata, key),
        "cell_names": [str(name) for name in adata.obs_names],
        "factor_names": [f"Factor{i + 1}" for i in range(k)],
        "loadings": {role: _dense(values) for role, values in loadings.items()},
        "feature_names": {role: [str(name) for name in features[role]] for role in loadings},
        "variance_explained": {role: _floats(v) for role, v in stored["variance_explained"].items()},
        "total_variance_explained": {name: float(v) for name, v in stored["total_variance_explained"].items()},
        "objective_history": _floats(stored["objective_history"]),
        "n_iter": int(stored["n_iter"]),
        "converged": bool(stored["converged"]),
        "params": params,
    }


def _codes(adata: AnnData, key: str) -> dict:
    """``codes`` (K + H), ``fixed_codes`` (K) and ``random_codes`` (H or ``None``) stored under ``key``, dense."""
    keys = Keys(key)
    stored = (("codes", keys.combined), ("fixed_codes", keys.fixed), ("random_codes", keys.random))
    return {name: None if obsm_key not in adata.obsm else _dense(adata.obsm[obsm_key]) for name, obsm_key in stored}


def sparse_parts(matrix, *, transpose: bool = False) -> dict:
    """The slots of an R ``dgCMatrix`` for ``Matrix::sparseMatrix(i=, p=, x=, dims=, index1=FALSE)``.

    reticulate 1.28 cannot convert scipy ≥ 1.11 sparse matrices to R itself. ``transpose=True``
    gives the transpose (e.g. AnnData's cells × genes ``X`` as a genes × cells assay); with a CSR
    matrix that is its CSC transpose, without conversion. Never densifies.
    """
    if not sparse.issparse(matrix):
        raise TypeError(f"sparse_parts needs a scipy sparse matrix, got {type(matrix).__name__}")
    csc = sparse.csc_matrix(matrix.T if transpose else matrix)
    if not csc.has_sorted_indices:
        csc = csc.sorted_indices()
    if csc.nnz > np.iinfo(np.int32).max:
        raise ValueError(f"the matrix has {csc.nnz} stored values; an R dgCMatrix holds at most 2^31 - 1")
    return {
        "i": csc.indices.astype(np.int32),
        "p": csc.indptr.astype(np.int32),
        "x": csc.data.astype(np.float64),
        "dim": [int(n) for n in csc.shape],
    }


# ------------------------------------------------------------------------------ R words
@contextmanager
def in_r_words(words: Mapping[str, str]):
    """Re-raise errors with Python's names of the modalities (``response='obsm:response'``) in the R user's."""
    try:
        yield
    except Exception as error:
        message = _message(error)
        translated = message
        for python, r_words in words.items():
            translated = translated.replace(python, r_words)
        if translated == message:
            raise
        raise _same_kind(error, translated) from None


def _same_kind(error: Exception, message: str) -> Exception:
    try:
        return type(error)(message)
    except Exception:  # an exception class with another constructor
        return ValueError(message)


# ------------------------------------------------------------------------------ conversion
class _FromR:
    """The modalities of one call from R: matrices (cells × features), covariate tables, names, labels."""

    def __init__(self, given: dict, labels, cells_in, cell_names, feature_names):
        self.labels = {role: str((labels or {}).get(role) or role) for role in given}
        orientation = _orientations(cells_in, given)
        features = {role: _names((feature_names or {}).get(role)) for role in given}
        self.matrices, self.tables = {}, {}
        for role, value in given.items():
            if _is_table(value):
                self.tables[role] = _table(value, self.labels[role])
            else:
                self.matrices[role] = _matrix(value, self.labels[role], orientation[role])
        self.cells = _cell_names(cell_names, _n_cells(self.matrices, self.tables, self.labels))
        self.features = {}
        for role, matrix in self.matrices.items():
            self.features[role] = _feature_names(features[role], matrix.shape[1], role, self.labels[role])
            _check_missing(matrix, self.labels[role], self.cells, self.features[role])
        for role, table in self.tables.items():
            _check_missing_columns(table, self.labels[role], self.cells)

    def specs(self, obsm_keys: Mapping[str, str]) -> dict[str, str]:
        specs = {role: f"obsm:{obsm_keys[role]}" for role in self.matrices}
        specs.update({role: f"obs:{','.join(table.columns)}" for role, table in self.tables.items()})
        return specs

    def anndata(self, obsm_keys: Mapping[str, str], matrices: Mapping | None = None) -> AnnData:
        obs = pd.DataFrame(index=pd.Index(self.cells, dtype=object))
        for frame in self.tables.values():
            for column in frame.columns:
                values = frame[column].set_axis(obs.index)  # a categorical keeps its levels in order
                if column in obs and not obs[column].equals(values):
                    raise ValueError(f"column {column!r} appears in two modalities with different values; rename one")
                obs[column] = values
        adata = AnnData(obs=obs)
        for role, matrix in (matrices or self.matrices).items():
            adata.obsm[obsm_keys[role]] = matrix
        return adata


class _Stored:
    """A fit from :func:`fit`, read back from its JSON: the reference AnnData, its specs and R feature names."""

    def __init__(self, model: str):
        try:
            stored = json.loads(model)
            fit, self.features = stored["fit"], stored["features"]
        except (TypeError, ValueError, KeyError):
            raise ValueError(
                "model is not a fit made by lmf_omics.r.fit (in R: metadata(sce)$LMF$model from runLMF)"
            ) from None
        self.reference = AnnData(uns={KEY: fit})
        self.specs = {role: str(entry["spec"]) for role, entry in fit["modalities"].items()}

    def obsm_key(self, role: str) -> str:
        return self.specs[role].partition(":")[2]

    def r_words(self, labels: Mapping[str, str]) -> dict[str, str]:
        return {f"{role}={self.specs[role]!r}": label for role, label in labels.items() if role in self.specs}


def _query(model, given, labels, cells_in, cell_names, feature_names) -> tuple[_Stored, _FromR, AnnData]:
    """The stored fit and the query as an AnnData holding the fit's keys, features in the fit's order."""
    stored = _Stored(model)
    unknown = sorted(set(given) - set(stored.specs))
    if unknown:
        raise ValueError(f"the fit has no {unknown} modality; give only {sorted(stored.specs)}")
    if not given:
        raise ValueError("give the query at least one modality of the fit")
    data = _FromR(given, labels, cells_in, cell_names, feature_names)
    for role, table in data.tables.items():
        columns = stored.specs[role].partition(":")[2].split(",")
        if list(table.columns) != columns:
            raise ValueError(f"{data.labels[role]} has columns {list(table.columns)}; the fit used {columns}")
    aligned = {
        role: _aligned(matrix, data.features[role], stored.features[role], data.labels[role])
        for role, matrix in data.matrices.items()
    }
    adata = data.anndata({role: stored.obsm_key(role) for role in aligned}, aligned)
    return stored, data, adata


def _aligned(matrix, names: list[str], fitted: list[str], label: str):
    """The columns of ``matrix`` named ``fitted``, in that order; an error lists missing or repeated names."""
    index = pd.Index(names)
    repeated = sorted(set(index[index.duplicated()]) & set(fitted))
    if repeated:
        raise ValueError(f"{label} names {len(repeated)} of the fit's features more than once, e.g. {repeated[:10]}")
    position = {name: i for i, name in enumerate(names)}  # repeated names the fit does not use are harmless
    positions = np.array([position.get(name, -1) for name in fitted])
    missing = [name for name, i in zip(fitted, positions) if i < 0]
    if missing:
        raise ValueError(
            f"{label} lacks {len(missing)} of the {len(fitted)} features the fit used, e.g. {missing[:10]}; "
            "give the query the same features (names matched)"
        )
    if np.array_equal(positions, np.arange(matrix.shape[1])):
        return matrix
    return matrix[:, positions]


def _model_json(adata: AnnData, features: dict[str, list[str]]) -> str:
    """``uns["lmf"]`` and the R feature names of the matrices, as JSON (floats round-trip exactly)."""
    return json.dumps({"fit": adata.uns[KEY], "features": features}, default=_jsonable)


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in the model")


def _given(response, fixed, random) -> dict:
    given = {"response": response, "fixed": fixed, "random": random}
    return {role: value for role, value in given.items() if value is not None}


def _check_cells(cells: list[str]) -> None:
    if len(cells) < 2:
        raise ValueError(f"the modalities have {len(cells)} cell(s); LMF needs at least 2")


def _matrix(value, label: str, cells_in: str):
    """A modality matrix as cells × features (a transposed view for R's features × cells)."""
    if not sparse.issparse(value):
        value = np.asarray(value)
        if value.ndim != 2:
            raise ValueError(f"{label} must be a matrix or a data frame, got an array of shape {value.shape}")
        if value.dtype.kind not in "biuf":
            raise ValueError(f"{label} must be numeric, got dtype {value.dtype}; convert it to numbers first")
    else:  # a corrupt dgCMatrix (index beyond the shape, decreasing p) is refused before scipy reads it
        value = canonical_sparse(value, label)
        if value.format not in ("csr", "csc"):
            value = value.tocsc()
    return value.T if cells_in == "columns" else value


def _table(value, label: str) -> pd.DataFrame:
    if isinstance(value, pd.DataFrame):
        frame = value.copy()
    else:
        frame = pd.DataFrame({str(name): _column(column) for name, column in value.items()})
    frame.columns = [str(c) for c in frame.columns]
    if frame.shape[1] == 0:
        raise ValueError(f"{label} has no columns; name at least one covariate")
    bad = [c for c in frame.columns if "," in c or c != c.strip() or not c]
    if bad:
        raise ValueError(
            f"{label}: column names may not be empty, contain ',' or start or end with a space ({bad}); "
            "rename them (in R: names(df) <- make.names(trimws(names(df))))"
        )
    return frame.reset_index(drop=True)


def _check_missing_columns(frame: pd.DataFrame, label: str, cells: list[str]) -> None:
    """Report R's NA in covariates: missing values, and the int32 minimum in integer columns."""
    for column in frame.columns:
        values = frame[column]
        missing = values.isna().to_numpy()
        if pd.api.types.is_integer_dtype(values):  # not in place: pandas 3 hands out read-only arrays
            missing = missing | (values.to_numpy() == R_INTEGER_NA)
        if missing.any():
            raise ValueError(
                f"{label}: column {column!r} has {int(missing.sum())} missing value(s) (R NA), the first for "
                f"cell {cells[np.flatnonzero(missing)[0]]!r}; {NA_HELP}, or make NA a level of its own"
            )


def _check_missing(matrix, label: str, cells: list[str], features: list[str]) -> None:
    """Report R's NA (NaN in doubles, the int32 minimum in integers) and Inf by count and first position."""
    values = matrix.data if sparse.issparse(matrix) else matrix
    if values.dtype.kind not in "fi":
        return
    missing = np.isnan(values) if values.dtype.kind == "f" else values == R_INTEGER_NA
    infinite = np.isinf(values) if values.dtype.kind == "f" else np.zeros_like(missing)
    for flagged, what, fix in (
        (missing, "missing value(s) (R NA)", NA_HELP),
        (infinite, "infinite value(s) (R Inf)", "replace them with finite numbers"),
    ):
        if flagged.any():
            row, col = _first_position(matrix, flagged)
            raise ValueError(
                f"{label} has {int(flagged.sum())} {what}, the first for cell {cells[row]!r} and "
                f"feature {features[col]!r}; {fix}"
            )


def _n_cells(matrices: dict, tables: dict, labels: dict[str, str]) -> int:
    counts = {role: m.shape[0] for role, m in matrices.items()} | {role: len(t) for role, t in tables.items()}
    if len(set(counts.values())) > 1:
        listing = ", ".join(f"{labels[role]}: {n}" for role, n in counts.items())
        raise ValueError(f"modalities must describe the same cells; got cell counts {listing} (check cells_in)")
    return next(iter(counts.values()))


def _cell_names(names, n_cells: int) -> list[str]:
    names = _names(names)
    if names is None:
        return [str(i + 1) for i in range(n_cells)]
    if len(names) != n_cells:
        raise ValueError(f"cell_names has {len(names)} names for {n_cells} cells; pass one name per cell")
    return names


def _feature_names(names, n_features: int, role: str, label: str) -> list[str]:
    if names is None:
        return [f"{role}{i + 1}" for i in range(n_features)]
    if len(names) != n_features:
        raise ValueError(f"feature_names[{role!r}] has {len(names)} names but {label} has {n_features} features")
    return names


def _orientations(cells_in, given: dict) -> dict[str, str]:
    chosen = (
        {role: cells_in.get(role, "columns") for role in given}
        if isinstance(cells_in, Mapping)
        else (dict.fromkeys(given, cells_in))
    )
    for role, value in chosen.items():
        if value not in ORIENTATIONS:
            raise ValueError(f"cells_in for {role} must be one of {ORIENTATIONS}, got {value!r}")
    return chosen


def _options(options: dict, allowed: Sequence[str]) -> dict:
    """Known option names only; integer-valued R numbers (``10`` is a double in R) to ints."""
    unknown = set(options) - set(allowed)
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)}; the options are {sorted(allowed)}")
    converted = dict(options)
    for name in INTEGER_OPTIONS:
        value = converted.get(name)
        if isinstance(value, float) and value.is_integer():
            converted[name] = int(value)
    if converted.get("weights") is not None:
        converted["weights"] = {
            str(role): _number(w, f"weights[{str(role)!r}]") for role, w in dict(converted["weights"]).items()
        }
    return converted


def _number(value, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None


def _is_table(value) -> bool:
    return isinstance(value, (pd.DataFrame, Mapping))


def _column(values):
    """A named-list entry as a column; a length-one R vector arrives as a scalar."""
    return [values] if np.ndim(values) == 0 else values


def _names(names) -> list[str] | None:
    if names is None:
        return None
    return [names] if isinstance(names, str) else [str(name) for name in names]


def _dense(array) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float64)


def _floats(values) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def _plain(value):
    """Numbers, strings and dicts of them as plain Python values (R scalars and named lists)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value.item() if isinstance(value, np.generic) else value
