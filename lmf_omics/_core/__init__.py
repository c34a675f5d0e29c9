"""Numeric core: arrays in, arrays out. Imports numpy and scipy only (never anndata)."""

from .model import Codes, LinearMixedForms

__all__ = ["Codes", "LinearMixedForms"]
