"""Tools: fit Linear Mixed Forms on an AnnData, apply a fit to new cells, score its loadings against gene sets."""

from ._enrich import enrich
from ._lmf import lmf
from ._transfer import predict, transform

__all__ = ["enrich", "lmf", "predict", "transform"]
