"""``lmf_omics.get``: stored results read back, with a clear error for what is not there."""

import numpy as np
import pytest

from lmf_omics import get, tl
from lmf_omics._modalities import MissingKeyError

from .reliability import counts_adata

FIT = {
    "response": "obsm:protein",
    "fixed": "X",
    "random": "obs:batch",
    "n_factors": 3,
    "max_iter": 20,
    "progress": False,
}


@pytest.fixture(scope="module")
def fitted():
    adata = counts_adata()
    tl.lmf(adata, **FIT)
    tl.transform(adata, adata, key_added="again")  # uns["again_transform"] holds params, not a fit
    return adata


def test_transform_params_are_not_a_fit(fitted):
    """uns entries with params but no modalities (tl.transform's) give the clear error, not KeyError('modalities')."""
    assert "params" in fitted.uns["again_transform"]
    for read in (get.model, get.results, get.features):
        with pytest.raises(
            MissingKeyError,
            match=r"no LMF fit under uns\['again_transform'\]; fits present: "
            r"\['lmf'\]. Run lmf_omics.tl.lmf first",
        ):
            read(fitted, "again_transform")


def test_loadings_without_their_varm_entry_name_it(fitted):
    adata = fitted.copy()
    assert get.loadings(adata, role="fixed").shape == (30, 3)
    del adata.varm["lmf_loadings_fixed"]
    with pytest.raises(
        MissingKeyError,
        match=r"varm\['lmf_loadings_fixed'\] is not there .*run lmf_omics.tl.lmf "
        r"again",
    ):
        get.loadings(adata, role="fixed")
    assert get.loadings(adata, role="response").shape == (6, 3)  # stored in uns, unaffected


def test_loadings_of_a_role_the_fit_has_no_modality_for(fitted):
    adata = fitted.copy()
    tl.lmf(adata, **{**FIT, "random": None}, key_added="no_random")
    with pytest.raises(
        ValueError,
        match=r"role='random' has no modality in the fit under 'no_random'; use one of \['fixed', 'response'\]",
    ):
        get.loadings(adata, "no_random", role="random")


def _by_hand(table, factor, n):
    """The n most positive and n most negative loadings of one factor, ranked with pandas (ties by name)."""
    column = table[f"Factor{factor}"].rename("loading").rename_axis("feature").reset_index()
    positive = column[column.loading > 0].sort_values(["loading", "feature"], ascending=[False, True]).head(n)
    negative = column[column.loading < 0].sort_values(["loading", "feature"], ascending=[True, True]).head(n)
    return positive, negative


@pytest.mark.parametrize("role", ["response", "fixed"])
def test_top_features_are_the_largest_of_each_sign(fitted, role):
    table = get.loadings(fitted, role=role)
    top = get.top_features(fitted, role=role, n=4)
    assert list(top.columns) == ["feature", "factor", "loading", "rank", "sign"]
    assert list(top["factor"].unique()) == [1, 2, 3]
    for factor in (1, 2, 3):
        positive, negative = _by_hand(table, factor, 4)
        rows = top[top["factor"] == factor]
        for sign, expected in (("positive", positive), ("negative", negative)):
            got = rows[rows["sign"] == sign]
            assert list(got["feature"]) == list(expected["feature"])
            np.testing.assert_allclose(got["loading"], expected["loading"], rtol=0, atol=0)
            assert list(got["rank"]) == list(range(1, len(expected) + 1))
        assert list(rows["sign"]) == ["positive"] * len(positive) + ["negative"] * len(negative)


def test_top_features_one_factor_one_side_and_by_magnitude(fitted):
    table = get.loadings(fitted, role="fixed")["Factor2"]
    negative = get.top_features(fitted, role="fixed", factor=2, n=3, sign="negative")
    assert list(negative["feature"]) == list(table.sort_values().index[:3])
    assert (negative["loading"] < 0).all() and set(negative["sign"]) == {"negative"}
    by_size = get.top_features(fitted, role="fixed", factor=[2], n=5, sign="abs")
    assert list(by_size["feature"]) == list(table.abs().sort_values(ascending=False).index[:5])
    np.testing.assert_array_equal(by_size["sign"] == "negative", table[by_size["feature"]].to_numpy() < 0)


def test_top_features_bad_options_name_the_value(fitted):
    with pytest.raises(ValueError, match="n=0 must be a positive integer"):
        get.top_features(fitted, n=0)
    with pytest.raises(ValueError, match=r"factor=\[4\] must be factor numbers between 1 and 3"):
        get.top_features(fitted, factor=4)
    with pytest.raises(ValueError, match="sign='up' must be one of"):
        get.top_features(fitted, sign="up")
    with pytest.raises(ValueError, match="role='protein'"):
        get.top_features(fitted, role="protein")
