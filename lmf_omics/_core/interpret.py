"""Reading loadings: the largest features of each factor, by sign."""

from __future__ import annotations

import numpy as np

SIGNS = ("both", "positive", "negative", "abs")


def top_features(loadings: np.ndarray, names: np.ndarray, n: int, sign: str = "both"):
    """The ``n`` largest loadings of every column (factor), ranked within each sign.

    ``sign="both"``: the ``n`` most positive and the ``n`` most negative features; ``"positive"`` or
    ``"negative"``: one of them; ``"abs"``: the ``n`` largest in magnitude whatever their sign. Zero
    loadings (e.g. masked features) are neither positive nor negative, so only ``"abs"`` returns them.
    Ties are broken by name, so the result does not depend on the order of the features.

    Returns ``(rows, columns, ranks, negative)``: row and column indices into ``loadings``, the 1-based
    rank of each entry within its column and sign group, and whether it is a negative group's entry,
    ordered by column, then positive before negative, then rank.
    """
    if sign not in SIGNS:
        raise ValueError(f"sign={sign!r} must be one of {SIGNS}")
    loadings = np.asarray(loadings, dtype=float)
    names = np.asarray(names, dtype=str)
    picked = []
    for column in range(loadings.shape[1]):
        values = loadings[:, column]
        groups = {
            "both": [(values, values > 0, False), (-values, values < 0, True)],
            "positive": [(values, values > 0, False)],
            "negative": [(-values, values < 0, True)],
            "abs": [(np.abs(values), np.ones(len(values), bool), None)],
        }[sign]
        for score, eligible, negative in groups:
            rows = np.flatnonzero(eligible)
            order = rows[np.lexsort((names[rows], -score[rows]))][:n]
            flags = values[order] < 0 if negative is None else np.full(len(order), negative)
            picked.append((order, np.full(len(order), column), np.arange(1, len(order) + 1), flags))
    rows, columns, ranks, flags = (np.concatenate(part) for part in zip(*picked))
    return rows.astype(np.intp), columns.astype(np.intp), ranks.astype(np.intp), flags.astype(bool)
