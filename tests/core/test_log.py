"""When the progress bar shows: as asked, else at info level on a terminal."""

import logging

import pytest

from lmf_omics._core import log
from lmf_omics._core.log import logger, progress_enabled


class Stream:
    def __init__(self, tty: bool):
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        return len(text)


@pytest.fixture
def level():
    saved = logger.level
    yield logger.setLevel
    logger.setLevel(saved)


@pytest.mark.parametrize(
    ("progress", "logging_level", "tty", "expected"),
    [
        (None, logging.INFO, True, True),
        (None, logging.DEBUG, True, True),
        (None, logging.WARNING, True, False),  # below info level: no bar
        (None, logging.INFO, False, False),  # not a terminal (a log file, CI): no bar
        (True, logging.ERROR, False, True),  # asked for: always
        (False, logging.DEBUG, True, False),  # refused: never
    ],
)
def test_progress_decision(progress, logging_level, tty, expected, level, monkeypatch):
    level(logging_level)
    monkeypatch.setattr(log.sys, "stderr", Stream(tty))
    assert progress_enabled(progress) is expected


def test_no_stderr_means_no_bar(level, monkeypatch):
    level(logging.INFO)
    monkeypatch.setattr(log.sys, "stderr", None)  # pythonw, some services
    assert progress_enabled(None) is False
