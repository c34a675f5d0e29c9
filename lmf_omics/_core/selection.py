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

ROLES = ("response", "fixed", "random")


def cross_validate(template, Y, X, Z=None, *, grid: Mapping[str, Sequence], folds: int = 5,
                   observed: Mapping[str, np.ndarray] | None = None) -> tuple[dict, list[dict]]:
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
    table = []
    for values in itertools.product(*grid.values()):
        options = dict(zip(grid, values))
        error = sum(_held_out_error(template, options, Y, X, Z, observed, assignment == fold) for fold in range(folds))
        table.append({**options, "mse": error / (_count_observed(Y, observed) * Y.shape[1])})
    best = min(table, key=lambda row: row["mse"])
    return {name: best[name] for name in grid}, table


def _held_out_error(template, options, Y, X, Z, observed, held_out) -> float:
    model = type(template)(**{**template.get_options(), **options, "progress": False})
    train = {role: _rows(m, ~held_out) for role, m in zip(ROLES, (Y, X, Z)) if m is not None}
    masks = {role: mask[~held_out] for role, mask in observed.items()}
    model.fit(train["response"], train["fixed"], train.get("random"), observed=masks)
    predicted = model.predict(X=_rows(X, held_out), Z=None if Z is None else _rows(Z, held_out))
    truth = _dense(_rows(Y, held_out))
    keep = _observed_rows(truth, observed.get("response"), held_out)
    return float(np.sum((truth[keep] - predicted[keep]) ** 2))


def _count_observed(Y, observed) -> int:
    truth = _dense(Y)
    return int(_observed_rows(truth, observed.get("response"), np.ones(Y.shape[0], bool)).sum())


def _observed_rows(truth: np.ndarray, mask, rows: np.ndarray) -> np.ndarray:
    keep = ~np.isnan(truth).all(axis=1)
    return keep if mask is None else keep & np.asarray(mask)[rows]


def _rows(matrix, rows: np.ndarray):
    return matrix[np.flatnonzero(rows)] if hasattr(matrix, "tocsr") else np.asarray(matrix)[rows]


def _dense(matrix) -> np.ndarray:
    return np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix, dtype=np.float64)
