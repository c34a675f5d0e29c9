"""Entry point for R through reticulate: plain arguments in, a dict of plain arrays and strings out.

R users go through the R package ``lmfomics`` shipped inside this package
(``python -m lmf_omics.r --path`` prints its folder; ``R CMD INSTALL`` that folder). Its
``runLMF()``, ``calculateLMF()``, ``RunLMF()``, ``transformLMF()`` and ``predictLMF()`` call
:func:`call` here, which runs :func:`fit`, :func:`transform` or :func:`predict` — the functions
Python users call (:func:`lmf_omics.tl.lmf`, :func:`lmf_omics.tl.transform`,
:func:`lmf_omics.tl.predict`) on an AnnData built from the R values: this module converts and
orients, it does no arithmetic of its own (the conversions are in ``lmf_omics._rdoor``).

:func:`call` never raises: it returns ``{"ok", "value" | "type", "message", "warnings"}`` so that the
R side raises every Python exception as an R error and every Python warning (``warnings.warn``
and warnings logged by ``lmf_omics``) as an R warning.

This module imports only the standard library, so ``python -m lmf_omics.r --path`` starts fast; the
numeric stack is imported on the first use of an entry point.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import sys
import warnings
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

R_PACKAGE = Path(__file__).resolve().parent / "R" / "lmfomics"
ENTRY_POINTS = ("fit", "fit_h5ad", "transform", "predict", "sparse_parts", "result", "model_options")
# tl.lmf's arguments that say where data are and where results go, not how the model is fitted
NOT_MODEL_OPTIONS = ("response", "fixed", "random", "mask_var", "observed", "key_added", "copy", "progress")
QUIET_CATEGORIES = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)  # other packages' API churn


def __getattr__(name: str):
    """The conversions live in ``lmf_omics._rdoor``, imported on first use (it imports the numeric stack)."""
    if name in ENTRY_POINTS and name != "model_options":
        return getattr(importlib.import_module("._rdoor", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def model_options() -> dict[str, object]:
    """The options of the model, by name, with their defaults: :func:`lmf_omics.tl.lmf`'s keyword arguments.

    Everything but the modalities and where results go (``NOT_MODEL_OPTIONS``): the R package
    checks option names against this list before any work.
    """
    from .tl import lmf

    return {
        name: parameter.default
        for name, parameter in inspect.signature(lmf).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name not in NOT_MODEL_OPTIONS
    }


def call(name: str, arguments: Mapping | None = None) -> dict:
    """Run the entry point ``name`` on ``arguments``; the outcome as plain values, never an exception.

    Returns ``{"ok": True, "value": ..., "warnings": [...]}`` or ``{"ok": False, "type": "ValueError",
    "message": ..., "warnings": [...]}``. ``warnings`` lists ``{"type", "message"}`` of the Python
    warnings raised and the warnings ``lmf_omics`` logged meanwhile, in order.
    """
    if name not in ENTRY_POINTS:
        return {"ok": False, "type": "ValueError", "message": f"no entry point {name!r}", "warnings": []}
    with _caught() as caught:
        try:
            value = getattr(sys.modules[__name__], name)(**dict(arguments or {}))
        except Exception as error:  # every exception goes to R as an R error
            return {"ok": False, "type": type(error).__name__, "message": _message(error), "warnings": caught}
    return {"ok": True, "value": value, "warnings": caught}


@contextmanager
def _caught():
    """Collect Python warnings and ``lmf_omics``'s logged warnings instead of printing them."""
    from ._core.log import logger

    caught: list[dict[str, str]] = []
    handler = _Collector(caught)
    logger.addHandler(handler)
    with warnings.catch_warnings(record=True) as records:
        try:
            yield caught
        finally:
            logger.removeHandler(handler)
            caught.extend(
                {"type": record.category.__name__, "message": str(record.message)}
                for record in records
                if _for_r(record)
            )


class _Collector(logging.Handler):
    def __init__(self, caught: list):
        super().__init__(logging.WARNING)
        self.caught = caught

    def emit(self, record: logging.LogRecord) -> None:
        self.caught.append({"type": "LoggedWarning", "message": record.getMessage()})


def _for_r(record: warnings.WarningMessage) -> bool:
    """Warnings of lmf_omics and user-facing ones of other packages (not their deprecations)."""
    ours = Path(str(record.filename)).resolve().is_relative_to(Path(__file__).resolve().parent)
    return ours or not issubclass(record.category, QUIET_CATEGORIES)


def _message(error: BaseException) -> str:
    """The message alone (a KeyError's ``str`` adds quotes)."""
    return str(error.args[0]) if isinstance(error, KeyError) and len(error.args) == 1 else str(error)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lmf_omics.r --path``: print the R package's folder; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m lmf_omics.r", description="Helpers for using lmf_omics from R.")
    parser.add_argument(
        "--path", action="store_true", help="print the folder of the R package lmfomics (for R CMD INSTALL) and exit"
    )
    args = parser.parse_args(argv)
    if not args.path:
        parser.print_help()
        return 2
    if not (R_PACKAGE / "DESCRIPTION").is_file():
        print(
            f"lmf_omics.r: error: {R_PACKAGE} is missing from this installation; reinstall lmf-omics", file=sys.stderr
        )
        return 1
    print(R_PACKAGE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
