"""Small dense linear algebra shared by the solvers: k × k systems only."""

from __future__ import annotations

import logging
from collections import Counter
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
from scipy import linalg

from .log import logger

_fallbacks: ContextVar[Counter | None] = ContextVar("lmf_fallbacks", default=None)


@contextmanager
def fallback_notes(log: logging.Logger, what: str):
    """Count the singular-system fallbacks met inside the block and log one note for all of them.

    A rank-deficient fit (``ridge=0``, duplicated features, fewer directions than factors) meets a
    singular system at every iteration: one line per fit says so, instead of one per system.
    """
    counts = Counter()
    token = _fallbacks.set(counts)
    try:
        yield counts
    finally:
        _fallbacks.reset(token)
        if counts:
            done = ", ".join(f"{n} by {how}" for how, n in counts.items())
            log.info(
                "%s: %d singular system(s) solved by fallback (%s); the data are rank-deficient for "
                "this many factors, or ridge=0",
                what,
                sum(counts.values()),
                done,
            )


def _note(how: str, shape: tuple[int, int]) -> None:
    counts = _fallbacks.get()
    if counts is None:
        logger.info("singular %d×%d system: using %s", *shape, how)
    else:
        counts[how] += 1


def solve_right(rhs: np.ndarray, gram: np.ndarray, ridge: float = 0.0) -> np.ndarray:
    """``rhs @ (gram + ridge·I)⁻¹`` for a symmetric positive semi-definite ``gram``.

    Uses a Cholesky factorisation, applied as the k × k inverse in one product with ``rhs`` (which
    has many rows) rather than as triangular solves with that many right-hand sides; a singular
    system falls back to the pseudo-inverse with a logged note instead of failing or returning NaN.
    """
    system = gram + ridge * np.eye(gram.shape[0])
    try:
        factor = linalg.cho_factor(system, check_finite=False)
        inverse = linalg.cho_solve(factor, np.eye(system.shape[0]), check_finite=False)
        if np.all(np.isfinite(inverse)):
            return rhs @ ((inverse + inverse.T) / 2)
    except linalg.LinAlgError:
        pass
    _note("the pseudo-inverse", system.shape)
    return rhs @ np.linalg.pinv(system, hermitian=True)


def pinv_right(rhs: np.ndarray, gram: np.ndarray) -> np.ndarray:
    """``rhs @ pinv(gram)`` (the author's generalised inverse in the paper's cycle)."""
    return rhs @ np.linalg.pinv(gram, hermitian=True)


def solve_sylvester(
    left: tuple[np.ndarray, np.ndarray], inner: np.ndarray, outer: np.ndarray, rhs: np.ndarray
) -> np.ndarray:
    """Solve ``M G A + G B = C`` for ``G`` (r × k), with ``M`` symmetric PSD and ``A``, ``B`` symmetric.

    ``left`` is the eigendecomposition ``(d, V)`` of ``M`` (computed once per fit); ``inner`` is
    ``A`` (PSD) and ``outer`` is ``B`` (positive definite, e.g. a Gram matrix plus a ridge).
    With ``B = B½ B½`` and ``B^{-½} A B^{-½} = W diag(λ) Wᵀ`` the equation decouples into
    ``Ĝ_ij (1 + d_i λ_j) = (Vᵀ C B^{-½} W)_ij`` with ``G = V Ĝ Wᵀ B^{-½}``. A singular ``B``
    falls back to the least-squares solution of the vectorised system, with a logged note.
    """
    d, V = left
    b_values, b_vectors = np.linalg.eigh((outer + outer.T) / 2)
    if b_values[0] <= 1e-12 * max(b_values[-1], 1e-300):
        return _sylvester_least_squares(V * d @ V.T, inner, outer, rhs)
    b_inv_half = (b_vectors / np.sqrt(b_values)) @ b_vectors.T
    lam, W = np.linalg.eigh(b_inv_half @ inner @ b_inv_half)
    transformed = V.T @ rhs @ b_inv_half @ W
    return V @ (transformed / (1.0 + np.outer(d, lam))) @ W.T @ b_inv_half


def _sylvester_least_squares(M, A, B, C):
    _note("least squares", B.shape)
    r, k = C.shape
    system = np.kron(A, M) + np.kron(B, np.eye(r))  # column-major vec(M G A + G B)
    solution = np.linalg.lstsq(system, C.ravel(order="F"), rcond=None)[0]
    return solution.reshape((r, k), order="F")
