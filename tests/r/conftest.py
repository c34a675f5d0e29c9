"""The R environment for tests/r: the README's set-up, once per session; a failure under CI, a skip elsewhere."""

import os
from pathlib import Path

import pytest

from .provision import REnvironment, Unavailable, provision

REPO = Path(__file__).resolve().parents[2]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def r_env(tmp_path_factory) -> REnvironment:
    try:
        return provision(REPO, tmp_path_factory.mktemp("r_library"))
    except Unavailable as reason:
        if in_ci():
            pytest.fail(f"R test environment could not be provisioned under CI: {reason}", pytrace=False)
        pytest.skip(f"R test environment unavailable: {reason}")
