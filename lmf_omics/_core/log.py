"""The package's logger, named once (``lmf_omics``); every module logs through it."""

from __future__ import annotations

import logging

LOGGER_NAME = "lmf_omics"
logger = logging.getLogger(LOGGER_NAME)
