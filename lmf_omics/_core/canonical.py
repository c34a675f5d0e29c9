"""The canonical form of a fit: an orthogonal rotation of all factors (fit and objective unchanged)."""

from __future__ import annotations

import numpy as np

from .solvers import Factors, Products, residual_norm


def canonical_rotation(factors: Factors, products: Products, norms: dict[str, float]) -> np.ndarray:
    """Rotation ``R`` making the columns of ``(K + H) R`` orthogonal, ordered and sign-fixed.

    Columns are ordered by the response variance each factor explains alone, and signed so
    that the largest-magnitude entry of each combined-code column is positive.
    """
    combined = factors.combined
    _, eigenvectors = np.linalg.eigh(combined.T @ combined)
    rotated_code = combined @ eigenvectors
    rotated_alpha = factors.alpha @ eigenvectors
    rotated_product = products.response @ eigenvectors
    explained = [
        -residual_norm(norms["response"], rotated_product[:, [j]], rotated_code[:, [j]], rotated_alpha[:, [j]])
        for j in range(combined.shape[1])
    ]
    order = np.argsort(explained, kind="stable")[::-1]
    rotation = eigenvectors[:, order]
    rotated_code = rotated_code[:, order]
    largest = rotated_code[np.argmax(np.abs(rotated_code), axis=0), np.arange(rotated_code.shape[1])]
    return rotation * np.where(largest < 0, -1.0, 1.0)
