"""The package's logger, named once (``lmf_omics``); every module logs through it.

Its level is, in this order: the level set on it (``logging.getLogger("lmf_omics").setLevel(...)``:
the user's configuration wins), else the level of its host application read at each record
(:attr:`PackageLogger.host_level`, set by :mod:`lmf_omics._settings` to follow scanpy's
verbosity), else the standard logging hierarchy's.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

LOGGER_NAME = "lmf_omics"


class PackageLogger(logging.Logger):
    """A logger whose unset level follows ``host_level()`` (a logging level, or ``None`` for no host).

    The standard logger caches ``isEnabledFor`` until a level in its own hierarchy changes; the host's
    setting may change at any time, so this one reads it at every call instead.
    """

    host_level: Callable[[], int | None] | None = None

    def getEffectiveLevel(self) -> int:  # noqa: N802  (logging's name)
        """The level set on this logger, else the host's, else the nearest ancestor's."""
        if self.level == logging.NOTSET and self.host_level is not None:
            level = self.host_level()
            if level is not None:
                return level
        return super().getEffectiveLevel()

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802  (logging's name)
        """Whether a record at ``level`` would be created (``logging.disable`` and ``disabled`` honoured)."""
        if self.disabled or self.manager.disable >= level:
            return False
        return level >= self.getEffectiveLevel()


def _package_logger() -> logging.Logger:
    """``logging.getLogger(LOGGER_NAME)`` as a :class:`PackageLogger`, registered in logging's hierarchy."""
    existing = logging.Logger.manager.loggerDict.get(LOGGER_NAME)
    if type(existing) is logging.Logger:  # configured (e.g. by dictConfig) before the package was imported
        existing.__class__ = PackageLogger  # a subclass with no state of its own: keeps the level and handlers
        return existing
    if isinstance(existing, logging.Logger):  # a logger class of the user's: theirs, so it keeps its level rules
        return existing
    manager = logging.Logger.manager
    previous = manager.loggerClass
    manager.setLoggerClass(PackageLogger)
    try:
        return logging.getLogger(LOGGER_NAME)
    finally:
        manager.loggerClass = previous


logger = _package_logger()


def progress_enabled(progress: bool | None) -> bool:
    """Whether to show a progress bar: ``progress`` itself when given, else at info level on a terminal.

    Parameters
    ----------
    progress
        ``True`` or ``False`` to decide; ``None`` shows the bar when the package logger is enabled for
        ``INFO`` (e.g. ``scanpy.settings.verbosity >= 2``) and standard error is a terminal.

    Returns
    -------
    ``True`` to show the bar.
    """
    if progress is not None:
        return bool(progress)
    stream = sys.stderr
    return logger.isEnabledFor(logging.INFO) and stream is not None and stream.isatty()
