"""Tools: fit Linear Mixed Forms on an AnnData."""

from ._lmf import lmf

__all__ = ["lmf"]
