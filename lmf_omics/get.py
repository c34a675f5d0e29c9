"""Read stored LMF results back out of an AnnData (like ``scanpy.get``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from ._core import LinearMixedForms
from ._keys import ROLES, Keys
from ._modalities import MissingKeyError


def model(adata: AnnData, key: str = "lmf") -> LinearMixedForms:
    """Rebuild the fitted :class:`~lmf_omics.LinearMixedForms` stored under ``key``.

    Loadings of var-aligned modalities are read from ``varm`` (the rows of the features used),
    the rest from ``uns[key]``. The rebuilt model transforms and predicts like the original.
    """
    stored = results(adata, key)
    modalities = {}
    for role, entry in stored["modalities"].items():
        entry = dict(entry)
        if entry.get("var_aligned"):
            rows = adata.var_names.get_indexer(np.asarray(entry["features"], dtype=str))
            if (rows < 0).any():
                raise ValueError(f"uns[{key!r}] names features missing from adata.var_names; was var subset?")
            keys = Keys(key)
            for field, varm_key in (("loadings", keys.loadings(role)), ("encoder", keys.encoder(role))):
                if varm_key in adata.varm:
                    entry[field] = adata.varm[varm_key][rows]
        modalities[role] = entry
    return LinearMixedForms.from_state({"params": stored["params"], "modalities": modalities})


def features(adata: AnnData, key: str = "lmf") -> dict[str, list[str]]:
    """The feature names each modality was fitted on, by role."""
    return {role: list(map(str, e["features"])) for role, e in results(adata, key)["modalities"].items()}


def variance_explained(adata: AnnData, key: str = "lmf") -> pd.DataFrame:
    """R² per factor (rows ``Factor1``...) and modality (columns), as in MOFA's table."""
    table = results(adata, key)["variance_explained"]
    frame = pd.DataFrame({role: np.asarray(table[role]) for role in ROLES if role in table})
    frame.index = [f"Factor{i + 1}" for i in range(len(frame))]
    return frame


def results(adata: AnnData, key: str = "lmf") -> dict:
    """``adata.uns[key]``, with a clear error when there is no fit under that key."""
    if key not in adata.uns or "params" not in adata.uns[key]:
        fits = sorted(k for k, v in adata.uns.items() if isinstance(v, dict) and "modalities" in v)
        raise MissingKeyError(f"no LMF fit under uns[{key!r}]; fits present: {fits}. Run lmf_omics.tl.lmf first")
    return adata.uns[key]
