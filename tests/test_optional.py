"""squidpy is the optional extra lmf-omics[spatial]: without it, the functions that need it say what to install."""

import sys

import numpy as np
import pytest
from anndata import AnnData

import lmf_omics as lmf
from lmf_omics._optional import require


@pytest.fixture
def without_squidpy(monkeypatch):
    for name in [m for m in sys.modules if m == "squidpy" or m.startswith("squidpy.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "squidpy", None)  # import squidpy now raises ModuleNotFoundError


@pytest.fixture
def spots():
    adata = AnnData(np.random.default_rng(0).random((12, 5)))
    adata.obsm["spatial"] = np.random.default_rng(1).random((12, 2))
    return adata


EXTRA = r'needs squidpy, which is not installed; install it with pip install "lmf-omics\[spatial\]"'


@pytest.mark.parametrize(
    "call",
    [
        lambda adata: lmf.pp.spatial_context(adata, source="X"),
        lambda adata: lmf.pp.image_features(adata, img=np.zeros((8, 8, 3))),
    ],
    ids=["pp.spatial_context", "pp.image_features"],
)
def test_spatial_functions_name_the_extra(without_squidpy, spots, call):
    with pytest.raises(ImportError, match=EXTRA):
        call(spots)


def test_require_names_the_extra_and_passes_other_import_errors(without_squidpy):
    with pytest.raises(ImportError, match=EXTRA):
        require("squidpy")
    assert require("json").dumps([1]) == "[1]"
