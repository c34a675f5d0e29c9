"""One step of each solver, on weighted operators (see :mod:`.model` for the model).

Notation: ``Y``, ``X``, ``Z`` are the (centred, scaled, weighted) operators of the response,
fixed-effect and random-effect modalities; ``K``/``H`` the fixed/random codes (n × k) and
``C = K + H``; ``alpha``/``beta``/``u`` the loadings (p × k). ``Z`` (and so ``H`` and ``u``) may
be absent. The objective minimised by the joint solver is::

    ‖Y − C αᵀ‖² + ‖X − K βᵀ‖² + ‖Z − H uᵀ‖² + ρ (‖K‖² + ‖H‖² + ‖α‖² + ‖β‖² + ‖u‖²)

Every data product is ``Ã @ B`` or ``Ãᵀ @ C`` with a thin dense right-hand side; norms of the
residuals come from the trace identity ``‖Ã − C Lᵀ‖² = ‖Ã‖² − 2⟨ÃᵀC, L⟩ + ⟨CᵀC, LᵀL⟩``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .linalg import pinv_right, solve_right
from .operators import Operator


@dataclass(frozen=True)
class Data:
    """The weighted operators of one fit (``response`` or ``random`` may be ``None``)."""

    response: Operator | None
    fixed: Operator | None
    random: Operator | None = None
    random_basis: np.ndarray | None = None  # Q: H is confined to col(Q) when Z has low rank

    @property
    def has_random(self) -> bool:
        return self.random is not None


@dataclass(frozen=True)
class Factors:
    """Codes and loadings. ``H`` and ``u`` are ``None`` without a random-effect modality."""

    K: np.ndarray
    H: np.ndarray | None
    alpha: np.ndarray | None = None
    beta: np.ndarray | None = None
    u: np.ndarray | None = None

    @property
    def combined(self) -> np.ndarray:
        return self.K if self.H is None else self.K + self.H

    def rotated(self, rotation: np.ndarray) -> Factors:
        """Apply an orthogonal rotation to every code and loading (the fit is unchanged)."""
        return Factors(*(None if m is None else m @ rotation for m in self._fields()))

    def _fields(self):
        return (self.K, self.H, self.alpha, self.beta, self.u)


@dataclass(frozen=True)
class Products:
    """``ÃᵀC`` for each modality and its code: reused by the loading update and the objective."""

    response: np.ndarray | None
    fixed: np.ndarray | None
    random: np.ndarray | None

    def rotated(self, rotation: np.ndarray) -> Products:
        """The products of the rotated codes (``Ãᵀ(C R) = (ÃᵀC) R``)."""
        return Products(*(None if m is None else m @ rotation for m in (self.response, self.fixed, self.random)))


def code_products(data: Data, factors: Factors) -> Products:
    """One pass over the data: ``Ỹᵀ(K+H)``, ``X̃ᵀK`` and ``Z̃ᵀH``."""
    return Products(
        response=_rmatmul(data.response, factors.combined),
        fixed=_rmatmul(data.fixed, factors.K),
        random=_rmatmul(data.random, factors.H),
    )


def update_loadings(factors: Factors, products: Products, ridge: float, *, paper: bool = False) -> Factors:
    """Least-squares (ridge) loadings of each modality on its code, from the code products."""

    def fit(product, code):
        if product is None:
            return None
        gram = code.T @ code
        return pinv_right(product, gram) if paper else solve_right(product, gram, ridge)

    return replace(
        factors,
        alpha=fit(products.response, factors.combined),
        beta=fit(products.fixed, factors.K),
        u=fit(products.random, factors.H),
    )


def update_codes(data: Data, factors: Factors, ridge: float) -> Factors:
    """Exact joint minimisation over ``K`` and ``H`` given the loadings.

    Each row solves the same symmetric system ``[k, h] A = [r_K, r_H]`` with::

        A = [[αᵀα + βᵀβ + ρI, αᵀα        ],
             [αᵀα,            αᵀα + uᵀu + ρI]]
        r_K = Ỹα + X̃β,   r_H = Ỹα + Z̃u

    so all rows are solved at once against one 2k × 2k matrix. Absent modalities drop out,
    which is also how new cells with only some modalities are encoded.
    """
    n, k = factors.K.shape
    shared = _gram_or_zeros(data.response, factors.alpha, k)
    from_response = _product_or_zeros(data.response, factors.alpha, n, k)
    fixed_block = shared + _gram_or_zeros(data.fixed, factors.beta, k)
    fixed_rhs = from_response + _product_or_zeros(data.fixed, factors.beta, n, k)
    if factors.H is None:
        return replace(factors, K=solve_right(fixed_rhs, fixed_block, ridge))
    random_block = shared + _gram_or_zeros(data.random, factors.u, k)
    random_rhs = from_response + _product_or_zeros(data.random, factors.u, n, k)
    if data.random_basis is not None:
        return _update_confined_codes(factors, data.random_basis, fixed_block, shared, random_block,
                                      fixed_rhs, random_rhs, ridge)
    system = np.block([[fixed_block, shared], [shared, random_block]])
    codes = solve_right(np.hstack([fixed_rhs, random_rhs]), system, ridge)
    return replace(factors, K=codes[:, :k], H=codes[:, k:])


def _update_confined_codes(factors, basis, fixed_block, shared, random_block, fixed_rhs, random_rhs, ridge):
    """The joint update with ``H = Q G`` (``Q`` orthonormal): exact, through the Schur complement.

    Stationarity in ``K`` gives ``K = (r_K − H A_KH) A_KK⁻¹``; projecting the ``H`` equation on
    ``Q`` then gives ``G (A_HH − A_KH A_KK⁻¹ A_KH) = Qᵀ(r_H − r_K A_KK⁻¹ A_KH)``.
    """
    k = fixed_block.shape[0]
    through_fixed = solve_right(shared, fixed_block, ridge)  # A_KH A_KK⁻¹
    schur = random_block + ridge * np.eye(k) - through_fixed @ shared
    G = solve_right(basis.T @ random_rhs - (basis.T @ fixed_rhs) @ through_fixed.T, schur)
    return fixed_code_given_random(factors, basis @ G, fixed_block, shared, fixed_rhs, ridge)


def fixed_code_given_random(factors, H, fixed_block, shared, fixed_rhs, ridge):
    """``K = (r_K − H αᵀα) (αᵀα + βᵀβ + ρI)⁻¹``: the best fixed code for a given random code."""
    return replace(factors, K=solve_right(fixed_rhs - H @ shared, fixed_block, ridge), H=H)


def update_codes_encoded_random(data: Data, factors: Factors, encoder: np.ndarray, ridge: float) -> Factors:
    """Codes of new cells when the random code is an encoding of Z: ``H = Z̃ E``, then the best ``K``.

    Without Z the random code is zero, as a mixed model predicts a group it has not seen.
    """
    n, k = factors.K.shape
    H = data.random.matmul(encoder) if data.random is not None else np.zeros((n, k))
    shared = _gram_or_zeros(data.response, factors.alpha, k)
    fixed_block = shared + _gram_or_zeros(data.fixed, factors.beta, k)
    fixed_rhs = _product_or_zeros(data.response, factors.alpha, n, k) + _product_or_zeros(data.fixed, factors.beta, n, k)
    return fixed_code_given_random(factors, H, fixed_block, shared, fixed_rhs, ridge)


def objective(data: Data, factors: Factors, products: Products, norms: dict[str, float], ridge: float) -> float:
    """The penalised loss, from cached products (no pass over the data)."""
    loss = 0.0
    for name, code, loading in modality_terms(factors):
        product = getattr(products, name)
        if product is not None:
            loss += residual_norm(norms[name], product, code, loading)
    penalty = sum(float(np.sum(m**2)) for m in factors._fields() if m is not None)
    return loss + ridge * penalty


def residual_norm(norm: float, product: np.ndarray, code: np.ndarray, loading: np.ndarray) -> float:
    """``‖Ã − C Lᵀ‖²`` by the trace identity, given ``‖Ã‖²`` and ``ÃᵀC``."""
    cross = float(np.sum(product * loading))
    fitted = float(np.sum(_gram(code) * _gram(loading)))
    return max(norm - 2.0 * cross + fitted, 0.0)


def paper_code_update(data: Data, factors: Factors, step: int) -> Factors:
    """The code update of Algorithm 1 at timestep ``step`` (a cycle of three, or two without Z).

    ``t mod 3 = 0``: ``K + H = Ỹα(αᵀα)⁻¹`` split as ``H = Ỹα(αᵀα)⁻¹ − K``;
    ``t mod 3 = 1``: ``K = X̃β(βᵀβ)⁻¹``; ``t mod 3 = 2``: ``H = Z̃u(uᵀu)⁻¹``.
    Generalised inverses as in the author's code. Without ``Z`` the cycle is
    ``K = Ỹα(αᵀα)⁻¹``, ``K = X̃β(βᵀβ)⁻¹``.
    """
    phase = step % (3 if data.has_random else 2)
    if phase == 0:
        combined = pinv_right(data.response.matmul(factors.alpha), _gram(factors.alpha))
        if factors.H is None:
            return replace(factors, K=combined)
        return replace(factors, H=combined - factors.K)
    if phase == 1:
        return replace(factors, K=pinv_right(data.fixed.matmul(factors.beta), _gram(factors.beta)))
    return replace(factors, H=pinv_right(data.random.matmul(factors.u), _gram(factors.u)))


def modality_terms(factors: Factors):
    """``(role, code, loadings)`` for each modality present."""
    yield "response", factors.combined, factors.alpha
    yield "fixed", factors.K, factors.beta
    if factors.H is not None:
        yield "random", factors.H, factors.u


def _gram(matrix: np.ndarray) -> np.ndarray:
    return matrix.T @ matrix


def _gram_or_zeros(operator: Operator | None, loading: np.ndarray | None, k: int) -> np.ndarray:
    return np.zeros((k, k)) if operator is None else _gram(loading)


def _product_or_zeros(operator: Operator | None, loading: np.ndarray | None, n: int, k: int) -> np.ndarray:
    return np.zeros((n, k)) if operator is None else operator.matmul(loading)


def _rmatmul(operator: Operator | None, code: np.ndarray | None) -> np.ndarray | None:
    return None if operator is None or code is None else operator.rmatmul(code)


def rebalance(factors: Factors) -> Factors:
    """Exactly minimise the ridge penalty over reparametrisations that leave every fit unchanged.

    Codes ``→ C M`` with loadings ``→ L M⁻ᵀ`` changes no residual; the penalty
    ``tr(MᵀAM) + tr(M⁻¹BM⁻ᵀ)`` (``A`` the codes' Gram sum, ``B`` the loadings') is smallest at
    ``MMᵀ = P`` with ``PAP = B``, the matrix geometric mean of ``A⁻¹`` and ``B``. Without this
    block the scale of the codes drifts only as fast as the tiny ridge gradient allows.
    Skipped when either Gram matrix is singular.
    """
    codes_gram = sum(_gram(m) for m in (factors.K, factors.H) if m is not None)
    loadings_gram = sum(_gram(m) for m in (factors.alpha, factors.beta, factors.u) if m is not None)
    a_half, a_inv_half = _sqrt_and_inverse(codes_gram)
    b_eigen = np.linalg.eigvalsh(loadings_gram)
    if a_half is None or b_eigen[0] <= 1e-12 * b_eigen[-1]:
        return factors
    middle, _ = _sqrt_and_inverse(a_half @ loadings_gram @ a_half)
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
