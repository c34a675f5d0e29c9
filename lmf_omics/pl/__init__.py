"""Plots over stored LMF results. Each returns its matplotlib Axes; ``save=`` writes a file."""

from ._loadings import loadings
from ._plots import convergence, variance_explained
from ._spatial import factors_spatial

__all__ = ["convergence", "factors_spatial", "loadings", "variance_explained"]
