"""Choosing the number of factors by cross-validated prediction of held-out responses."""

import numpy as np
import pytest
import scipy.sparse
from scipy import sparse

from lmf_omics import LinearMixedForms, cross_validate

from .simulate import simulate


@pytest.fixture(scope="module")
def planted():
    return simulate(n=200, k=3, noise=0.05, seed=31)


def test_cross_validation_finds_the_planted_number_of_factors(planted):
    best, table = cross_validate(
        LinearMixedForms(tol=1e-8, max_iter=2000),
        planted["Y"],
        planted["X"],
        planted["Z"],
        grid={"n_factors": [1, 2, 3, 5, 8]},
    )
    assert [row["n_factors"] for row in table] == [1, 2, 3, 5, 8]
    mse = {row["n_factors"]: row["mse"] for row in table}
    assert best == {"n_factors": 3}
    # with all three factors the held-out error is about the noise (σ² = 0.0025 per entry, plus X's noise
    # carried through the encoder); with one factor it is far above
    assert mse[3] < 3 * 0.05**2 < 100 * 0.05**2 < mse[1]
    again = cross_validate(
        LinearMixedForms(tol=1e-8, max_iter=2000),
        planted["Y"],
        planted["X"],
        planted["Z"],
        grid={"n_factors": [1, 2, 3, 5, 8]},
    )
    assert again == (best, table)


def test_a_grid_of_several_options_and_cells_without_response(planted):
    observed = {"response": np.arange(200) % 5 != 0}
    best, table = cross_validate(
        LinearMixedForms(max_iter=50),
        planted["Y"],
        planted["X"],
        planted["Z"],
        grid={"n_factors": [2, 3], "codes": ["encoded", "free"]},
        folds=3,
        observed=observed,
    )
    assert len(table) == 4 and set(best) == {"n_factors", "codes"} and best["n_factors"] == 3
    assert all(np.isfinite(row["mse"]) for row in table)


@pytest.mark.parametrize(
    ("grid", "folds", "message"),
    [
        ({}, 5, "grid must name at least one option"),
        ({"n_factors": []}, 5, "grid must name at least one option"),
        ({"n_factors": [2]}, 1, r"folds must be an integer between 2 and the number of cells \(200\), got 1"),
        ({"n_factors": [2]}, "3", r"folds must be an integer between 2 and the number of cells \(200\), got '3'"),
        ({"n_factors": [2]}, 2.5, r"folds must be an integer .*got 2\.5"),
        ({"n_factors": [2, 150]}, 2, r"n_factors candidate 150 does not fit a training fold of 2-fold"),
    ],
)
def test_bad_grids(planted, grid, folds, message):
    with pytest.raises(ValueError, match=message):
        cross_validate(LinearMixedForms(), planted["Y"], planted["X"], grid=grid, folds=folds)


def test_a_sparse_response_is_never_densified(planted, monkeypatch):
    Y = sparse.csr_matrix(np.where(np.abs(planted["Y"]) > 0.5, planted["Y"], 0.0))
    observed = {"response": np.arange(200) % 7 != 0}
    template = LinearMixedForms(max_iter=20)
    expected = cross_validate(
        template, Y.toarray(), planted["X"], planted["Z"], grid={"n_factors": [2, 3]}, folds=3, observed=observed
    )

    def refuse(self, *args, **kwargs):
        raise AssertionError("a sparse matrix was densified")

    for cls in (scipy.sparse._base._spbase, scipy.sparse._compressed._cs_matrix):
        monkeypatch.setattr(cls, "toarray", refuse, raising=False)
        monkeypatch.setattr(cls, "todense", refuse, raising=False)
    best, table = cross_validate(
        template, Y, planted["X"], planted["Z"], grid={"n_factors": [2, 3]}, folds=3, observed=observed
    )
    assert best == expected[0]
    for row, reference in zip(table, expected[1]):
        assert row["mse"] == pytest.approx(reference["mse"], rel=1e-12)
