"""MuData in ``tl``/``get``/``pl``: the same fit as the AnnData a user would build by hand, cells aligned by name."""

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import lmf_omics as lmf

from .planted import N_FACTORS, planted_adata

md = pytest.importorskip("mudata")
OPTIONS = {"n_factors": N_FACTORS, "tol": 1e-8}
WITHOUT_PROTEIN = 40  # the first cells have no protein


def _mudata(adata, *, shuffle_protein=False):
    rna = ad.AnnData(adata.X, obs=adata.obs[["batch"]].copy(), var=adata.var.copy())
    rna.layers["counts"] = adata.X.copy()
    protein = adata.obsm["protein"].iloc[WITHOUT_PROTEIN:]
    if shuffle_protein:
        protein = protein.sample(frac=1.0, random_state=0)
    prot = ad.AnnData(
        protein.to_numpy(), obs=pd.DataFrame(index=protein.index), var=pd.DataFrame(index=protein.columns)
    )
    mdata = md.MuData({"rna": rna, "prot": prot})
    mdata.obs["donor"] = adata.obs["batch"].to_numpy()
    return mdata


def _by_hand(adata):
    """What a user writes today: protein reindexed into obsm with NaN rows for cells without it."""
    manual = adata.copy()
    protein = manual.obsm["protein"].copy()
    protein.iloc[:WITHOUT_PROTEIN] = np.nan
    manual.obsm["protein"] = protein
    return manual


@pytest.fixture(scope="module")
def cells():
    return planted_adata(seed=7, n=220)


@pytest.fixture(scope="module")
def fitted(cells):
    mdata = _mudata(cells)
    lmf.tl.lmf(mdata, response="prot", fixed="rna", random="rna:obs:batch", **OPTIONS)
    return mdata


def test_mudata_fit_is_the_fit_of_the_anndata_built_by_hand(cells, fitted):
    manual = _by_hand(cells)
    lmf.tl.lmf(manual, response="obsm:protein", fixed="X", random="obs:batch", **OPTIONS)
    for key in ("X_lmf", "X_lmf_fixed", "X_lmf_random"):
        np.testing.assert_allclose(fitted.obsm[key], manual.obsm[key], atol=1e-10)
    for role in ("response", "fixed", "random"):
        np.testing.assert_allclose(lmf.get.loadings(fitted, role=role), lmf.get.loadings(manual, role=role), atol=1e-10)
    # codes in the MuData, loadings in the modalities' varm
    assert fitted.mod["rna"].varm["lmf_loadings_fixed"].shape == (50, N_FACTORS)
    assert fitted.mod["prot"].varm["lmf_loadings_response"].shape == (12, N_FACTORS)
    assert fitted.obsm["X_lmf"].shape == (fitted.n_obs, N_FACTORS)
    pd.testing.assert_frame_equal(lmf.get.variance_explained(fitted), lmf.get.variance_explained(manual))


def test_cells_are_aligned_by_name_not_by_order(cells, fitted):
    shuffled = _mudata(cells, shuffle_protein=True)
    lmf.tl.lmf(shuffled, response="prot", fixed="rna", random="rna:obs:batch", **OPTIONS)
    np.testing.assert_allclose(shuffled.obsm["X_lmf"], fitted.obsm["X_lmf"], atol=1e-10)
    np.testing.assert_allclose(
        lmf.get.loadings(shuffled, role="response"), lmf.get.loadings(fitted, role="response"), atol=1e-10
    )


def test_every_slot_spec_reads_what_the_anndata_spec_reads(cells):
    mdata = _mudata(cells)
    mdata.mod["rna"].obsm["X_pca"] = np.asarray(cells.X[:, :8].toarray())
    lmf.tl.lmf(mdata, response="rna:obsm:X_pca", fixed="rna:layer:counts", random="obs:donor", **OPTIONS)
    adata = cells.copy()
    adata.obsm["X_pca"] = np.asarray(cells.X[:, :8].toarray())
    lmf.tl.lmf(adata, response="obsm:X_pca", fixed="X", random="obs:batch", **OPTIONS)
    np.testing.assert_allclose(mdata.obsm["X_lmf"], adata.obsm["X_lmf"], atol=1e-10)
    assert lmf.get.features(mdata)["random"] == ["donor=b0", "donor=b1", "donor=b2"]
    assert mdata.uns["lmf"]["params"]["fixed"] == "rna:layer:counts"


def test_mask_var_is_read_from_the_modality(cells):
    mdata = _mudata(cells)
    lmf.tl.lmf(mdata, response="prot", fixed="rna", mask_var={"fixed": "highly_variable"}, **OPTIONS)
    loadings = mdata.mod["rna"].varm["lmf_loadings_fixed"]
    assert np.all(loadings[~cells.var["highly_variable"].to_numpy()] == 0)
    assert len(lmf.get.loadings(mdata, role="fixed")) == int(cells.var["highly_variable"].sum())


