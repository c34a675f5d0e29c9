"""Preprocessing: thin helpers over scanpy and squidpy that prepare each modality for ``tl.lmf``.

- :func:`normalize_rna`: log-normalised RNA (``X`` or a layer) and ``var["highly_variable"]``
  (response or fixed);
- :func:`clr`: centred log-ratio protein counts (``obsm`` or a layer) (response);
- :func:`covariates`: ``obs`` columns as a design matrix in ``obsm`` (random);
- :func:`spatial_context`: neighbourhood-averaged expression, or its PCs, in ``obsm`` (random);
- :func:`image_features`: per-spot H&E features in ``obsm`` (fixed or random).

Each takes ``adata`` first and keyword-only options, checks everything before any work, and writes
its results in one step at the end (``copy=True`` returns a modified copy instead).
"""

from ._covariates import covariates
from ._image import image_features
from ._protein import clr
from ._rna import normalize_rna
from ._spatial import spatial_context

__all__ = ["clr", "covariates", "image_features", "normalize_rna", "spatial_context"]
