"""Read a modality named by a spec string from an AnnData or a MuData; the only place specs are parsed.

Specs of an AnnData: ``"X"``, ``"raw"``, ``"layer:<name>"``, ``"obsm:<key>"`` (array, sparse or
DataFrame) and ``"obs:<col>[,<col>...]"`` (numeric columns as they are; categorical, string and
boolean columns one-hot encoded, sparse). Specs of a MuData name a modality first:
``"<mod>"`` (its X), ``"<mod>:<AnnData spec>"`` (``"rna:layer:counts"``, ``"rna:obsm:X_pca"``,
``"rna:obs:batch"``), or the MuData's own ``"obs:<col>..."`` and ``"obsm:<key>"``. A MuData
modality is read over all of the MuData's cells (the union, as muon does), aligned by obs
names; its cells that the modality lacks are unobserved in it. Nothing is copied except what a
feature mask selects, the one-hot encoding and that row alignment; nothing is densified. Every
problem is reported before any fitting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from ._core.backends import StreamedMatrix, is_on_disk
from ._core.validation import canonical_sparse

SPEC_HELP = "use 'X', 'raw', 'layer:<name>', 'obsm:<key>' or 'obs:<col>[,<col>...]'"
MUDATA_SPEC_HELP = (
    "use '<mod>' (its X), '<mod>:layer:<name>', '<mod>:obsm:<key>', '<mod>:obs:<col>', '<mod>:raw', "
    "or the MuData's own 'obs:<col>[,<col>...]' / 'obsm:<key>'"
)
SLOTS = ("X", "raw", "layer", "obsm", "obs")  # the AnnData slots a spec can name


class MissingKeyError(KeyError):
    """A key the user named is not there; the message lists what is."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Spec:
    """A parsed spec.

    The MuData ``modality`` (``None`` for an AnnData or the MuData's own obs/obsm), the AnnData
    ``slot`` (one of :data:`SLOTS`) and its ``name`` (layer, obsm key or obs columns).
    """

    text: str
    slot: str
    name: str = ""
    modality: str | None = None

    @property
    def var_aligned(self) -> bool:
        """Whether the features are the rows of a ``var`` (``X`` and layers)."""
        return self.slot in ("X", "layer")

    @property
    def columns(self) -> list[str]:
        """The obs columns of an ``obs`` spec."""
        return [c.strip() for c in self.name.split(",")]

    @property
    def local(self) -> str:
        """The spec within its AnnData (``"layer:counts"`` for ``"rna:layer:counts"``)."""
        return self.slot if self.slot in ("X", "raw") else f"{self.slot}:{self.name}"


def parse_spec(spec, *, role: str, modalities=None) -> Spec:
    """Parse ``spec``; ``modalities`` are a MuData's modality names (``None`` for an AnnData)."""
    if not isinstance(spec, str):
        help_ = SPEC_HELP if modalities is None else MUDATA_SPEC_HELP
        raise TypeError(f"{role} must be a modality spec string, got {type(spec).__name__}; {help_}")
    if modalities is None:
        parsed = _parse_local(spec)
        if parsed is None:
            raise ValueError(f"{role}={spec!r} is not a modality spec; {SPEC_HELP}")
        return parsed
    head, _, rest = spec.partition(":")
    if head in ("obs", "obsm") and rest:  # the MuData's own obs and obsm come first
        return Spec(spec, head, rest)
    if head in modalities:
        parsed = _parse_local(rest or "X")
        if parsed is not None:
            return Spec(spec, parsed.slot, parsed.name, head)
        raise ValueError(f"{role}={spec!r}: {rest!r} is not a slot of modality {head!r}; {MUDATA_SPEC_HELP}")
    raise ValueError(
        f"{role}={spec!r} names no modality of the MuData (modalities: {sorted(modalities)}); {MUDATA_SPEC_HELP}"
    )


def _parse_local(spec: str) -> Spec | None:
    """An AnnData spec, or ``None`` if ``spec`` is not one."""
    if spec in ("X", "raw"):
        return Spec(spec, spec)
    slot, _, name = spec.partition(":")
    return Spec(spec, slot, name) if slot in ("layer", "obsm", "obs") and name else None