def test_transform_and_predict_between_mudata(cells, fitted):
    query = _mudata(planted_adata(seed=7, n=220))[100:].copy()  # the same cells, part of them
    lmf.tl.transform(query, fitted, key_added="query")
    rows = fitted.obs_names.get_indexer(query.obs_names)
    np.testing.assert_allclose(query.obsm["X_query"], fitted.obsm["X_lmf"][rows], atol=1e-10)
    lmf.tl.predict(query, fitted)
    manual = _by_hand(cells)
    lmf.tl.lmf(manual, response="obsm:protein", fixed="X", random="obs:batch", **OPTIONS)
    expected = manual[100:].copy()
    lmf.tl.predict(expected, manual)
    np.testing.assert_allclose(query.obsm["lmf_predicted"], expected.obsm["lmf_predicted"], atol=1e-10)


def test_query_without_a_modality_is_encoded_from_the_others(fitted):
    query = md.MuData({"rna": fitted.mod["rna"].copy()})
    lmf.tl.transform(query, fitted, key_added="rna_only")
    assert query.uns["rna_only_transform"]["params"]["modalities"] == ["fixed", "random"]
    assert np.isfinite(query.obsm["X_rna_only"]).all()


@pytest.mark.parametrize("store", ["h5mu", "zarr"])
def test_a_stored_mudata_rebuilds_the_model(fitted, store, tmp_path):
    path = tmp_path / f"fit.{store}"
    (fitted.write_h5mu if store == "h5mu" else fitted.write_zarr)(path)
    back = (md.read_h5mu if store == "h5mu" else md.read_zarr)(path)
    for role in ("response", "fixed", "random"):
        pd.testing.assert_frame_equal(lmf.get.loadings(back, role=role), lmf.get.loadings(fitted, role=role))
    lmf.tl.transform(back, back, key_added="again")
    np.testing.assert_allclose(back.obsm["X_again"], fitted.obsm["X_lmf"], atol=1e-10)


def test_plots_read_a_mudata_fit(fitted):
    axes = lmf.pl.loadings(fitted, roles="fixed", n_top=4)
    top = lmf.get.loadings(fitted, role="fixed")["Factor1"].abs().nlargest(4).index
    assert {t.get_text() for t in axes[0, 0].get_yticklabels()} == set(top)
    lmf.pl.variance_explained(fitted)
    lmf.pl.convergence(fitted)
    plt.close("all")


def test_a_refit_removes_the_old_loadings_from_every_modality(cells):
    mdata = _mudata(cells)
    lmf.tl.lmf(mdata, response="prot", fixed="rna", **OPTIONS)
    lmf.tl.lmf(mdata, response="rna", fixed="prot", **OPTIONS)
    assert "lmf_loadings_response" not in mdata.mod["prot"].varm
    assert set(mdata.mod["rna"].varm) == {"lmf_loadings_response"}
    assert set(mdata.mod["prot"].varm) == {"lmf_loadings_fixed", "lmf_encoder_fixed"}


def test_codes_go_to_each_modality_on_request_aligned_by_name(cells):
    mdata = _mudata(cells, shuffle_protein=True)
    before = {name: set(mod.obsm) for name, mod in mdata.mod.items()}
    lmf.tl.lmf(mdata, response="prot", fixed="rna", **OPTIONS)
    assert {name: set(mod.obsm) for name, mod in mdata.mod.items()} == before  # not unless asked
    lmf.tl.lmf(mdata, response="prot", fixed="rna", mod_obsm=True, **OPTIONS)
    codes = pd.DataFrame(mdata.obsm["X_lmf_fixed"], index=mdata.obs_names)
    prot = mdata.mod["prot"]
    assert prot.n_obs == cells.n_obs - WITHOUT_PROTEIN
    np.testing.assert_array_equal(prot.obsm["X_lmf_fixed"], codes.loc[prot.obs_names].to_numpy())
    np.testing.assert_array_equal(mdata.mod["rna"].obsm["X_lmf"], mdata.obsm["X_lmf"][: mdata.mod["rna"].n_obs])
    lmf.tl.lmf(mdata, response="prot", fixed="rna", random="rna:obs:batch", **OPTIONS)  # a refit without it
    assert not any(key.startswith("X_lmf") for mod in mdata.mod.values() for key in mod.obsm)


def test_mod_obsm_on_an_anndata_is_refused_before_any_work(cells):
    adata = cells.copy()
    with pytest.raises(ValueError, match="mod_obsm=True needs a MuData"):
        lmf.tl.lmf(adata, response="obsm:protein", fixed="X", mod_obsm=True, **OPTIONS)
    assert "lmf" not in adata.uns
