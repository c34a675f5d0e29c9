"""Linear Mixed Forms for single-cell and spatial omics.

``Y ≈ (K + H) αᵀ``, ``X ≈ K βᵀ``, ``Z ≈ H uᵀ``: a response, fixed-effect data and random-effect
covariates of the same cells, decomposed through a fixed code ``K`` and a random code ``H``.
"""

from . import _settings, datasets, get, pl, pp, tl
from ._core import Codes, LinearMixedForms, NotFittedError, Options, cross_validate, grid_search

__version__ = "0.1.0"

__all__ = [
    "Codes",
    "LinearMixedForms",
    "NotFittedError",
    "Options",
    "__version__",
    "cross_validate",
    "datasets",
    "get",
    "grid_search",
    "pl",
    "pp",
    "tl",
]

_settings.install()  # the package logger follows scanpy's verbosity once scanpy is imported
