"""Read a modality named by a spec string from an AnnData; the only place specs are parsed.

Specs: ``"X"``, ``"raw"``, ``"layer:<name>"``, ``"obsm:<key>"`` (array, sparse or DataFrame) and
``"obs:<col>[,<col>...]"`` (numeric columns as they are; categorical, string and boolean
columns one-hot encoded, sparse). Nothing is copied except what a feature mask selects and the
one-hot encoding; nothing is densified. Every problem is reported before any fitting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from ._core.backends import StreamedMatrix, is_on_disk

SPEC_HELP = "use 'X', 'raw', 'layer:<name>', 'obsm:<key>' or 'obs:<col>[,<col>...]'"


class MissingKeyError(KeyError):
    """A key the user named is not there; the message lists what is."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Modality:
    """A modality's matrix (cells × features) and where it came from.

    ``var_mask`` is the boolean mask over ``adata.var`` for var-aligned modalities (``X`` and
    layers), ``None`` otherwise.
    """

    spec: str
    matrix: np.ndarray | sparse.spmatrix
    features: np.ndarray
    var_mask: np.ndarray | None

    @property
    def var_aligned(self) -> bool:
        return self.var_mask is not None


def read_modality(adata: AnnData, spec: str, *, role: str, mask_var=None) -> Modality:
    """Read ``spec`` from ``adata``, restricted to ``mask_var`` (var-aligned modalities only)."""
    label = f"{role}={spec!r}"
    if not isinstance(spec, str):
        raise TypeError(f"{role} must be a modality spec string, got {type(spec).__name__}; {SPEC_HELP}")
    source, _, name = spec.partition(":")
    if spec == "X":
        matrix, features, aligned = adata.X, adata.var_names, True
        if matrix is None:
            raise ValueError(f"{label}: adata.X is None; name a layer or obsm key instead")
    elif spec == "raw":
        if adata.raw is None:
            raise ValueError(f"{label}: adata.raw is None; use 'X' or a layer instead")
        matrix, features, aligned = adata.raw.X, adata.raw.var_names, False
    elif source == "layer" and name:
        matrix, features, aligned = _lookup(adata.layers, name, "adata.layers", label), adata.var_names, True
    elif source == "obsm" and name:
        matrix, features = _read_obsm(adata, name, label)
        aligned = False
    elif source == "obs" and name:
        matrix, features = _read_obs(adata, [c.strip() for c in name.split(",")], label)
        aligned = False
    else:
        raise ValueError(f"{role}={spec!r} is not a modality spec; {SPEC_HELP}")
    features = np.asarray(features, dtype=str)
    if mask_var is None:
        return Modality(spec, matrix, features, np.ones(adata.n_vars, bool) if aligned else None)
    if not aligned:
        raise ValueError(f"{label}: mask_var applies to var-aligned modalities ('X', 'layer:<name>') only")
    mask = resolve_mask(adata, mask_var, label)
    return Modality(spec, select_columns(matrix, mask), features[mask], mask)


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


def masks_for(roles: Mapping[str, str | None], mask_var) -> dict[str, object]:
    """Spread ``mask_var`` over roles: one mask for every var-aligned modality, or a role → mask dict."""
    if isinstance(mask_var, Mapping):
        unknown = set(mask_var) - set(roles)
        if unknown:
            raise ValueError(f"mask_var has unknown modality names {sorted(unknown)}; use {sorted(roles)}")
        return dict(mask_var)
    if mask_var is None:
        return {}
    return {role: mask_var for role, spec in roles.items() if spec is not None and _is_var_aligned(spec)}


def _is_var_aligned(spec: str) -> bool:
    return spec == "X" or spec.startswith("layer:")


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
    numeric = frame.select_dtypes(include=["number", "bool"])
    bad = [str(c) for c in frame.columns if c not in numeric.columns]
    if bad:
        raise ValueError(f"{label} has non-numeric columns {bad}; drop or encode them")
    single = len(frame.columns) and all(isinstance(d, np.dtype) and d == np.float32 for d in frame.dtypes)
    return frame.to_numpy(dtype=np.float32 if single else np.float64, na_value=np.nan)


def _read_obs(adata: AnnData, columns: list[str], label: str):
    blocks, names = [], []
    for column in columns:
        values = _lookup(adata.obs, column, "adata.obs", label)
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
    return matrix, [str(level) for level in categorical.categories]


def _lookup(container, key: str, where: str, label: str):
    if key not in container:
        available = sorted(str(k) for k in container.keys() if k is not None)  # anndata 0.13: layers[None] is X
        raise MissingKeyError(f"{label}: {key!r} not found in {where}; available: {available}")
    return container[key]


def read_aligned(adata: AnnData, spec: str, features, *, role: str) -> tuple[object, np.ndarray | None] | None:
    """Read ``spec`` from a query AnnData with the columns of a fit's ``features``, in that order.

    Returns ``(matrix, observed)`` or ``None`` when the query has no such slot (the modality is
    then absent). Features are matched by name; missing ones are an error that lists them. For
    ``obs`` specs the training levels are one-hot encoded again; a cell with a level not seen in
    training (or a missing value) is unobserved in this modality (``observed`` is ``False``).
    """
    label = f"{role}={spec!r}"
    features = [str(f) for f in features]
    source, _, name = spec.partition(":")
    if spec == "X" or source == "layer":
        if (spec == "X" and adata.X is None) or (source == "layer" and name not in adata.layers):
            return None
        return _columns(adata.X if spec == "X" else adata.layers[name], adata.var_names, features, label), None
    if spec == "raw":
        return None if adata.raw is None else (_columns(adata.raw.X, adata.raw.var_names, features, label), None)
    if source == "obsm":
        if name not in adata.obsm:
            return None
        matrix, names = _read_obsm(adata, name, label)
        return _columns(matrix, pd.Index(names), features, label), None
    if source == "obs":
        columns = [c.strip() for c in name.split(",")]
        if not all(c in adata.obs for c in columns):
            return None
        return _encode_levels(adata, columns, features, label)
    raise ValueError(f"{label} is not a modality spec; {SPEC_HELP}")


def _columns(matrix, names: pd.Index, features: list[str], label: str):
    """The columns named ``features``, in order; an error lists the missing ones (or repeated ones)."""
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
    lookup = np.append(pd.Index(levels).get_indexer(categorical.categories.astype(str)), -1)
    return lookup[categorical.codes]  # code -1 (missing) picks the appended -1
