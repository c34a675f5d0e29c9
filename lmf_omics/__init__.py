"""Linear Mixed Forms for single-cell and spatial omics.

``Y ≈ (K + H) αᵀ``, ``X ≈ K βᵀ``, ``Z ≈ H uᵀ``: a response, fixed-effect data and random-effect
covariates of the same cells, decomposed through a fixed code ``K`` and a random code ``H``.

The submodules and names below are imported on first use (PEP 562), so that
``python -m lmf_omics.r --path`` (the R package's folder) starts without the numeric stack.
"""

import importlib

from . import _core, _settings

__version__ = "0.1.0"

SUBMODULES = ("datasets", "get", "pl", "pp", "tl")
CORE_NAMES = tuple(_core.__all__)  # its package imports each name's module on first use

__all__ = sorted(("__version__", *SUBMODULES, *CORE_NAMES))


def __getattr__(name: str):
    """Import a submodule or a name of the numeric core on first use."""
    if name in SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    elif name in CORE_NAMES:
        value = getattr(_core, name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names, imported or not."""
    return sorted(set(globals()) | set(__all__))


_settings.install()  # the package logger follows scanpy's verbosity once scanpy is imported
