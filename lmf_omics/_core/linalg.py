"""Small dense linear algebra shared by the solvers: k × k systems only."""

from __future__ import annotations

import logging

import numpy as np
from scipy import linalg

logger = logging.getLogger("lmf_omics")


def solve_right(rhs: np.ndarray, gram: np.ndarray, ridge: float = 0.0) -> np.ndarray:
    """``rhs @ (gram + ridge·I)⁻¹`` for a symmetric positive semi-definite ``gram``.

    Uses a Cholesky factorisation; a singular system falls back to the pseudo-inverse
    with a logged note instead of failing or returning NaN.
    """
    system = gram + ridge * np.eye(gram.shape[0])
    try:
        factor = linalg.cho_factor(system, check_finite=False)
        solution = linalg.cho_solve(factor, rhs.T, check_finite=False).T
        if np.all(np.isfinite(solution)):
            return solution
    except linalg.LinAlgError:
        pass
    logger.info("singular %d×%d system: using the pseudo-inverse", *system.shape)
    return rhs @ np.linalg.pinv(system, hermitian=True)


def pinv_right(rhs: np.ndarray, gram: np.ndarray) -> np.ndarray:
    """``rhs @ pinv(gram)`` (the author's generalised inverse in the paper's cycle)."""
    return rhs @ np.linalg.pinv(gram, hermitian=True)
