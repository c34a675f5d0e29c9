"""Tools: fit Linear Mixed Forms on an AnnData, apply a fit to new cells, score its loadings against gene sets."""

from ._enrich import enrich
from ._lmf import lmf
from ._transfer import predict, transform

__all__ = ["enrich", "lmf", "predict", "transform"]

from .. import _settings  # noqa: E402

_settings.install()  # a door imported directly still connects the package logger to scanpy's verbosity
