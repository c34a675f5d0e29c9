"""``tl.lmf``: read modalities → fit the numeric core → store the results (no arithmetic here)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
from anndata import AnnData

from .._checks import resolve_data, target
from .._core import LinearMixedForms, grid_search
from .._core.log import logger
from .._core.options import Options, fill_options, signature_parameters
from .._core.selection import check_folds
from .._keys import Keys, check_key_added, is_fit, is_transfer, refuse_foreign
from .._modalities import (
    Modality,
    check_unique_features,
    is_mudata,
    masks_for,
    modality_names,
    read_modality,
    resolve_observed,
    var_holder,
)
from .._settings import n_jobs as n_jobs_setting


def lmf(
    adata: AnnData,
    *,
    response: str,
    fixed: str,
    random: str | None = None,
    n_factors: int | Sequence[int] = 10,
    cv_folds: int = 5,
    mask_var: str | np.ndarray | Mapping[str, str | np.ndarray] | None = None,
    observed: Mapping[str, str | np.ndarray] | None = None,
    key_added: str = "lmf",
    table_key: str | None = None,
    mod_obsm: bool = False,
    copy: bool = False,
    **options,
) -> AnnData | None:
    """Fit Linear Mixed Forms on modalities of ``adata`` and store the codes for clustering.

    ``Y ≈ (K + H) αᵀ``, ``X ≈ K βᵀ``, ``Z ≈ H uᵀ``: the response ``Y``, the fixed-effect data
    ``X`` and the random-effect covariates ``Z`` share the cells; ``K`` (fixed code) and ``H``
    (random code) are learnt jointly (see :class:`lmf_omics.LinearMixedForms` for the model,
    the solvers and every option shared with it).

    Parameters
    ----------
    adata
        Annotated data matrix (cells × genes), a MuData, or a SpatialData whose table
        ``table_key`` is fitted (the results are written into that table).
    response, fixed, random
        Modality specs: ``"X"``, ``"raw"``, ``"layer:<name>"``, ``"obsm:<key>"`` (array, sparse
        or DataFrame) or ``"obs:<col>[,<col>...]"`` (numeric columns as they are; categorical,
        string and boolean columns one-hot encoded, sparse). ``random=None`` fits
        ``Y ≈ K αᵀ``, ``X ≈ K βᵀ``. For a MuData, a spec names a modality first: ``"prot"``
        (its X), ``"rna:layer:counts"``, ``"rna:obsm:X_pca"``, ``"rna:obs:batch"``; ``"obs:donor"``
        and ``"obsm:<key>"`` are the MuData's own. Every MuData cell gets codes; a cell a
        modality lacks is unobserved in it (the union of cells, aligned by obs names).
    n_factors
        Number of factors ``k``, or several candidates (e.g. ``(5, 10, 20)``): the one whose fits
        predict the response of held-out cells best in ``cv_folds``-fold cross-validation is used
        (see :func:`lmf_omics.grid_search`); the scores are stored in ``uns[key]["cross_validation"]``.
    cv_folds
        Folds of that cross-validation.
    mask_var
        Features to use: a boolean ``var`` column (e.g. ``"highly_variable"``) or array, applied
        to every var-aligned modality (``"X"`` and layers), or a dict from role to mask.
        Masked-out features get zero loadings.
    observed
        Cells that have a modality, by role: a boolean ``obs`` column name or array (e.g.
        ``{"response": "has_protein"}``). Rows of NaN (e.g. in an ``obsm`` DataFrame) are
        unobserved too, and so is a missing value of a numeric ``obs`` column named alone in its
        spec (``random="obs:depth"``). A cell contributes to the modalities it has and still gets
        codes.
    key_added
        Stem of every key written (see below).
    table_key
        The table of a SpatialData to fit (``None`` for an AnnData or MuData).
    mod_obsm
        For a MuData: also write the codes into each modality's ``obsm``, the rows of the cells it
        has (aligned by obs names), so ``sc.pp.neighbors(mdata["rna"], use_rep="X_lmf_fixed")`` works
        on a modality alone, as ``mu.tl.mofa``'s users expect.
    copy
        Return a modified copy instead of writing to ``adata``.
    {options}

    Returns
    -------
    ``None``, or a copy of ``adata`` when ``copy=True``, with

    ``obsm["X_<key>"]``, ``obsm["X_<key>_fixed"]``, ``obsm["X_<key>_random"]``
        ``K + H``, ``K`` and ``H`` (cells × k); use ``sc.pp.neighbors(adata, use_rep="X_lmf")``.
    ``varm["<key>_loadings_<role>"]``, ``varm["<key>_encoder_<role>"]``
        Loadings (and, for encoded codes, encoders) of var-aligned modalities (zero rows for
        masked-out features); for a MuData in the modality's ``varm``, the codes and ``uns`` in
        the MuData's own ``obsm`` and ``uns``.
    ``uns["<key>"]``
        ``params``, per-modality ``modalities`` (spec, features, centring, weight, and loadings of
        modalities not aligned with ``var``), ``variance_explained`` (R² per factor),
        ``total_variance_explained``, ``objective_history``, ``n_iter`` and ``converged``;
        enough to rebuild the model with :func:`lmf_omics.get.model`.

    Examples
    --------
    >>> import lmf_omics as lmf, scanpy as sc
    >>> lmf.tl.lmf(adata, response="obsm:protein", fixed="X", random="obs:sample", n_factors=20)
    >>> sc.pp.neighbors(adata, use_rep="X_lmf"); sc.tl.leiden(adata); sc.tl.umap(adata)
    """
    candidates = _candidates(n_factors)
    settings = Options.from_mapping(options, where="lmf_omics.tl.lmf")
    settings = replace(settings, n_jobs=n_jobs_setting(settings.n_jobs))  # None follows sc.settings.n_jobs
    model = LinearMixedForms(**{**settings.as_dict(), "n_factors": max(candidates)})
    model.check_options()
    if mod_obsm and not is_mudata(adata):
        raise ValueError(
            f"mod_obsm=True needs a MuData (its modalities get the codes), got {type(adata).__name__}; "
            "drop mod_obsm for an AnnData or SpatialData"
        )
    adata = resolve_data(adata, table_key=table_key, copy=copy)
    check_key_added(key_added)
    check_folds(cv_folds, adata.n_obs if len(candidates) > 1 else None, "cv_folds")
    keys = Keys(key_added)
    refuse_foreign(
        adata,
        key_added,
        "key_added",
        ours=is_fit(adata.uns.get(keys.uns)) or is_transfer(adata.uns.get(keys.transformed)),
        uns=(keys.uns,),
        obsm=keys.obsm_keys,
        varm=keys.varm_keys,
    )
    modalities = read_modalities(adata, {"response": response, "fixed": fixed, "random": random}, mask_var)
    labels = {role: f"{role}={m.spec!r}" for role, m in modalities.items()}
    matrices = {role: m.matrix for role, m in modalities.items()}
    masks = with_absent_cells(observed_masks(adata, observed, labels), modalities)
    arrays = (matrices["response"], matrices["fixed"], matrices.get("random"))
    scores = None
    if len(candidates) > 1:
        best, scores = grid_search(model, *arrays, grid={"n_factors": candidates}, folds=cv_folds, observed=masks)
        logger.info("LMF cross-validation: n_factors=%d of %s", best["n_factors"], candidates)
        model.n_factors = best["n_factors"]
    model.fit(*arrays, observed=masks, labels=labels)

    out = target(adata, copy)
    store(out, model, modalities, keys, mask_var=mask_var, scores=scores, mod_obsm=mod_obsm)
    logger.info(
        "LMF %s: %d iterations, converged=%s; added obsm %r",
        model.solver,
        model.n_iter_,
        model.converged_,
        [k for k in keys.obsm_keys if k in out.obsm],
    )
    return out if copy else None


def read_modalities(adata: AnnData, specs: Mapping[str, str | None], mask_var) -> dict[str, Modality]:
    """Read every named modality of an AnnData or MuData (errors before any fitting)."""
    masks = masks_for(specs, mask_var, modality_names(adata))
    modalities = {
        role: read_modality(adata, spec, role=role, mask_var=masks.get(role))
        for role, spec in specs.items()
        if spec is not None
    }
    for role, modality in modalities.items():
        check_unique_features(modality, f"{role}={modality.spec!r}")
    return modalities


def _candidates(n_factors) -> list:
    """``n_factors`` as a list of candidates (one for a plain number; each checked by the estimator)."""
    if isinstance(n_factors, Sequence) and not isinstance(n_factors, str):
        if len(n_factors) == 0:
            raise ValueError("n_factors is an empty sequence; give a number or several candidates, e.g. (5, 10, 20)")
        for value in n_factors:
            LinearMixedForms(value).check_options()
        return list(n_factors)
    return [n_factors]


def observed_masks(adata: AnnData, observed, labels: Mapping[str, str]) -> dict[str, np.ndarray]:
    """``observed`` by role as boolean arrays (obs column names resolved)."""
    if observed is None:
        return {}
    if not isinstance(observed, Mapping):
        raise TypeError(
            f"observed must be a dict from role to an obs column or boolean array, got {type(observed).__name__}"
        )
    unknown = set(observed) - set(labels)
    if unknown:
        raise ValueError(f"observed names roles without a modality: {sorted(unknown)}; use {sorted(labels)}")
    return {role: resolve_observed(adata, value, labels[role]) for role, value in observed.items()}


def with_absent_cells(masks: dict[str, np.ndarray], modalities: Mapping[str, Modality]) -> dict[str, np.ndarray]:
    """The cells a MuData modality lacks are unobserved in it, whatever ``observed`` says of them."""
    masks = dict(masks)
    for role, modality in modalities.items():
        if modality.observed is not None:
            masks[role] = modality.observed & masks[role] if role in masks else modality.observed
    return masks


def store(
    adata: AnnData,
    model: LinearMixedForms,
    modalities: dict[str, Modality],
    keys: Keys,
    *,
    mask_var,
    scores: list[dict] | None = None,
    mod_obsm: bool = False,
) -> None:
    """Write a fit into ``adata``: everything is built first, then assigned, so nothing is half-written."""
    obsm = {keys.combined: model.codes_, keys.fixed: model.fixed_codes_}
    if model.random_codes_ is not None:
        obsm[keys.random] = model.random_codes_
    varm = {}  # {holder: {key: array}}: a MuData's loadings go to each modality's varm
    state = model.get_state()
    for role, modality in modalities.items():
        entry = state["modalities"][role]
        entry.update(spec=modality.spec, features=modality.features, var_aligned=modality.var_aligned)
        if modality.var_aligned:
            holder = var_holder(adata, modality.spec, role)
            for field, key in (("loadings", keys.loadings(role)), ("encoder", keys.encoder(role))):
                if field in entry:
                    full = np.zeros((holder.n_vars, model.n_factors))
                    full[modality.var_mask] = entry.pop(field)
                    varm.setdefault(modality.holder, (holder, {}))[1][key] = full
    params = dict(state["params"])
    params.update({role: modality.spec for role, modality in modalities.items()})
    if isinstance(mask_var, str):
        params["mask_var"] = mask_var
    if mod_obsm:
        params["mod_obsm"] = True
    uns = {
        "params": params,
        "modalities": state["modalities"],
        "variance_explained": model.variance_explained_,
        "total_variance_explained": model.total_variance_explained_,
        "objective_history": model.objective_history_,
        "n_iter": model.n_iter_,
        "converged": model.converged_,
    }
    if "random_effect" in state:
        uns["random_effect"] = state["random_effect"]
    if "code_scale" in state:
        uns["code_scale"] = state["code_scale"]
    if scores is not None:
        uns["cross_validation"] = {name: np.array([row[name] for row in scores]) for name in scores[0]}
    per_modality = {name: _rows_of(adata, name, obsm) for name in adata.mod} if mod_obsm else {}
    drop_stale(adata, keys)
    adata.obsm.update(obsm)
    for name, codes in per_modality.items():
        adata.mod[name].obsm.update(codes)
    for holder, arrays in varm.values():
        holder.varm.update(arrays)
    adata.uns[keys.uns] = uns


def _rows_of(mdata, name: str, obsm: dict) -> dict:
    """The codes of the cells modality ``name`` has, in its own order (its obs names in the MuData's)."""
    rows = mdata.obs_names.get_indexer(mdata.mod[name].obs_names)
    return {key: codes[rows] for key, codes in obsm.items()}


def drop_stale(adata: AnnData, keys: Keys) -> None:
    """Remove what an earlier fit under the same key wrote (in a MuData's modalities too), so old and new never mix."""
    for key in keys.obsm_keys:
        adata.obsm.pop(key, None)
    holders = [adata, *adata.mod.values()] if is_mudata(adata) else [adata]
    for holder in holders:
        for key in keys.varm_keys:
            holder.varm.pop(key, None)
    earlier = adata.uns.get(keys.uns)
    if is_mudata(adata) and is_fit(earlier) and earlier.get("params", {}).get("mod_obsm"):
        for modality in adata.mod.values():  # codes only a fit with mod_obsm=True wrote there
            for key in keys.obsm_keys:
                modality.obsm.pop(key, None)


lmf.__doc__ = fill_options(lmf.__doc__, skip=("n_factors",))
lmf.__signature__ = inspect.signature(lmf).replace(
    parameters=[p for p in inspect.signature(lmf).parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
    + [p for p in signature_parameters() if p.name != "n_factors"]
)
