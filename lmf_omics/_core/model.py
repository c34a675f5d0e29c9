"""The :class:`LinearMixedForms` estimator: arrays in, arrays out (no AnnData here).

The estimator follows scikit-learn's conventions without importing it: options are set by the
constructor and read back by :meth:`~LinearMixedForms.get_params` exactly as given (so
``sklearn.base.clone`` rebuilds it), checked when :meth:`~LinearMixedForms.fit` starts, and fitted
attributes end in ``_``. The options themselves are :class:`.options.Options`.
"""

from __future__ import annotations

import inspect

import numpy as np

from . import fitting, inputs, linalg, parallel, state, validation
from .encode import corrected_codes
from .log import logger
from .operators import Operator
from .options import DEFAULTS, NAMES, Options, fill_options, signature_parameters
from .parts import Codes, Data, NotFittedError
from .problems import FORMS
from .random_effects import check_random_form
from .solvers import SOLVERS
from .validation import ROLES


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
    {options}

    Attributes
    ----------
    fixed_codes_, random_codes_, codes_
        ``K``, ``H`` (``None`` without Z) and ``K + H`` for the training cells, as scores on the
        data's scale: each factor's fixed loadings (``β`` columns) have unit norm, so a code spreads
        as its factor does in X, as PCA's scores (the paper's solver keeps its own scale).
    code_scale_
        Per factor, the codes' scale relative to the fit's balanced form (where the ridge applies;
        :func:`~lmf_omics._core.canonical.score_scale`); ones for ``solver="paper"``.
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

    def __init__(self, n_factors: int = DEFAULTS["n_factors"], **options):
        unknown = sorted(set(options) - set(NAMES))
        if unknown:
            raise TypeError(f"LinearMixedForms got unknown option(s) {unknown}; the options are {list(NAMES)}")
        self.n_factors = n_factors
        for name in NAMES[1:]:
            setattr(self, name, options.get(name, DEFAULTS[name]))

    # ------------------------------------------------------------------ scikit-learn's API
    def get_params(self, deep: bool = True) -> dict:
        """The options as given to the constructor (``type(model)(**model.get_params())`` is a fresh copy).

        Parameters
        ----------
        deep
            Accepted for scikit-learn; the options hold no estimators.

        Returns
        -------
        dict
            Option name to value, ``None`` where the default is resolved at fit time.
        """
        return {name: getattr(self, name) for name in NAMES}

    def set_params(self, **params) -> LinearMixedForms:
        """Set options by name (checked when :meth:`fit` starts).

        Parameters
        ----------
        **params
            Option names and values (see :class:`LinearMixedForms`).

        Returns
        -------
        LinearMixedForms
            The model itself.
        """
        unknown = sorted(set(params) - set(NAMES))
        if unknown:
            raise ValueError(f"invalid option(s) {unknown} for LinearMixedForms; the options are {list(NAMES)}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    @property
    def options(self) -> Options:
        """The options as an :class:`~lmf_omics._core.options.Options` (not yet validated)."""
        return Options(**self.get_params())

    @property
    def codes_form(self) -> str:
        """``"encoded"`` or ``"free"``: the form of the codes this model fits."""
        return self.options.form

    def check_options(self) -> None:
        """Raise a ``ValueError`` naming any invalid option (called by :meth:`fit` before any work)."""
        self.options.validate()

    def __sklearn_tags__(self):
        from sklearn.base import BaseEstimator  # only scikit-learn calls this, so it is importable

        return BaseEstimator.__sklearn_tags__(self)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "_feature_loadings")

    def __repr__(self) -> str:
        changed = [f"{name}={value!r}" for name, value in self.get_params().items() if not _same(value, DEFAULTS[name])]
        return f"{type(self).__name__}({', '.join(changed)})"

    # ----------------------------------------------------------------------------- fitting
    def fit(self, Y, X, Z=None, *, observed: dict | None = None, labels: dict[str, str] | None = None):
        """Fit the model to a response ``Y``, fixed-effect data ``X`` and optional covariates ``Z``.

        All input is checked before any work; a failed (re)fit leaves the model as it was.

        Parameters
        ----------
        Y, X, Z
            Cells as rows: numpy arrays, scipy sparse matrices/arrays, or out-of-core data read in
            row chunks and never held whole in memory (an HDF5/zarr dataset or CSR group, a backed
            AnnData's ``X``, or a dask array of numpy or scipy sparse chunks, whose products run as
            dask reductions, on a ``dask.distributed`` cluster when a client is active). ``Z`` is
            optional. A cell without a modality is a row of NaN (dense) or flagged in ``observed``.
        observed
            Per role (``"response"``, ``"fixed"``, ``"random"``), a boolean array of the cells that
            have that modality.
        labels
            Per role, the name of its modality in error messages.

        Returns
        -------
        LinearMixedForms
            The fitted model itself.
        """
        options = self.options.validate()
        if Y is None or X is None:
            raise ValueError("fit needs a response Y and fixed-effect data X (Z is optional)")
        with parallel.workers(options.n_jobs):
            return self._fit(options, Y, X, Z, observed, labels)

    def _fit(self, options: Options, Y, X, Z, observed, labels) -> LinearMixedForms:
        given = {role: m for role, m in zip(ROLES, (Y, X, Z)) if m is not None}
        ready, masks = inputs.prepare(given, observed, labels)
        shapes = {r: m.shape[1] for r, m in ready.items()}
        validation.check_rank(options.n_factors, ready["response"].shape[0], shapes, options.center, labels)
        solver = SOLVERS[options.solver]
        if not solver.missing_rows and any(mask is not None for mask in masks.values()):
            raise ValueError(
                f"solver={solver.name!r} needs every modality in every cell; use solver='joint' for missing rows"
            )
        random_form = options.random_form(ready["random"].shape[1] if "random" in ready else None)
        check_random_form(random_form, ready.get("random"), labels)
        operators = inputs.operators(ready, masks, center=options.center, scale=options.scale)
        norms = {role: op.squared_norm() for role, op in operators.items()}
        validation.check_variance(norms, labels)

        weights = options.role_weights()
        before = dict(vars(self))  # a failed (re)fit leaves the estimator as it was, never half-updated
        try:
            self.means_ = {role: op.mean for role, op in operators.items()}
            self.scales_ = {role: op.scale for role, op in operators.items()}
            self.modality_weights_ = {role: weights[role] / norms[role] for role in operators}
            with linalg.fallback_notes(logger, "LMF fit"):
                fitting.fit_weighted(self, options, self._weighted(operators), random_form)
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            raise
        return self

    # ------------------------------------------------------------------------ using a fit
    def transform(
        self,
        *,
        Y=None,
        X=None,
        Z=None,
        observed: dict | None = None,
        labels: dict | None = None,
        new_levels=None,
    ) -> Codes:
        """Codes of (new) cells from whichever modalities they have.

        Encoded codes are their encoders applied to their modality (``K = X̃ W_K``), exactly as
        for the training cells; the rest is solved by least squares from the modalities a cell
        has, loadings fixed (absent modalities, NaN rows and ``observed=False`` drop out).
        Without ``Z`` a cell's random code is zero, as a mixed model predicts a group it has not seen.

        Parameters
        ----------
        Y, X, Z
            The cells' modalities, cells as rows, features in the training order (any may be
            missing, not all).
        observed
            Per role, a boolean array of the cells that have that modality.
        labels
            Per role, the name of its modality in error messages.
        new_levels
            Per cell, an integer label of a random-effect level the fit never saw (``-1``: a level
            it saw, or none). The cells of each new level estimate its effect together, shrunk as a
            mixed model's BLUP, so a query batch of many cells is corrected and a lone cell barely.
            Their Z rows should be unobserved (``observed["random"]``), their random code then 0.

        Returns
        -------
        Codes
            ``fixed`` (K), ``random`` (H, ``None`` without Z in the fit) and ``combined`` (K + H).
        """
        self._check_fitted()
        given = {role: m for role, m in zip(ROLES, (Y, X, Z)) if m is not None}
        if not given:
            raise ValueError("transform needs at least one of Y, X or Z")
        if "random" in given and "random" not in self.means_:
            raise ValueError("this model was fitted without a random-effect modality Z; do not pass Z")
        validation.check_feature_counts(given, {r: mean.shape[0] for r, mean in self.means_.items()}, labels)
        ready, masks = inputs.prepare(given, observed, labels, minimum_observed=0)
        operators = {r: Operator(m, self.means_[r], self.scales_[r], masks[r]) for r, m in ready.items()}
        root = {role: np.sqrt(w) for role, w in self.modality_weights_.items()}
        encoders = {role: e / root[role] for role, e in self.encoders_.items()}
        options = self.options
        ridge = SOLVERS[options.solver].penalty(options.ridge)
        with linalg.fallback_notes(logger, "LMF transform"), parallel.workers(options.n_jobs):
            weighted = self._weighted(operators)
            K, H = FORMS[options.form].encode_new(
                weighted,
                self._feature_loadings,
                encoders,
                ridge,
                has_random="random" in self.means_,
                scale=getattr(self, "code_scale_", None),
            )
            if getattr(self, "random_effect_", None) is not None and weighted.fixed is not None:
                K = corrected_codes(self.random_effect_, K, operators, new_levels)
        return Codes(fixed=K, random=H)

    def predict(
        self, *, X=None, Z=None, observed: dict | None = None, labels: dict | None = None, new_levels=None
    ) -> np.ndarray:
        """Predicted response ``μ + ((K + H) αᵀ) · s`` of (new) cells from their X and Z.

        ``K`` is the fixed code with the random effect accounted for and ``H`` the random code, so
        the prediction includes the random effect of the levels the fit saw.

        Parameters
        ----------
        X, Z
            The cells' fixed-effect data and covariates (either may be missing), as in :meth:`transform`.
        observed, labels, new_levels
            As in :meth:`transform`.

        Returns
        -------
        numpy.ndarray
            Dense, cells × response features, on the scale of the response given to :meth:`fit`.
        """
        return self.response_of(self.transform(X=X, Z=Z, observed=observed, labels=labels, new_levels=new_levels))

    def response_of(self, codes: Codes) -> np.ndarray:
        """Predicted response ``μ + ((K + H) αᵀ) · s`` of cells with these codes.

        Parameters
        ----------
        codes
            Codes from :meth:`transform`.

        Returns
        -------
        numpy.ndarray
            Dense, cells × response features.
        """
        self._check_fitted()
        centred = codes.combined @ self.loadings_["response"].T
        return centred * self.scales_["response"] + self.means_["response"]

    # ------------------------------------------------------------------------ persistence
    STORED = (
        "n_factors",
        "solver",
        "codes",
        "n_pcs",
        "random_effect",
        "center",
        "scale",
        "ridge",
        "max_iter",
        "tol",
        "random_state",
    )

    def stored_params(self) -> dict:
        """The options a fit is stored with: ``codes``, ``n_pcs`` and ``weights`` resolved (h5ad-writable).

        Returns
        -------
        dict
            Option name to value, with the forms of the codes and of the random effect the fit used.
        """
        return state.stored_params(self)

    def get_state(self) -> dict:
        """Everything needed to rebuild the fitted model, as plain arrays, numbers and strings.

        Returns
        -------
        dict
            ``params`` (:meth:`stored_params`) and, per role, ``mean``, ``scale``, ``weight``,
            ``loadings`` and (encoded codes) ``encoder``.
        """
        self._check_fitted()
        return state.model_state(self)

    @classmethod
    def from_state(cls, saved: dict) -> LinearMixedForms:
        """Rebuild a fitted model (for transform and predict) from :meth:`get_state`.

        Parameters
        ----------
        saved
            As :meth:`get_state` returns it (or as read back from an h5ad).

        Returns
        -------
        LinearMixedForms
            A fitted model with the stored means, scales, weights, loadings and encoders.
        """
        return state.rebuild(cls, saved)

    # ---------------------------------------------------------------------------- helpers
    def _weighted(self, operators: dict[str, Operator]) -> Data:
        scaled = {role: op.reweighted(np.sqrt(self.modality_weights_[role])) for role, op in operators.items()}
        return Data(response=scaled.get("response"), fixed=scaled.get("fixed"), random=scaled.get("random"))

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError("this LinearMixedForms is not fitted yet; call fit(Y, X, Z) first")


LinearMixedForms.__doc__ = fill_options(LinearMixedForms.__doc__)
LinearMixedForms.__init__.__signature__ = inspect.Signature(
    [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    + [inspect.Parameter("n_factors", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=DEFAULTS["n_factors"])]
    + signature_parameters()[1:]
)


def _same(value, default) -> bool:
    try:
        return bool(value == default) and type(value) is type(default)
    except (TypeError, ValueError):
        return False
