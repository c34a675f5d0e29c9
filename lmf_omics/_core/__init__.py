"""Numeric core: arrays in, arrays out. Imports numpy and scipy only (never anndata).

The vocabulary of the whole package (role, modality, spec, codes and their form, loadings,
solver) is defined in :mod:`.parts`; where each kind of change goes is in DEVELOPERS.md.
"""

from .model import Codes, LinearMixedForms, NotFittedError
from .options import Options
from .selection import cross_validate, grid_search

__all__ = ["Codes", "LinearMixedForms", "NotFittedError", "Options", "cross_validate", "grid_search"]
