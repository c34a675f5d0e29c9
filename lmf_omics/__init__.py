"""Linear Mixed Forms for single-cell and spatial omics."""

from ._core import Codes, LinearMixedForms

__version__ = "0.1.0"

__all__ = ["Codes", "LinearMixedForms", "__version__"]
