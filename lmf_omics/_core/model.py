"""The :class:`LinearMixedForms` estimator: arrays in, arrays out (no AnnData here)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
from tqdm.auto import tqdm

from . import validation
from .canonical import canonical_rotation
from .init import initial_factors
from .operators import Operator, as_matrix
from .solvers import (
    Data,
    Factors,
    code_products,
    modality_terms,
    objective,
    paper_code_update,
    rebalance,
    update_codes,
    update_codes_encoded_random,
    update_loadings,
)
from .subspace import low_rank_basis
from .variance import response_split, variance_explained

logger = logging.getLogger("lmf_omics")

ROLES = validation.ROLES


@dataclass(frozen=True)
class Codes:
    """Codes of some cells: ``fixed`` (K), ``random`` (H, ``None`` without Z) and ``combined`` (K + H)."""

    fixed: np.ndarray
    random: np.ndarray | None

    @property
    def combined(self) -> np.ndarray:
        return self.fixed if self.random is None else self.fixed + self.random


class LinearMixedForms:
    r"""Linear Mixed Forms (Banh): three modalities of the same cells through two latent codes.

    With a response ``Y`` (n × p_y), fixed-effect data ``X`` (n × p_x) and random-effect
    covariates ``Z`` (n × p_z), each centred (and optionally scaled) per feature::

        Y ≈ (K + H) αᵀ      X ≈ K βᵀ      Z ≈ H uᵀ

    ``K`` is the fixed code and ``H`` the random code (n × k); ``α``, ``β``, ``u`` are loadings
    (one row per feature). Each modality ``m`` enters with weight ``w_m / ‖Ã_m‖²`` so that the
    objective is scale-free (a weighted sum of fractions of variance left unexplained)::

        f = Σ_m w_m ‖Ã_m − C_m L_mᵀ‖² / ‖Ã_m‖² + ρ (‖K‖² + ‖H‖² + ‖α̃‖² + ‖β̃‖² + ‖ũ‖²)

    (loadings with a tilde are on that weighted scale).

    ``solver="joint"`` (default) is exact block-coordinate descent: ridge least squares for
    ``α``, ``β``, ``u``, then ``K`` and ``H`` jointly, every cell solving the same 2k × 2k
    system. Each step minimises ``f`` exactly over its block, so ``f`` never increases.

    ``solver="paper"`` is Algorithm 1 as printed, with the missing inverses restored: loadings by
    least squares, then one code update per timestep cycling ``K + H = Ỹα(αᵀα)⁻¹`` (split as
    ``H = Ỹα(αᵀα)⁻¹ − K``), ``K = X̃β(βᵀβ)⁻¹``, ``H = Z̃u(uᵀu)⁻¹``, with pseudo-inverses as in the
    author's R code. It is *not* a descent method: its objective can rise and it can diverge.
    It is kept to reproduce the paper.

    Data are only touched through ``Ã @ B`` and ``Ãᵀ @ C`` with thin dense ``B``/``C``: centring
    and scaling are implicit, so sparse input is never densified and an iteration costs
    O(nnz · k). The codes start from a seeded randomised SVD of ``[Ỹ | X̃]``, split into the
    part in ``Z̃``'s leading subspace (``H``) and the rest (``K``). At the end all factors are
    rotated (orthogonally, which changes neither fit nor objective) so that the columns of
    ``K + H`` are orthogonal, ordered by the response variance they explain, with the largest
    entry of each positive.

    Parameters
    ----------
    n_factors
        Number of factors ``k``; at most the cells (minus one) and the features of Y and X.
        Z may have fewer features or a lower rank (e.g. a few one-hot batches).
    solver
        ``"joint"`` or ``"paper"``.
    center, scale
        Centre each feature (recommended); scale each feature to unit variance. Constant
        features are centred to zero and keep a divisor of 1 (they contribute nothing).
    weights
        Relative weight of each modality, keys ``"response"``, ``"fixed"``, ``"random"``
        (default 1 each, i.e. every modality counts as much as any other).
    ridge
        Penalty ``ρ`` on codes and loadings (on the weighted scale, where the data have unit
        norm). Keeps every system well posed, including a low-rank Z. ``solver="paper"``
        ignores it.
    max_iter, tol
        Stop after ``max_iter`` iterations or when the relative change of the objective
        falls below ``tol``. Not converging logs a warning; the result is still usable.
    random_state
        Seed of the randomised SVD initialisation; the same seed gives identical results.
    progress
        Show a progress bar (``None``: only on a terminal).

    Attributes
    ----------
    fixed_codes_, random_codes_, codes_
        ``K``, ``H`` (``None`` without Z) and ``K + H`` for the training cells.
    loadings_
        ``{"response": α, "fixed": β, "random": u}``, relating codes to the centred (and
        scaled) data: ``Ã ≈ C Lᵀ``.
    means_, scales_
        Per-modality centring offsets and divisors.
    variance_explained_, total_variance_explained_
        R² per factor (arrays of length k) and in total, per modality; the totals also hold
        ``"response_fixed_code"`` and ``"response_random_code"``: R² of Y by ``Kαᵀ`` and ``Hαᵀ``.
    objective_history_, n_iter_, converged_
        Objective after each iteration, the iteration count and whether ``tol`` was reached.
    """

    def __init__(
        self,
        n_factors: int = 10,
        *,
        solver: str = "joint",
        center: bool = True,
        scale: bool = False,
        weights: dict[str, float] | None = None,
        ridge: float = 1e-3,
        max_iter: int = 500,
        tol: float = 1e-6,
        random_state: int = 0,
        progress: bool | None = None,
    ):
        self.n_factors = n_factors
        self.solver = solver
        self.center = center
        self.scale = scale
        self.weights = weights
        self.ridge = ridge
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.progress = progress

    # ----------------------------------------------------------------------------- fitting
    def fit(self, Y, X, Z=None, *, labels: dict[str, str] | None = None) -> LinearMixedForms:
        """Fit the model to a response ``Y``, fixed-effect data ``X`` and optional covariates ``Z``.

        Each is a numpy array or a scipy sparse matrix/array with cells as rows. ``labels``
        names the modalities in error messages. All input is checked before any work.
        """
        self.check_options()
        if Y is None or X is None:
            raise ValueError("fit needs a response Y and fixed-effect data X (Z is optional)")
        weights = self._weights()
        raw = {"response": Y, "fixed": X, "random": Z}
        raw = {role: m for role, m in raw.items() if m is not None}
        for role, matrix in raw.items():
            validation.check_matrix(matrix, role, labels)
        validation.check_shapes({r: m.shape for r, m in raw.items()}, labels)
        n_obs = Y.shape[0]
        validation.check_rank(self.n_factors, n_obs, {r: m.shape[1] for r, m in raw.items()}, self.center, labels)
        operators = {
            role: Operator.from_data(as_matrix(m), center=self.center, scale=self.scale)
            for role, m in raw.items()
        }
        norms = {role: op.squared_norm() for role, op in operators.items()}
        validation.check_variance(norms, labels)

        self.means_ = {role: op.mean for role, op in operators.items()}
        self.scales_ = {role: op.scale for role, op in operators.items()}
        self.modality_weights_ = {role: weights[role] / norms[role] for role in operators}
        data = self._weighted(operators)
        self._fit_weighted(data)
        return self

    def check_options(self) -> None:
        """Raise a ``ValueError`` naming any invalid option (called by :meth:`fit` before any work)."""
        validation.check_options(
            n_factors=self.n_factors, solver=self.solver, ridge=self.ridge,
            weights=self._weights(), max_iter=self.max_iter, tol=self.tol,
        )

    def _fit_weighted(self, data: Data) -> None:
        norms = {role: self._weights()[role] for role in ROLES if getattr(data, role) is not None}
        ridge = 0.0 if self.solver == "paper" else float(self.ridge)
        confined = low_rank_basis(data.random, self.n_factors) if data.has_random and self.solver == "joint" else None
        if confined is not None:
            data = replace(data, random_basis=confined[0])
        rng = np.random.default_rng(self.random_state)
        factors = initial_factors(data, self.n_factors, rng=rng)
        factors, products, history = self._iterate(data, factors, norms, ridge)
        rotation = canonical_rotation(factors, products, norms)
        factors = factors.rotated(rotation)
        products = products.rotated(rotation)
        self._store(data, factors, products, norms, history)
        self._random_encoder = None if confined is None else confined[1] @ (confined[0].T @ factors.H)

    def _iterate(self, data: Data, factors: Factors, norms: dict[str, float], ridge: float):
        """Alternate loadings and codes; return the last finite fit, its code products and the history."""
        paper = self.solver == "paper"
        history: list[float] = []
        last_good = None
        self.converged_ = False
        bar = tqdm(range(self.max_iter), desc=f"LMF ({self.solver})", disable=_disable(self.progress), leave=False)
        for step in bar:
            products = code_products(data, factors)
            fitted = update_loadings(factors, products, ridge, paper=paper)
            value = objective(data, fitted, products, norms, ridge)
            if not np.isfinite(value):
                logger.warning("LMF (%s) diverged at iteration %d; keeping the last finite iterate", self.solver, step)
                break
            last_good = (fitted, products)
            history.append(value)
            bar.set_postfix(objective=f"{value:.6g}", refresh=False)
            if len(history) > 1 and abs(history[-2] - value) <= self.tol * abs(history[-2]):
                self.converged_ = True
                break
            if step == self.max_iter - 1:
                break
            factors = paper_code_update(data, fitted, step) if paper else rebalance(update_codes(data, fitted, ridge))
        bar.close()
        if last_good is None:
            raise FloatingPointError("the objective is not finite at the initial codes; check the input for extreme values")
        if not self.converged_:
            logger.warning(
                "LMF (%s) did not converge in %d iterations (tol=%g); increase max_iter or tol",
                self.solver, len(history), self.tol,
            )
        return (*last_good, history)

    def _store(self, data: Data, factors: Factors, products, norms, history) -> None:
        weight = {role: np.sqrt(self.modality_weights_[role]) for role in self.modality_weights_}
        self._factors = factors
        self.fixed_codes_ = factors.K
        self.random_codes_ = factors.H
        self.codes_ = factors.combined
        self.loadings_ = {role: loading / weight[role] for role, _, loading in modality_terms(factors)}
        self.variance_explained_, self.total_variance_explained_ = variance_explained(factors, products, norms)
        on_fixed = data.response.rmatmul(factors.K)
        self.total_variance_explained_.update(response_split(factors, on_fixed, products, norms["response"]))
        self.objective_history_ = np.asarray(history)
        self.n_iter_ = len(history)

    # ------------------------------------------------------------------------ using a fit
    def transform(self, *, Y=None, X=None, Z=None) -> Codes:
        """Codes of (new) cells from whichever modalities they have.

        Solves the same joint system as the fit with the loadings fixed; absent modalities
        drop out. Features must be in the training order. Without ``Z`` (and ``Y``) the random
        code is zero, as a mixed model predicts a group it has not seen.
        """
        self._check_fitted()
        given = {"response": Y, "fixed": X, "random": Z}
        given = {role: m for role, m in given.items() if m is not None}
        if not given:
            raise ValueError("transform needs at least one of Y, X or Z")
        if "random" in given and "random" not in self.means_:
            raise ValueError("this model was fitted without a random-effect modality Z; do not pass Z")
        for role, matrix in given.items():
            validation.check_matrix(matrix, role)
            expected = self.means_[role].shape[0]
            if matrix.shape[1] != expected:
                raise ValueError(
                    f"{validation.DEFAULT_LABELS[role]} has {matrix.shape[1]} features but the model was fitted "
                    f"with {expected}; pass the same features in the same order"
                )
        validation.check_shapes({r: m.shape for r, m in given.items()})
        n_obs = next(iter(given.values())).shape[0]
        data = self._weighted({r: self._operator(r, m) for r, m in given.items()})
        k = self.n_factors
        start = Factors(
            K=np.zeros((n_obs, k)),
            H=None if self._factors.H is None else np.zeros((n_obs, k)),
            alpha=self._factors.alpha, beta=self._factors.beta, u=self._factors.u,
        )
        ridge = 0.0 if self.solver == "paper" else float(self.ridge)
        if self._random_encoder is not None:
            codes = update_codes_encoded_random(data, start, self._random_encoder, ridge)
        else:
            codes = update_codes(data, start, ridge)
        return Codes(fixed=codes.K, random=codes.H)

    def predict(self, *, X=None, Z=None) -> np.ndarray:
        """Predicted response ``μ + ((K + H) αᵀ) · s`` (dense, cells × response features)."""
        codes = self.transform(X=X, Z=Z)
        centred = codes.combined @ self.loadings_["response"].T
        return centred * self.scales_["response"] + self.means_["response"]

    # ------------------------------------------------------------------------ persistence
    PARAMS = ("n_factors", "solver", "center", "scale", "ridge", "max_iter", "tol", "random_state")

    def get_state(self) -> dict:
        """Everything needed to rebuild the fitted model, as plain arrays, numbers and strings."""
        self._check_fitted()
        params = {name: getattr(self, name) for name in self.PARAMS}
        params["weights"] = self._weights()
        modalities = {
            role: {
                "mean": self.means_[role],
                "scale": self.scales_[role],
                "weight": self.modality_weights_[role],
                "loadings": self.loadings_[role],
            }
            for role in self.means_
        }
        if self._random_encoder is not None:
            modalities["random"]["encoder"] = self._random_encoder * np.sqrt(self.modality_weights_["random"])
        return {"params": params, "modalities": modalities}

    @classmethod
    def from_state(cls, state: dict) -> LinearMixedForms:
        """Rebuild a fitted model (for transform and predict) from :meth:`get_state`."""
        params = dict(state["params"])
        model = cls(**{name: _plain(params[name]) for name in cls.PARAMS}, weights=dict(params["weights"]))
        modalities = state["modalities"]
        model.means_ = {r: np.asarray(m["mean"], dtype=np.float64) for r, m in modalities.items()}
        model.scales_ = {r: np.asarray(m["scale"], dtype=np.float64) for r, m in modalities.items()}
        model.modality_weights_ = {r: float(m["weight"]) for r, m in modalities.items()}
        model.loadings_ = {r: np.asarray(m["loadings"], dtype=np.float64) for r, m in modalities.items()}
        weighted = {r: model.loadings_[r] * np.sqrt(model.modality_weights_[r]) for r in modalities}
        k = model.n_factors
        model._factors = Factors(
            K=np.zeros((0, k)),
            H=np.zeros((0, k)) if "random" in modalities else None,
            alpha=weighted["response"], beta=weighted["fixed"], u=weighted.get("random"),
        )
        encoder = modalities.get("random", {}).get("encoder")
        model._random_encoder = None if encoder is None else (
            np.asarray(encoder, dtype=np.float64) / np.sqrt(model.modality_weights_["random"])
        )
        return model

    # ---------------------------------------------------------------------------- helpers
    def _weights(self) -> dict[str, float]:
        weights = {role: 1.0 for role in ROLES}
        weights.update(self.weights or {})
        return weights

    def _weighted(self, operators: dict[str, Operator]) -> Data:
        scaled = {role: op.reweighted(np.sqrt(self.modality_weights_[role])) for role, op in operators.items()}
        return Data(response=scaled.get("response"), fixed=scaled.get("fixed"), random=scaled.get("random"))

    def _operator(self, role: str, matrix) -> Operator:
        return Operator(as_matrix(matrix), self.means_[role], self.scales_[role])

    def _check_fitted(self) -> None:
        if not hasattr(self, "_factors"):
            raise RuntimeError("this LinearMixedForms is not fitted yet; call fit(Y, X, Z) first")


def _plain(value):
    """numpy scalars (as read back from h5ad) to Python scalars."""
    return value.item() if isinstance(value, np.generic) else value


def _disable(progress: bool | None) -> bool | None:
    return None if progress is None else not progress
