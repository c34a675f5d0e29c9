"""Reading a fit: its canonical form and what it explains.

The canonical form is an orthogonal rotation of all factors (fit and objective unchanged); the
variance explained (R²) per factor and per modality is MOFA's table, from the moments.
"""

from __future__ import annotations

import numpy as np

from .parts import Factors, Loadings, Moments
from .solvers import residual_norm


def canonical_rotation(factors: Factors, moments: Moments, norms: dict[str, float]) -> np.ndarray:
    """Rotation ``R`` making the columns of ``(K + H) R`` orthogonal and ordered.

    Columns are ordered by the response variance each factor explains alone. Signs are fixed
    afterwards on the codes themselves (:func:`column_signs`).
    """
    _, eigenvectors = np.linalg.eigh(moments.codes_gram)
    rotated = moments.rotated(eigenvectors)
    alpha = factors.loadings.alpha @ eigenvectors
    explained = [
        -residual_norm(
            norms["response"], rotated.cross["response"][:, [j]], rotated.gram["response"][[j]][:, [j]], alpha[:, [j]]
        )
        for j in range(alpha.shape[1])
    ]
    return eigenvectors[:, np.argsort(explained, kind="stable")[::-1]]


def score_scale(features: Loadings, fixed_weight: float) -> np.ndarray:
    """Per factor, the norm of its fixed-effect loadings on the data's own scale (``β`` column norms).

    The fit balances codes and loadings (the ridge's optimum, :func:`.solvers.rebalance`), so a
    code's spread grows as the square root of its factor's; codes × this scale grow as the factor
    does, as PCA's scores ``XV`` with unit loadings, which is what neighbour graphs and distances
    on ``obsm`` expect (``benchmarks/integration.py`` measures both). Loadings ÷ it have unit norm.
    A factor without fixed loadings (all zero) keeps its scale.
    """
    norms = np.linalg.norm(features.beta, axis=0) / np.sqrt(fixed_weight)
    return np.where(norms > 0, norms, 1.0)


def column_signs(K: np.ndarray, H: np.ndarray | None = None, *, rows: int = 1 << 16) -> np.ndarray:
    """+1/−1 per column so that the largest-magnitude entry of each column of ``K + H`` is positive.

    By row blocks (no n × k sum is formed); the first of tied entries decides, as ``argmax``.
    """
    best = np.full(K.shape[1], -1.0)
    largest = np.zeros(K.shape[1])
    for start in range(0, K.shape[0], rows):
        block = np.asarray(K[start : start + rows], dtype=np.float64)
        if H is not None:
            block = block + H[start : start + rows]
        at = np.argmax(np.abs(block), axis=0)
        values = block[at, np.arange(block.shape[1])]
        better = np.abs(values) > best
        best[better], largest[better] = np.abs(values[better]), values[better]
    return np.where(largest < 0, -1.0, 1.0)


def variance_explained(
    factors: Factors, moments: Moments, norms: dict[str, float]
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """R² of each modality by each factor alone, and by all factors together.

    ``R²_m,j = 1 − ‖D_m(Ã_m − c_j l_jᵀ)‖² / ‖Ã_m‖²`` with ``c`` the modality's code
    (``K + H`` for the response, ``K`` for X, ``H`` for Z) and ``l`` its loadings. Per-factor
    values need not add up to the total when loadings are correlated (as in MOFA).
    """
    per_factor, total = {}, {}
    loadings = factors.loadings.by_role()
    for role, cross in moments.cross.items():
        gram, loading, norm = moments.gram[role], loadings[role], norms[role]
        per_factor[role] = np.array(
            [
                1.0 - residual_norm(norm, cross[:, [j]], gram[[j]][:, [j]], loading[:, [j]]) / norm
                for j in range(cross.shape[1])
            ]
        )
        total[role] = 1.0 - residual_norm(norm, cross, gram, loading) / norm
    return per_factor, total


def response_split(alpha: np.ndarray, by_code: dict[str, tuple[np.ndarray, np.ndarray]], norm: float) -> dict:
    """R² of the response by the fixed code alone (``Kαᵀ``) and the random code alone (``Hαᵀ``).

    ``by_code`` maps ``"fixed"``/``"random"`` to the response's moments with that code alone.
    """
    return {
        f"response_{code}_code": 1.0 - residual_norm(norm, cross, gram, alpha) / norm
        for code, (cross, gram) in by_code.items()
    }
