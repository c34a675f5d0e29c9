"""Read stored LMF results back out of an AnnData or a MuData (like ``scanpy.get``).

A MuData fit keeps its ``uns`` entry and codes in the MuData and the loadings of each
var-aligned modality in that modality's ``varm``; every function here reads both.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from anndata import AnnData

from ._checks import factor_numbers, is_spatialdata
from ._core import LinearMixedForms
from ._core.interpret import top_features as _rank_features
from ._docs import FIT, NO_FIT, fill
from ._keys import ROLES, Keys, is_fit
from ._modalities import MissingKeyError, var_holder

STATE_FIELDS = ("spec", "features", "mean", "scale", "weight", "loadings")  # what a stored modality needs


@fill(fit=FIT, no_fit=NO_FIT)
def model(adata: AnnData, key: str = "lmf") -> LinearMixedForms:
    """Rebuild the fitted :class:`~lmf_omics.LinearMixedForms` stored under ``key``.

    Loadings of var-aligned modalities are read from ``varm`` (the rows of the features used),
    the rest from ``uns[key]``. The rebuilt model transforms and predicts like the original.

    Parameters
    ----------
    {fit}

    Returns
    -------
    The fitted estimator, ready for ``transform`` and ``predict`` on arrays of new cells.

    Raises
    ------
    {no_fit}
    ValueError
        If the stored fit is incomplete (edited or subset).

    Examples
    --------
    >>> model = lmf.get.model(adata)
    >>> codes = model.transform(X=query_rna, Z=query_covariates)
    """
    stored = results(adata, key)
    modalities = {}
    for role, entry in stored["modalities"].items():
        entry = dict(entry)
        for field in ("loadings", "encoder"):
            array = _stored_array(adata, key, role, entry, field)
            if array is not None:
                entry[field] = array
        modalities[role] = entry
    for role, entry in modalities.items():
        absent = [field for field in STATE_FIELDS if field not in entry]
        if absent:
            raise ValueError(
                f"the fit under uns[{key!r}] is incomplete: the modality of role {role!r} has no {absent} "
                "(was it edited or subset?); run lmf_omics.tl.lmf again"
            )
    _check_state(stored["params"], modalities, key)
    state = {"params": stored["params"], "modalities": modalities}
    state |= {name: stored.get(name) for name in ("random_effect", "code_scale")}
    return LinearMixedForms.from_state(state)


def _inconsistent(key: str, problem: str) -> ValueError:
    return ValueError(
        f"the fit under uns[{key!r}] is inconsistent: {problem} (was it edited?); run lmf_omics.tl.lmf again"
    )


def _check_state(params, modalities: dict, key: str) -> None:
    """The stored fit is one a fit could have written: valid options, arrays of matching shapes, finite numbers."""
    options = {name: _scalar(params[name]) for name in LinearMixedForms.STORED if name in params}
    try:
        weights = {role: _scalar(w) for role, w in dict(params.get("weights", {})).items()}
        LinearMixedForms(**options, weights=weights).check_options()
    except (TypeError, ValueError) as error:
        raise _inconsistent(key, f"its params are not valid options ({error})") from None
    k = options.get("n_factors")
    for role in ("response", "fixed"):
        if role not in modalities:
            raise _inconsistent(key, f"it has no {role!r} modality")
    encoded = options.get("codes") == "encoded"
    for role, entry in modalities.items():
        p = len(np.asarray(entry["features"]))
        shapes = {"mean": (p,), "scale": (p,), "loadings": (p, k)}
        if encoded and role != "response":
            if "encoder" not in entry:
                raise _inconsistent(key, f"the encoder of modality {role!r} is missing (varm or uns)")
            shapes["encoder"] = (p, k)
        for field, shape in shapes.items():
            array = _numeric(entry[field], key, f"{role} {field}")
            if array.shape != shape:
                raise _inconsistent(key, f"the {field} of modality {role!r} has shape {array.shape}, expected {shape}")
        scale = _numeric(entry["scale"], key, f"{role} scale")
        if not (scale > 0).all():
            raise _inconsistent(key, f"the scale of modality {role!r} has values <= 0")
        weight = _numeric(entry["weight"], key, f"{role} weight")
        if weight.shape != () or not weight > 0:
            raise _inconsistent(key, f"the weight of modality {role!r} must be one number > 0, got {entry['weight']!r}")


def _numeric(value, key: str, what: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise _inconsistent(key, f"the {what} is not numeric (dtype {array.dtype})")
    if not np.isfinite(array).all():
        raise _inconsistent(key, f"the {what} has NaN or infinite values")
    return array


def _scalar(value):
    return value.item() if isinstance(value, np.generic) else value


@fill(fit=FIT, no_fit=NO_FIT)
def loadings(adata: AnnData, key: str = "lmf", *, role: str = "response") -> pd.DataFrame:
    """Loadings of one modality: rows are the features it was fitted on, columns ``Factor1``...

    They relate the codes to the centred (and, with ``scale=True``, scaled) data, so a large entry
    means the feature moves with that factor.

    Parameters
    ----------
    {fit}
    role
        ``"response"`` (α), ``"fixed"`` (β) or ``"random"`` (u).

    Returns
    -------
    Features × factors DataFrame.

    Raises
    ------
    ValueError
        If the fit has no modality of ``role``.
    MissingKeyError
        If there is no fit under ``key``, or its loadings were deleted from ``varm``.

    Examples
    --------
    >>> lmf.get.loadings(adata, role="fixed")["Factor1"].nlargest(10)
    """
    entries = results(adata, key)["modalities"]
    if role not in entries:
        raise ValueError(f"role={role!r} has no modality in the fit under {key!r}; use one of {sorted(entries)}")
    values = _stored_array(adata, key, role, entries[role])
    if values is None:
        raise MissingKeyError(
            f"the loadings of role={role!r} of the fit under {key!r} are missing: "
            f"varm[{Keys(key).loadings(role)!r}] is not there (was it deleted?); "
            "run lmf_omics.tl.lmf again"
        )
    names = stored_names(entries[role]["features"])
    return pd.DataFrame(values, index=names, columns=[f"Factor{i + 1}" for i in range(values.shape[1])])


def top_features(
    adata: AnnData,
    key: str = "lmf",
    *,
    role: str = "response",
    factor: int | list[int] | None = None,
    n: int = 10,
    sign: str = "both",
) -> pd.DataFrame:
    """The largest loadings of each factor as a tidy table: which features rise and fall with it.

    Parameters
    ----------
    adata
        AnnData with a fit under ``key``.
    key
        ``key_added`` of the fit.
    role
        ``"response"`` (α), ``"fixed"`` (β) or ``"random"`` (u).
    factor
        1-based factor number(s); default all factors.
    n
        Features per factor and sign.
    sign
        ``"both"`` (default): the ``n`` most positive and the ``n`` most negative loadings;
        ``"positive"``, ``"negative"``: one side; ``"abs"``: the ``n`` largest in magnitude (what
        :func:`lmf_omics.pl.loadings` shows). Zero loadings count for ``"abs"`` only.

    Returns
    -------
    pandas.DataFrame
        One row per feature and factor, columns ``feature``, ``factor`` (1-based), ``loading``,
        ``rank`` (1 = largest within its factor and sign) and ``sign`` (``"positive"`` or
        ``"negative"``), ordered by factor, sign and rank. Ties are broken by feature name.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n={n!r} must be a positive integer")
    table = loadings(adata, key, role=role)
    factors = (
        list(range(1, table.shape[1] + 1)) if factor is None else factor_numbers(factor, table.shape[1], name="factor")
    )
    values = table.to_numpy()[:, [f - 1 for f in factors]]
    rows, columns, ranks, negative = _rank_features(values, table.index.to_numpy(), int(n), sign)
    return pd.DataFrame(
        {
            "feature": table.index.to_numpy()[rows],
            "factor": np.asarray(factors)[columns],
            "loading": values[rows, columns],
            "rank": ranks,
            "sign": pd.Categorical(np.where(negative, "negative", "positive"), categories=["positive", "negative"]),
        }
    )


