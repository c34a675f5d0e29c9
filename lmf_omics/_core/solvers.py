"""The pieces every solver shares: data, factors, moments, loadings, objective, rebalancing.

Notation: ``Y``, ``X``, ``Z`` are the (centred, scaled, weighted) operators of the response,
fixed-effect and random-effect modalities; ``K``/``H`` the fixed/random codes and ``C = K + H``;
``alpha``/``beta``/``u`` the loadings (p × k). ``Z`` (and so ``H`` and ``u``) may be absent, and a
modality may be unobserved in some cells (``D_m`` its 0/1 diagonal of observed rows). The
objective minimised by the joint solver is::

    ‖D_Y(Y − C αᵀ)‖² + ‖X − K βᵀ‖² + ‖Z − H uᵀ‖² + ρ (‖K‖² + ‖H‖² + ‖α‖² + ‖β‖² + ‖u‖²)

Loadings and objective need only the *moments* of each modality and its code: ``ÃᵀC`` and
``CᵀD C``. Residual norms come from the trace identity
``‖D(Ã − C Lᵀ)‖² = ‖Ã‖² − 2⟨ÃᵀC, L⟩ + ⟨CᵀDC, LᵀL⟩``, so no n × p residual is ever formed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .linalg import pinv_right, solve_right
from .operators import Operator
from .validation import ROLES


@dataclass(frozen=True)
class Data:
    """The weighted operators of one fit (``random`` may be ``None``; at transform, any may be)."""

    response: Operator | None
    fixed: Operator | None
    random: Operator | None = None

    @property
    def has_random(self) -> bool:
        return self.random is not None

    def present(self) -> dict[str, Operator]:
        """The operators given, by role."""
        return {role: op for role, op in zip(ROLES, (self.response, self.fixed, self.random)) if op is not None}


@dataclass(frozen=True)
class Factors:
    """Codes and loadings. ``H`` and ``u`` are ``None`` without a random-effect modality.

    Codes are n × k arrays for free codes, or r × k coefficients in an orthonormal basis for
    encoded ones (``K = U G``): either way ``‖K‖ = ‖G‖`` and a rotation acts on the right.
    """

    K: np.ndarray
    H: np.ndarray | None
    alpha: np.ndarray | None = None
    beta: np.ndarray | None = None
    u: np.ndarray | None = None

    @property
    def combined(self) -> np.ndarray:
        return self.K if self.H is None else self.K + self.H

    @property
    def loadings(self) -> dict[str, np.ndarray]:
        """Loadings by role (only those present)."""
        return {role: m for role, m in zip(ROLES, (self.alpha, self.beta, self.u)) if m is not None}

    def rotated(self, rotation: np.ndarray) -> Factors:
        """Apply an orthogonal rotation to every code and loading (the fit is unchanged)."""
        return Factors(*(None if m is None else m @ rotation for m in self._fields()))

    def _fields(self):
        return (self.K, self.H, self.alpha, self.beta, self.u)


@dataclass(frozen=True)
class Moments:
    """Per role, ``cross = ÃᵀC`` (p × k) and ``gram = CᵀDC`` (k × k) of the role's code ``C``.

    ``codes_gram`` is the Gram matrix of ``K + H`` over all cells (for the canonical rotation).
    """

    cross: dict[str, np.ndarray]
    gram: dict[str, np.ndarray]
    codes_gram: np.ndarray

    def rotated(self, rotation: np.ndarray) -> Moments:
        """The moments of the rotated codes (``Ãᵀ(C R) = (ÃᵀC) R``)."""
        return Moments(
            cross={role: m @ rotation for role, m in self.cross.items()},
            gram={role: rotation.T @ m @ rotation for role, m in self.gram.items()},
            codes_gram=rotation.T @ self.codes_gram @ rotation,
        )


def update_loadings(factors: Factors, moments: Moments, ridge: float, *, paper: bool = False) -> Factors:
    """Least-squares (ridge) loadings of each modality on its code, from the moments."""

    def fit(role):
        if role not in moments.cross:
            return None
        cross, gram = moments.cross[role], moments.gram[role]
        return pinv_right(cross, gram) if paper else solve_right(cross, gram, ridge)

    return replace(factors, alpha=fit("response"), beta=fit("fixed"), u=fit("random"))


def objective(factors: Factors, moments: Moments, norms: dict[str, float], ridge: float) -> float:
    """The penalised loss, from the moments (no pass over the data)."""
    loadings = factors.loadings
    loss = sum(
        residual_norm(norms[role], moments.cross[role], moments.gram[role], loadings[role]) for role in moments.cross
    )
    penalty = sum(float(np.sum(m**2)) for m in factors._fields() if m is not None)
    return loss + ridge * penalty


def residual_norm(norm: float, cross: np.ndarray, gram: np.ndarray, loading: np.ndarray) -> float:
    """``‖D(Ã − C Lᵀ)‖²`` by the trace identity, given ``‖Ã‖²``, ``ÃᵀC`` and ``CᵀDC``."""
    fitted = float(np.sum(gram * (loading.T @ loading)))
    return max(norm - 2.0 * float(np.sum(cross * loading)) + fitted, 0.0)


def paper_code_update(data: Data, factors: Factors, step: int) -> Factors:
    """The code update of Algorithm 1 at timestep ``step`` (a cycle of three, or two without Z).

    ``t mod 3 = 0``: ``K + H = Ỹα(αᵀα)⁻¹`` split as ``H = Ỹα(αᵀα)⁻¹ − K``;
    ``t mod 3 = 1``: ``K = X̃β(βᵀβ)⁻¹``; ``t mod 3 = 2``: ``H = Z̃u(uᵀu)⁻¹``.
    Generalised inverses as in the author's code. Without ``Z`` the cycle is
    ``K = Ỹα(αᵀα)⁻¹``, ``K = X̃β(βᵀβ)⁻¹``.
    """
    phase = step % (3 if data.has_random else 2)
    if phase == 0:
        combined = pinv_right(data.response.matmul(factors.alpha), gram(factors.alpha))
        if factors.H is None:
            return replace(factors, K=combined)
        return replace(factors, H=combined - factors.K)
    if phase == 1:
        return replace(factors, K=pinv_right(data.fixed.matmul(factors.beta), gram(factors.beta)))
    return replace(factors, H=pinv_right(data.random.matmul(factors.u), gram(factors.u)))


def gram(matrix: np.ndarray) -> np.ndarray:
    return matrix.T @ matrix


def rebalance(factors: Factors) -> Factors:
    """Exactly minimise the ridge penalty over reparametrisations that leave every fit unchanged.

    Codes ``→ C M`` with loadings ``→ L M⁻ᵀ`` changes no residual; the penalty
    ``tr(MᵀAM) + tr(M⁻¹BM⁻ᵀ)`` (``A`` the codes' Gram sum, ``B`` the loadings') is smallest at
    ``MMᵀ = P`` with ``PAP = B``, the matrix geometric mean of ``A⁻¹`` and ``B``. Without this
    block the scale of the codes drifts only as fast as the tiny ridge gradient allows.
    Skipped when either Gram matrix is singular.
    """
    codes_gram = sum(gram(m) for m in (factors.K, factors.H) if m is not None)
    loadings_gram = sum(gram(m) for m in (factors.alpha, factors.beta, factors.u) if m is not None)
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
    return Factors(
        K=factors.K @ transform,
        H=None if factors.H is None else factors.H @ transform,
        alpha=factors.alpha @ inverse,
        beta=factors.beta @ inverse,
        u=None if factors.u is None else factors.u @ inverse,
    )


def _sqrt_and_inverse(symmetric: np.ndarray):
    """Symmetric square root and its inverse, or ``(None, None)`` when not positive definite."""
    values, vectors = np.linalg.eigh((symmetric + symmetric.T) / 2)
    if values[0] <= 1e-12 * max(values[-1], 0.0) or values[-1] <= 0:
        return None, None
    root = np.sqrt(values)
    return (vectors * root) @ vectors.T, (vectors / root) @ vectors.T
