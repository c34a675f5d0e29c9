"""Checks run before any work; each error names the bad value and what to do about it."""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
from scipy import sparse

ROLES = ("response", "fixed", "random")
DEFAULT_LABELS = {"response": "response Y", "fixed": "fixed-effect data X", "random": "random-effect covariates Z"}


def check_weights(weights: Mapping[str, float]) -> None:
    """``weights`` maps roles to finite positive numbers."""
    if not isinstance(weights, Mapping):
        raise ValueError(f"weights must be a dict from role {ROLES} to a number, got {weights!r}")
    unknown = set(weights) - set(ROLES)
    if unknown:
        raise ValueError(f"weights has unknown roles {sorted(unknown)}; use {ROLES}")
    for role, weight in weights.items():
        if not is_real(weight) or not np.isfinite(weight) or weight <= 0:
            raise ValueError(f"weights[{role!r}] must be a finite number > 0, got {weight!r}")


def checked_matrix(
    data, role: str, labels: Mapping[str, str] | None = None, observed=None, minimum_observed: int = 2
) -> tuple[object, np.ndarray | None]:
    """A modality must be 2-D, non-empty, numeric and finite in its observed rows.

    Returns the data as a numpy array or a CSR/CSC/COO matrix, and the observed-row mask (see
    :func:`observed_rows`; ``None`` when all rows are observed). Sparse formats without a ``data``
    array of values (LIL, DOK, DIA, BSR) become CSR, and a pandas DataFrame a numpy array (nullable
    columns with ``pd.NA`` as NaN); nothing is densified.
    """
    label = (labels or DEFAULT_LABELS).get(role, role)
    data = _as_array_or_sparse(data, label)
    check_shape(getattr(data, "shape", None), type(data).__name__, label)
    if sparse.issparse(data):
        data = canonical_sparse(data, label)
    values = data.data if sparse.issparse(data) else data
    check_dtype(values.dtype, label)
    mask = observed_rows(data, role, observed, labels, minimum_observed)
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values)
        if mask is not None and not sparse.issparse(data):
            bad &= mask[:, None]
        if bad.any():
            raise_non_finite(label, int(bad.sum()), _first_position(data, bad))
    _check_magnitude(values, label, None if sparse.issparse(data) else mask)
    return data, mask


MAGNITUDE = 1e140  # beyond it (or below its inverse) sums of squares of a large matrix leave float64


def _check_magnitude(values: np.ndarray, label: str, rows: np.ndarray | None = None) -> None:
    """Refuse values whose squares overflow or underflow float64.

    Values (in the observed ``rows``) must be neither so large that their squares overflow nor so
    small that they underflow; no copy of the data is made.

    The objective is scale-free, so multiplying a modality by a constant changes nothing but this.
    """
    if values.size == 0 or values.dtype.kind not in "iuf":
        return
    where = True if rows is None else rows[:, None]
    high = values.max(where=where, initial=0)  # 0 changes no largest magnitude, and fits every dtype
    low = values.min(where=where, initial=0)
    largest = max(abs(float(high)), abs(float(low)))
    if largest > MAGNITUDE or 0 < largest < 1 / MAGNITUDE:
        what = f"values as large as {largest:.3g}" if largest > 1 else f"no value larger than {largest:.3g}"
        raise ValueError(
            f"{label} has {what}, out of float64's range for sums of squares; multiply it by a constant "
            f"(e.g. {1 / largest:.0e}) first, which does not change the fit"
        )


