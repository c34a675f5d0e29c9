"""The bad-input harness itself: it must see every kind of failure it is there to count."""

import numpy as np
import pytest

from lmf_omics import LinearMixedForms

from .reliability import CLEAN, HANDLED, Case, counts_adata, run_case


def _adata(_tmp):
    return {"adata": counts_adata(n=10)}


def _edits_then_raises(inputs):
    inputs["adata"].obs["depth"] = 0.0
    raise ValueError("n_factors must be positive")


def _adds_a_key(inputs):
    inputs["adata"].obsm["X_lmf"] = np.zeros((10, 2))
    inputs["adata"].uns["scratch"] = {"left": "behind"}


def _changes_x_in_place(inputs):
    inputs["adata"].X.data[0] += 1.0


def _works_then_raises(inputs):
    model = LinearMixedForms(1, max_iter=2, progress=False)
    model.fit(np.random.default_rng(0).standard_normal((10, 3)), np.random.default_rng(1).standard_normal((10, 4)))
    raise ValueError("n_factors must be positive")


def _raises_vaguely(inputs):
    raise ValueError("invalid input")


def _leaves_a_temporary_file(inputs):
    path = inputs["output"]
    (path.parent / f".{path.name}.123.tmp").write_bytes(b"partial")
    raise ValueError("failed while writing")


@pytest.mark.parametrize(
    ("call", "error", "writes", "expected"),
    [
        (_edits_then_raises, ValueError, (), "corrupted"),
        (_adds_a_key, None, ("obsm/X_lmf",), "corrupted"),  # uns['scratch'] is undocumented
        (_changes_x_in_place, None, ("obsm/*",), "corrupted"),
        (_works_then_raises, ValueError, (), f"{CLEAN} (with problems)"),
        (lambda inputs: None, ValueError, (), f"{HANDLED} (with problems)"),  # no error where one was due
    ],
    ids=["edits then raises", "undocumented key", "X changed in place", "raises after work", "no error"],
)
def test_the_harness_sees_corruption_late_errors_and_missing_errors(
    call, error, writes, expected, tmp_path, monkeypatch
):
    case = Case(
        "fake", "options", "fake", _adata, call, error=error, match="n_factors" if error else None, writes=writes
    )
    record = run_case(case, tmp_path, monkeypatch, records=[])
    assert record["outcome"] == expected, record["problems"]


def test_the_harness_sees_a_file_left_behind(tmp_path, monkeypatch):
    case = Case(
        "fake",
        "files",
        "fake",
        lambda tmp: {"output": tmp / "out.h5ad"},
        _leaves_a_temporary_file,
        error=ValueError,
        match="failed",
    )
    record = run_case(case, tmp_path, monkeypatch, records=[])
    assert record["outcome"] == "corrupted" and record["corrupted"] == ["output changed"]


def test_a_wrong_message_is_not_a_clean_error(tmp_path, monkeypatch):
    case = Case("fake", "options", "fake", _adata, _raises_vaguely, error=ValueError, match=r"n_factors=0 .* choose")
    record = run_case(case, tmp_path, monkeypatch, records=[])
    assert record["outcome"] == f"{CLEAN} (with problems)" and "does not match" in record["problems"][0]
