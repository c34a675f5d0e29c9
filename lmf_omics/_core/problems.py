"""The two forms of the codes, each with its moments, exact code update and start.

* :class:`FreeProblem` — the paper's form: every cell's codes are free parameters, fitted to
  all of that cell's modalities (a random code of a low-rank Z is confined to ``col(Z̃)``).
  Each iteration makes one pass over the data.
* :class:`EncodedProblem` — codes are linear encodings of their own modality, confined to its
  leading principal subspace: ``K = U G_K`` with ``U = X̃ E_X`` and ``H = Q G_H`` with ``Q = Z̃ E_Z``.
  The data enter only through projections onto ``U`` and ``Q`` computed once, so iterations
  never touch the data, and new cells are encoded exactly as training cells (``K = X̃ E_X G_K``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np
from scipy import linalg

from . import encode as encoding
from .linalg import pinv_right, solve_sylvester
from .parallel import SideBySide, thin_product
from .parallel import gram_of as parallel_gram
from .parts import Data, Factors, Loadings, Moments, gram
from .random_effects import RANDOM_EFFECTS, Correction, Settings, random_design
from .rows import solve_rows
from .subspace import (
    OVERSAMPLE,
    Basis,
    corrected_basis,
    initial_free_codes,
    leading,
    principal_basis,
    thin_dtype,
    triangular_factor,
    well_conditioned,
)
from .validation import ROLES

if TYPE_CHECKING:
    from .solvers import Solver


def _encode_new_cells(data: Data, loadings: Loadings, encoders: dict, ridge: float, *, has_random: bool, scale=None):
    """``(K, H)`` of new cells: encoders applied, the rest solved row by row (:func:`.encode.encode`)."""
    return encoding.encode(data, loadings, encoders, ridge, has_random=has_random, scale=scale)


class Problem(Protocol):
    """What a form of the codes provides to the solvers (a new form is one class in :data:`FORMS`)."""

    data: Data

    @classmethod
    def for_fit(
        cls, data: Data, *, n_factors: int, n_pcs: int, solver: Solver, rng: np.random.Generator, random_effect: str
    ) -> Problem:
        """The problem of one fit (principal bases and projections computed here, once)."""

    def initial(self, n_factors: int, *, rng: np.random.Generator) -> Factors:
        """Starting codes (loadings come from the first loadings step)."""

    def moments(self, factors: Factors) -> Moments:
        """``ÃᵀC`` and ``CᵀDC`` of each modality with its code."""

    def update_codes(self, factors: Factors, ridge: float) -> Factors:
        """Exact minimisation of the objective over the codes, loadings fixed."""

    def codes(self, factors: Factors) -> tuple[np.ndarray, np.ndarray | None]:
        """``K`` and ``H`` of the training cells (n × k)."""

    def loadings(self, factors: Factors) -> Loadings:
        """The loadings over the features."""

    def encoders(self, factors: Factors) -> dict[str, np.ndarray]:
        """``E`` with code ``= Ã E`` (weighted scale), by role, for the codes that are encodings."""

    def response_by_code(self, factors: Factors) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``(ỸᵀC, CᵀD_Y C)`` for the fixed and the random code alone."""

    def random_effect_state(self, factors: Factors) -> dict | None:
        """What new cells need for the random effect's correction of their fixed code (``None``: nothing)."""

    def code(self, factors: Factors, role: str) -> np.ndarray | None:
        """``K`` (``role="fixed"``) or ``H`` (``"random"``; ``None`` without Z) of the training cells, n × k."""

    def released(self, role: str) -> Problem:
        """The problem without what only that code of the training cells needed (once it is formed)."""

    @staticmethod
    def encode_new(data: Data, loadings: Loadings, encoders: dict, ridge: float, *, has_random: bool, scale=None):
        """``(K, H)`` of new cells (:func:`.encode.encode`)."""


