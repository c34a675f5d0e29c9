"""scanpy's settings for lmf_omics: the logger follows ``sc.settings.verbosity``, ``n_jobs=None`` its ``n_jobs``.

Neither imports scanpy: both read its settings only once the user has imported it, and at every use,
so a later ``sc.settings.verbosity = "info"`` takes effect at once. :func:`install` (run when
``lmf_omics`` is imported) connects the package logger:

- its level, unless one is set on ``logging.getLogger("lmf_omics")``, is scanpy's verbosity
  (0 error, 1 warning, 2 info, 3 hint, 4 debug);
- its records go where scanpy's go (``sc.settings.logfile``, formatted as scanpy's) unless a handler
  of the user's would take them (on ``lmf_omics`` or an ancestor it propagates to, e.g. from
  ``logging.basicConfig``); without scanpy they go where Python's logging sends them by default.
"""

from __future__ import annotations

import logging
import sys

from ._core.log import PackageLogger, logger

HINT = (logging.INFO + logging.DEBUG) // 2  # scanpy's level between info and debug
VERBOSITY_LEVELS = (logging.ERROR, logging.WARNING, logging.INFO, HINT, logging.DEBUG)  # by verbosity 0-4
SCANPY_DEFAULT_N_JOBS = 1  # sc.settings.n_jobs when scanpy is not imported (so was never set)


def scanpy_settings():
    """``scanpy.settings`` if scanpy has been imported, else ``None`` (never imports it)."""
    return getattr(sys.modules.get("scanpy"), "settings", None)


def verbosity_level() -> int | None:
    """The logging level of ``sc.settings.verbosity`` (``None`` without scanpy)."""
    settings = scanpy_settings()
    if settings is None:
        return None
    return VERBOSITY_LEVELS[min(max(int(settings.verbosity), 0), len(VERBOSITY_LEVELS) - 1)]


def n_jobs(value: int | None) -> int:
    """``value``, or ``sc.settings.n_jobs`` for ``None`` (1, scanpy's default, when scanpy is not imported).

    An explicit ``value`` is returned as it is, for its function to check. scanpy's setting follows
    joblib: ``-1`` is every core (kept as ``-1``, which every ``n_jobs`` here understands), ``-2``
    every core but one, and so on (resolved to a number of cores, at least 1).
    """
    if value is not None:
        return value
    settings = scanpy_settings()
    jobs = SCANPY_DEFAULT_N_JOBS if settings is None else int(settings.n_jobs)
    if jobs == 0:
        raise ValueError("sc.settings.n_jobs is 0; set it to a positive number of cores or -1 (every core)")
    from ._core.parallel import usable_cores  # numpy: not at import (python -m lmf_omics.r --path)

    return max(1, usable_cores() + 1 + jobs) if jobs < -1 else jobs


class ScanpyFormatter(logging.Formatter):
    """scanpy's look: info as the bare message, hint with ``-->``, debug indented, others with their level."""

    PREFIXES = {logging.INFO: "", HINT: "--> ", logging.DEBUG: "    "}

    def format(self, record: logging.LogRecord) -> str:
        """The record's message, prefixed as scanpy prefixes a record of its level."""
        prefix = self.PREFIXES.get(record.levelno, f"{record.levelname}: ")
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        return prefix + message


class ScanpyLogfile(logging.Handler):
    """Writes the package's records to ``sc.settings.logfile`` when no handler of the user's would take them."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(ScanpyFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record`` to scanpy's log file, or hand it to logging's last resort without scanpy."""
        if self._users_handlers(record):
            return
        settings = scanpy_settings()
        if settings is None:  # as if this handler were not there: logging's last resort (warnings to stderr)
            last_resort = logging.lastResort
            if last_resort is not None and record.levelno >= last_resort.level:
                last_resort.handle(record)
            return
        try:
            stream = settings.logfile
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001  (logging's contract: a failing handler never raises)
            self.handleError(record)

    def _users_handlers(self, record: logging.LogRecord) -> bool:
        """Whether another handler gets ``record`` (on its logger or an ancestor it propagates to)."""
        current = logging.getLogger(record.name)
        while current is not None:
            if any(handler is not self for handler in current.handlers):
                return True
            if not current.propagate:
                return False
            current = current.parent
        return False


def install() -> None:
    """Make the package logger follow scanpy's verbosity and write where scanpy writes (idempotent)."""
    if isinstance(logger, PackageLogger):
        logger.host_level = verbosity_level
    if not any(isinstance(handler, ScanpyLogfile) for handler in logger.handlers):
        logger.addHandler(ScanpyLogfile())
