"""One options object: every door takes every option, and the estimator follows scikit-learn's conventions."""

import inspect
import pickle
from dataclasses import fields

import numpy as np
import pytest

import lmf_omics as lmf
from lmf_omics import LinearMixedForms, NotFittedError, Options
from lmf_omics._core.options import DEFAULTS, NAMES
from lmf_omics._core.problems import FORMS
from lmf_omics._core.solvers import SOLVERS
from lmf_omics.cli import _parser

from .core.simulate import simulate


def test_the_estimator_and_tl_lmf_take_exactly_the_options():
    estimator = [p for p in inspect.signature(LinearMixedForms).parameters]
    assert estimator == list(NAMES)
    door = inspect.signature(lmf.tl.lmf).parameters
    assert set(NAMES) <= set(door)
    for name in NAMES[1:]:
        assert door[name].default == DEFAULTS[name] and door[name].kind is inspect.Parameter.KEYWORD_ONLY
        # inspect.getdoc: Python 3.13 strips the docstrings' common indentation, 3.11 keeps it
        assert f"\n{name}\n" in inspect.getdoc(lmf.tl.lmf) and f"\n{name}\n" in inspect.getdoc(LinearMixedForms)


def test_the_cli_takes_every_option():
    fit = _parser()._subparsers._group_actions[0].choices["fit"]
    dests = {action.dest: action for action in fit._actions}
    assert set(NAMES) <= set(dests)
    args = _parser().parse_args(
        ["fit", "in.h5ad", "-o", "out.h5ad", "--response", "X", "--fixed", "X", "--codes", "free", "--n-pcs", "30"]
        + ["--weight", "fixed=2", "--weight", "random=0.5", "--no-center", "--n-jobs", "2", "--seed", "7"]
    )
    assert (args.codes, args.n_pcs, args.center, args.n_jobs, args.random_state) == ("free", 30, False, 2, 7)
    assert args.weights == {"fixed": 2.0, "random": 0.5}
    defaults = _parser().parse_args(["fit", "in.h5ad", "-o", "o.h5ad", "--response", "X", "--fixed", "X"])
    assert {name: getattr(defaults, name) for name in NAMES[1:]} == {name: DEFAULTS[name] for name in NAMES[1:]}


@pytest.mark.parametrize("argv", [["--weight", "protein=2"], ["--weight", "fixed=two"], ["--observed", "fixed"]])
def test_the_cli_refuses_a_malformed_role_value(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        _parser().parse_args(["fit", "in.h5ad", "-o", "o.h5ad", "--response", "X", "--fixed", "X", *argv])
    error = capsys.readouterr().err
    assert stop.value.code == 2 and ("ROLE=VALUE with ROLE one of" in error or "takes a number" in error)


def test_choices_come_from_the_registries():
    metadata = {f.name: f.metadata for f in fields(Options)}
    assert metadata["solver"]["choices"] == tuple(SOLVERS) and metadata["codes"]["choices"] == tuple(FORMS)
    for solver in SOLVERS.values():
        assert set(solver.forms) <= set(FORMS)
    with pytest.raises(ValueError, match=r"solver='paper' \(Algorithm 1\) fits free codes, not codes='encoded'"):
        Options(solver="paper", codes="encoded").validate()


def test_unknown_options_are_named_at_every_door():
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['n_comps'\]"):
        LinearMixedForms(n_comps=3)
    with pytest.raises(TypeError, match=r"lmf_omics.tl.lmf got unknown option\(s\) \['assay_type'\]"):
        lmf.tl.lmf(None, response="X", fixed="X", assay_type="logcounts")
    with pytest.raises(ValueError, match=r"invalid option\(s\) \['tolerance'\]"):
        LinearMixedForms().set_params(tolerance=1e-3)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"max_iter": 2**70}, r"max_iter must be at most 2\*\*31 - 1"),
        ({"random_state": 2**64}, r"random_state must be at most 2\*\*63 - 1"),
        ({"n_jobs": 0}, r"n_jobs must be a positive integer, -1 or None"),
        ({"weights": {"protein": 1.0}}, r"weights has unknown roles \['protein'\]"),
    ],
)
def test_options_are_validated_before_any_work(options, match):
    with pytest.raises(ValueError, match=match):
        LinearMixedForms(3, **options).fit(None, None)


def test_scikit_learn_conventions():
    base = pytest.importorskip("sklearn.base")
    model = LinearMixedForms(4, codes="free", weights={"fixed": 2.0}, n_jobs=1)
    copy = base.clone(model)
    assert copy.get_params() == model.get_params() and copy.weights is not model.weights
    assert repr(model) == "LinearMixedForms(n_factors=4, codes='free', weights={'fixed': 2.0}, n_jobs=1)"
    assert repr(LinearMixedForms()) == "LinearMixedForms()"
    assert model.set_params(ridge=0.1) is model and model.ridge == 0.1
    assert model.get_params(deep=True) == model.get_params(deep=False)
    validation = pytest.importorskip("sklearn.utils.validation")
    with pytest.raises(NotFittedError, match="not fitted yet"):
        model.transform(X=np.zeros((2, 3)))
    with pytest.raises(validation.NotFittedError):
        validation.check_is_fitted(model)
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)
    sim = simulate(n=40, k=2, p_y=6, p_x=8, z_levels=2, seed=1)
    fitted = base.clone(model).fit(sim["Y"], sim["X"], sim["Z"])
    validation.check_is_fitted(fitted)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict(X=sim["X"], Z=sim["Z"]), fitted.predict(X=sim["X"], Z=sim["Z"]))
    refit = base.clone(fitted)  # a clone is unfitted, with the same options
    assert not hasattr(refit, "codes_") and refit.get_params() == fitted.get_params()