def _eig(symmetric: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values, vectors = np.linalg.eigh((symmetric + symmetric.T) / 2)
    return np.maximum(values, 0.0), vectors


@dataclass(frozen=True)
class FreeProblem:
    """Free codes (n × k arrays); ``random_basis`` confines ``H`` when Z has rank below k."""

    data: Data
    random_basis: Basis | None = None
    encode_new = staticmethod(_encode_new_cells)

    @classmethod
    def for_fit(
        cls,
        data: Data,
        *,
        n_factors: int,
        n_pcs: int,
        solver: Solver,
        rng: np.random.Generator,
        random_effect: str = "response",
    ):
        """A descent solver confines the random code of a Z of rank below ``n_factors`` to ``col(Z̃)``."""
        basis = None
        if data.has_random and solver.descent:
            basis = principal_basis(data.random, n_factors, rng=rng)
            basis = basis if basis.rank < n_factors else None
        return cls(data, basis)

    def moments(self, factors: Factors) -> Moments:
        cross, grams = {}, {}
        combined = factors.combined  # K + H: n × k, formed once
        for role, code in zip(ROLES, (combined, factors.K, factors.H)):
            operator = getattr(self.data, role)
            if operator is not None and code is not None:
                cross[role], grams[role] = operator.rmatmul(code), operator.gram(code)
        return Moments(cross, grams, codes_gram=gram(combined))

    def response_by_code(self, factors: Factors) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``(ỸᵀC, CᵀD_Y C)`` for the fixed and the random code alone."""
        response = self.data.response
        codes = {"fixed": factors.K, "random": factors.H}
        return {name: (response.rmatmul(c), response.gram(c)) for name, c in codes.items() if c is not None}

    def update_codes(self, factors: Factors, ridge: float) -> Factors:
        """Exact minimisation over the codes: ``K`` and ``H`` jointly, row by row.

        With a confined ``H`` (``H = Q G``, cells coupled through ``G``) the update is two exact
        blocks instead: ``K`` row by row given ``H``, then ``G`` given ``K``.
        """
        operators = self.data.present()
        loadings = factors.loadings.by_role()
        grams = {role: gram(loadings[role]) for role in operators}
        products = {role: op.matmul(loadings[role]) for role, op in operators.items()}
        observed = {role: op.row_mask for role, op in operators.items()}
        n = factors.K.shape[0]
        everyone = np.ones(n, bool)
        free_H = None if factors.H is None else (everyone if self.random_basis is None else ~everyone)
        K, H = solve_rows(
            grams, products, observed, ridge, K=factors.K, H=factors.H, unknown_K=everyone, unknown_H=free_H
        )
        if self.random_basis is not None:
            H = self._confined_random_code(K, grams, products, observed["response"], ridge)
        return factors.with_codes(K, H)

    def cycle_update(self, factors: Factors, step: int) -> Factors:
        """The code update of Algorithm 1 at timestep ``step`` (a cycle of three, or two without Z).

        ``t mod 3 = 0``: ``K + H = Ỹα(αᵀα)⁻¹`` split as ``H = Ỹα(αᵀα)⁻¹ − K``;
        ``t mod 3 = 1``: ``K = X̃β(βᵀβ)⁻¹``; ``t mod 3 = 2``: ``H = Z̃u(uᵀu)⁻¹``.
        Generalised inverses as in the author's code. Without ``Z`` the cycle is
        ``K = Ỹα(αᵀα)⁻¹``, ``K = X̃β(βᵀβ)⁻¹``.
        """
        data, loadings = self.data, factors.loadings
        phase = step % (3 if data.has_random else 2)
        if phase == 0:
            combined = pinv_right(data.response.matmul(loadings.alpha), gram(loadings.alpha))
            if factors.H is None:
                return factors.with_codes(combined, None)
            return factors.with_codes(factors.K, combined - factors.K)
        if phase == 1:
            return factors.with_codes(pinv_right(data.fixed.matmul(loadings.beta), gram(loadings.beta)), factors.H)
        return factors.with_codes(factors.K, pinv_right(data.random.matmul(loadings.u), gram(loadings.u)))

    def _confined_random_code(self, K, grams, products, response_weights, ridge):
        """``H = Q G`` with ``QᵀD_YQ G αᵀα + G (uᵀu + ρI) = Qᵀ(Ỹα − D_Y K αᵀα + Z̃u)``."""
        Q = self.random_basis.vectors
        shared = grams["response"]
        rhs = Q.T @ (products["response"] + products["random"] - (K * response_weights[:, None]) @ shared)
        left = _eig(Q.T @ (Q * response_weights[:, None]))
        k = K.shape[1]
        G = solve_sylvester(left, shared, grams["random"] + ridge * np.eye(k), rhs)
        return Q @ G

    def initial(self, n_factors: int, *, rng: np.random.Generator) -> Factors:
        sources = [op for op in (self.data.response, self.data.fixed) if op is not None]
        basis = None
        if self.random_basis is not None:
            basis = self.random_basis.vectors
        elif self.data.has_random:
            basis = leading(self.data.random, n_factors, rng)
        K, H = initial_free_codes(sources, n_factors, basis, rng=rng)
        return Factors(K=K, H=H)

    def codes(self, factors: Factors) -> tuple[np.ndarray, np.ndarray | None]:
        return factors.K, factors.H

    def code(self, factors: Factors, role: str) -> np.ndarray | None:
        return factors.K if role == "fixed" else factors.H

    def loadings(self, factors: Factors) -> Loadings:
        """The loadings over the features (free codes keep them so throughout)."""
        return factors.loadings

    def random_effect_state(self, factors: Factors) -> None:
        """Free codes take the paper's form of the random effect: nothing to correct."""
        return None

    def released(self, role: str) -> FreeProblem:
        """The problem once a code is out (free codes keep nothing n × r beyond them)."""
        return self

    def encoders(self, factors: Factors) -> dict[str, np.ndarray]:
        """Encoders of confined codes (``H = Z̃ E``), by role."""
        if self.random_basis is None or factors.H is None:
            return {}
        return {"random": self.random_basis.encoder @ (self.random_basis.vectors.T @ factors.H)}


@dataclass(frozen=True)
class EncodedProblem:
    """Codes confined to the leading principal subspaces ``U`` of X̃ and ``Q`` of Z̃ (see module doc).

    Holds, computed once: the projections ``P = Ãᵀ B`` (``B = [U Q]`` for Y, ``U`` for X, ``Q``
    for Z) through their QR factors ``P = W T`` (``T`` in ``cross``), the response-observed Gram
    blocks ``UᵀD_YU``, ``UᵀD_YQ``, ``QᵀD_YQ`` (with the eigendecompositions of the diagonal blocks)
    and ``UᵀQ``. ``Factors.K``/``Factors.H`` are the coefficients ``G_K`` (r_x × k), ``G_H`` (r_z × k).

    Every ``ÃᵀC = W (T G)`` lies in ``span(W)``, and so does every loading fitted to it: the
    iterations keep cross moments and loadings as r' × k coordinates in ``W`` (inner products
    and Gram matrices are the same in coordinates), so they cost O(r²k), not O(p r k).
    :meth:`loadings` maps them to features once, at the end: ``W a = Ãᵀ (B T⁻¹ a)``, one pass of
    width k over each modality, so no p × r matrix is kept (``W`` itself only when p ≤ r or ``P`` is
    rank-deficient).
    """

    fixed_basis: Basis
    random_basis: Basis | None
    cross: dict[tuple[str, str], np.ndarray]  # (role, basis) → coordinates T of Ã_roleᵀ basis = W T
    data: Data
    frames: dict[str, np.ndarray]  # role → W, for few features or a rank-deficient projection
    response_gram: dict[str, np.ndarray]  # "UU", "UQ", "QQ" → basisᵀ D_Y basis
    overlap: np.ndarray | None  # UᵀQ
    eig_fixed: tuple[np.ndarray, np.ndarray]
    eig_random: tuple[np.ndarray, np.ndarray] | None
    correction: Correction | None = None  # the random effect removed from X's principal scores
    scores_encoder: np.ndarray | None = None  # S = X̃ E_S, the scores the correction acts on
    to_basis: np.ndarray | None = None  # U = S_c T: the corrected basis from the corrected scores
    encode_new = staticmethod(_encode_new_cells)

    @classmethod
    def for_fit(
        cls,
        data: Data,
        *,
        n_factors: int,
        n_pcs: int,
        solver: Solver,
        rng: np.random.Generator,
        random_effect: str = "response",
    ):
        """Codes in the leading ``n_pcs`` principal directions of X̃ (and of Z̃).

        With a random effect that accounts for X (:mod:`.random_effects`), ``K`` is confined to the
        principal subspace of X's corrected scores instead.
        """
        precision = thin_dtype(data.fixed, n_pcs + OVERSAMPLE)
        fixed = principal_basis(data.fixed, n_pcs, rng=rng, dtype=precision)
        random = principal_basis(data.random, n_pcs, rng=rng, dtype=precision) if data.has_random else None
        form = RANDOM_EFFECTS[random_effect]
        if random is None or not form.corrects_fixed:
            return cls.build(data, fixed, random)
        scores_encoder = fixed.encoder * fixed.values
        scores = fixed.vectors
        scores *= fixed.values.astype(scores.dtype)  # S = U Σ, over the basis (not needed after)
        del fixed
        keys = data.fixed.content_keys().cells  # an order-free subsample of cells fits the states
        correction = form.correct(scores, random_design(data.random), Settings(), keys=keys, out=scores)
        del scores
        corrected, to_basis = corrected_basis(correction.corrected, scores_encoder)  # over S_c
        correction = replace(correction, corrected=np.zeros((0, 0)))
        problem = cls.build(data, corrected, random)
        return replace(problem, correction=correction, scores_encoder=scores_encoder, to_basis=to_basis)

    def released(self, role: str) -> EncodedProblem:
        """The problem without the n × r basis of that role's code (once the code is formed)."""
        if role == "fixed":
            return replace(self, fixed_basis=replace(self.fixed_basis, vectors=np.zeros((0, 0))))
        if self.random_basis is None:
            return self
        return replace(self, random_basis=replace(self.random_basis, vectors=np.zeros((0, 0))))

    def random_effect_state(self, factors: Factors) -> dict | None:
        """What new cells need to be corrected as the training cells were: ``K = apply(X̃ E_S) · code_map``."""
        if self.correction is None:
            return None
        return {
            **self.correction.arrays(),
            "scores_encoder": self.scores_encoder,
            "code_map": self.to_basis @ factors.K,
        }

    @classmethod
    def build(cls, data: Data, fixed_basis: Basis, random_basis: Basis | None) -> EncodedProblem:
        """The projections ``Ãᵀ B``: from a basis's own frame where it has one, else one pass of the operator."""
        U, Q = fixed_basis.vectors, None if random_basis is None else random_basis.vectors
        both = U if Q is None else SideBySide(U, Q)  # [U Q] read by row blocks, never copied whole
        frames, coordinates = {}, {}
        for role, basis, own in (("response", both, None), ("fixed", U, fixed_basis), ("random", Q, random_basis)):
            if basis is None:
                continue
            if own is not None and own.frame is not None:  # Ãᵀ vectors = frame · values
                frames[role], coordinates[role] = own.frame, np.diag(own.values)
                continue
            projection = getattr(data, role).rmatmul(basis)
            if projection.shape[0] <= basis.shape[0]:  # p ≤ n: the p × k frame kept, so no pass at the end
                frames[role], coordinates[role] = np.linalg.qr(projection)
            else:
                coordinates[role] = triangular_factor(projection)  # no copy of the p × k projection
                if not well_conditioned(coordinates[role]):
                    frames[role], coordinates[role] = np.linalg.qr(projection)  # rank-deficient
            del projection
        r = U.shape[1]
        cross = {("response", "fixed"): coordinates["response"][:, :r], ("fixed", "fixed"): coordinates["fixed"]}
        blocks = parallel_gram(both, data.response.observed)
        response_gram = {"UU": blocks[:r, :r]}
        overlap = None
        if Q is not None:
            cross[("response", "random")] = coordinates["response"][:, r:]
            cross[("random", "random")] = coordinates["random"]
            response_gram.update(UQ=blocks[:r, r:], QQ=blocks[r:, r:])
            overlap = blocks[:r, r:] if data.response.observed is None else parallel_gram(both)[:r, r:]
        return cls(
            fixed_basis,
            random_basis,
            cross,
            data,
            frames,
            response_gram,
            overlap,
            eig_fixed=_eig(response_gram["UU"]),
            eig_random=None if Q is None else _eig(response_gram["QQ"]),
        )

    def moments(self, factors: Factors) -> Moments:
        G_K, G_H = factors.K, factors.H
        cross = {"response": self.cross[("response", "fixed")] @ G_K, "fixed": self.cross[("fixed", "fixed")] @ G_K}
        response_gram = G_K.T @ self.response_gram["UU"] @ G_K
        grams = {"fixed": gram(G_K)}
        codes_gram = gram(G_K)
        if G_H is not None:
            cross["response"] = cross["response"] + self.cross[("response", "random")] @ G_H
            cross["random"] = self.cross[("random", "random")] @ G_H
            mixed = G_K.T @ self.response_gram["UQ"] @ G_H
            response_gram = response_gram + mixed + mixed.T + G_H.T @ self.response_gram["QQ"] @ G_H
            grams["random"] = gram(G_H)
            overlap = G_K.T @ self.overlap @ G_H
            codes_gram = codes_gram + overlap + overlap.T + gram(G_H)
        grams["response"] = response_gram
        return Moments(cross, grams, codes_gram=codes_gram)

    def response_by_code(self, factors: Factors) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``(ỸᵀC, CᵀD_Y C)`` for the fixed and the random code alone."""
        G_K, G_H = factors.K, factors.H
        moments = {"fixed": (self.cross[("response", "fixed")] @ G_K, G_K.T @ self.response_gram["UU"] @ G_K)}
        if G_H is not None:
            moments["random"] = (self.cross[("response", "random")] @ G_H, G_H.T @ self.response_gram["QQ"] @ G_H)
        return moments

    def update_codes(self, factors: Factors, ridge: float) -> Factors:
        """Two exact blocks: ``G_K`` given ``G_H``, then ``G_H`` given ``G_K`` (generalised Sylvester).

        ``UᵀD_YU G_K A + G_K (βᵀβ + ρI) = (ỸᵀU)ᵀα − UᵀD_YQ G_H A + (X̃ᵀU)ᵀβ`` with ``A = αᵀα``, and
        the same for ``G_H`` with ``Q``, ``u`` and Z̃.
        """
        alpha, beta, u = factors.loadings.alpha, factors.loadings.beta, factors.loadings.u
        shared = gram(alpha)
        eye = ridge * np.eye(shared.shape[0])
        rhs = self.cross[("response", "fixed")].T @ alpha + self.cross[("fixed", "fixed")].T @ beta
        if factors.H is not None:
            rhs = rhs - self.response_gram["UQ"] @ factors.H @ shared
        G_K = solve_sylvester(self.eig_fixed, shared, gram(beta) + eye, rhs)
        if factors.H is None:
            return factors.with_codes(G_K, None)
        rhs = (
            self.cross[("response", "random")].T @ alpha
            + self.cross[("random", "random")].T @ u
            - self.response_gram["UQ"].T @ G_K @ shared
        )
        G_H = solve_sylvester(self.eig_random, shared, gram(u) + eye, rhs)
        return factors.with_codes(G_K, G_H)

    def initial(self, n_factors: int, *, rng: np.random.Generator) -> Factors:
        """``K`` starts as the leading k principal components of X̃ (scores ``U √S``), ``H`` at zero."""
        r = self.fixed_basis.rank
        G_K = np.zeros((r, n_factors))
        top = min(r, n_factors)
        G_K[np.arange(top), np.arange(top)] = np.sqrt(self.fixed_basis.values[:top])
        G_H = None if self.random_basis is None else np.zeros((self.random_basis.rank, n_factors))
        return Factors(K=G_K, H=G_H)

    def codes(self, factors: Factors) -> tuple[np.ndarray, np.ndarray | None]:
        """``K = U G_K`` and ``H = Q G_H``, in the bases' precision (by row blocks: no float64 copy of a basis)."""
        return self.code(factors, "fixed"), self.code(factors, "random")

    def code(self, factors: Factors, role: str) -> np.ndarray | None:
        if role == "fixed":
            return thin_product(self.fixed_basis.vectors, factors.K)
        return None if factors.H is None else thin_product(self.random_basis.vectors, factors.H)

    def loadings(self, factors: Factors) -> Loadings:
        """The loadings over the features (``W a`` from the coordinates ``a``)."""
        return Loadings.from_roles({role: self.in_features(role, m) for role, m in factors.loadings.by_role().items()})

    def in_features(self, role: str, coordinates: np.ndarray) -> np.ndarray:
        """``W a`` for coordinates ``a`` (r' × k) of a p × k matrix in ``span(Ã_roleᵀ B)``."""
        if role in self.frames:
            return self.frames[role] @ coordinates
        U = self.fixed_basis.vectors
        if role == "response":
            T = np.hstack(
                [self.cross[key] for key in (("response", "fixed"), ("response", "random")) if key in self.cross]
            )
            r = U.shape[1]
            coefficients = linalg.solve_triangular(T, coordinates, check_finite=False)
            left = thin_product(U, coefficients[:r], np.float64)
            if self.random_basis is not None:
                left += thin_product(self.random_basis.vectors, coefficients[r:], np.float64)
        else:
            basis = U if role == "fixed" else self.random_basis.vectors
            coefficients = linalg.solve_triangular(self.cross[(role, role)], coordinates, check_finite=False)
            left = thin_product(basis, coefficients, np.float64)
        return getattr(self.data, role).rmatmul(left)

    def encoders(self, factors: Factors) -> dict[str, np.ndarray]:
        """``E`` with code ``= Ã E`` (weighted scale), by role."""
        encoders = {"fixed": self.fixed_basis.encoder @ factors.K}
        if factors.H is not None:
            encoders["random"] = self.random_basis.encoder @ factors.H
        return encoders


FORMS: dict[str, type[Problem]] = {"encoded": EncodedProblem, "free": FreeProblem}
