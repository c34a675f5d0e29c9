"""Every public entry point against its catalogue of bad and odd inputs (see tests/reliability.py).

Each case ends in a clean error raised before any work, or in the documented handling; the inputs
(AnnData, arrays, fitted models, files) are fingerprinted before and after, and the outcome is
counted in the table printed at the end of the session.
"""

import pytest

from .cli_bad_inputs import CASES as COMMAND_LINE
from .core.bad_inputs import CASES as CORE
from .pp.bad_inputs import CASES as PREPROCESSING
from .r_bad_inputs import CASES as R_ENTRY
from .reliability import CATEGORIES, assert_clean, run_case
from .tl.bad_inputs import ENRICH_CASES, LMF_CASES, TRANSFER_CASES
from .tl.bad_inputs_scverse import CASES as SCVERSE

pytestmark = [  # what anndata says about the inputs some cases are built from
    pytest.mark.filterwarnings("ignore:(Observation|Variable) names are not unique:UserWarning"),
    pytest.mark.filterwarnings("ignore:Setting element .* of view:anndata.ImplicitModificationWarning"),
    pytest.mark.filterwarnings("ignore:Element .* was written without encoding metadata"),
]

CASES = [*CORE, *LMF_CASES, *TRANSFER_CASES, *ENRICH_CASES, *SCVERSE, *PREPROCESSING, *COMMAND_LINE, *R_ENTRY]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_bad_input(case, tmp_path, monkeypatch):
    assert_clean(run_case(case, tmp_path, monkeypatch))


ENTRY_POINTS = {
    "LinearMixedForms",
    "tl.lmf",
    "tl.transform",
    "tl.predict",
    "tl.enrich",
    "pp.normalize_rna",
    "pp.clr",
    "pp.covariates",
    "pp.spatial_context",
    "pp.image_features",
    "pl.factors_spatial",
    "lmf-omics fit",
    "lmf-omics predict",
    "r.fit",
    "r.fit_h5ad",
}


def test_catalogue_covers_every_category_and_entry_point():
    assert len({case.id for case in CASES}) == len(CASES), "case names must be unique"
    assert {case.category for case in CASES} == set(CATEGORIES)
    assert {case.entry for case in CASES} == ENTRY_POINTS
