"""Shared fixtures: the real datasets in ../shared/data (or $LMF_OMICS_DATA)."""

import os
from pathlib import Path

import pytest

from lmf_omics.datasets import ENV_VAR, shared_data_dir

# The tests read the shared datasets beside the checkout (CI has them there) instead of downloading them.
CHECKOUT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not os.environ.get(ENV_VAR) and CHECKOUT_DATA.is_dir():
    os.environ[ENV_VAR] = str(CHECKOUT_DATA)


@pytest.fixture(scope="session")
def shared_data():
    """Folder of the shared datasets; missing data fails under CI and skips elsewhere."""
    folder = shared_data_dir()
    if not (folder / "eccite_pbmc_500.h5ad").is_file():
        message = f"shared datasets not found in {folder}; set {ENV_VAR}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return folder


def pytest_terminal_summary(terminalreporter):
    """The count table of the bad-input catalogues (tests/test_bad_inputs.py), from this run."""
    from .reliability import RECORDS, summary_table

    lines = summary_table(RECORDS)
    if lines:
        terminalreporter.section("bad inputs tried, by entry point")
        for line in lines:
            terminalreporter.write_line(line)
