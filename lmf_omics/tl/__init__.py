"""Tools: fit Linear Mixed Forms on an AnnData, and apply a fit to new cells."""

from ._lmf import lmf
from ._transfer import predict, transform

__all__ = ["lmf", "predict", "transform"]
