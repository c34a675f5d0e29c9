"""Ranking loadings: the largest of each sign, ties by name, independent of the order of the features."""

import numpy as np
import pytest

from lmf_omics._core.interpret import top_features


def _as_set(loadings, names, n, sign):
    rows, columns, ranks, negative = top_features(loadings, names, n, sign)
    return {(names[r], c, k, bool(g)) for r, c, k, g in zip(rows, columns, ranks, negative)}


def test_ranks_by_sign_with_ties_by_name():
    names = np.array(["d", "b", "a", "c", "e"])
    loadings = np.array([[2.0, 0.0], [3.0, -1.0], [3.0, 0.5], [-1.0, -1.0], [0.0, 0.0]])
    rows, columns, ranks, negative = top_features(loadings, names, 2, "both")
    assert [names[r] for r in rows] == ["a", "b", "c", "a", "b", "c"]  # column 0: a, b tie at 3 (by name); c < 0
    assert columns.tolist() == [0, 0, 0, 1, 1, 1]
    assert ranks.tolist() == [1, 2, 1, 1, 1, 2]
    assert negative.tolist() == [False, False, True, False, True, True]
    rows, _, _, negative = top_features(loadings, names, 3, "abs")
    assert [names[r] for r in rows[:3]] == ["a", "b", "d"] and not negative[:3].any()
    rows, _, _, _ = top_features(loadings, names, 5, "abs")
    assert "e" in {names[r] for r in rows}  # zeros count for "abs" only
    assert "e" not in {names[r] for r in top_features(loadings, names, 5, "both")[0]}


@pytest.mark.parametrize("sign", ["both", "positive", "negative", "abs"])
def test_result_does_not_depend_on_the_order_of_features(sign):
    rng = np.random.default_rng(3)
    loadings = np.round(rng.standard_normal((40, 3)), 1)  # rounded: many ties
    names = np.array([f"g{i:02d}" for i in range(40)])
    order = rng.permutation(40)
    assert _as_set(loadings, names, 6, sign) == _as_set(loadings[order], names[order], 6, sign)


def test_unknown_sign_is_named():
    with pytest.raises(ValueError, match="sign='up' must be one of"):
        top_features(np.zeros((2, 1)), np.array(["a", "b"]), 1, "up")
