"""Choosing options (e.g. the number of factors) by a grid search scored by cross-validated prediction.

For each candidate, the cells are split into ``folds`` parts; the model is fitted on all parts
but one and predicts the held-out cells' response from their fixed-effect data and covariates
(:meth:`LinearMixedForms.predict`), exactly as new cells are predicted. The score is the mean
squared error per response entry over held-out cells that have a response; the smallest wins.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence
from numbers import Integral

import numpy as np
from scipy import sparse

from . import validation
from .validation import ROLES


def grid_search(
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

    Each combination is fitted ``folds`` times, each time on all folds but one, and scored by the
    mean squared error of the held-out cells' predicted response (per response entry, over the
    held-out cells that have a response). Folds are drawn from ``template.random_state``; each fit
    sees only its training cells.

    Parameters
    ----------
    template
        A :class:`~lmf_omics.LinearMixedForms` whose options are kept except those in ``grid``.
    Y, X, Z
        The response, fixed-effect data and (optional) random-effect covariates of the same cells,
        as for :meth:`~lmf_omics.LinearMixedForms.fit`.
    grid
        Option name → candidate values, e.g. ``{"n_factors": [3, 5, 10]}``; every combination is scored.
    folds
        Number of cross-validation folds (between 2 and the number of cells).
    observed
        Boolean masks of the cells that have a modality, by role (as for ``fit``).

    Returns
    -------
    best : dict
        The options of the combination with the smallest error.
    table : list of dict
        One row per combination, in ``grid`` order: its options and ``mse``.

    Raises
    ------
    ValueError
        If ``grid`` names no option or an option with no values, or ``folds`` is out of range.

    Examples
    --------
    >>> from lmf_omics import LinearMixedForms, grid_search
    >>> best, table = grid_search(LinearMixedForms(), Y, X, Z, grid={"n_factors": [3, 5, 10]})
    >>> model = LinearMixedForms(**best).fit(Y, X, Z)
    """
    if not grid or any(len(values) == 0 for values in grid.values()):
        raise ValueError(f"grid must name at least one option with at least one value, got {dict(grid)!r}")
    n = Y.shape[0]
    check_folds(folds, n)
    if "n_factors" in grid:
        widths = {role: m.shape[1] for role, m in zip(ROLES, (Y, X, Z)) if m is not None}
        _check_fold_rank(template, grid["n_factors"], n, folds, widths)
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


def cross_validate(*args, **kwargs) -> tuple[dict, list[dict]]:
    """Deprecated alias of :func:`grid_search` (removed in the next release).

    It is a grid search; scikit-learn's ``cross_validate`` scores one estimator.

    Parameters
    ----------
    *args, **kwargs
        As for :func:`grid_search`.

    Returns
    -------
    What :func:`grid_search` returns.
    """
    warnings.warn(
        "lmf_omics.cross_validate is renamed lmf_omics.grid_search (same arguments); the old name will be "
        "removed in the next release",
        FutureWarning,
        stacklevel=2,
    )
    return grid_search(*args, **kwargs)


def check_folds(folds, n: int | None = None, name: str = "folds") -> None:
    """``folds`` is an integer from 2 to the number of cells ``n``."""
    if not isinstance(folds, Integral) or isinstance(folds, bool) or folds < 2 or (n is not None and folds > n):
        upper = f"the number of cells ({n})" if n is not None else "the number of cells"
        raise ValueError(f"{name} must be an integer between 2 and {upper}, got {folds!r}")


def _check_fold_rank(template, candidates, n: int, folds: int, widths: Mapping[str, int]) -> None:
    """Every ``n_factors`` candidate fits the smallest training fold and the features (before any fold runs)."""
    smallest = n - -(-n // folds)  # the largest held-out part has ceil(n / folds) cells
    for k in candidates:
        try:
            validation.check_rank(k, smallest, widths, bool(template.center))
        except ValueError as error:
            raise ValueError(
                f"n_factors candidate {k} does not fit a training fold of {folds}-fold cross-validation "
                f"({smallest} cells): {error}; choose smaller candidates or fewer folds"
            ) from None


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
