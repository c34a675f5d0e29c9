"""One fit of :class:`~.model.LinearMixedForms` on weighted data, and its results stored on the model.

The estimator checks the inputs and weights the modalities; here the form of the codes and the
solver run (``FORMS``, ``SOLVERS``), the factors are rotated to canonical axes and signs, and the
fitted attributes (ending in ``_``) are set.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from .canonical import canonical_rotation, column_signs, response_split, score_scale, variance_explained
from .log import progress_enabled
from .options import Options
from .parts import Data, Loadings
from .problems import FORMS
from .solvers import SOLVERS, iterate, log_convergence


def fit_weighted(model, options: Options, data: Data, random_form: str) -> None:
    """Fit ``model`` on the weighted ``data``: iterate the solver, rotate to canonical axes, store the results."""
    norms = {role: options.role_weights()[role] for role in data.present()}
    solver = SOLVERS[options.solver]
    ridge = solver.penalty(options.ridge)
    rng = np.random.default_rng(options.random_state)
    problem = FORMS[options.form].for_fit(
        data,
        n_factors=options.n_factors,
        n_pcs=options.components,
        solver=solver,
        rng=rng,
        random_effect=random_form,
    )
    factors = problem.initial(options.n_factors, rng=rng)
    bar = tqdm(
        range(options.max_iter),
        desc=f"LMF ({solver.name})",
        disable=not progress_enabled(options.progress),
        leave=False,
    )
    result = iterate(solver, problem, factors, norms, ridge, max_iter=options.max_iter, tol=options.tol, bar=bar)
    model.converged_ = result.converged
    log_convergence(solver.name, result, options.tol)
    factors, moments = result.factors, result.moments
    rotation = canonical_rotation(factors, moments, norms)
    factors, moments = factors.rotated(rotation), moments.rotated(rotation)
    features = problem.loadings(factors)  # loadings over the features, before the n × k codes exist
    codes = {}
    for role in ("fixed", "random"):  # the only n × k codes formed (flipped and scaled in place below),
        codes[role] = problem.code(factors, role)
        problem = problem.released(role)  # each basis freed once its code is out
    K, H = codes["fixed"], codes["random"]
    signs = column_signs(K, H)
    k = options.n_factors
    factors, moments, features = (
        factors.rotated(np.diag(signs)),
        moments.rotated(np.diag(signs)),
        features.rotated(np.diag(signs)),
    )
    scale = score_scale(features, model.modality_weights_["fixed"]) if solver.descent else np.ones(k)
    factors, moments, features = (
        factors.scaled(scale),
        moments.rotated(np.diag(scale)),
        features.scaled(1 / scale),
    )
    for code in (K, H):
        if code is not None:
            code *= (signs * scale).astype(code.dtype)
    store(model, problem, factors, features, moments, norms, result.history, K, H)
    model.code_scale_ = scale
    model.random_form_ = random_form if data.has_random else "response"
    model.random_effect_ = problem.random_effect_state(factors)
    if model.random_effect_ is not None:  # on the data's own scale, as the encoders
        model.random_effect_["scores_encoder"] = model.random_effect_["scores_encoder"] * np.sqrt(
            model.modality_weights_["fixed"]
        )


def store(model, problem, factors, features: Loadings, moments, norms, history, K, H) -> None:
    """``factors`` as the problem iterates them (coordinates for encoded codes), ``features`` over the features."""
    root = {role: np.sqrt(w) for role, w in model.modality_weights_.items()}
    model._feature_loadings = features
    model.fixed_codes_, model.random_codes_ = K, H
    model.codes_ = K if H is None else K + H
    model.loadings_ = {role: loading / root[role] for role, loading in features.by_role().items()}
    model.encoders_ = {role: encoder * root[role] for role, encoder in problem.encoders(factors).items()}
    model.variance_explained_, model.total_variance_explained_ = variance_explained(factors, moments, norms)
    split = response_split(factors.loadings.alpha, problem.response_by_code(factors), norms["response"])
    model.total_variance_explained_.update(split)
    model.objective_history_ = np.asarray(history)
    model.n_iter_ = len(history)
    model._form = type(problem)
