"""Checks shared by the preprocessing helpers: every one raises before any work, naming the bad value."""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral, Real

import numpy as np
from scipy import sparse

from .._checks import check_adata, check_key, target  # noqa: F401  (shared with tl and pl)
from .._keys import check_key_added  # noqa: F401  (the helpers' key check is the package's)


def check_choice(name: str, value, choices: Iterable) -> None:
    choices = tuple(choices)
    is_flag = isinstance(value, (bool, np.bool_)) and not any(isinstance(c, (bool, np.bool_)) for c in choices)
    if is_flag or value not in choices:  # True == 1, but True is not the choice 1
        raise ValueError(f"{name}={value!r} is not one of {list(choices)}")


def check_int(name: str, value, *, low: int = 1, high: int | None = None) -> None:
    """``value`` is an integer in ``[low, high]`` (booleans are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name}={value!r} must be an integer {bound}")


def check_positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={value!r} must be a positive number")


def check_non_negative(matrix, label: str, what: str, *, cells=None, missing_rows: bool = False) -> np.ndarray | None:
    """Counts must be finite and non-negative (checked on stored values only: sparse stays sparse).

    With ``missing_rows=True`` a dense row of NaN is a cell without this modality (as ``tl.lmf``
    reads it): allowed, and reported as the returned mask of observed rows (``None``: all observed).
    ``cells`` names the rows in errors.
    """
    dense = not sparse.issparse(matrix)
    values = np.asarray(matrix) if dense else matrix.data
    if values.size == 0:
        return None
    observed = None
    if missing_rows and dense and values.dtype.kind == "f" and values.ndim == 2:
        empty = np.isnan(values).all(axis=1)
        if empty.all():
            raise ValueError(f"{label} has no values (every row is NaN); {what} needs counts in some cells")
        if empty.any():
            observed, values = ~empty, values[~empty]
    finite = np.isfinite(values)
    if not finite.all():
        detail = ""
        if dense and values.ndim == 2:
            row = int(np.flatnonzero(~finite.all(axis=1))[0])
            row = row if observed is None else int(np.flatnonzero(observed)[row])
            detail = f" (first in cell {cells[row] if cells is not None else row!r})"
        hint = " (a cell without these counts is a row of NaN)" if missing_rows and dense else ""
        raise ValueError(
            f"{label} has {int((~finite).sum())} NaN or infinite value(s){detail}; {what} needs finite counts{hint}"
        )
    low = values.min()
    if low < 0:
        raise ValueError(f"{label} has negative values (minimum {low:g}); {what} needs raw, non-negative counts")
    return observed
