"""benchmarks/integration.py's ``states_settings`` rows: the fields reach the fit, and the defaults come back."""

import importlib.util
import sys
from pathlib import Path

import pytest

from lmf_omics._core import problems
from lmf_omics._core.random_effects import Settings

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def integration():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("integration_benchmark", BENCHMARKS / "integration.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_states_settings_apply_inside_and_are_restored_after_an_error(integration):
    with pytest.raises(RuntimeError), integration.states_settings({"rounds": 5, "cluster_steps": 20}):
        assert (problems.Settings().rounds, problems.Settings().cluster_steps) == (5, 20)
        raise RuntimeError
    assert problems.Settings is Settings
    assert problems.Settings() == Settings()


def test_a_states_settings_row_is_named_by_its_fields(integration):
    name = integration.lmf_name({"states_settings": {"rounds": 5, "cluster_steps": 20}})
    assert name == "LMF K, states_settings=rounds=5 cluster_steps=20"
