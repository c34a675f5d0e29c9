"""covariates: obs columns as the design matrix tl.lmf would build, with numeric columns standardised."""

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

import lmf_omics as lmf


@pytest.fixture
def adata():
    rng = np.random.default_rng(0)
    adata = AnnData(rng.standard_normal((50, 6)))
    adata.obs["phase"] = pd.Categorical(rng.choice(["G1", "S", "G2M"], 50))
    adata.obs["n_counts"] = rng.gamma(5.0, 400.0, 50)
    adata.obs["doublet"] = rng.random(50) < 0.1
    adata.obs["barcode"] = [f"cell{i}" for i in range(50)]
    return adata


def test_design_matches_the_obs_spec_encoding(adata):
    lmf.pp.covariates(adata, keys=["phase", "n_counts", "doublet"], scale=False)
    design = adata.obsm["covariates"]
    spec = lmf.get.features(
        lmf.tl.lmf(
            adata, response="X", fixed="X", random="obs:phase,n_counts,doublet", n_factors=2, max_iter=3, copy=True
        )
    )["random"]
    assert list(design.columns) == spec
    assert list(design.columns) == ["phase=G1", "phase=G2M", "phase=S", "n_counts", "doublet=False", "doublet=True"]
    np.testing.assert_array_equal(design["phase=S"], (adata.obs["phase"] == "S").astype(float))
    np.testing.assert_array_equal(design["n_counts"], adata.obs["n_counts"])


def test_scale_standardises_numeric_columns_only(adata):
    lmf.pp.covariates(adata, keys=["phase", "n_counts"], key_added="Z")
    design = adata.obsm["Z"]
    counts = adata.obs["n_counts"].to_numpy()
    np.testing.assert_allclose(design["n_counts"], (counts - counts.mean()) / counts.std(), rtol=1e-12)
    assert set(np.unique(design[["phase=G1", "phase=G2M", "phase=S"]])) == {0.0, 1.0}
    assert adata.uns["Z"]["params"]["keys"] == ["phase", "n_counts"]


def test_fit_with_the_design_as_random_effect(adata):
    lmf.pp.covariates(adata, keys="phase")
    lmf.tl.lmf(adata, response="X", fixed="X", random="obsm:covariates", n_factors=2, max_iter=20)
    assert adata.obsm["X_lmf_random"].shape == (50, 2)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (["phase", "donor"], "'donor' not found in adata.obs"),
        (["barcode"], "'barcode' has 50 levels"),
        ([], "must name one or more obs columns"),
    ],
)
def test_bad_keys_raise_and_write_nothing(adata, keys, message):
    with pytest.raises((ValueError, KeyError), match=message):
        lmf.pp.covariates(adata, keys=keys, max_levels=20)
    assert "covariates" not in adata.obsm and "covariates" not in adata.uns


def test_missing_values_are_named(adata):
    adata.obs["n_counts"] = adata.obs["n_counts"].where(adata.obs["n_counts"] > 1000)
    with pytest.raises(ValueError, match="NaN"):
        lmf.pp.covariates(adata, keys=["n_counts"])