def _as_array_or_sparse(data, label: str):
    """A numpy array, a CSR/CSC/COO matrix or array, or ``data`` itself when it is neither (checked later)."""
    if sparse.issparse(data):
        if data.format == "bsr":
            data = canonical_sparse(data, label)  # its block structure is checked before scipy reads it
        return data if data.format in ("csr", "csc", "coo") else data.tocsr()
    if (
        hasattr(data, "columns") and hasattr(data, "dtypes") and hasattr(data, "to_numpy")
    ):  # a DataFrame (no pandas here)
        kinds = [getattr(dtype, "kind", "O") for dtype in data.dtypes]
        bad = [str(column) for column, kind in zip(data.columns, kinds) if kind not in "biuf"]
        if bad:
            raise ValueError(f"{label} has non-numeric columns {bad[:10]}; drop or encode them")
        return data.to_numpy(dtype=np.float64, na_value=np.nan)
    if isinstance(data, (list, tuple)) or getattr(data, "__array__", None) is None:
        return data
    return np.asarray(data)


SCAN_ENTRIES = 1 << 24  # stored entries checked at a time (bounds the temporaries of a structure check)


def canonical_sparse(matrix, label: str, *, first_row: int = 0):
    """A CSR/CSC/BSR/COO matrix whose structure is sound and canonical: each stored entry once, sorted.

    A corrupt structure (an index beyond the shape, a negative one, a decreasing ``indptr``,
    arrays of mismatched lengths) is a ``ValueError`` naming where: scipy would read past its
    arrays (a crash) or fit something else. Repeated or unsorted entries, which scipy adds up in
    products but which would be squared one by one in column moments, are summed in a copy:
    the caller's matrix is never changed. Other formats are returned as they are. ``first_row``:
    the position of the matrix's first row in the whole (for a chunk read from a file).
    """
    if matrix.format == "coo":
        _check_coo(matrix, label)
        return matrix
    if matrix.format not in ("csr", "csc", "bsr"):
        return matrix
    kind = matrix.format.upper()
    if matrix.format == "bsr":
        rows, cols = matrix.blocksize
        major, minor = matrix.shape[0] // rows, matrix.shape[1] // cols
        what = "block column", "block row"
    else:
        major, minor = matrix.shape if matrix.format == "csr" else matrix.shape[::-1]
        what = ("column", "row") if matrix.format == "csr" else ("row", "column")
    indptr, indices = np.asarray(matrix.indptr), np.asarray(matrix.indices)
    offset = first_row if matrix.format == "csr" else 0
    if indices.ndim != 1 or indices.dtype.kind not in "iu" or len(indices) != len(matrix.data):
        raise _corrupt(
            label,
            kind,
            f"indices of dtype {indices.dtype} and length {len(indices)} for {len(matrix.data)} stored values",
        )
    _check_pointers(indptr, len(indices), major, kind, what[1], label, offset)
    if _sorted_without_repeats(indptr, indices, minor, kind, what, label, offset):
        return matrix
    canonical = matrix.copy()
    canonical.sum_duplicates()  # also sorts the indices
    return canonical


def check_indptr(indptr, n_stored: int, n_rows: int, label: str) -> None:
    """A CSR ``indptr`` (e.g. of a file, whose indices are read later) fits ``n_rows`` and ``n_stored`` entries."""
    _check_pointers(np.asarray(indptr), n_stored, n_rows, "CSR", "row", label, 0)


def _corrupt(label: str, kind: str, problem: str) -> ValueError:
    return ValueError(
        f"{label} is a corrupt {kind} matrix: {problem}; rebuild it from its values "
        f"(e.g. scipy.sparse.coo_matrix((data, (row, col)), shape=shape).to{kind.lower()}()) or re-read the file"
    )


def _check_pointers(indptr, n_stored: int, major: int, kind: str, axis: str, label: str, offset: int) -> None:
    """``indptr`` is an integer vector of ``major + 1`` offsets rising from 0 to at most ``n_stored``."""
    if indptr.ndim != 1 or indptr.dtype.kind not in "iu":
        raise _corrupt(label, kind, f"indptr must be an integer vector, got dtype {indptr.dtype}")
    if len(indptr) != major + 1:
        raise _corrupt(label, kind, f"indptr has {len(indptr)} entries for {major} {axis}s (needs {major + 1})")
    if indptr[0] != 0 or indptr[-1] > n_stored:
        raise _corrupt(label, kind, f"indptr runs from {indptr[0]} to {indptr[-1]}, not from 0 to at most {n_stored}")
    steps = np.diff(indptr)
    if (steps < 0).any():
        first = int(np.flatnonzero(steps < 0)[0])
        raise _corrupt(
            label, kind, f"indptr decreases after {axis} {offset + first} ({indptr[first]} then {indptr[first + 1]})"
        )


