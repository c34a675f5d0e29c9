"""``lmf_omics.get``: stored results read back, with a clear error for what is not there."""

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
