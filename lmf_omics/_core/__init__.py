"""Numeric core: arrays in, arrays out. Imports numpy and scipy only (never anndata)."""

from .model import Codes, LinearMixedForms
from .selection import cross_validate, grid_search

__all__ = ["Codes", "LinearMixedForms", "cross_validate", "grid_search"]
