"""``tl.transform`` and ``tl.predict``: a fit on a reference applied to query cells.

read the reference's model → read the query's modalities by feature name → core → store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import get
from .._checks import resolve_data, target
from .._core import Codes, LinearMixedForms
from .._core.log import logger
from .._keys import ROLES, Keys, check_key_added, is_fit, is_transfer, refuse_foreign
from .._modalities import column_positions, is_mudata, level_groups, read_aligned
from ._lmf import drop_stale


def transform(
    adata: AnnData,
    reference: AnnData,
    *,
    key: str = "lmf",
    key_added: str | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Encode new cells into the codes of a fit stored in ``reference``.

    The model is rebuilt from ``reference.uns[key]`` (and ``varm``). Each modality of the fit is
    read from the query with the same spec (``"X"``, ``"layer:counts"``, ``"obsm:protein"``,
    ``"obs:sample"``, ...), its features matched by name; a modality the query lacks is left
    out. With the default encoded codes a query cell gets exactly the code a training cell with
    the same data would get (``K = X̃ W_K``). Random effects follow a mixed model: a cell whose
    level of a random-effect ``obs`` column was never seen in training (a new donor, section or
    batch) gets a zero random code, the mean of the random effect.

    Parameters
    ----------
    adata
        The query: cells to encode (another sample, section or batch); a MuData for a fit on a MuData.
    reference
        The AnnData or MuData a fit was stored in by :func:`lmf_omics.tl.lmf`.
    key
        ``key_added`` of that fit.
    key_added
        Stem of the keys written to the query (default: ``key``). A fit the query holds itself under
        these keys (e.g. one fitted on all cells before the split) is replaced whole, with a warning
        (its codes, loadings and ``uns`` entry go, as when :func:`lmf_omics.tl.lmf` refits under a
        key), so its results never mix with the new codes. The reference's own fit is never
        overwritten: with the reference as the query, that is an error asking for another key.
    copy
        Return a modified copy instead of writing to ``query``.

    Returns
    -------
    ``None`` or a copy, with ``obsm["X_<key_added>"]``, ``obsm["X_<key_added>_fixed"]`` and
    ``obsm["X_<key_added>_random"]`` (as :func:`lmf_omics.tl.lmf`), and
    ``uns["<key_added>_transform"]["params"]``: the reference key and the modalities used.

    Raises
    ------
    TypeError
        If ``adata`` or ``reference`` is not an AnnData.
    MissingKeyError
        (a ``KeyError``) If ``reference`` has no fit under ``key``.
    ValueError
        If the query has none of the fit's modalities or lacks some of their features (listed),
        or ``key_added`` would overwrite the reference's own fit.

    Examples
    --------
    >>> lmf.tl.lmf(reference, response="obsm:protein", fixed="X", random="obs:sample")
    >>> lmf.tl.transform(query, reference)  # query.obsm["X_lmf"], codes of the training cells' kind
    """
    keys = _transform_keys(adata, reference, key, key_added, copy)
    fit = _Fit.of(reference, key)
    inputs = fit.read(adata, ROLES)
    fit.require_any(inputs)
    codes = fit.model.transform(**_arguments(inputs), labels=fit.labels, new_levels=fit.new_levels(adata, inputs))
    out = target(adata, copy)
    _write_codes(out, keys, codes, _params(key, inputs))
    return out if copy else None


