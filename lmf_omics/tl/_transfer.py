"""``tl.transform`` and ``tl.predict``: a fit on a reference applied to query cells.

read the reference's model → read the query's modalities by feature name → core → store.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import get
from .._keys import ROLES, Keys, check_key_added
from .._modalities import column_positions, read_aligned

logger = logging.getLogger("lmf_omics")


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
        The query: cells to encode (another sample, section or batch).
    reference
        The AnnData a fit was stored in by :func:`lmf_omics.tl.lmf`.
    key
        ``key_added`` of that fit.
    key_added
        Stem of the keys written to the query (default: ``key``).
    copy
        Return a modified copy instead of writing to ``query``.

    Returns
    -------
    ``None`` or a copy, with ``obsm["X_<key_added>"]``, ``obsm["X_<key_added>_fixed"]`` and
    ``obsm["X_<key_added>_random"]`` (as :func:`lmf_omics.tl.lmf`), and
    ``uns["<key_added>_transform"]["params"]``: the reference key and the modalities used.
    """
    query = adata
    check_key_added(key_added or key, "key_added")
    model, inputs = _read(query, reference, key, roles=ROLES)
    if not inputs:
        specs = {role: str(entry["spec"]) for role, entry in get.results(reference, key)["modalities"].items()}
        raise ValueError(f"the query has none of the fit's modalities {specs}; add one with the same spec")
    codes = model.transform(**_arguments(inputs), labels=_labels(reference, key))
    keys = Keys(key_added or key)
    obsm = {keys.combined: codes.combined, keys.fixed: codes.fixed}
    if codes.random is not None:
        obsm[keys.random] = codes.random
    target = query.copy() if copy else query
    for name in keys.obsm_keys:
        target.obsm.pop(name, None)
    target.obsm.update(obsm)
    target.uns[f"{keys.uns}_transform"] = {"params": _params(key, inputs)}
    return target if copy else None


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
    adata, reference, key, copy
        As in :func:`transform` (``adata`` is the query).
    key_added
        Where to write: ``obsm[key_added]`` (default ``"<key>_predicted"``), a DataFrame with the
        response's feature names as columns.
    layer
        Write into ``query.layers[layer]`` instead (only for a var-aligned response, ``"X"`` or
        ``"layer:<name>"``, whose features are all in ``query.var_names``); features that are not
        predicted hold NaN.

    Returns
    -------
    ``None`` or a copy of ``query`` holding the predictions.
    """
    query = adata
    check_key_added(key_added or Keys(key).predicted, "key_added")
    if layer is not None:
        check_key_added(layer, "layer")
    model, inputs = _read(query, reference, key, roles=("fixed", "random"))
    if not inputs:
        raise ValueError(f"the query has neither the fixed-effect ({_spec(reference, key, 'fixed')!r}) "
                         "nor the random-effect modality of the fit; nothing to predict from")
    response = get.results(reference, key)["modalities"]["response"]
    features = [str(f) for f in response["features"]]
    if layer is not None:
        columns = _layer_columns(query, response, features, layer)
    predicted = model.predict(**_arguments(inputs), labels=_labels(reference, key))
    target = query.copy() if copy else query
    if layer is None:
        target.obsm[key_added or Keys(key).predicted] = pd.DataFrame(predicted, index=query.obs_names, columns=features)
    else:
        full = np.full((query.n_obs, query.n_vars), np.nan)
        full[:, columns] = predicted
        target.layers[layer] = full
    target.uns[f"{key_added or Keys(key).predicted}"] = {"params": _params(key, inputs)}
    return target if copy else None


def _read(query: AnnData, reference: AnnData, key: str, *, roles):
    """The reference's model and the query's matrices ``{role: (matrix, observed)}`` it has (checked first)."""
    for name, value in (("adata", query), ("reference", reference)):
        if not isinstance(value, AnnData):
            raise TypeError(f"{name} must be an AnnData, got {type(value).__name__}")
    model = get.model(reference, key)
    stored = get.results(reference, key)["modalities"]
    inputs = {}
    for role in roles:
        if role not in stored:
            continue
        found = read_aligned(query, str(stored[role]["spec"]), stored[role]["features"], role=role)
        if found is not None:
            inputs[role] = found
    _log_unseen(inputs.get("random"), query.n_obs)
    return model, inputs


def _arguments(inputs) -> dict:
    names = {"response": "Y", "fixed": "X", "random": "Z"}
    arguments = {names[role]: matrix for role, (matrix, _) in inputs.items()}
    observed = {role: mask for role, (_, mask) in inputs.items() if mask is not None}
    return {**arguments, "observed": observed or None}


def _labels(reference: AnnData, key: str) -> dict[str, str]:
    """``{role: "role='spec'"}``: the query's modalities named in errors as in :func:`lmf_omics.tl.lmf`."""
    return {role: f"{role}={str(entry['spec'])!r}" for role, entry in get.results(reference, key)["modalities"].items()}


def _log_unseen(random, n_obs: int) -> None:
    if random is not None and random[1] is not None:
        unseen = int((~random[1]).sum())
        logger.info("%d of %d query cells have a random-effect level not seen in training: random code 0",
                    unseen, n_obs)


def _params(key: str, inputs) -> dict:
    return {"reference_key": key, "modalities": sorted(inputs)}


def _spec(reference: AnnData, key: str, role: str) -> str | None:
    entry = get.results(reference, key)["modalities"].get(role)
    return None if entry is None else str(entry["spec"])


def _layer_columns(query: AnnData, response, features: list[str], layer: str) -> np.ndarray:
    spec = str(response["spec"])
    if not bool(response.get("var_aligned", False)):
        raise ValueError(f"layer={layer!r} needs a var-aligned response ('X' or 'layer:<name>'), but it is {spec!r}; "
                         "leave layer=None to write a DataFrame to obsm")
    columns = column_positions(query.var_names, features, f"layer={layer!r}")
    if (columns < 0).any():
        missing = [f for f, c in zip(features, columns) if c < 0]
        raise ValueError(f"layer={layer!r}: {len(missing)} response features are not in query.var_names, "
                         f"e.g. {missing[:10]}; write to obsm instead (layer=None)")
    return columns
