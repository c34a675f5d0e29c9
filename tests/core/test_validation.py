"""Every bad input to the estimator fails before any work, with a message naming the problem."""

import numpy as np
import pytest
from scipy import sparse

from lmf_omics import LinearMixedForms, NotFittedError

from .simulate import simulate

SIM = simulate(n=60, k=2, p_y=6, p_x=8, p_z=3, seed=11)


def _fit(model=None, **override):
    data = {"Y": SIM["Y"], "X": SIM["X"], "Z": SIM["Z"], **override}
    return (model or LinearMixedForms(2, max_iter=5)).fit(data["Y"], data["X"], data["Z"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_factors": 0}, "n_factors must be a positive integer, got 0"),
        ({"n_factors": 2.5}, "n_factors must be a positive integer"),
        ({"n_factors": True}, "n_factors must be a positive integer"),
        ({"solver": "em"}, "solver must be one of"),
        ({"ridge": -1.0}, "ridge must be a finite number >= 0, got -1.0"),
        ({"ridge": float("nan")}, "ridge must be a finite number"),
        ({"max_iter": 0}, "max_iter must be a positive integer"),
        ({"tol": 0}, "tol must be a finite number > 0"),
        ({"weights": {"protein": 1.0}}, r"unknown roles \['protein'\]"),
        ({"weights": {"random": 0.0}}, r"weights\['random'\] must be a finite number > 0"),
    ],
)
def test_bad_options(options, message):
    params = {"n_factors": 2, **options}
    with pytest.raises(ValueError, match=message):
        _fit(LinearMixedForms(**params))


def test_nan_and_inf_are_located():
    Y = SIM["Y"].copy()
    Y[4, 2] = np.nan
    with pytest.raises(
        ValueError, match=r"response Y contains 1 NaN or infinite value\(s\) \(first at row 4, column 2\)"
    ):
        _fit(Y=Y)
    X = sparse.csr_matrix(SIM["X"])
    X.data[10] = np.inf
    row = int(np.searchsorted(X.indptr, 10, side="right") - 1)
    with pytest.raises(ValueError, match=f"first at row {row}, column {X.indices[10]}"):
        _fit(X=X)
    Z = SIM["Z"].copy()
    Z[7, 0] = np.inf
    with pytest.raises(ValueError, match=r"random-effect covariates Z contains 1 .*row 7, column 0"):
        _fit(Z=Z)
    with pytest.raises(ValueError, match=r"random-effect covariates Z is observed in 0 cell\(s\); it needs at least 2"):
        _fit(Z=np.full_like(SIM["Z"], np.nan))  # a row of NaN is a cell without Z


def test_shapes_and_emptiness():
    with pytest.raises(ValueError, match="same number of cells .*response Y: 60, fixed-effect data X: 59"):
        _fit(X=SIM["X"][:59])
    with pytest.raises(ValueError, match="fixed-effect data X is empty"):
        _fit(X=np.zeros((60, 0)))
    with pytest.raises(ValueError, match="must be a 2-D matrix"):
        _fit(Y=SIM["Y"][:, 0])
    with pytest.raises(ValueError, match="must be numeric, got dtype <U1"):
        _fit(Z=np.full((60, 2), "a"))
    with pytest.raises(ValueError, match="needs a response Y and fixed-effect data X"):
        _fit(Y=None)


def test_too_many_factors():
    with pytest.raises(ValueError, match=r"n_factors=7 is larger than the features of response Y \(6\)"):
        _fit(LinearMixedForms(7))
    with pytest.raises(ValueError, match=r"n_factors=4 is larger than the cells minus one \(centring\) \(3\)"):
        LinearMixedForms(4).fit(SIM["Y"][:4], SIM["X"][:4])


def test_constant_modality_and_constant_feature():
    with pytest.raises(ValueError, match="random-effect covariates Z has no variance after centring"):
        _fit(Z=np.ones((60, 3)))
    X = SIM["X"].copy()
    X[:, 0] = 3.0  # one constant feature: documented to contribute nothing
    model = _fit(LinearMixedForms(2, scale=True, max_iter=20), X=X)
    assert np.all(np.isfinite(model.codes_))
    assert model.scales_["fixed"][0] == 1.0
    np.testing.assert_allclose(model.loadings_["fixed"][0], 0.0, atol=1e-12)


def test_transform_checks():
    model = _fit()
    with pytest.raises(NotFittedError, match="not fitted yet"):
        LinearMixedForms(2).transform(X=SIM["X"])
    with pytest.raises(ValueError, match="has 7 features but the model was fitted with 8"):
        model.transform(X=SIM["X"][:, :7])
    with pytest.raises(ValueError, match="at least one of Y, X or Z"):
        model.transform()


def test_integer_and_boolean_inputs_work():
    rng = np.random.default_rng(3)
    counts = rng.poisson(3.0, size=(60, 8))
    flags = rng.random((60, 3)) < 0.5
    model = LinearMixedForms(2, max_iter=10).fit(counts[:, :6], counts, flags)
    assert np.all(np.isfinite(model.codes_))
