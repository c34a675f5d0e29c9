"""Plots over stored LMF results. Each returns its matplotlib Axes; ``save=`` writes a file."""

from ._plots import convergence, variance_explained

__all__ = ["convergence", "variance_explained"]
