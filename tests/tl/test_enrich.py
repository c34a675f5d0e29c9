"""``tl.enrich``: decoupler's scores of the loadings equal an independent least-squares computation."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lmf_omics import get, tl

from ..reliability import counts_adata
from .bad_inputs import FIT, gene_sets

pytest.importorskip("decoupler")


@pytest.fixture(scope="module")
def fitted():
    adata = counts_adata(n_genes=30)
    tl.lmf(adata, **FIT)
    return adata


def _ulm_by_hand(loadings: pd.DataFrame, net: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """t-value of the slope of loading ~ 1 + weight over all features, and BH-adjusted p-values per factor."""
    scores, pvals = {}, {}
    for name, members in net.groupby("source"):
        weights = members.set_index("target")["weight"].reindex(loadings.index, fill_value=0.0).to_numpy()
        fits = [stats.linregress(weights, loadings[factor].to_numpy()) for factor in loadings.columns]
        scores[name] = [fit.slope / fit.stderr for fit in fits]
        pvals[name] = [fit.pvalue for fit in fits]
    scores = pd.DataFrame(scores, index=loadings.columns)
    raw = pd.DataFrame(pvals, index=loadings.columns)
    adjusted = raw.apply(lambda row: pd.Series(stats.false_discovery_control(row.to_numpy()), index=row.index), axis=1)
    return scores, adjusted


def test_ulm_scores_are_t_values_of_the_loadings(fitted):
    net = gene_sets(n_sets=4, size=7)
    tl.enrich(fitted, net=net, role="fixed")
    stored = fitted.uns["lmf_enrich_fixed"]
    assert (stored["method"], stored["role"], stored["key"]) == ("ulm", "fixed", "lmf")
    expected_scores, expected_pvals = _ulm_by_hand(get.loadings(fitted, role="fixed"), net)
    pd.testing.assert_frame_equal(stored["scores"], expected_scores, check_names=False, rtol=1e-8, atol=1e-10)
    pd.testing.assert_frame_equal(stored["pvals"], expected_pvals, check_names=False, rtol=1e-6, atol=1e-12)


def test_a_planted_set_scores_highest_on_its_factor(fitted):
    """The 8 most positive genes of factor 2 as a set: its largest score is on factor 2, and positive."""
    top = get.top_features(fitted, role="fixed", factor=2, n=8, sign="positive")
    net = pd.concat([gene_sets(), pd.DataFrame({"source": "planted", "target": top["feature"], "weight": 1.0})])
    tl.enrich(fitted, net=net, key_added="planted")
    scores = fitted.uns["planted"]["scores"]["planted"]
    assert scores.idxmax() == "Factor2" and scores["Factor2"] > 3


def test_tidy_table_and_h5ad_round_trip(fitted, tmp_path):
    net = gene_sets(n_sets=3, size=6)
    tl.enrich(fitted, net=net)
    fitted.write_h5ad(tmp_path / "fit.h5ad")
    back = ad.read_h5ad(tmp_path / "fit.h5ad")
    table = get.enrichment(back)
    assert list(table.columns) == ["factor", "source", "score", "pval"]
    assert len(table) == 3 * 3 and table["factor"].tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    stored = fitted.uns["lmf_enrich_fixed"]
    for row in table.itertuples():
        assert row.score == pytest.approx(stored["scores"].loc[f"Factor{row.factor}", row.source], rel=1e-12)
        assert row.pval == pytest.approx(stored["pvals"].loc[f"Factor{row.factor}", row.source], rel=1e-12)
    assert all((np.diff(group["score"].to_numpy()) <= 0).all() for _, group in table.groupby("factor"))  # largest first


def test_copy_leaves_the_input_alone(fitted):
    before = set(fitted.uns)
    copied = tl.enrich(fitted, net=gene_sets(), method="zscore", key_added="by_z", copy=True)
    assert set(fitted.uns) == before and "by_z" in copied.uns
    assert copied.uns["by_z"]["method"] == "zscore"


def test_enrichment_absent_names_what_is_there(fitted):
    with pytest.raises(KeyError, match=r"no enrichment under uns\['nothing'\]; enrichments present: \["):
        get.enrichment(fitted, "nothing")
