"""Checks shared by the preprocessing helpers: every one raises before any work, naming the bad value."""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral, Real

import numpy as np
from anndata import AnnData
from scipy import sparse

from .._modalities import MissingKeyError


def check_adata(adata) -> None:
    if not isinstance(adata, AnnData):
        raise TypeError(f"adata must be an AnnData, got {type(adata).__name__}")


def check_choice(name: str, value, choices: Iterable) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {list(choices)}")


def check_int(name: str, value, *, low: int = 1, high: int | None = None) -> None:
    """``value`` is an integer in ``[low, high]`` (booleans are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name}={value!r} must be an integer {bound}")


def check_positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={value!r} must be a positive number")


def check_key(container, key: str, where: str, name: str) -> None:
    if key not in container:
        available = sorted(map(str, container.keys()))
        raise MissingKeyError(f"{name}={key!r} not found in {where}; available: {available}")


def check_key_added(key_added, name: str = "key_added") -> None:
    if not isinstance(key_added, str) or not key_added:
        raise ValueError(f"{name}={key_added!r} must be a non-empty string")


def check_non_negative(matrix, label: str, what: str) -> None:
    """Counts must be finite and non-negative (checked on stored values only: sparse stays sparse)."""
    values = matrix.data if sparse.issparse(matrix) else np.asarray(matrix)
    if values.size == 0:
        return
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{label} has NaN or infinite values; {what} needs finite counts")
    low = values.min()
    if low < 0:
        raise ValueError(f"{label} has negative values (minimum {low:g}); {what} needs raw, non-negative counts")


def target(adata: AnnData, copy: bool) -> AnnData:
    """The AnnData to write into: ``adata`` itself or a copy."""
    return adata.copy() if copy else adata
