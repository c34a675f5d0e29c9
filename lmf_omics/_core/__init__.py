"""Numeric core: arrays in, arrays out. Imports numpy and scipy only (never anndata).

The vocabulary of the whole package (role, modality, spec, codes and their form, loadings,
solver) is defined in :mod:`.parts`; where each kind of change goes is in DEVELOPERS.md.
"""

# public name -> the module that defines it, imported on first use (PEP 562): ``_core.log`` alone stays light
PUBLIC = {
    "Codes": "parts",
    "LinearMixedForms": "model",
    "NotFittedError": "parts",
    "Options": "options",
    "cross_validate": "selection",
    "grid_search": "selection",
}

__all__ = sorted(PUBLIC)


def __getattr__(name: str):
    """Import a public name's module on first use."""
    if name not in PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import model, options, parts, selection  # the estimator and its parts, on first use

    modules = {"model": model, "options": options, "parts": parts, "selection": selection}
    value = getattr(modules[PUBLIC[name]], name)
    globals()[name] = value
    return value