@dataclass(frozen=True)
class Modality:
    """A modality's matrix (cells × features) and where it came from.

    ``var_mask`` is the boolean mask over the holder's ``var`` for var-aligned modalities (``X``
    and layers), ``None`` otherwise. For a MuData modality, ``holder`` names it and ``observed``
    marks the MuData's cells it has (``None``: all of them).
    """

    spec: str
    matrix: np.ndarray | sparse.spmatrix
    features: np.ndarray
    var_mask: np.ndarray | None
    observed: np.ndarray | None = None
    holder: str | None = None

    @property
    def var_aligned(self) -> bool:
        return self.var_mask is not None


def read_modality(data, spec: str, *, role: str, mask_var=None) -> Modality:
    """Read ``spec`` from an AnnData or a MuData, restricted to ``mask_var`` (var-aligned modalities only)."""
    parsed = parse_spec(spec, role=role, modalities=modality_names(data))
    if parsed.modality is None:
        return _read_local(data, parsed, role, mask_var)
    modality = _read_local(data.mod[parsed.modality], parsed, role, mask_var)
    positions, present = cell_positions(data, parsed.modality, f"{role}={spec!r}")
    matrix = modality.matrix if present is None else take_rows(modality.matrix, positions, f"{role}={spec!r}")
    return replace(modality, matrix=matrix, observed=present, holder=parsed.modality)


def _read_local(adata, parsed: Spec, role: str, mask_var) -> Modality:
    """``parsed`` from one AnnData (or a MuData's own obs and obsm)."""
    spec, label = parsed.text, f"{role}={parsed.text!r}"
    if parsed.slot == "X":
        matrix, features = adata.X, adata.var_names
        if matrix is None:
            raise ValueError(f"{label}: adata.X is None; name a layer or obsm key instead")
    elif parsed.slot == "raw":
        if adata.raw is None:
            raise ValueError(f"{label}: adata.raw is None; use 'X' or a layer instead")
        matrix, features = adata.raw.X, adata.raw.var_names
    elif parsed.slot == "layer":
        matrix, features = _lookup(adata.layers, parsed.name, "adata.layers", label), adata.var_names
    elif parsed.slot == "obsm":
        matrix, features = _read_obsm(adata, parsed.name, label)
    else:
        matrix, features = _read_obs(adata, obs_columns(parsed.name, adata.obs), label)
    matrix = sound_structure(matrix, label)
    features = np.asarray(features, dtype=str)
    if mask_var is None:
        return Modality(spec, matrix, features, np.ones(adata.n_vars, bool) if parsed.var_aligned else None)
    if not parsed.var_aligned:
        raise ValueError(f"{label}: mask_var applies to var-aligned modalities ('X', 'layer:<name>') only")
    mask = resolve_mask(adata, mask_var, label)
    return Modality(spec, select_columns(matrix, mask), features[mask], mask)


def check_unique_features(modality: Modality, label: str) -> None:
    """A fitted modality names each feature once: new cells are matched to the fit by these names."""
    names = pd.Index(modality.features)
    if not names.is_unique:
        repeated = sorted(set(names[names.duplicated()]))
        hint = "adata.var_names_make_unique()" if modality.var_aligned else "rename the columns"
        raise ValueError(
            f"{label} names {len(repeated)} feature(s) more than once, e.g. {repeated[:10]}; new cells are matched to "
            f"the fit by name, so make them unique first ({hint}) or leave the copies out with mask_var"
        )


def sound_structure(matrix, label: str):
    """A sparse matrix checked (corrupt: an error) and canonical (a copy if not) before it is sliced or used."""
    return canonical_sparse(matrix, label) if sparse.issparse(matrix) else matrix


def select_columns(matrix, columns):
    """``matrix[:, columns]`` (a boolean mask or positions in any order).

    A backed matrix stays on disk, its columns picked from each chunk as it is read.
    """
    return StreamedMatrix(matrix, columns=columns) if is_on_disk(matrix) else matrix[:, columns]


def resolve_mask(adata: AnnData, mask_var, label: str) -> np.ndarray:
    """A boolean mask over ``adata.var`` from a ``var`` column name or a boolean array."""
    mask = _boolean(adata.var, mask_var, adata.n_vars, "adata.var", f"{label} mask_var")
    if not mask.any():
        raise ValueError(f"{label}: mask_var selects no features")
    return mask


