"""The :class:`LinearMixedForms` estimator: arrays in, arrays out (no AnnData here)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from . import inputs, linalg, parallel, validation
from .canonical import canonical_rotation, column_signs
from .encode import encode
from .log import logger
from .operators import Operator
from .problems import EncodedProblem, FreeProblem
from .solvers import Data, Factors, objective, paper_code_update, rebalance, update_loadings
from .subspace import principal_basis
from .validation import ROLES
from .variance import response_split, variance_explained


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
    ``α``, ``β``, ``u``, then the codes. Each step minimises ``f`` exactly over its block, so ``f``
    never increases. The codes take one of two forms (``codes=``):

    * ``"encoded"`` (default with the joint solver): each code is a linear encoding of its own
      modality, confined to that modality's ``n_pcs`` leading principal components:
      ``K = X̃ W_K``, ``H = Z̃ W_H``. Y shapes the codes through the fit (which directions of X
      and Z matter), but a cell's code is computed from its X and Z alone, so what is learnt on
      the training cells applies unchanged to new cells: training and prediction agree. The
      data are projected on the principal subspaces once; iterations never touch them.
    * ``"free"`` (the paper's form): every training cell's ``K`` and ``H`` are free parameters
      fitted to all its modalities, every cell solving the same 2k × 2k system. Best for
      integrating modalities observed in every cell; new cells are encoded by least squares
      from what they have. That least-squares code of a cell without its response is noisier
      than the codes the response shaped (with the default tiny ``ridge`` it over-shoots;
      ``benchmarks/predict_modality.py`` measures it), so predict with encoded codes, or raise
      ``ridge``. A random modality of rank below ``k`` (four hashtags, three sections)
      cannot determine ``H``: it is then confined to ``col(Z̃)``.

    ``solver="paper"`` is Algorithm 1 as printed, with the missing inverses restored: loadings by
    least squares, then one code update per timestep cycling ``K + H = Ỹα(αᵀα)⁻¹`` (split as
    ``H = Ỹα(αᵀα)⁻¹ − K``), ``K = X̃β(βᵀβ)⁻¹``, ``H = Z̃u(uᵀu)⁻¹``, with pseudo-inverses as in the
    author's R code. It is *not* a descent method: its objective can rise and it can diverge.
    It is kept to reproduce the paper (free codes).

    A cell may lack a modality (a row of NaN, or ``observed=``): it is a zero row of that
    modality's centred matrix, contributes to the other terms and still gets codes.

    Data are only touched through ``Ã @ B`` and ``Ãᵀ @ C`` with thin dense ``B``/``C``: centring
    and scaling are implicit, so sparse input is never densified. At the end all factors are
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
    codes
        ``"encoded"`` or ``"free"`` (see above); ``None`` picks ``"encoded"`` for the joint
        solver and ``"free"`` for the paper's.
    n_pcs
        Leading principal components of X̃ (and Z̃) that encoded codes live in; ``None`` means
        ``max(50, 2 · n_factors)``. Fewer components regularise more (``n_pcs = n_factors`` is
        principal-component regression on X); ignored for free codes.
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
    n_jobs
        Threads for the products with the data (``None`` or ``-1``: every core this process may
        use). Results do not depend on it: the work is split by the data alone and partial sums
        are added in a fixed order. BLAS is held to one thread during a fit.

    Attributes
    ----------
    fixed_codes_, random_codes_, codes_
        ``K``, ``H`` (``None`` without Z) and ``K + H`` for the training cells.
    encoders_
        ``{"fixed": W_K, "random": W_H}`` for encoded codes (``K = X̃ W_K``), by role.
    loadings_
        ``{"response": α, "fixed": β, "random": u}``, relating codes to the centred (and
        scaled) data: ``Ã ≈ C Lᵀ``.
    means_, scales_
        Per-modality centring offsets and divisors.
    variance_explained_, total_variance_explained_
        R² per factor (arrays of length k) and in total, per modality; the totals also hold
        ``"response_fixed_code"`` and ``"response_random_code"``: R² of Y by ``Kαᵀ`` and ``Hαᵀ`` alone
        (negative when one code alone moves the fit away from the data, e.g. a random code that
        encodes covariates the response does not depend on).
    objective_history_, n_iter_, converged_
        Objective after each iteration, the iteration count and whether ``tol`` was reached.
    """

    def __init__(
        self,
        n_factors: int = 10,
        *,
        solver: str = "joint",
        codes: str | None = None,
        n_pcs: int | None = None,
        center: bool = True,
        scale: bool = False,
        weights: dict[str, float] | None = None,
        ridge: float = 1e-3,
        max_iter: int = 500,
        tol: float = 1e-6,
        random_state: int = 0,
        progress: bool | None = None,
        n_jobs: int | None = None,
    ):
        self.n_factors = n_factors
        self.solver = solver
        self.codes = codes
        self.n_pcs = n_pcs
        self.center = center
        self.scale = scale
        self.weights = weights
        self.ridge = ridge
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.progress = progress
        self.n_jobs = n_jobs

    # ----------------------------------------------------------------------------- fitting
    def fit(
        self, Y, X, Z=None, *, observed: dict | None = None, labels: dict[str, str] | None = None
    ) -> LinearMixedForms:
        """Fit the model to a response ``Y``, fixed-effect data ``X`` and optional covariates ``Z``.

        Each is a numpy array or a scipy sparse matrix/array with cells as rows, or out-of-core
        data read in row chunks and never held whole in memory: an HDF5/zarr dataset or CSR
        group, a backed AnnData's ``X`` (``anndata.read_h5ad(path, backed="r").X``), or a dask
        array of numpy or scipy sparse chunks (its products run as dask reductions, on a
        ``dask.distributed`` cluster when a client is active). A cell without a
        modality is a row of NaN (dense) or flagged ``False`` in ``observed[role]`` (a boolean
        array per role, ``"response"``, ``"fixed"`` or ``"random"``). ``labels`` names the
        modalities in error messages. All input is checked before any work.
        """
        self.check_options()
        if Y is None or X is None:
            raise ValueError("fit needs a response Y and fixed-effect data X (Z is optional)")
        with parallel.workers(self.n_jobs):
            return self._fit(Y, X, Z, observed, labels)

    def _fit(self, Y, X, Z, observed, labels) -> LinearMixedForms:
        given = {role: m for role, m in zip(ROLES, (Y, X, Z)) if m is not None}
        ready, masks = inputs.prepare(given, observed, labels)
        validation.check_rank(
            self.n_factors, ready["response"].shape[0], {r: m.shape[1] for r, m in ready.items()}, self.center, labels
        )
        if self.solver == "paper" and any(mask is not None for mask in masks.values()):
            raise ValueError("solver='paper' needs every modality in every cell; use solver='joint' for missing rows")
        operators = inputs.operators(ready, masks, center=self.center, scale=self.scale)
        norms = {role: op.squared_norm() for role, op in operators.items()}
        validation.check_variance(norms, labels)

        weights = self._weights()
        before = dict(vars(self))  # a failed (re)fit leaves the estimator as it was, never half-updated
        try:
            self.means_ = {role: op.mean for role, op in operators.items()}
            self.scales_ = {role: op.scale for role, op in operators.items()}
            self.modality_weights_ = {role: weights[role] / norms[role] for role in operators}
            with linalg.fallback_notes(logger, "LMF fit"):
                self._fit_weighted(self._weighted(operators))
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            raise
        return self

    def check_options(self) -> None:
        """Raise a ``ValueError`` naming any invalid option (called by :meth:`fit` before any work)."""
        validation.check_options(
            n_factors=self.n_factors,
            solver=self.solver,
            codes=self.codes,
            n_pcs=self.n_pcs,
            ridge=self.ridge,
            weights=self.weights if self.weights is not None else {},
            max_iter=self.max_iter,
            tol=self.tol,
            center=self.center,
            scale=self.scale,
            random_state=self.random_state,
            progress=self.progress,
            n_jobs=self.n_jobs,
        )

    @property
    def codes_form(self) -> str:
        """``"encoded"`` or ``"free"``: the form of the codes this model fits."""
        if self.codes is not None:
            return self.codes
        return "free" if self.solver == "paper" else "encoded"

    def _problem(self, data: Data, rng: np.random.Generator):
        if self.codes_form == "free":
            basis = None
            if data.has_random and self.solver == "joint":
                basis = principal_basis(data.random, self.n_factors, rng=rng)
                basis = basis if basis.rank < self.n_factors else None
            return FreeProblem(data, basis)
        fixed = principal_basis(data.fixed, self._n_pcs, rng=rng)
        random = principal_basis(data.random, self._n_pcs, rng=rng) if data.has_random else None
        return EncodedProblem.build(data, fixed, random)

    def _fit_weighted(self, data: Data) -> None:
        norms = {role: self._weights()[role] for role in data.present()}
        ridge = self._ridge()
        rng = np.random.default_rng(self.random_state)
        problem = self._problem(data, rng)
        factors = problem.initial(self.n_factors, rng=rng)
        factors, moments, history = self._iterate(problem, data, factors, norms, ridge)
        rotation = canonical_rotation(factors, moments, norms)
        factors, moments = factors.rotated(rotation), moments.rotated(rotation)
        features = problem.loadings(factors)  # loadings over the features, before the n × k codes exist
        K, H = problem.codes(factors)
        flip = np.diag(column_signs(K if H is None else K + H))
        del K, H  # n × k each: formed again below, flipped, rather than held twice
        factors, moments, features = factors.rotated(flip), moments.rotated(flip), features.rotated(flip)
        self._store(problem, factors, features, moments, norms, history, *problem.codes(factors))

    def _iterate(self, problem, data: Data, factors: Factors, norms: dict[str, float], ridge: float):
        """Alternate loadings and codes; return the last finite fit, its moments and the history."""
        paper = self.solver == "paper"
        history: list[float] = []
        last_good = None
        self.converged_ = False
        bar = tqdm(range(self.max_iter), desc=f"LMF ({self.solver})", disable=_disable(self.progress), leave=False)
        for step in bar:
            moments = problem.moments(factors)
            fitted = update_loadings(factors, moments, ridge, paper=paper)
            value = objective(fitted, moments, norms, ridge)
            if not np.isfinite(value):
                logger.warning("LMF (%s) diverged at iteration %d; keeping the last finite iterate", self.solver, step)
                break
            last_good = (fitted, moments)
            history.append(value)
            bar.set_postfix(objective=f"{value:.6g}", refresh=False)
            if len(history) > 1 and abs(history[-2] - value) <= self.tol * abs(history[-2]):
                self.converged_ = True
                break
            if step == self.max_iter - 1:
                break
            factors = paper_code_update(data, fitted, step) if paper else rebalance(problem.update_codes(fitted, ridge))
        bar.close()
        if last_good is None:
            raise FloatingPointError(
                "the objective is not finite at the initial codes; check the input for extreme values"
            )
        if not self.converged_:
            logger.warning(
                "LMF (%s) did not converge in %d iterations (tol=%g); increase max_iter or tol",
                self.solver,
                len(history),
                self.tol,
            )
        return (*last_good, history)

    def _store(self, problem, factors: Factors, features: Factors, moments, norms, history, K, H) -> None:
        """``factors`` as the problem iterates them (coordinates for encoded codes), ``features`` over the features."""
        root = {role: np.sqrt(w) for role, w in self.modality_weights_.items()}
        self._loadings_weighted = Factors(
            K=np.zeros((0, self.n_factors)), H=None, alpha=features.alpha, beta=features.beta, u=features.u
        )
        self.fixed_codes_, self.random_codes_ = K, H
        self.codes_ = K if H is None else K + H
        self.loadings_ = {role: loading / root[role] for role, loading in features.loadings.items()}
        self.encoders_ = {role: encoder * root[role] for role, encoder in problem.encoders(factors).items()}
        self.variance_explained_, self.total_variance_explained_ = variance_explained(factors, moments, norms)
        split = response_split(factors.alpha, problem.response_by_code(factors), norms["response"])
        self.total_variance_explained_.update(split)
        self.objective_history_ = np.asarray(history)
        self.n_iter_ = len(history)

    # ------------------------------------------------------------------------ using a fit
    def transform(
        self, *, Y=None, X=None, Z=None, observed: dict | None = None, labels: dict[str, str] | None = None
    ) -> Codes:
        """Codes of (new) cells from whichever modalities they have.

        Encoded codes are their encoders applied to their modality (``K = X̃ W_K``), exactly as
        for the training cells; the rest is solved by least squares from the modalities a cell
        has, loadings fixed (absent modalities, NaN rows and ``observed=False`` drop out).
        Features must be in the training order. Without ``Z`` a cell's random code is zero, as a
        mixed model predicts a group it has not seen. ``labels`` names the modalities in errors.
        """
        self._check_fitted()
        given = {role: m for role, m in zip(ROLES, (Y, X, Z)) if m is not None}
        if not given:
            raise ValueError("transform needs at least one of Y, X or Z")
        if "random" in given and "random" not in self.means_:
            raise ValueError("this model was fitted without a random-effect modality Z; do not pass Z")
        for role, matrix in given.items():
            expected = self.means_[role].shape[0]
            if len(getattr(matrix, "shape", ())) == 2 and matrix.shape[1] != expected:
                raise ValueError(
                    f"{(labels or validation.DEFAULT_LABELS).get(role, role)} has {matrix.shape[1]} features but "
                    f"the model was fitted with {expected}; pass the same features in the same order"
                )
        ready, masks = inputs.prepare(given, observed, labels, minimum_observed=0)
        operators = {r: Operator(m, self.means_[r], self.scales_[r], masks[r]) for r, m in ready.items()}
        root = {role: np.sqrt(w) for role, w in self.modality_weights_.items()}
        encoders = {role: e / root[role] for role, e in self.encoders_.items()}
        with linalg.fallback_notes(logger, "LMF transform"), parallel.workers(self.n_jobs):
            K, H = encode(
                self._weighted(operators),
                self._loadings_weighted,
                encoders,
                self._ridge(),
                has_random="random" in self.means_,
            )
        return Codes(fixed=K, random=H)

    def predict(
        self, *, X=None, Z=None, observed: dict | None = None, labels: dict[str, str] | None = None
    ) -> np.ndarray:
        """Predicted response ``μ + ((K + H) αᵀ) · s`` (dense, cells × response features)."""
        return self.response_of(self.transform(X=X, Z=Z, observed=observed, labels=labels))

    def response_of(self, codes: Codes) -> np.ndarray:
        """Predicted response ``μ + ((K + H) αᵀ) · s`` of cells with these codes (from :meth:`transform`)."""
        self._check_fitted()
        centred = codes.combined @ self.loadings_["response"].T
        return centred * self.scales_["response"] + self.means_["response"]

    # ------------------------------------------------------------------------ persistence
    PARAMS = ("n_factors", "solver", "codes", "n_pcs", "center", "scale", "ridge", "max_iter", "tol", "random_state")

    def get_options(self) -> dict:
        """The constructor's options as given (``LinearMixedForms(**model.get_options())`` is a fresh copy)."""
        return {name: getattr(self, name) for name in (*self.PARAMS, "weights", "progress", "n_jobs")}

    def get_params(self) -> dict:
        """The options, with ``codes`` and ``n_pcs`` resolved (never ``None``: h5ad-writable)."""
        params = {name: getattr(self, name) for name in self.PARAMS}
        params.update(codes=self.codes_form, n_pcs=self._n_pcs, weights=self._weights())
        return params

    def get_state(self) -> dict:
        """Everything needed to rebuild the fitted model, as plain arrays, numbers and strings."""
        self._check_fitted()
        modalities = {
            role: {
                "mean": self.means_[role],
                "scale": self.scales_[role],
                "weight": self.modality_weights_[role],
                "loadings": self.loadings_[role],
            }
            for role in self.means_
        }
        for role, encoder in self.encoders_.items():
            modalities[role]["encoder"] = encoder
        return {"params": self.get_params(), "modalities": modalities}

    @classmethod
    def from_state(cls, state: dict) -> LinearMixedForms:
        """Rebuild a fitted model (for transform and predict) from :meth:`get_state`."""
        params = dict(state["params"])
        model = cls(
            **{name: _plain(params[name]) for name in cls.PARAMS if name in params}, weights=dict(params["weights"])
        )
        modalities = state["modalities"]

        def arrays(field):
            return {r: np.asarray(m[field], dtype=np.float64) for r, m in modalities.items() if field in m}

        model.means_, model.scales_, model.loadings_ = arrays("mean"), arrays("scale"), arrays("loadings")
        model.encoders_ = arrays("encoder")
        model.modality_weights_ = {r: float(m["weight"]) for r, m in modalities.items()}
        weighted = {r: model.loadings_[r] * np.sqrt(model.modality_weights_[r]) for r in modalities}
        model._loadings_weighted = Factors(
            K=np.zeros((0, model.n_factors)),
            H=None,
            alpha=weighted["response"],
            beta=weighted["fixed"],
            u=weighted.get("random"),
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

    @property
    def _n_pcs(self) -> int:
        """``n_pcs``, its default ``max(50, 2 · n_factors)`` for ``None``."""
        return self.n_pcs or max(50, 2 * self.n_factors)

    def _ridge(self) -> float:
        return 0.0 if self.solver == "paper" else float(self.ridge)

    def _check_fitted(self) -> None:
        if not hasattr(self, "_loadings_weighted"):
            raise RuntimeError("this LinearMixedForms is not fitted yet; call fit(Y, X, Z) first")


def _plain(value):
    """Numpy scalars (as read back from h5ad) to Python scalars."""
    return value.item() if isinstance(value, np.generic) else value


def _disable(progress: bool | None) -> bool | None:
    return None if progress is None else not progress