def enrichment(adata: AnnData, key_added: str = "lmf_enrich_fixed") -> pd.DataFrame:
    """The set scores :func:`lmf_omics.tl.enrich` stored, as a tidy table.

    Parameters
    ----------
    adata
        AnnData that :func:`lmf_omics.tl.enrich` wrote into.
    key_added
        Its ``key_added`` (default: the one for ``role="fixed"`` of the fit ``"lmf"``).

    Returns
    -------
    pandas.DataFrame
        One row per factor and set, columns ``factor`` (1-based), ``source`` (the set), ``score``
        and, where the method gives them, ``pval``; ordered by factor, then score (largest first).
    """
    stored = adata.uns.get(key_added)
    if not isinstance(stored, Mapping) or "scores" not in stored:
        found = sorted(k for k, v in adata.uns.items() if isinstance(v, Mapping) and "scores" in v)
        raise MissingKeyError(
            f"no enrichment under uns[{key_added!r}]; enrichments present: {found}. Run lmf_omics.tl.enrich first"
        )
    scores = pd.DataFrame(stored["scores"])
    long = _melt(scores, "score")
    if "pvals" in stored:
        long["pval"] = _melt(pd.DataFrame(stored["pvals"]).loc[scores.index, scores.columns], "pval")["pval"]
    long["factor"] = long["factor"].str.removeprefix("Factor").astype(int)
    return long.sort_values(["factor", "score"], ascending=[True, False], kind="stable").reset_index(drop=True)