def resolve_observed(adata: AnnData, observed, label: str) -> np.ndarray:
    """A boolean mask over ``adata.obs`` (cells that have a modality) from an obs column name or array."""
    return _boolean(adata.obs, observed, adata.n_obs, "adata.obs", f"{label} observed")


def _boolean(frame: pd.DataFrame, value, length: int, where: str, label: str) -> np.ndarray:
    if isinstance(value, str):
        mask = np.asarray(_lookup(frame, value, where, label))
        if mask.dtype != bool:
            raise ValueError(f"{label}: column {value!r} must be boolean, got dtype {mask.dtype}")
        return mask
    mask = np.asarray(value)
    if mask.dtype != bool or mask.shape != (length,):
        raise ValueError(
            f"{label} must be a column name of {where} or a boolean array of length {length}, "
            f"got dtype {mask.dtype} and shape {mask.shape}"
        )
    return mask


def masks_for(roles: Mapping[str, str | None], mask_var, modalities=None) -> dict[str, object]:
    """Spread ``mask_var`` over roles: one mask for every var-aligned modality, or a role → mask dict.

    ``modalities`` are a MuData's modality names (``None`` for an AnnData).
    """
    if isinstance(mask_var, Mapping):
        unknown = set(mask_var) - set(roles)
        if unknown:
            raise ValueError(f"mask_var has unknown roles {sorted(unknown)}; use {sorted(roles)}")
        return dict(mask_var)
    if mask_var is None:
        return {}
    return {
        role: mask_var
        for role, spec in roles.items()
        if spec is not None and parse_spec(spec, role=role, modalities=modalities).var_aligned
    }


def _read_obsm(adata: AnnData, key: str, label: str):
    value = _lookup(adata.obsm, key, "adata.obsm", label)
    if isinstance(value, pd.DataFrame):
        return _frame_values(value, f"{label}: obsm DataFrame"), [str(c) for c in value.columns]
    if sparse.issparse(value) or isinstance(value, np.ndarray):
        if value.ndim != 2:
            raise ValueError(f"{label}: obsm[{key!r}] must be 2-D, got shape {value.shape}")
        return value, [f"{key}_{i}" for i in range(value.shape[1])]
    raise ValueError(
        f"{label}: obsm[{key!r}] is a {type(value).__name__}; expected an array, sparse matrix or DataFrame"
    )


def _frame_values(frame: pd.DataFrame, label: str) -> np.ndarray:
    """A numeric DataFrame as a float array: float32 if every column is, else float64; ``pd.NA`` as NaN."""
    numeric = frame.select_dtypes(include=["number", "bool"], exclude=["complex"])
    bad = [str(c) for c in frame.columns if c not in numeric.columns]
    if bad:
        raise ValueError(f"{label} has non-numeric columns {bad}; drop or encode them")
    single = len(frame.columns) and all(isinstance(d, np.dtype) and d == np.float32 for d in frame.dtypes)
    return frame.to_numpy(dtype=np.float32 if single else np.float64, na_value=np.nan)


def _read_obs(adata: AnnData, columns: list[str], label: str):
    check_distinct(columns, label)
    blocks, names = [], []
    for column in columns:
        values = _lookup(adata.obs, column, "adata.obs", label)
        check_obs_dtype(values, column, label)
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            blocks.append(_numeric_column(values, column, label, alone=len(columns) == 1)[:, None])
            names.append(column)
        else:
            block, levels = _one_hot(values, column, label)
            blocks.append(block)
            names.extend(f"{column}={level}" for level in levels)
    if any(sparse.issparse(b) for b in blocks):
        return sparse.hstack([sparse.csr_matrix(b) for b in blocks], format="csr"), names
    return np.hstack(blocks), names


def obs_columns(names: str, obs: pd.DataFrame) -> list[str]:
    """The columns of ``"obs:<col>[,<col>...]"``.

    Each name as written if ``obs`` has it, else without surrounding spaces (``"obs:batch, depth"``),
    so a column really named ``" batch"`` is found as itself.
    """
    return [part if part in obs.columns else part.strip() for part in names.split(",")]


def check_distinct(columns: list[str], label: str) -> None:
    """An obs spec names each column once (a repeated column is a repeated feature name)."""
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ValueError(f"{label} names the obs column(s) {repeated} more than once; name each column once")


