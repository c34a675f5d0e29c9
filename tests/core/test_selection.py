"""Choosing the number of factors by cross-validated prediction of held-out responses."""

import numpy as np
import pytest
import scipy.sparse
from scipy import sparse

from lmf_omics import LinearMixedForms, grid_search

from .simulate import simulate


@pytest.fixture(scope="module")
def planted():
    return simulate(n=200, k=3, noise=0.05, seed=31)


def test_cross_validation_finds_the_planted_number_of_factors(planted):
    best, table = grid_search(  # the planted model's random effect is the paper's (random_effect: test_random_effects)
        LinearMixedForms(tol=1e-8, max_iter=2000, random_effect="response"),
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
    again = grid_search(
        LinearMixedForms(tol=1e-8, max_iter=2000, random_effect="response"),
        planted["Y"],
        planted["X"],
        planted["Z"],
        grid={"n_factors": [1, 2, 3, 5, 8]},
    )
    assert again == (best, table)


def test_a_grid_of_several_options_and_cells_without_response(planted):
    observed = {"response": np.arange(200) % 5 != 0}
    best, table = grid_search(
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
        grid_search(LinearMixedForms(), planted["Y"], planted["X"], grid=grid, folds=folds)


def test_a_sparse_response_is_never_densified(planted, monkeypatch):
    Y = sparse.csr_matrix(np.where(np.abs(planted["Y"]) > 0.5, planted["Y"], 0.0))
    observed = {"response": np.arange(200) % 7 != 0}
    template = LinearMixedForms(max_iter=20)
    expected = grid_search(
        template, Y.toarray(), planted["X"], planted["Z"], grid={"n_factors": [2, 3]}, folds=3, observed=observed
    )

    def refuse(self, *args, **kwargs):
        raise AssertionError("a sparse matrix was densified")

    for cls in (scipy.sparse._base._spbase, scipy.sparse._compressed._cs_matrix):
        monkeypatch.setattr(cls, "toarray", refuse, raising=False)
        monkeypatch.setattr(cls, "todense", refuse, raising=False)
    best, table = grid_search(
        template, Y, planted["X"], planted["Z"], grid={"n_factors": [2, 3]}, folds=3, observed=observed
    )
    assert best == expected[0]
    for row, reference in zip(table, expected[1]):
        assert row["mse"] == pytest.approx(reference["mse"], rel=1e-12)


def test_cross_validate_is_a_deprecated_alias_of_grid_search(planted):
    import lmf_omics

    arguments = (LinearMixedForms(max_iter=20), planted["Y"], planted["X"])
    expected = grid_search(*arguments, grid={"n_factors": [2, 3]}, folds=3)
    with pytest.warns(FutureWarning, match=r"lmf_omics\.cross_validate is renamed lmf_omics\.grid_search"):
        assert lmf_omics.cross_validate(*arguments, grid={"n_factors": [2, 3]}, folds=3) == expected