def predict(
    adata: AnnData,
    reference: AnnData,
    *,
    key: str = "lmf",
    key_added: str | None = None,
    layer: str | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Predict the response of a fit stored in ``reference`` for the cells of ``query``.

    ``Ŷ = μ + ((K + H) αᵀ) · s`` with the codes from the query's fixed-effect data and
    random-effect covariates (see :func:`transform`; the query's own response, if any, is not
    used): protein from RNA, held-out genes from the others. A cell whose random-effect level
    was never seen in training is predicted from its fixed code alone, as a mixed model predicts
    a new group.

    Parameters
    ----------
    adata, reference, key
        As in :func:`transform` (``adata`` is the query).
    key_added
        Where to write: ``obsm[key_added]`` (default ``"<key>_predicted"``), a DataFrame with the
        response's feature names as columns. A fit stored in the query under that key is replaced
        whole (see :func:`transform`); the reference's own fit is never overwritten.
    layer
        Write into ``query.layers[layer]`` instead (only for a var-aligned response, ``"X"`` or
        ``"layer:<name>"``, whose features are all in ``query.var_names``); features that are not
        predicted hold NaN.
    copy
        As in :func:`transform`.

    Returns
    -------
    ``None`` or a copy of ``query`` holding the predictions.

    Raises
    ------
    TypeError
        If ``adata`` or ``reference`` is not an AnnData.
    MissingKeyError
        (a ``KeyError``) If ``reference`` has no fit under ``key``.
    ValueError
        If the query has neither the fixed nor the random modality of the fit, lacks features of
        them, or ``layer`` is given for a response not aligned with ``var``.

    Examples
    --------
    >>> lmf.tl.predict(query, reference)  # query.obsm["lmf_predicted"]: the response, from X and Z
    """
    name = _predict_keys(adata, reference, key, key_added, layer, copy)
    fit = _Fit.of(reference, key)
    columns = _layer_columns(adata, fit.stored["response"], layer)
    inputs = fit.read(adata, ("fixed", "random"))
    fit.require_predictors(inputs)
    predicted = fit.model.predict(**_arguments(inputs), labels=fit.labels, new_levels=fit.new_levels(adata, inputs))
    out = target(adata, copy)
    _write_predictions(out, name, layer, columns, predicted, fit.response_features, _params(key, inputs, layer))
    return out if copy else None


def transform_and_predict(adata: AnnData, reference: AnnData, *, key: str = "lmf", layer: str | None = None) -> None:
    """:func:`transform` then :func:`predict` with their default keys, in place, the query read once.

    As ``lmf-omics predict``. The codes use every modality the query has; the predictions, as
    :func:`predict`, only its fixed-effect and random-effect modalities.
    """
    keys = _transform_keys(adata, reference, key, None, False)
    name = _predict_keys(adata, reference, key, None, layer, False)
    fit = _Fit.of(reference, key)
    columns = _layer_columns(adata, fit.stored["response"], layer)
    inputs = fit.read(adata, ROLES)
    fit.require_any(inputs)
    predictors = {role: found for role, found in inputs.items() if role != "response"}
    fit.require_predictors(predictors)
    levels = fit.new_levels(adata, inputs)
    codes_for_prediction = fit.model.transform(**_arguments(predictors), labels=fit.labels, new_levels=levels)
    codes = (
        fit.model.transform(**_arguments(inputs), labels=fit.labels, new_levels=levels)
        if "response" in inputs
        else codes_for_prediction
    )
    predicted = fit.model.response_of(codes_for_prediction)
    _write_codes(adata, keys, codes, _params(key, inputs))
    _write_predictions(adata, name, layer, columns, predicted, fit.response_features, _params(key, predictors, layer))


@dataclass(frozen=True)
class _Fit:
    """A fit stored in a reference: the rebuilt model and ``uns[key]["modalities"]``, read once."""

    key: str
    model: LinearMixedForms
    stored: Mapping

    @classmethod
    def of(cls, reference: AnnData, key: str) -> _Fit:
        return cls(key, get.model(reference, key), get.results(reference, key)["modalities"])

    @property
    def labels(self) -> dict[str, str]:
        """``{role: "role='spec'"}``: the query's modalities named in errors as in :func:`lmf_omics.tl.lmf`."""
        return {role: f"{role}={self.spec(role)!r}" for role in self.stored}

    @property
    def response_features(self) -> list[str]:
        return [str(f) for f in self.stored["response"]["features"]]

    def spec(self, role: str) -> str | None:
        entry = self.stored.get(role)
        return None if entry is None else str(entry["spec"])

    def read(self, query: AnnData, roles) -> dict:
        """The query's matrices ``{role: (matrix, observed)}`` of the fit's modalities it has (checked)."""
        inputs = {}
        for role in roles:
            if role in self.stored:
                found = read_aligned(query, self.spec(role), self.stored[role]["features"], role=role)
                if found is not None:
                    inputs[role] = found
        _log_unseen(inputs.get("random"), query.n_obs)
        return inputs

    def new_levels(self, query: AnnData, inputs) -> np.ndarray | None:
        """Per query cell, a label of its random-effect level if the fit never saw it (-1 otherwise)."""
        if "random" not in inputs or inputs["random"][1] is None:
            return None
        groups = level_groups(query, self.spec("random"))
        return None if groups is None else np.where(inputs["random"][1], -1, groups)

    def require_any(self, inputs) -> None:
        if not inputs:
            specs = {role: self.spec(role) for role in self.stored}
            raise ValueError(f"the query has none of the fit's modalities {specs}; add one with the same spec")

    def require_predictors(self, inputs) -> None:
        if not inputs:
            raise ValueError(
                f"the query has neither the fixed-effect ({self.spec('fixed')!r}) "
                "nor the random-effect modality of the fit; nothing to predict from"
            )


def _transform_keys(query, reference, key: str, key_added: str | None, copy: bool) -> Keys:
    """Check what :func:`transform` is given and will write (before any work); the keys it writes."""
    _check_pair(query, reference, copy)
    keys = Keys(key_added or key)
    check_key_added(keys.key_added, "key_added")
    _check_no_fit_overwritten(query, reference, keys.key_added, uns=keys.transformed, obsm=keys.obsm_keys)
    ours = is_transfer(query.uns.get(keys.transformed)) or bool(
        _fits_in_the_way(query, uns=keys.transformed, obsm=keys.obsm_keys)
    )
    refuse_foreign(query, keys.key_added, "key_added", ours=ours, uns=(keys.transformed,), obsm=keys.obsm_keys)
    return keys


def _predict_keys(query, reference, key: str, key_added: str | None, layer: str | None, copy: bool) -> str:
    """Check what :func:`predict` is given and will write (before any work); the key it writes."""
    _check_pair(query, reference, copy)
    name = key_added or Keys(key).predicted
    check_key_added(name, "key_added")
    if layer is not None:
        check_key_added(layer, "layer")
        if is_mudata(query):
            raise ValueError(f"layer={layer!r} is for an AnnData query; with a MuData leave layer=None (obsm)")
    obsm = (name,) if layer is None else ()
    _check_no_fit_overwritten(query, reference, name, uns=name, obsm=obsm)
    earlier = query.uns.get(name)
    ours = is_transfer(earlier) or bool(_fits_in_the_way(query, uns=name, obsm=obsm))
    refuse_foreign(query, name, "key_added", ours=ours, uns=(name,), obsm=obsm)
    if layer is not None:  # a layer is LMF's only if an earlier prediction under this key wrote it
        written = is_transfer(earlier) and earlier["params"].get("layer") == layer
        refuse_foreign(query, layer, "layer", ours=written, layers=(layer,))
    return name


def _check_pair(query, reference, copy: bool) -> None:
    """Both are AnnData or both MuData (whose specs name modalities)."""
    resolve_data(query, copy=copy)
    resolve_data(reference, "reference")
    if is_mudata(query) != is_mudata(reference):
        raise TypeError(
            f"the query is a {type(query).__name__} but the reference a {type(reference).__name__}; a fit's specs "
            "name MuData modalities ('rna:layer:counts') or AnnData slots ('layer:counts'): pass two of a kind"
        )


def _fits_in_the_way(adata: AnnData, *, uns: str, obsm) -> list[str]:
    """Fits stored in ``adata`` whose ``uns`` entry or codes a write to ``uns``/``obsm`` would touch."""
    return [
        name
        for name, value in adata.uns.items()
        if is_fit(value) and (name == uns or set(Keys(name).obsm_keys) & set(obsm))
    ]


def _check_no_fit_overwritten(query: AnnData, reference: AnnData, key_added: str, *, uns: str, obsm) -> None:
    """The reference's fit is never written over (a query's own fit in the way is replaced whole, at writing)."""
    if query is reference and (names := _fits_in_the_way(query, uns=uns, obsm=obsm)):
        raise ValueError(
            f"key_added={key_added!r} would overwrite the fit stored in the reference under uns[{names[0]!r}], "
            f"which is also the query; pass another key_added, e.g. key_added={key_added + '_query'!r}"
        )


def _replace_fits_in_the_way(adata: AnnData, *, uns: str, obsm) -> None:
    """Remove whole a fit of the query's own under the keys written (codes, loadings, results).

    As a refit under the same key replaces the old one: the old fit's results never mix with the
    new codes.
    """
    for name in _fits_in_the_way(adata, uns=uns, obsm=obsm):
        logger.warning("the query's own LMF fit under uns[%r] is replaced (its codes, loadings and results)", name)
        drop_stale(adata, Keys(name))
        del adata.uns[name]


def _write_codes(adata: AnnData, keys: Keys, codes: Codes, params: dict) -> None:
    obsm = {keys.combined: codes.combined, keys.fixed: codes.fixed}
    if codes.random is not None:
        obsm[keys.random] = codes.random
    _replace_fits_in_the_way(adata, uns=keys.transformed, obsm=keys.obsm_keys)
    for name in keys.obsm_keys:
        adata.obsm.pop(name, None)
    adata.obsm.update(obsm)
    adata.uns[keys.transformed] = {"params": params}


def _write_predictions(
    adata: AnnData, name: str, layer: str | None, columns, predicted: np.ndarray, features: list[str], params: dict
) -> None:
    _replace_fits_in_the_way(adata, uns=name, obsm=(name,) if layer is None else ())
    if layer is None:
        adata.obsm[name] = pd.DataFrame(predicted, index=adata.obs_names, columns=features)
    else:
        full = np.full((adata.n_obs, adata.n_vars), np.nan)
        full[:, columns] = predicted
        adata.layers[layer] = full
    adata.uns[name] = {"params": params}


def _arguments(inputs) -> dict:
    names = {"response": "Y", "fixed": "X", "random": "Z"}
    arguments = {names[role]: matrix for role, (matrix, _) in inputs.items()}
    observed = {role: mask for role, (_, mask) in inputs.items() if mask is not None}
    return {**arguments, "observed": observed or None}


def _log_unseen(random, n_obs: int) -> None:
    """Cells whose random-effect level the fit never saw; a warning when that is every cell (a type mismatch?)."""
    if random is not None and random[1] is not None:
        unseen = int((~random[1]).sum())
        if unseen == n_obs:
            logger.warning(
                "none of the %d query cells has a random-effect level seen in training (random code 0 for all): "
                "are the levels spelt or typed differently (e.g. 'b1' vs 'B1', or dates vs strings)?",
                n_obs,
            )
            return
        logger.info(
            "%d of %d query cells have a random-effect level not seen in training: random code 0, and their level's "
            "effect on the fixed code estimated from them",
            unseen,
            n_obs,
        )


def _params(key: str, inputs, layer: str | None = None) -> dict:
    params = {"reference_key": key, "modalities": sorted(inputs)}
    return params if layer is None else {**params, "layer": layer}


def _layer_columns(query: AnnData, response, layer: str | None) -> np.ndarray | None:
    """Positions in ``query.var_names`` of the response's features, for ``layer=`` (``None`` without it)."""
    if layer is None:
        return None
    if is_mudata(query):
        raise ValueError(f"layer={layer!r} is for an AnnData query; with a MuData leave layer=None (obsm)")
    spec = str(response["spec"])
    if not bool(response.get("var_aligned", False)):
        raise ValueError(
            f"layer={layer!r} needs a var-aligned response ('X' or 'layer:<name>'), but it is {spec!r}; "
            "leave layer=None to write a DataFrame to obsm"
        )
    features = [str(f) for f in response["features"]]
    columns = column_positions(query.var_names, features, f"layer={layer!r}")
    if (columns < 0).any():
        missing = [f for f, c in zip(features, columns) if c < 0]
        raise ValueError(
            f"layer={layer!r}: {len(missing)} response features are not in query.var_names, "
            f"e.g. {missing[:10]}; write to obsm instead (layer=None)"
        )
    return columns
