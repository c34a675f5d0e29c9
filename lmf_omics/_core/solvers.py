"""Solvers: how a fit alternates loadings and codes, each a small class in one registry.

Notation: ``Y``, ``X``, ``Z`` are the (centred, scaled, weighted) operators of the response,
fixed-effect and random-effect modalities; ``K``/``H`` the fixed/random codes and ``C = K + H``;
``alpha``/``beta``/``u`` the loadings (p × k). ``Z`` (and so ``H`` and ``u``) may be absent, and a
modality may be unobserved in some cells (``D_m`` its 0/1 diagonal of observed rows). The
objective minimised by the joint solver is::

    ‖D_Y(Y − C αᵀ)‖² + ‖X − K βᵀ‖² + ‖Z − H uᵀ‖² + ρ (‖K‖² + ‖H‖² + ‖α‖² + ‖β‖² + ‖u‖²)

Loadings and objective need only the *moments* of each modality and its code: ``ÃᵀC`` and
``CᵀD C``. Residual norms come from the trace identity
``‖D(Ã − C Lᵀ)‖² = ‖Ã‖² − 2⟨ÃᵀC, L⟩ + ⟨CᵀDC, LᵀL⟩``, so no n × p residual is ever formed.

A new solver is one class with the :class:`Solver` attributes and methods, added to
:data:`SOLVERS`; the option checks and the ``solver=`` choices are derived from that table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .linalg import pinv_right, solve_right
from .log import logger
from .parts import Factors, Loadings, Moments, gram
from .problems import Problem


class Solver(Protocol):
    """What a solver provides to the fit loop (:func:`iterate`)."""

    name: str
    title: str  # in messages: solver='paper' (Algorithm 1) ...
    forms: tuple[str, ...]  # forms of the codes it fits (see problems.FORMS); the first is its default
    missing_rows: bool  # whether a cell may lack a modality
    descent: bool  # each step minimises the objective exactly over its block (never increases it)

    def penalty(self, ridge: float) -> float:
        """The ridge it applies, given the ``ridge`` option."""

    def loadings(self, factors: Factors, moments: Moments, ridge: float) -> Loadings:
        """New loadings given the codes' moments."""

    def codes(self, problem: Problem, factors: Factors, step: int, ridge: float) -> Factors:
        """New codes given the loadings (``step`` counts iterations from 0)."""


@dataclass(frozen=True)
class JointSolver:
    """Exact block-coordinate descent: ridge least squares for the loadings, then exact code blocks."""

    name: str = "joint"
    title: str = "exact block-coordinate descent"
    forms: tuple[str, ...] = ("encoded", "free")
    missing_rows: bool = True
    descent: bool = True

    def penalty(self, ridge: float) -> float:
        return float(ridge)

    def loadings(self, factors: Factors, moments: Moments, ridge: float) -> Loadings:
        return _loadings(moments, lambda cross, gram_: solve_right(cross, gram_, ridge))

    def codes(self, problem: Problem, factors: Factors, step: int, ridge: float) -> Factors:
        return rebalance(problem.update_codes(factors, ridge))


@dataclass(frozen=True)
class PaperSolver:
    """Algorithm 1 as printed (inverses restored): least-squares loadings, a t mod 3 cycle of codes.

    Not a descent method: its objective can rise and it can diverge. Free codes only, no ridge.
    """

    name: str = "paper"
    title: str = "Algorithm 1"
    forms: tuple[str, ...] = ("free",)
    missing_rows: bool = False
    descent: bool = False

    def penalty(self, ridge: float) -> float:
        return 0.0

    def loadings(self, factors: Factors, moments: Moments, ridge: float) -> Loadings:
        return _loadings(moments, pinv_right)

    def codes(self, problem: Problem, factors: Factors, step: int, ridge: float) -> Factors:
        return problem.cycle_update(factors, step)


SOLVERS: dict[str, Solver] = {solver.name: solver for solver in (JointSolver(), PaperSolver())}


