"""Numerical faults: no convergence, singular systems, a failure inside a fit; usable output or nothing changed."""

import logging

import numpy as np
import pytest
from anndata import AnnData

from lmf_omics import LinearMixedForms, get, tl
from lmf_omics._core import fitting

from .simulate import simulate

SIM = simulate(n=80, k=3, p_y=8, p_x=12, p_z=4, noise=0.2, seed=3)


def _usable(model, data):
    """Finite codes, loadings and objective; transform and predict work on the data."""
    assert np.all(np.isfinite(model.codes_)) and np.all(np.isfinite(model.objective_history_))
    assert all(np.all(np.isfinite(loading)) for loading in model.loadings_.values())
    codes = model.transform(X=data["X"], Z=data.get("Z"))
    assert np.all(np.isfinite(codes.combined))
    assert np.all(np.isfinite(model.predict(X=data["X"], Z=data.get("Z"))))


@pytest.mark.parametrize(("solver", "codes"), [("joint", "encoded"), ("joint", "free"), ("paper", "free")])
def test_no_convergence_stops_at_max_iter_with_a_warning_and_usable_output(solver, codes, caplog):
    with caplog.at_level(logging.WARNING, logger="lmf_omics"):
        model = LinearMixedForms(3, solver=solver, codes=codes, max_iter=4, tol=1e-15, progress=False).fit(
            SIM["Y"], SIM["X"], SIM["Z"]
        )
    assert not model.converged_ and model.n_iter_ == 4 and len(model.objective_history_) == 4
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert f"LMF ({solver}) did not converge in 4 iterations (tol=1e-15); increase max_iter or tol" in caplog.text
    _usable(model, SIM)


def test_no_convergence_through_tl_is_stored_and_writable(tmp_path):
    adata = AnnData(SIM["X"])
    adata.obsm["protein"] = SIM["Y"]
    tl.lmf(adata, response="obsm:protein", fixed="X", n_factors=3, max_iter=3, progress=False)
    assert not adata.uns["lmf"]["converged"] and adata.uns["lmf"]["n_iter"] == 3
    adata.write_h5ad(tmp_path / "fit.h5ad")
    np.testing.assert_allclose(
        get.model(adata).predict(X=SIM["X"]),
        LinearMixedForms.from_state(get.model(adata).get_state()).predict(X=SIM["X"]),
        atol=1e-12,
    )


def _rank_one(matrix):
    return np.outer(matrix[:, 0], np.linspace(1.0, 2.0, matrix.shape[1]))


SINGULAR = {
    "ridge=0, X of rank 1 for 3 factors": ({"X": _rank_one(SIM["X"])}, 0.0),
    "ridge=0, every feature of X twice": ({"X": np.hstack([SIM["X"], SIM["X"]])}, 0.0),
    "ridge=0, Y of rank 1": ({"Y": _rank_one(SIM["Y"])}, 0.0),
    "ridge=0, Z a copy of one column": ({"Z": np.repeat(SIM["Z"][:, :1], 4, axis=1)}, 0.0),
    "default ridge, X of rank 1": ({"X": _rank_one(SIM["X"])}, 1e-3),
    "ridge=0, every modality of rank 1": (
        {"Y": _rank_one(SIM["Y"]), "X": _rank_one(SIM["X"]), "Z": _rank_one(SIM["Z"])},
        0.0,
    ),
}


@pytest.mark.parametrize("codes", ["encoded", "free"])
@pytest.mark.parametrize("case", SINGULAR, ids=list(SINGULAR))
def test_singular_systems_fall_back_with_one_logged_note(case, codes, caplog):
    change, ridge = SINGULAR[case]
    data = {**SIM, **change}
    with caplog.at_level(logging.INFO, logger="lmf_omics"):
        model = LinearMixedForms(3, codes=codes, ridge=ridge, max_iter=60, progress=False).fit(
            data["Y"], data["X"], data["Z"]
        )
    _usable(model, data)
    notes = [r.getMessage() for r in caplog.records if "singular" in r.getMessage()]
    assert len(notes) <= 1, notes  # one note per fit, however many systems were singular
    if case == "ridge=0, every modality of rank 1":  # three factors, one direction: singular for certain
        assert notes and notes[0].startswith("LMF fit: ") and "singular system(s) solved by fallback" in notes[0]


def test_a_near_singular_rebalance_is_skipped_not_crashed():
    """Found by hypothesis (test_properties): a loadings Gram matrix positive definite by one test and
    not by the next made the rebalancing step multiply by ``None``."""
    Y = np.array(
        [
            [0.12876545, 0.05580563],
            [-0.20342847, -0.1230477],
            [0.71885963, 0.59559252],
            [0.07449421, 0.06273554],
            [-0.72572584, -0.52313727],
            [0.49210149, 0.39458546],
        ]
    )
    X = np.array(
        [
            [-0.04942043, 0.18938126],
            [0.06215356, -0.17581586],
            [-0.11949147, 0.82902789],
            [-0.03636959, 0.15435193],
            [0.01837117, -0.74243141],
            [-0.05443875, 0.52114871],
        ]
    )
    model = LinearMixedForms(2, ridge=0.1, max_iter=40, tol=1e-15, progress=False).fit(Y, X)
    _usable(model, {"X": X})
    assert np.all(np.diff(model.objective_history_) <= 1e-10 * model.objective_history_[0])


def test_a_failure_inside_a_refit_leaves_the_estimator_as_it_was(monkeypatch):
    model = LinearMixedForms(3, max_iter=20, progress=False).fit(SIM["Y"], SIM["X"], SIM["Z"])
    before = {name: value for name, value in vars(model).items()}
    predicted = model.predict(X=SIM["X"], Z=SIM["Z"])

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fitting, "iterate", interrupted)  # the fit loop, mid-fit
    other = simulate(n=50, k=3, p_y=8, p_x=12, p_z=4, seed=9)
    with pytest.raises(KeyboardInterrupt):
        model.fit(other["Y"] * 10, other["X"], other["Z"])
    assert vars(model).keys() == before.keys() and all(vars(model)[k] is v for k, v in before.items())
    np.testing.assert_array_equal(model.predict(X=SIM["X"], Z=SIM["Z"]), predicted)


@pytest.mark.parametrize("where", ["mask_var", "observed"])
def test_a_modality_without_variance_after_masking_is_a_clear_error(where):
    adata = AnnData(np.hstack([np.ones((80, 3)), SIM["X"]]))
    adata.obsm["protein"] = SIM["Y"]
    adata.obs["group"] = np.repeat(["a", "b"], 40)
    options = (
        {"mask_var": np.arange(15) < 3}
        if where == "mask_var"
        else {"random": "obs:group", "observed": {"random": np.arange(80) < 40}}
    )
    with pytest.raises(ValueError, match=r"(fixed='X'|random='obs:group') has no variance after centring"):
        tl.lmf(adata, response="obsm:protein", fixed="X", n_factors=2, **options)
    assert "X_lmf" not in adata.obsm
