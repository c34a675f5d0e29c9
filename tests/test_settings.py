"""The package logger follows scanpy's verbosity and writes where scanpy writes; n_jobs=None follows scanpy's."""

import io
import logging
import subprocess
import sys

import pytest
import scanpy as sc

import lmf_omics
from lmf_omics import _settings
from lmf_omics._core.log import LOGGER_NAME, PackageLogger, logger
from lmf_omics._core.parallel import usable_cores

HINT = 15  # scanpy's level between info and debug
LEVELS = {
    "debug": logging.DEBUG,
    "hint": HINT,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
# scanpy's verbosity (0 error ... 4 debug) -> the records of the package that appear
SHOWN = {
    0: ["error"],
    1: ["warning", "error"],
    2: ["info", "warning", "error"],
    3: ["hint", "info", "warning", "error"],
    4: ["debug", "hint", "info", "warning", "error"],
}


@pytest.fixture
def scanpy_state():
    """scanpy's verbosity, n_jobs and log file, and the package logger's level, restored after the test."""
    saved = (sc.settings.verbosity, sc.settings.n_jobs, sc.settings.logfile, logger.level, list(logger.handlers))
    yield
    sc.settings.verbosity, sc.settings.n_jobs, sc.settings.logfile = saved[:3]
    logger.setLevel(saved[3])
    logger.handlers[:] = saved[4]


@pytest.fixture
def scanpy_log(scanpy_state, monkeypatch):
    """scanpy's log file as a string buffer, and a function that removes the root logger's handlers.

    Call it in the test body: pytest adds its capturing handlers to the root logger when the test's
    call starts, after the fixtures ran; without them the session is a user's without logging set up.
    """
    stream = io.StringIO()
    sc.settings.logfile = stream
    return stream, lambda: monkeypatch.setattr(logging.root, "handlers", [])


def log_every_level():
    for name, level in LEVELS.items():
        logger.log(level, "%s record", name)


def shown(records) -> list[str]:
    return [r.getMessage().removesuffix(" record") for r in records if r.name == LOGGER_NAME]


@pytest.mark.parametrize("verbosity", sorted(SHOWN))
def test_records_follow_the_verbosity_set_after_import(verbosity, scanpy_state, caplog):
    sc.settings.verbosity = verbosity
    log_every_level()
    assert shown(caplog.records) == SHOWN[verbosity]
    assert logger.isEnabledFor(logging.INFO) == (verbosity >= 2)


def test_verbosity_by_name_and_a_change_between_records(scanpy_state, caplog):
    sc.settings.verbosity = "error"
    logger.warning("hidden")
    sc.settings.verbosity = "info"
    logger.info("shown")
    assert shown(caplog.records) == ["shown"]


@pytest.mark.parametrize(("user_level", "verbosity"), [(logging.DEBUG, 1), (logging.ERROR, 4)])
def test_a_level_set_on_the_package_logger_wins_over_the_verbosity(user_level, verbosity, scanpy_state, caplog):
    sc.settings.verbosity = verbosity
    logger.setLevel(user_level)
    log_every_level()
    assert shown(caplog.records) == [name for name, level in LEVELS.items() if level >= user_level]


def test_records_go_to_scanpys_log_file_formatted_as_scanpys(scanpy_log):
    stream, unconfigured = scanpy_log
    unconfigured()
    sc.settings.verbosity = 4
    log_every_level()
    sc.logging.warning("scanpy's own")
    sc.logging.info("scanpy's info")
    lines = stream.getvalue().splitlines()
    assert lines == [
        "    debug record",
        "--> hint record",
        "info record",
        "WARNING: warning record",
        "ERROR: error record",
        "WARNING: scanpy's own",
        "scanpy's info",
    ]


def test_a_users_handler_takes_the_records_and_scanpys_file_gets_none(scanpy_log):
    stream, unconfigured = scanpy_log
    unconfigured()
    sc.settings.verbosity = 2
    users = io.StringIO()
    handler = logging.StreamHandler(users)
    handler.setFormatter(logging.Formatter("mine %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.info("fitted")
    logger.debug("hidden at verbosity 2")
    assert users.getvalue() == "mine INFO fitted\n"
    assert stream.getvalue() == ""


def test_a_handler_on_the_root_logger_also_takes_the_records(scanpy_log):
    stream, unconfigured = scanpy_log
    unconfigured()
    sc.settings.verbosity = 2
    users = io.StringIO()
    logging.root.addHandler(logging.StreamHandler(users))  # as logging.basicConfig does
    logger.info("fitted")
    assert users.getvalue() == "fitted\n" and stream.getvalue() == ""


def test_without_scanpy_the_standard_hierarchy_and_last_resort(scanpy_state, monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "scanpy")
    monkeypatch.setattr(logging.root, "handlers", [])  # in the test body: see scanpy_log
    monkeypatch.setattr(logging.root, "level", logging.WARNING)
    assert _settings.verbosity_level() is None and logger.getEffectiveLevel() == logging.WARNING
    logger.info("hidden")
    logger.warning("careful")
    assert capsys.readouterr().err == "careful\n"  # what Python prints for a library without handlers


def test_install_is_idempotent_and_runs_at_import(scanpy_state):
    assert isinstance(logger, PackageLogger) and logger is logging.getLogger(LOGGER_NAME)
    _settings.install()
    assert sum(isinstance(h, _settings.ScanpyLogfile) for h in logger.handlers) == 1
    assert logger.host_level is _settings.verbosity_level and lmf_omics.__name__ == LOGGER_NAME


def test_a_logger_configured_before_the_import_keeps_its_level_and_handlers():
    code = (
        "import logging, io\n"
        "configured = logging.getLogger('lmf_omics'); configured.setLevel(logging.DEBUG)\n"
        "stream = io.StringIO(); configured.addHandler(logging.StreamHandler(stream))\n"
        "import lmf_omics\n"
        "from lmf_omics._core.log import logger\n"
        "logger.debug('kept')\n"
        "assert logger is configured and type(logger).__name__ == 'PackageLogger', type(logger)\n"
        "assert stream.getvalue() == 'kept\\n', stream.getvalue()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("setting", "expected"),
    [(1, 1), (3, 3), (-1, -1), (-2, max(1, usable_cores() - 1)), (-1000, 1)],
)
def test_n_jobs_none_follows_scanpys_setting(setting, expected, scanpy_state):
    sc.settings.n_jobs = setting
    assert _settings.n_jobs(None) == expected
    assert _settings.n_jobs(2) == 2  # an explicit value is the caller's, checked where it is used


def test_n_jobs_zero_in_scanpy_is_refused_naming_the_setting(scanpy_state):
    sc.settings.n_jobs = 0
    with pytest.raises(ValueError, match=r"sc\.settings\.n_jobs is 0; set it to a positive number of cores or -1"):
        _settings.n_jobs(None)


def test_n_jobs_without_scanpy_is_scanpys_default(monkeypatch):
    monkeypatch.delitem(sys.modules, "scanpy")
    assert _settings.n_jobs(None) == 1 and _settings.n_jobs(-1) == -1