def _sorted_without_repeats(indptr, indices, minor: int, kind: str, what, label: str, offset: int) -> bool:
    """Check every stored index is in ``[0, minor)``; whether each run of indptr is strictly increasing."""
    nnz = int(indptr[-1])
    canonical = True
    for start in range(0, nnz, SCAN_ENTRIES):
        stop = min(start + SCAN_ENTRIES, nnz)
        part = indices[start:stop]
        outside = (part < 0) | (part >= minor)
        if outside.any():
            at = start + int(np.flatnonzero(outside)[0])
            owner = int(np.searchsorted(indptr, at, side="right") - 1)
            raise _corrupt(
                label,
                kind,
                f"{what[0]} index {int(indices[at])} of {what[1]} {offset + owner} is outside 0..{minor - 1}",
            )
        low = max(start, 1)
        if canonical and low < stop:
            rising = indices[low:stop] > indices[low - 1 : stop - 1]
            heads = indptr[np.searchsorted(indptr, low) : np.searchsorted(indptr, stop)]  # first entries of rows
            rising[heads - low] = True
            canonical = bool(rising.all())
    return canonical


def _check_coo(matrix, label: str) -> None:
    row, col = np.asarray(matrix.row), np.asarray(matrix.col)
    if row.shape != col.shape or len(row) != len(matrix.data):
        raise _corrupt(label, "COO", f"{len(row)} rows, {len(col)} columns and {len(matrix.data)} values stored")
    for name, index, size in (("row", row, matrix.shape[0]), ("column", col, matrix.shape[1])):
        outside = (index < 0) | (index >= size)
        if outside.any():
            first = int(np.flatnonzero(outside)[0])
            raise _corrupt(
                label, "COO", f"{name} index {int(index[first])} of stored entry {first} is outside 0..{size - 1}"
            )


def check_shape(shape, kind: str, label: str) -> None:
    """A modality must be 2-D and non-empty."""
    if shape is None or len(shape) != 2:
        raise ValueError(f"{label} must be a 2-D matrix (cells × features), got {kind} of shape {shape}")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{label} is empty (shape {shape}); give it at least one cell and one feature")


def check_dtype(dtype, label: str) -> None:
    if dtype.kind not in "biuf":
        raise ValueError(f"{label} must be numeric, got dtype {dtype}; convert or drop non-numeric columns")


def raise_non_finite(label: str, count: int, where: tuple[int, int]) -> None:
    raise ValueError(
        f"{label} contains {count} NaN or infinite value(s) (first at row {where[0]}, "
        f"column {where[1]}); impute them, or mark a cell without this modality as unobserved "
        "(a row of NaN, or observed=...)"
    )


def observed_rows(
    data,
    role: str,
    given,
    labels: Mapping[str, str] | None = None,
    minimum: int = 2,
    *,
    nan_rows: np.ndarray | None = None,
) -> np.ndarray | None:
    """The rows where a modality is observed: ``given`` (a boolean mask) minus dense all-NaN rows.

    ``nan_rows``: the all-NaN rows when already known (out-of-core data is scanned once).

    ``None`` when every row is observed; at least ``minimum`` observed rows are required.
    """
    label = (labels or DEFAULT_LABELS).get(role, role)
    n = data.shape[0]
    mask = np.ones(n, bool)
    if given is not None:
        given = np.asarray(given)
        if given.dtype != bool or given.shape != (n,):
            raise ValueError(
                f"observed[{role!r}] must be a boolean array of length {n} (one flag per cell), "
                f"got dtype {given.dtype} and shape {given.shape}"
            )
        mask &= given
    if nan_rows is not None:
        mask &= ~nan_rows
    elif not sparse.issparse(data) and np.asarray(data).dtype.kind == "f":
        mask &= ~np.isnan(np.asarray(data)).all(axis=1)
    if mask.all():
        return None
    if mask.sum() < minimum:
        raise ValueError(f"{label} is observed in {int(mask.sum())} cell(s); it needs at least {minimum}")
    return mask