def check_obs_dtype(values: pd.Series, column: str, label: str) -> None:
    """An obs column is numbers (real) or levels (strings, booleans, categories): nothing that reads as both.

    Complex numbers would lose their imaginary part; dates and durations, and numbers stored as
    ``object``, have no single string for a level (training and query cells would not match).
    """
    dtype = values.dtype
    categories = getattr(dtype, "categories", None)
    kind = (categories.dtype if categories is not None else dtype).kind
    fix = None
    if kind == "c":
        fix = "complex numbers; store the real part (or the real and imaginary parts as two columns)"
    elif kind in "mM" or isinstance(getattr(dtype, "subtype", None), np.dtype) or str(dtype).startswith("period"):
        fix = f"{dtype} values; convert them to numbers (e.g. days) or to strings (levels) first"
    elif kind == "O":
        kinds = {type(v).__name__ for v in values.dropna().unique() if not isinstance(v, str)}
        if kinds:
            fix = (
                f"object values that are not strings ({sorted(kinds)}); convert the column with "
                ".astype(float) for numbers or .astype(str).astype('category') for levels"
            )
    if fix is not None:
        raise ValueError(f"{label}: obs column {column!r} holds {fix}")


def level_name(level) -> str:
    """A level as a string, one rule for fit and query: integral numbers without ``.0`` (``3`` and ``3.0`` match)."""
    if isinstance(level, (bool, np.bool_)) or not isinstance(level, (int, float, np.integer, np.floating)):
        return str(level)
    return str(int(level)) if float(level).is_integer() else repr(float(level))


def _numeric_column(values: pd.Series, column: str, label: str, *, alone: bool) -> np.ndarray:
    """A numeric obs column as float64. Alone in its spec, a missing value marks a cell without the modality."""
    numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(numbers)
    if missing.all():
        raise ValueError(
            f"{label}: obs column {column!r} has no values (all {len(numbers)} are missing); fill it or leave it out"
        )
    infinite = np.isinf(numbers)
    if infinite.any():
        raise ValueError(
            f"{label}: obs column {column!r} has {int(infinite.sum())} infinite value(s), the first "
            f"for cell {values.index[np.flatnonzero(infinite)[0]]!r}; replace them with finite numbers"
        )
    if missing.any() and not alone:
        raise ValueError(
            f"{label}: obs column {column!r} has {int(missing.sum())} missing value(s), the first for cell "
            f"{values.index[np.flatnonzero(missing)[0]]!r}; fill them, or give the column a spec of its own "
            "(a cell without a value is then a cell without that modality)"
        )
    return numbers


def _one_hot(values: pd.Series, column: str, label: str):
    """Sparse indicator columns of the observed levels of a categorical, string or boolean column."""
    if values.isna().any():
        raise ValueError(
            f"{label}: obs column {column!r} has {int(values.isna().sum())} missing value(s); "
            "fill them (e.g. with an 'unknown' category) first"
        )
    categorical = pd.Categorical(values).remove_unused_categories()
    n = len(values)
    matrix = sparse.csr_matrix((np.ones(n), (np.arange(n), categorical.codes)), shape=(n, len(categorical.categories)))
    return matrix, [level_name(level) for level in categorical.categories]


def _lookup(container, key: str, where: str, label: str):
    if key not in container:
        available = sorted(str(k) for k in container.keys() if k is not None)  # anndata 0.13: layers[None] is X
        raise MissingKeyError(f"{label}: {key!r} not found in {where}; available: {available}")
    return container[key]


def read_aligned(data, spec: str, features, *, role: str) -> tuple[object, np.ndarray | None] | None:
    """Read ``spec`` from a query AnnData or MuData with the columns of a fit's ``features``, in that order.

    Returns ``(matrix, observed)`` or ``None`` when the query has no such slot (the modality is
    then absent). Features are matched by name; missing ones are an error that lists them. For
    ``obs`` specs the training levels are one-hot encoded again; a cell with a level not seen in
    training (or a missing value) is unobserved in this modality (``observed`` is ``False``), as
    is a MuData cell the modality lacks.
    """
    names = modality_names(data)
    if names is not None and spec.partition(":")[0] not in (*names, "obs", "obsm"):
        return None  # the query MuData lacks the modality
    parsed = parse_spec(spec, role=role, modalities=names)
    if parsed.modality is None:
        return _read_local_aligned(data, parsed, [str(f) for f in features], role)
    found = _read_local_aligned(data.mod[parsed.modality], parsed, [str(f) for f in features], role)
    if found is None:
        return None
    positions, present = cell_positions(data, parsed.modality, f"{role}={spec!r}")
    if present is None:
        return found
    matrix, observed = found
    observed = present if observed is None else present & take_rows(observed, positions, "")
    return take_rows(matrix, positions, f"{role}={spec!r}"), observed


