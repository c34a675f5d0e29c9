"""Choosing options (e.g. the number of factors) by cross-validated prediction of the response.

For each candidate, the cells are split into ``folds`` parts; the model is fitted on all parts
but one and predicts the held-out cells' response from their fixed-effect data and covariates
(:meth:`LinearMixedForms.predict`), exactly as new cells are predicted. The score is the mean
squared error per response entry over held-out cells that have a response; the smallest wins.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import sparse

from . import validation
from .validation import ROLES


def cross_validate(
    template,
    Y,
    X,
    Z=None,
    *,
    grid: Mapping[str, Sequence],
    folds: int = 5,
    observed: Mapping[str, np.ndarray] | None = None,
) -> tuple[dict, list[dict]]:
    """Score every combination of ``grid`` (option → candidate values) for ``template``'s other options.

    Returns the best options and a table (one dict per candidate: its options and ``mse``).
    Folds are drawn from ``template.random_state``; each fit sees only its training cells.
    """
    if not grid or any(len(values) == 0 for values in grid.values()):
        raise ValueError(f"grid must name at least one option with at least one value, got {dict(grid)!r}")
    n = Y.shape[0]
    if not 2 <= folds <= n:
        raise ValueError(f"folds must be between 2 and the number of cells ({n}), got {folds}")
    assignment = np.random.default_rng(template.random_state).permutation(n) % folds
    observed = dict(observed or {})
    has_response = _response_rows(Y, observed.get("response"))
    table = []
    for values in itertools.product(*grid.values()):
        options = dict(zip(grid, values))
        error = sum(
            _held_out_error(template, options, Y, X, Z, observed, has_response, assignment == fold)
            for fold in range(folds)
        )
        table.append({**options, "mse": error / (int(has_response.sum()) * Y.shape[1])})
    best = min(table, key=lambda row: row["mse"])
    return {name: best[name] for name in grid}, table


def _held_out_error(template, options, Y, X, Z, observed, has_response, held_out) -> float:
    model = type(template)(**{**template.get_params(), **options, "progress": False})
    train = {role: _rows(m, ~held_out) for role, m in zip(ROLES, (Y, X, Z)) if m is not None}
    masks = {role: mask[~held_out] for role, mask in observed.items()}
    model.fit(train["response"], train["fixed"], train.get("random"), observed=masks)
    predicted = model.predict(X=_rows(X, held_out), Z=None if Z is None else _rows(Z, held_out))
    keep = has_response[held_out]
    return _squared_error(_rows(Y, held_out)[np.flatnonzero(keep)], predicted[keep])


def _response_rows(Y, mask) -> np.ndarray:
    """The cells with a response (``observed["response"]`` minus dense all-NaN rows), counted once."""
    rows = validation.observed_rows(Y, "response", mask, minimum=0)
    return np.ones(Y.shape[0], bool) if rows is None else rows


def _squared_error(truth, predicted: np.ndarray) -> float:
    """``‖truth − predicted‖²``; a sparse ``truth`` is never densified (``predicted`` is overwritten)."""
    if not sparse.issparse(truth):
        return float(np.sum((np.asarray(truth, dtype=np.float64) - predicted) ** 2))
    entries = truth.tocoo()
    entries.sum_duplicates()
    predicted[entries.row, entries.col] -= entries.data  # the residual, its sign aside
    return float(np.sum(predicted**2))


def _rows(matrix, rows: np.ndarray):
    return matrix[np.flatnonzero(rows)] if hasattr(matrix, "tocsr") else np.asarray(matrix)[rows]
