"""The canonical form of a fit: an orthogonal rotation of all factors (fit and objective unchanged)."""

from __future__ import annotations

import numpy as np

from .solvers import Factors, Moments, residual_norm


def canonical_rotation(factors: Factors, moments: Moments, norms: dict[str, float]) -> np.ndarray:
    """Rotation ``R`` making the columns of ``(K + H) R`` orthogonal and ordered.

    Columns are ordered by the response variance each factor explains alone. Signs are fixed
    afterwards on the codes themselves (:func:`column_signs`).
    """
    _, eigenvectors = np.linalg.eigh(moments.codes_gram)
    rotated = moments.rotated(eigenvectors)
    alpha = factors.alpha @ eigenvectors
    explained = [
        -residual_norm(
            norms["response"], rotated.cross["response"][:, [j]], rotated.gram["response"][[j]][:, [j]], alpha[:, [j]]
        )
        for j in range(alpha.shape[1])
    ]
    return eigenvectors[:, np.argsort(explained, kind="stable")[::-1]]


def column_signs(codes: np.ndarray) -> np.ndarray:
    """+1/−1 per column so that the largest-magnitude entry of each column is positive."""
    largest = codes[np.argmax(np.abs(codes), axis=0), np.arange(codes.shape[1])]
    return np.where(largest < 0, -1.0, 1.0)
