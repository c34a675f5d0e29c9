"""From user matrices to checked, centred operators (the step before any work)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import sparse

from . import validation
from .backends import ChunkedMatrix, as_backend
from .operators import Operator, as_matrix


def prepare(
    matrices: Mapping[str, object],
    observed: Mapping[str, object] | None,
    labels: Mapping[str, str] | None,
    *,
    minimum_observed: int = 2,
) -> tuple[dict[str, object], dict[str, np.ndarray | None]]:
    """Check every given modality and find its observed rows; nothing is copied unless needed.

    A fit needs ``minimum_observed`` cells with each modality; encoding new cells needs none.

    Returns the matrices (dense ones with unobserved NaN rows zero-filled, as a copy) and the
    observed-row masks (``None`` where every row is observed), by role.
    """
    observed = dict(observed or {})
    unknown = set(observed) - set(matrices)
    if unknown:
        raise ValueError(f"observed names modalities that were not given: {sorted(unknown)}; use {sorted(matrices)}")
    masks, ready = {}, {}
    for role, matrix in matrices.items():
        backend = as_backend(matrix)
        if backend is not None:
            masks[role] = _check_chunked(backend, role, labels, observed.get(role), minimum_observed)
            ready[role] = backend
            continue
        matrix, masks[role] = validation.checked_matrix(matrix, role, labels, observed.get(role), minimum_observed)
        ready[role] = _zero_filled(matrix, masks[role])
    validation.check_shapes({role: m.shape for role, m in ready.items()}, labels)
    return ready, masks


def operators(ready, masks, *, center: bool, scale: bool) -> dict[str, Operator]:
    """Operators centred and scaled by their own observed rows (X's content keys from the same pass)."""
    return {
        role: Operator.from_data(matrix, center=center, scale=scale, observed=masks[role], with_keys=role == "fixed")
        for role, matrix in ready.items()
    }


def _zero_filled(matrix, mask: np.ndarray | None):
    """The matrix with unobserved dense rows set to zero (so products stay finite: ``inf · 0`` is NaN)."""
    matrix = as_matrix(matrix)
    if mask is None or sparse.issparse(matrix) or np.isfinite(matrix[~mask]).all():
        return matrix
    filled = matrix.copy()
    filled[~mask] = 0.0
    return filled


def _check_chunked(matrix: ChunkedMatrix, role: str, labels, given, minimum: int) -> np.ndarray | None:
    """:func:`validation.checked_matrix` for out-of-core data, in one pass over its chunks."""
    label = (labels or validation.DEFAULT_LABELS).get(role, role)
    validation.check_shape(matrix.shape, type(matrix).__name__, label)
    validation.check_dtype(matrix.dtype, label)
    usable = given is not None and np.shape(given) == (matrix.shape[0],) and np.asarray(given).dtype == bool
    scan = matrix.scan(np.asarray(given) if usable else None)
    nan_rows = np.zeros(matrix.shape[0], bool) if scan.nan_rows is None else scan.nan_rows
    mask = validation.observed_rows(matrix, role, given, labels, minimum, nan_rows=nan_rows)
    if scan.n_bad:
        validation.raise_non_finite(label, scan.n_bad, scan.first_bad)
    return mask