def _loadings(moments: Moments, solve: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Loadings:
    """Least-squares loadings of each modality on its code, from the moments."""
    return Loadings.from_roles({role: solve(cross, moments.gram[role]) for role, cross in moments.cross.items()})


@dataclass(frozen=True)
class Iterated:
    """The last finite iterate of a fit, its moments, the objective history and whether it converged."""

    factors: Factors
    moments: Moments
    history: list[float]
    converged: bool
    diverged_at: int | None = None


def iterate(
    solver: Solver,
    problem: Problem,
    factors: Factors,
    norms: dict[str, float],
    ridge: float,
    *,
    max_iter: int,
    tol: float,
    bar,
) -> Iterated:
    """Alternate loadings and codes until the relative change of the objective is below ``tol``.

    ``bar`` is a progress bar over ``range(max_iter)`` (iterated here; ``disable``-d when hidden).
    """
    history: list[float] = []
    last_good, converged, diverged_at = None, False, None
    for step in bar:
        moments = problem.moments(factors)
        fitted = factors.with_loadings(solver.loadings(factors, moments, ridge))
        value = objective(fitted, moments, norms, ridge)
        if not np.isfinite(value):
            diverged_at = step
            break
        last_good = (fitted, moments)
        history.append(value)
        bar.set_postfix(objective=f"{value:.6g}", refresh=False)
        if len(history) > 1 and abs(history[-2] - value) <= tol * abs(history[-2]):
            converged = True
            break
        if step == max_iter - 1:
            break
        factors = solver.codes(problem, fitted, step, ridge)
    bar.close()
    if last_good is None:
        raise FloatingPointError("the objective is not finite at the initial codes; check the input for extreme values")
    return Iterated(*last_good, history, converged, diverged_at)


def objective(factors: Factors, moments: Moments, norms: dict[str, float], ridge: float) -> float:
    """The penalised loss, from the moments (no pass over the data)."""
    loadings = factors.loadings.by_role()
    loss = sum(
        residual_norm(norms[role], moments.cross[role], moments.gram[role], loadings[role]) for role in moments.cross
    )
    penalty = sum(float(np.sum(m**2)) for m in factors.arrays())
    return loss + ridge * penalty


def residual_norm(norm: float, cross: np.ndarray, gram_: np.ndarray, loading: np.ndarray) -> float:
    """``‖D(Ã − C Lᵀ)‖²`` by the trace identity, given ``‖Ã‖²``, ``ÃᵀC`` and ``CᵀDC``."""
    fitted = float(np.sum(gram_ * (loading.T @ loading)))
    return max(norm - 2.0 * float(np.sum(cross * loading)) + fitted, 0.0)


def rebalance(factors: Factors) -> Factors:
    """Exactly minimise the ridge penalty over reparametrisations that leave every fit unchanged.

    Codes ``→ C M`` with loadings ``→ L M⁻ᵀ`` changes no residual; the penalty
    ``tr(MᵀAM) + tr(M⁻¹BM⁻ᵀ)`` (``A`` the codes' Gram sum, ``B`` the loadings') is smallest at
    ``MMᵀ = P`` with ``PAP = B``, the matrix geometric mean of ``A⁻¹`` and ``B``. Without this
    block the scale of the codes drifts only as fast as the tiny ridge gradient allows.
    Skipped when either Gram matrix is singular.
    """
    codes_gram = sum(gram(m) for m in (factors.K, factors.H) if m is not None)
    loadings_gram = sum(gram(m) for m in factors.loadings.arrays())
    a_half, a_inv_half = _sqrt_and_inverse(codes_gram)
    b_eigen = np.linalg.eigvalsh(loadings_gram)
    if a_half is None or b_eigen[0] <= 1e-12 * b_eigen[-1]:
        return factors
    middle, _ = _sqrt_and_inverse(a_half @ loadings_gram @ a_half)
    if middle is None:  # singular to working precision after all
        return factors
    target = a_inv_half @ middle @ a_inv_half
    transform, inverse = _sqrt_and_inverse(target)
    if transform is None:
        return factors
    loadings = factors.loadings
    return Factors(
        K=factors.K @ transform,
        H=None if factors.H is None else factors.H @ transform,
        loadings=Loadings(
            alpha=loadings.alpha @ inverse,
            beta=loadings.beta @ inverse,
            u=None if loadings.u is None else loadings.u @ inverse,
        ),
    )


def _sqrt_and_inverse(symmetric: np.ndarray):
    """Symmetric square root and its inverse, or ``(None, None)`` when not positive definite."""
    values, vectors = np.linalg.eigh((symmetric + symmetric.T) / 2)
    if values[0] <= 1e-12 * max(values[-1], 0.0) or values[-1] <= 0:
        return None, None
    root = np.sqrt(values)
    return (vectors * root) @ vectors.T, (vectors / root) @ vectors.T


def log_convergence(solver: str, result, tol: float) -> None:
    """Warn (through the package logger) when ``result`` diverged or did not reach ``tol``."""
    if result.diverged_at is not None:
        logger.warning("LMF (%s) diverged at iteration %d; keeping the last finite iterate", solver, result.diverged_at)
    if not result.converged:
        logger.warning(
            "LMF (%s) did not converge in %d iterations (tol=%g); increase max_iter or tol",
            solver,
            len(result.history),
            tol,
        )