def _read_local_aligned(adata, parsed: Spec, features: list[str], role: str):
    """:func:`read_aligned` in one AnnData (or a MuData's own obs and obsm)."""
    label, name = f"{role}={parsed.text!r}", parsed.name
    if parsed.slot == "X":
        return None if adata.X is None else (_columns(adata.X, adata.var_names, features, label), None)
    if parsed.slot == "layer":
        return (
            None if name not in adata.layers else (_columns(adata.layers[name], adata.var_names, features, label), None)
        )
    if parsed.slot == "raw":
        return None if adata.raw is None else (_columns(adata.raw.X, adata.raw.var_names, features, label), None)
    if parsed.slot == "obsm":
        if name not in adata.obsm:
            return None
        matrix, names = _read_obsm(adata, name, label)
        return _columns(matrix, pd.Index(names), features, label), None
    columns = obs_columns(parsed.name, adata.obs)
    if not all(c in adata.obs for c in columns):
        return None
    for column in columns:
        check_obs_dtype(adata.obs[column], column, label)
    return _encode_levels(adata, columns, features, label)


def modality_names(data) -> tuple[str, ...] | None:
    """A MuData's modality names; ``None`` for an AnnData."""
    return tuple(data.mod) if is_mudata(data) else None


def is_mudata(data) -> bool:
    """Whether ``data`` is a MuData (without importing mudata)."""
    return any(cls.__name__ == "MuData" and cls.__module__.startswith(("mudata", "muon")) for cls in type(data).__mro__)


def var_holder(data, spec: str, role: str = "spec"):
    """The AnnData whose ``var`` (and ``varm``) a var-aligned ``spec`` indexes: ``data`` or a MuData modality."""
    parsed = parse_spec(spec, role=role, modalities=modality_names(data))
    return data if parsed.modality is None else data.mod[parsed.modality]


