"""A fitted :class:`~.model.LinearMixedForms` as plain arrays, numbers and strings, and back.

What ``tl.lmf`` writes to ``uns``/``varm`` (h5ad, zarr, h5mu) and what ``tl.transform`` rebuilds.
"""

from __future__ import annotations

import numpy as np

from .parts import Loadings


def stored_params(model) -> dict:
    """The options ``model`` is stored with: ``codes``, ``n_pcs`` and ``weights`` resolved."""
    options = model.options
    params = {name: getattr(options, name) for name in model.STORED}
    params.update(codes=options.form, n_pcs=options.components, weights=options.role_weights())
    params["random_effect"] = getattr(model, "random_form_", None) or options.random_effect or "response"
    return params


def model_state(model) -> dict:
    """Everything needed to rebuild the fitted ``model``; see ``LinearMixedForms.get_state``."""
    modalities = {
        role: {
            "mean": model.means_[role],
            "scale": model.scales_[role],
            "weight": model.modality_weights_[role],
            "loadings": model.loadings_[role],
        }
        for role in model.means_
    }
    for role, encoder in model.encoders_.items():
        modalities[role]["encoder"] = encoder
    state = {"params": stored_params(model), "modalities": modalities}
    if getattr(model, "code_scale_", None) is not None:
        state["code_scale"] = model.code_scale_
    if getattr(model, "random_effect_", None) is not None:
        state["random_effect"] = dict(model.random_effect_)
    return state


def rebuild(cls, state: dict):
    """A fitted ``cls`` (the model class) from :func:`model_state`'s dict."""
    params = dict(state["params"])
    stored = {name: _plain(params[name]) for name in cls.STORED if name in params}
    model = cls(**stored, weights=dict(params["weights"]))
    modalities = state["modalities"]

    def arrays(field):
        return {r: np.asarray(m[field], dtype=np.float64) for r, m in modalities.items() if field in m}

    model.means_, model.scales_, model.loadings_ = arrays("mean"), arrays("scale"), arrays("loadings")
    model.encoders_ = arrays("encoder")
    model.modality_weights_ = {r: float(m["weight"]) for r, m in modalities.items()}
    weighted = {r: model.loadings_[r] * np.sqrt(model.modality_weights_[r]) for r in modalities}
    model._feature_loadings = Loadings.from_roles(weighted)
    scale = state.get("code_scale")  # absent from fits stored before codes were scaled
    model.code_scale_ = None if scale is None else np.asarray(scale, dtype=np.float64)
    model.random_effect_ = dict(state["random_effect"]) if state.get("random_effect") is not None else None
    return model


def _plain(value):
    """Numpy scalars (as read back from h5ad) to Python scalars."""
    return value.item() if isinstance(value, np.generic) else value
