"""Optional dependencies, imported where they are needed, with an error that names the extra to install."""

from __future__ import annotations

import importlib

EXTRAS = {"squidpy": "spatial"}  # module -> the extra of lmf-omics that installs it


def require(module: str):
    """Import ``module``; raise an ImportError naming ``pip install "lmf-omics[<extra>]"`` when it is missing."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name != module.split(".")[0]:
            raise
        extra = EXTRAS[module.split(".")[0]]
        raise ImportError(
            f'this function needs {module}, which is not installed; install it with pip install "lmf-omics[{extra}]"'
        ) from None