def _melt(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """A factors × sets table as (factor, source, name) rows."""
    frame = frame.rename_axis(index="factor", columns="source").reset_index()
    return frame.melt(id_vars="factor", var_name="source", value_name=name)


def _stored_array(adata: AnnData, key: str, role: str, entry, field: str = "loadings") -> np.ndarray | None:
    """``loadings`` or ``encoder`` of ``role``.

    In ``uns`` for other modalities, the fitted rows of ``varm`` for var-aligned ones; ``None``
    when the fit has no such array (e.g. no encoder for free codes).
    """
    if field in entry:
        return np.asarray(entry[field])
    varm_key = (Keys(key).loadings if field == "loadings" else Keys(key).encoder)(role)
    if not entry.get("var_aligned"):
        return None
    holder = var_holder(adata, str(entry["spec"]), role)  # the AnnData itself, or a MuData's modality
    if varm_key not in holder.varm:
        return None
    if not holder.var_names.is_unique:
        raise ValueError(
            f"the fit under uns[{key!r}] reads {varm_key!r} by var name, but adata.var_names repeat names; "
            "make them unique as they were at fitting (adata.var_names_make_unique())"
        )
    rows = holder.var_names.get_indexer(stored_names(entry["features"]))
    if (rows < 0).any():
        raise ValueError(f"uns[{key!r}] names features missing from adata.var_names; was var subset?")
    return holder.varm[varm_key][rows]


def stored_names(values) -> np.ndarray:
    """Stored feature names as a plain ``str`` array.

    h5ad gives them back as ``object`` or ``<U`` arrays, zarr (numpy ≥ 2) as ``StringDType``,
    which refuses ``astype(str)``; every reader goes through here.

    Parameters
    ----------
    values
        The stored names (any array-like of strings).

    Returns
    -------
    numpy.ndarray
        The names, one-dimensional, of a plain ``str`` dtype.
    """
    return np.array([str(value) for value in np.asarray(values).ravel()], dtype=str)


@fill(fit=FIT, no_fit=NO_FIT)
def features(adata: AnnData, key: str = "lmf") -> dict[str, list[str]]:
    """The feature names each modality was fitted on, by role.

    Parameters
    ----------
    {fit}

    Returns
    -------
    Role → feature names, in the order of the loadings' rows.
    """
    return {role: list(map(str, e["features"])) for role, e in results(adata, key)["modalities"].items()}


@fill(fit=FIT, no_fit=NO_FIT)
def variance_explained(adata: AnnData, key: str = "lmf") -> pd.DataFrame:
    """R² per factor (rows ``Factor1``...) and role (columns), as in MOFA's table.

    Parameters
    ----------
    {fit}

    Returns
    -------
    Factors × roles DataFrame of the share of each modality's variance a factor explains alone.
    """
    table = results(adata, key)["variance_explained"]
    frame = pd.DataFrame({role: np.asarray(table[role]) for role in ROLES if role in table})
    frame.index = [f"Factor{i + 1}" for i in range(len(frame))]
    return frame


@fill(fit=FIT, no_fit=NO_FIT)
def results(adata: AnnData, key: str = "lmf") -> dict:
    """``adata.uns[key]``, with a clear error when there is no fit under that key.

    Parameters
    ----------
    {fit}

    Returns
    -------
    The stored results (``params``, ``modalities``, ``variance_explained``, ...; see
    :func:`lmf_omics.tl.lmf`).

    Raises
    ------
    MissingKeyError
        If ``uns[key]`` holds no fit; the message lists the fits present.
    """
    if is_spatialdata(adata):
        tables = sorted(map(str, adata.tables.keys()))
        first = tables[0] if tables else "<name>"
        raise TypeError(
            f"get reads an AnnData or MuData; with a SpatialData pass its table: sdata.tables[{first!r}] "
            f"(tables: {tables})"
        )
    if not hasattr(adata, "uns"):
        raise TypeError(f"adata must be an AnnData or MuData, got {type(adata).__name__}")
    if not is_fit(adata.uns.get(key)):
        fits = sorted(k for k, v in adata.uns.items() if is_fit(v))
        raise MissingKeyError(f"no LMF fit under uns[{key!r}]; fits present: {fits}. Run lmf_omics.tl.lmf first")
    return adata.uns[key]
