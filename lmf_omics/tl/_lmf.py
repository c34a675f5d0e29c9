"""``tl.lmf``: read modalities → fit the numeric core → store the results (no arithmetic here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from anndata import AnnData

from .._checks import check_adata, target
from .._core import LinearMixedForms, cross_validate
from .._core.log import logger
from .._core.selection import check_folds
from .._keys import Keys, check_key_added, is_fit, is_transfer, refuse_foreign
from .._modalities import Modality, check_unique_features, masks_for, read_modality, resolve_observed


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
    solver: str = "joint",
    codes: str | None = None,
    n_pcs: int | None = None,
    center: bool = True,
    scale: bool = False,
    weights: Mapping[str, float] | None = None,
    ridge: float = 1e-3,
    max_iter: int = 500,
    tol: float = 1e-6,
    random_state: int = 0,
    key_added: str = "lmf",
    progress: bool | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Fit Linear Mixed Forms on modalities of ``adata`` and store the codes for clustering.

    ``Y ≈ (K + H) αᵀ``, ``X ≈ K βᵀ``, ``Z ≈ H uᵀ``: the response ``Y``, the fixed-effect data
    ``X`` and the random-effect covariates ``Z`` share the cells; ``K`` (fixed code) and ``H``
    (random code) are learnt jointly (see :class:`lmf_omics.LinearMixedForms` for the model,
    the solvers and every option shared with it).

    Parameters
    ----------
    adata
        Annotated data matrix (cells × genes).
    response, fixed, random
        Modality specs: ``"X"``, ``"raw"``, ``"layer:<name>"``, ``"obsm:<key>"`` (array, sparse
        or DataFrame) or ``"obs:<col>[,<col>...]"`` (numeric columns as they are; categorical,
        string and boolean columns one-hot encoded, sparse). ``random=None`` fits
        ``Y ≈ K αᵀ``, ``X ≈ K βᵀ``.
    n_factors
        Number of factors ``k``, or several candidates (e.g. ``(5, 10, 20)``): the one whose fits
        predict the response of held-out cells best in ``cv_folds``-fold cross-validation is used
        (see :func:`lmf_omics.cross_validate`); the scores are stored in ``uns[key]["cross_validation"]``.
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
    solver, codes, n_pcs, center, scale, weights, ridge, max_iter, tol, random_state, progress
        As in :class:`lmf_omics.LinearMixedForms`. The default (joint solver, encoded codes)
        makes each code a linear encoding of its modality, so :func:`lmf_omics.tl.transform`
        and :func:`lmf_omics.tl.predict` treat new cells exactly as the training cells.
    key_added
        Stem of every key written (see below).
    copy
        Return a modified copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or a copy of ``adata`` when ``copy=True``, with

    ``obsm["X_<key>"]``, ``obsm["X_<key>_fixed"]``, ``obsm["X_<key>_random"]``
        ``K + H``, ``K`` and ``H`` (cells × k); use ``sc.pp.neighbors(adata, use_rep="X_lmf")``.
    ``varm["<key>_loadings_<role>"]``, ``varm["<key>_encoder_<role>"]``
        Loadings (and, for encoded codes, encoders) of var-aligned modalities (zero rows for
        masked-out features).
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
    model = LinearMixedForms(
        max(candidates),
        solver=solver,
        codes=codes,
        n_pcs=n_pcs,
        center=center,
        scale=scale,
        weights=dict(weights or {}),
        ridge=ridge,
        max_iter=max_iter,
        tol=tol,
        random_state=random_state,
        progress=progress,
    )
    model.check_options()
    check_adata(adata, copy=copy)
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
    masks = observed_masks(adata, observed, labels)
    arrays = (matrices["response"], matrices["fixed"], matrices.get("random"))
    scores = None
    if len(candidates) > 1:
        best, scores = cross_validate(model, *arrays, grid={"n_factors": candidates}, folds=cv_folds, observed=masks)
        logger.info("LMF cross-validation: n_factors=%d of %s", best["n_factors"], candidates)
        model.n_factors = best["n_factors"]
    model.fit(*arrays, observed=masks, labels=labels)

    out = target(adata, copy)
    store(out, model, modalities, keys, mask_var=mask_var, scores=scores)
    logger.info(
        "LMF %s: %d iterations, converged=%s; added obsm %r",
        solver,
        model.n_iter_,
        model.converged_,
        [k for k in keys.obsm_keys if k in out.obsm],
    )
    return out if copy else None


def read_modalities(adata: AnnData, specs: Mapping[str, str | None], mask_var) -> dict[str, Modality]:
    """Read every named modality (errors before any fitting)."""
    masks = masks_for(specs, mask_var)
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
        raise ValueError(f"observed names modalities that were not given: {sorted(unknown)}; use {sorted(labels)}")
    return {role: resolve_observed(adata, value, labels[role]) for role, value in observed.items()}


def store(
    adata: AnnData,
    model: LinearMixedForms,
    modalities: dict[str, Modality],
    keys: Keys,
    *,
    mask_var,
    scores: list[dict] | None = None,
) -> None:
    """Write a fit into ``adata``: everything is built first, then assigned, so nothing is half-written."""
    obsm = {keys.combined: model.codes_, keys.fixed: model.fixed_codes_}
    if model.random_codes_ is not None:
        obsm[keys.random] = model.random_codes_
    varm = {}
    state = model.get_state()
    for role, modality in modalities.items():
        entry = state["modalities"][role]
        entry.update(spec=modality.spec, features=modality.features, var_aligned=modality.var_aligned)
        if modality.var_aligned:
            for field, key in (("loadings", keys.loadings(role)), ("encoder", keys.encoder(role))):
                if field in entry:
                    full = np.zeros((adata.n_vars, model.n_factors))
                    full[modality.var_mask] = entry.pop(field)
                    varm[key] = full
    params = dict(state["params"])
    params.update({role: modality.spec for role, modality in modalities.items()})
    if isinstance(mask_var, str):
        params["mask_var"] = mask_var
    uns = {
        "params": params,
        "modalities": state["modalities"],
        "variance_explained": model.variance_explained_,
        "total_variance_explained": model.total_variance_explained_,
        "objective_history": model.objective_history_,
        "n_iter": model.n_iter_,
        "converged": model.converged_,
    }
    if scores is not None:
        uns["cross_validation"] = {name: np.array([row[name] for row in scores]) for name in scores[0]}
    drop_stale(adata, keys)
    adata.obsm.update(obsm)
    adata.varm.update(varm)
    adata.uns[keys.uns] = uns


def drop_stale(adata: AnnData, keys: Keys) -> None:
    """Remove what an earlier fit under the same key wrote, so old and new never mix."""
    for key in keys.obsm_keys:
        adata.obsm.pop(key, None)
    for key in keys.varm_keys:
        adata.varm.pop(key, None)