def check_shapes(shapes: Mapping[str, tuple[int, int]], labels: Mapping[str, str] | None = None) -> None:
    """All modalities must describe the same cells (rows)."""
    labels = labels or DEFAULT_LABELS
    rows = {role: shape[0] for role, shape in shapes.items()}
    if len(set(rows.values())) > 1:
        listing = ", ".join(f"{labels.get(r, r)}: {n}" for r, n in rows.items())
        raise ValueError(f"modalities must have the same number of cells (rows); got {listing}")


def check_variance(norms: Mapping[str, float], labels: Mapping[str, str] | None = None) -> None:
    labels = labels or DEFAULT_LABELS
    for role, norm in norms.items():
        if not norm > 0:
            raise ValueError(
                f"{labels.get(role, role)} has no variance after centring (every feature is constant); "
                "drop it or choose another modality"
            )


def check_rank(
    n_factors: int, n_obs: int, widths: Mapping[str, int], center: bool, labels: Mapping[str, str] | None = None
) -> None:
    """``n_factors`` may not exceed the cells (minus one when centred) nor Y's or X's features.

    The random-effect modality is exempt: a low-rank Z (a few batches) is allowed.
    """
    labels = labels or DEFAULT_LABELS
    if n_obs - int(center) < 1:
        raise ValueError(
            f"the modalities have {n_obs} cell(s); LMF needs at least {1 + int(center)} cells"
            + (" (each feature is centred)" if center else "")
        )
    limits = {"cells" + (" minus one (centring)" if center else ""): n_obs - int(center)}
    limits.update({f"features of {labels.get(r, r)}": w for r, w in widths.items() if r != "random"})
    for what, limit in limits.items():
        if n_factors > limit:
            raise ValueError(f"n_factors={n_factors} is larger than the {what} ({limit}); choose n_factors <= {limit}")


def _first_position(data, bad: np.ndarray) -> tuple[int, int]:
    """Row and column of the first flagged entry of a dense array or of a CSR/CSC ``.data``."""
    if not sparse.issparse(data):
        row, col = np.argwhere(bad)[0]
        return int(row), int(col)
    if data.format not in ("csr", "csc"):
        data = data.tocsr()
        bad = ~np.isfinite(data.data)
    index = int(np.flatnonzero(bad)[0])
    major = int(np.searchsorted(data.indptr, index, side="right") - 1)
    minor = int(data.indices[index])
    return (major, minor) if data.format == "csr" else (minor, major)


def is_int(value) -> bool:
    """An integer (numpy's included), not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_real(value) -> bool:
    """A real number (numpy's included), not a bool."""
    return isinstance(value, Real) and not isinstance(value, bool)


def check_feature_counts(given: Mapping, expected: Mapping[str, int], labels: Mapping | None) -> None:
    """New cells' modalities have as many features as the fit's, by role (``given``: role to matrix)."""
    for role, matrix in given.items():
        count = expected[role]
        if len(getattr(matrix, "shape", ())) == 2 and matrix.shape[1] != count:
            raise ValueError(
                f"{(labels or DEFAULT_LABELS).get(role, role)} has {matrix.shape[1]} features but "
                f"the model was fitted with {count}; pass the same features in the same order"
            )