def cell_positions(mdata, name: str, label: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Row of each MuData cell in modality ``name`` (0 where absent) and which cells it has.

    Matched by obs names; ``(arange, None)`` when the modality has every cell in the MuData's order.
    """
    cells, own = pd.Index(mdata.obs_names), pd.Index(mdata.mod[name].obs_names)
    for index, where in ((cells, "the MuData"), (own, f"modality {name!r}")):
        if not index.is_unique:
            raise ValueError(
                f"{label}: {where} names {int(index.duplicated().sum())} cell(s) more than once, e.g. "
                f"{str(index[index.duplicated()][0])!r}; cells are aligned by obs names: make them unique"
            )
    if cells.equals(own):
        return np.arange(len(cells)), None
    positions = own.get_indexer(cells)
    if (~own.isin(cells)).any():
        raise ValueError(
            f"{label}: modality {name!r} has cells the MuData does not list (e.g. "
            f"{str(own[~own.isin(cells)][0])!r}); run mdata.update() first"
        )
    present = positions >= 0
    return np.where(present, positions, 0), present


def take_rows(matrix, rows: np.ndarray, label: str):
    """``matrix[rows]`` (in memory; a MuData modality read over the MuData's cells)."""
    if is_on_disk(matrix):
        raise ValueError(f"{label}: a backed MuData modality cannot be aligned to the MuData's cells; load it first")
    return sparse.csr_matrix(matrix)[rows] if sparse.issparse(matrix) else np.asarray(matrix)[rows]


def _columns(matrix, names: pd.Index, features: list[str], label: str):
    """The columns named ``features``, in order; an error lists the missing ones (or repeated ones)."""
    matrix = sound_structure(matrix, label)
    index = column_positions(names, features, label)
    missing = [f for f, i in zip(features, index) if i < 0]
    if missing:
        raise ValueError(
            f"{label}: the query lacks {len(missing)} of the {len(features)} features the model was fitted on, "
            f"e.g. {missing[:10]}; give the query the same features (names matched)"
        )
    if np.array_equal(index, np.arange(matrix.shape[1])):
        return matrix
    return select_columns(matrix, index)


def column_positions(names, features: list[str], label: str) -> np.ndarray:
    """Position of each of ``features`` in ``names`` (-1 if absent).

    Repeated names the fit does not use are harmless; a repeated name among ``features`` is
    ambiguous: an error lists them.
    """
    names = pd.Index(names)
    positions = np.arange(len(names))
    if not names.is_unique:
        repeated = names.duplicated(keep=False)
        used = sorted({str(n) for n in names[repeated]} & set(features))
        if used:
            raise ValueError(
                f"{label}: the query names {len(used)} of the fit's features more than once, e.g. {used[:10]}; "
                "make the names unique (e.g. adata.var_names_make_unique()) or drop the copies"
            )
        names, positions = names[~repeated], positions[~repeated]
    found = names.get_indexer(features)
    return np.where(found < 0, -1, positions[found])


def _encode_levels(adata: AnnData, columns: list[str], features: list[str], label: str):
    """The training encoding again.

    Numeric columns as they are, one-hot columns of the training levels (``"col=level"``), sparse.
    A cell with a level the fit never saw, or a missing value, is unobserved.
    """
    n = adata.n_obs
    observed = np.ones(n, bool)
    rows, cols, values = [], [], []
    for column, (positions, levels) in _feature_sources(columns, features, label).items():
        if levels is None:  # a numeric column: one feature
            numbers = pd.to_numeric(adata.obs[column], errors="coerce").to_numpy(dtype=np.float64)
            finite = np.isfinite(numbers)
            observed &= finite
            rows.append(np.flatnonzero(finite))
            cols.append(np.full(rows[-1].size, positions[0]))
            values.append(numbers[finite])
            continue
        codes = _level_codes(adata.obs[column], levels)
        seen = codes >= 0
        observed &= seen
        rows.append(np.flatnonzero(seen))
        cols.append(np.asarray(positions)[codes[seen]])
        values.append(np.ones(rows[-1].size))
    matrix = sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, len(features))
    )
    return matrix, (None if observed.all() else observed)


def _feature_sources(columns: list[str], features: list[str], label: str) -> dict:
    """``{column: (feature positions, levels or None for a numeric column)}``.

    A feature that is itself a column's name is that numeric column (names may contain '='),
    else ``"<column>=<level>"``.
    """
    sources: dict[str, tuple[list[int], list[str] | None]] = {}
    by_length = sorted(columns, key=len, reverse=True)
    for position, feature in enumerate(features):
        if feature in columns:
            sources[feature] = ([position], None)
            continue
        column = next((c for c in by_length if feature.startswith(f"{c}=")), None)
        if column is None:
            raise ValueError(f"{label}: feature {feature!r} of the fit is not one of the columns {columns}")
        positions, levels = sources.setdefault(column, ([], []))
        positions.append(position)
        levels.append(feature[len(column) + 1 :])
    return sources


def _level_codes(values: pd.Series, levels: list[str]) -> np.ndarray:
    """Each cell's position in ``levels`` (the training levels, as strings).

    -1 for another or a missing value; only the column's distinct values are turned into strings.
    """
    categorical = pd.Categorical(values)
    names = [level_name(level) for level in categorical.categories]
    lookup = np.append(pd.Index(levels).get_indexer(names), -1)
    return lookup[categorical.codes]  # code -1 (missing) picks the appended -1


def level_groups(adata: AnnData, spec: str | None) -> np.ndarray | None:
    """For an ``obs`` spec with categorical columns: each cell's combination of their values as an integer.

    -1 where a value is missing; ``None`` for other specs (or only numeric columns): they have no levels.
    """
    source, _, name = (spec or "").partition(":")
    if source != "obs":
        return None
    columns = [c.strip() for c in name.split(",")]
    frame = adata.obs[[c for c in columns if c in adata.obs and not _numeric(adata.obs[c])]]
    if frame.shape[1] == 0:
        return None
    missing = frame.isna().any(axis=1).to_numpy()
    groups = pd.MultiIndex.from_frame(frame.astype(str)).factorize()[0] if frame.shape[1] > 1 else None
    if groups is None:
        groups = pd.factorize(frame.iloc[:, 0].astype(str))[0]
    return np.where(missing, -1, groups)


def _numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
