"""``tl.enrich``: a fit's loadings scored against gene sets (or any feature sets) through decoupler.

read the loadings (``get``) → check the net → decoupler scores each factor as a sample → store in ``uns``.
"""

from __future__ import annotations

import pandas as pd
from anndata import AnnData

from .. import _checks, get
from .._core.log import logger
from .._keys import Keys, check_key_added

METHODS = ("ulm", "mlm", "zscore", "waggr", "viper", "gsea", "ora", "aucell")
"""decoupler methods (``decoupler.mt.<name>``) that score a table of samples × features."""


def enrich(
    adata: AnnData,
    *,
    net: pd.DataFrame,
    role: str = "fixed",
    method: str = "ulm",
    source: str = "source",
    target: str = "target",
    weight: str | None = "weight",
    tmin: int = 5,
    key: str = "lmf",
    key_added: str | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Score each factor's loadings against feature sets (gene sets, pathways, regulons) with decoupler.

    Each factor is one sample for decoupler: its loadings of the modality ``role`` over that
    modality's features. With the default ``method="ulm"`` a set's score is the t-value of the
    slope of a linear model ``loading ~ 1 + weight`` over all features (weight 0 outside the set),
    so a large positive score means the set's features load positively on that factor. Needs the
    optional dependency decoupler (``pip install "lmf-omics[enrich]"``).

    Parameters
    ----------
    adata
        AnnData with a fit under ``key``.
    net
        The sets, one row per (set, feature): columns ``source`` (the set's name), ``target``
        (a feature name of the modality) and optionally ``weight`` (default 1), as decoupler's
        resources (``decoupler.op.hallmark``, ``decoupler.op.progeny``, ...) give them.
    role
        The modality whose loadings are scored: ``"fixed"`` (β, default), ``"response"`` (α) or
        ``"random"`` (u).
    method
        A decoupler method: one of :data:`METHODS`.
    source, target, weight
        Column names in ``net``; ``weight=None`` weighs every feature 1.
    tmin
        Sets with fewer features among the fitted ones are left out (decoupler's ``tmin``).
    key
        ``key_added`` of the fit.
    key_added
        ``uns`` key to write (default ``"<key>_enrich_<role>"``).
    copy
        Return a modified copy instead of writing to ``adata``.

    Returns
    -------
    AnnData or None
        With ``copy=True`` the copy, else ``None``. Writes ``uns[key_added]``: ``scores`` (factors
        × sets, DataFrame), ``pvals`` (decoupler's p-values, adjusted by Benjamini-Hochberg over
        the sets of each factor; absent for methods without p-values), ``method``, ``role``, ``key``.
        Read it as a tidy table with :func:`lmf_omics.get.enrichment`.
    """
    _checks.check_adata(adata, copy=copy)
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of the decoupler methods {METHODS}")
    if isinstance(tmin, bool) or not isinstance(tmin, int) or tmin < 1:
        raise ValueError(f"tmin={tmin!r} must be a positive integer")
    key_added = Keys(key).enrichment(role) if key_added is None else key_added
    check_key_added(key_added)
    loadings = get.loadings(adata, key, role=role)  # checks the fit and the role
    sets = _net(net, source, target, weight, features=loadings.index)
    sizes = sets[sets["target"].isin(loadings.index)].groupby("source").size()
    if not (sizes >= tmin).any():
        raise ValueError(
            f"no set of net has at least tmin={tmin} features among the fitted ones (largest: {sizes.max()}); "
            "lower tmin"
        )
    decoupler = _decoupler()
    logger.info(f"scoring {sets['source'].nunique()} sets against the {role} loadings with decoupler.mt.{method}")
    found = getattr(decoupler.mt, method)(loadings.T, sets, tmin=tmin, verbose=False)
    scores, pvals = found if isinstance(found, tuple) else (found, None)
    result = {"scores": scores, "method": method, "role": role, "key": key}
    if pvals is not None:
        result["pvals"] = pvals
    adata = _checks.target(adata, copy)
    adata.uns[key_added] = result
    return adata if copy else None


def _net(net, source: str, target: str, weight: str | None, *, features: pd.Index) -> pd.DataFrame:
    """``net`` as decoupler reads it (``source``, ``target``, ``weight``), checked against the features."""
    if not isinstance(net, pd.DataFrame):
        raise TypeError(f"net must be a pandas DataFrame of (source, target[, weight]) rows, got {type(net).__name__}")
    columns = [source, target] + ([weight] if weight is not None else [])
    missing = [c for c in columns if c not in net.columns]
    if missing:
        raise ValueError(
            f"net has no column(s) {missing}; its columns are {list(map(str, net.columns))} "
            "(name them with source=, target=, weight=)"
        )
    sets = pd.DataFrame({"source": net[source].astype(str), "target": net[target].astype(str)})
    sets["weight"] = 1.0 if weight is None else pd.to_numeric(net[weight], errors="raise").astype(float)
    if sets.duplicated(["source", "target"]).any():
        pair = sets[sets.duplicated(["source", "target"])].iloc[0]
        raise ValueError(f"net lists feature {pair.target!r} twice in set {pair.source!r}; drop the duplicates")
    if not sets["target"].isin(features).any():
        raise ValueError(
            f"no target of net is a fitted feature (e.g. net has {sets['target'].iloc[0]!r}, the fit has "
            f"{features[0]!r}); are they the same kind of names (symbols vs. IDs, species)?"
        )
    return sets


def _decoupler():
    try:
        import decoupler
    except ImportError as error:
        raise ImportError(
            'lmf_omics.tl.enrich needs decoupler: pip install "lmf-omics[enrich]" (or pip install decoupler)'
        ) from error
    return decoupler
