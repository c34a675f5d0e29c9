"""Every tutorial runs top to bottom in this process, writes its figures and describes each one in prose."""

import json
import re
import runpy
from pathlib import Path

import jupytext
import matplotlib.pyplot as plt
import pytest

TUTORIALS = Path(__file__).resolve().parents[2] / "tutorials"
SCRIPTS = sorted(TUTORIALS.glob("*.py"))
EXPECTED = {
    "cite_seq_pbmc": {
        "umap_lmf.png",
        "variance_explained.png",
        "convergence.png",
        "loadings_proteins_genes.png",
        "predicted_vs_measured.png",
    },
    "spatial_breast": {
        "fixed_code_on_tissue.png",
        "random_code_on_tissue.png",
        "morans_i.png",
        "variance_explained.png",
        "gene_loadings.png",
        "section_model_fixed_code.png",
    },
    "histology_visium": {"factors_on_he.png", "loadings_genes_image.png", "variance_explained.png"},
    "pbmc68k_covariates": {"ari_nmi.png", "umap_pca_vs_fixed.png", "variance_explained.png", "covariate_loadings.png"},
    "pbmc_chemistries_integration": {"umap_by_batch_and_type.png", "batch_and_biology.png"},
}


def test_every_tutorial_is_listed():
    assert {path.stem for path in SCRIPTS} == set(EXPECTED)


@pytest.fixture(scope="module")
def outdir(tmp_path_factory):
    return tmp_path_factory.mktemp("tutorials")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_tutorial_runs_and_writes_described_figures(script, outdir, monkeypatch):
    monkeypatch.setenv("LMF_TUTORIAL_OUTDIR", str(outdir))
    runpy.run_path(str(script), run_name="__main__")
    folder = outdir / script.stem
    written = {path.name for path in folder.glob("*.png")}
    assert written == EXPECTED[script.stem]
    for name in written:
        image = plt.imread(folder / name)
        assert min(image.shape[:2]) > 150, name
        assert image[..., :3].std() > 0.05, f"{name} looks blank"
    prose = _markdown(script)
    for name in written:
        assert f"**`{name}`**" in prose, f"{script.name} never says what {name} shows"
    assert json.loads((folder / "results.json").read_text())
    assert not plt.get_fignums(), "the tutorial left figures open"


def test_pbmc68k_scores_are_reported_for_each_embedding(outdir):
    path = outdir / "pbmc68k_covariates" / "results.json"
    if not path.exists():
        pytest.skip("runs after the tutorial itself")
    results = json.loads(path.read_text())
    assert set(results["mean_ari"]) == {"PCA", "LMF K + H", "LMF fixed K"}
    assert all(0.2 < value < 0.9 for value in results["mean_nmi"].values())
    assert results["covariate_r2"]["LMF random H"]["S_score"] > 0.99  # H encodes the covariates exactly


def test_cite_seq_fixed_code_ignores_the_hashtag_and_predicts_held_out_proteins(outdir):
    path = outdir / "cite_seq_pbmc" / "results.json"
    if not path.exists():
        pytest.skip("runs after the tutorial itself")
    results = json.loads(path.read_text())
    nmi = results["hashtag_nmi"]
    assert nmi["LMF encoded: K (X_lmf_fixed)"] < 0.1  # as hashtag-free as RNA PCs (about 0.02)
    assert nmi["LMF encoded: K + H (X_lmf)"] > 0.3  # H encodes the hashtag by construction
    assert 0.2 < results["held_out_r2"] < 0.9
    assert results["held_out_correlation"]["CD8"] > 0.6


def test_cite_seq_mudata_fit_is_the_anndata_fit(outdir):
    path = outdir / "cite_seq_pbmc" / "results.json"
    if not path.exists():
        pytest.skip("runs after the tutorial itself")
    mudata = json.loads(path.read_text())["mudata"]
    assert mudata["max_code_difference"] < 1e-10  # the same matrices reach the same core
    lmf_row = mudata["side_by_side"]["LMF (tl.lmf)"]
    assert 0.3 < lmf_row["R² prot"] < 1 and 0 < lmf_row["R² rna"] < 1
    assert (mudata["mofa"] == "ran") == ("MOFA+ (mu.tl.mofa)" in mudata["side_by_side"])


def test_pbmc_chemistries_default_fixed_code_drops_the_chemistry_and_keeps_the_cell_types(outdir):
    path = outdir / "pbmc_chemistries_integration" / "results.json"
    if not path.exists():
        pytest.skip("runs after the tutorial itself")
    metrics = json.loads(path.read_text())["metrics"]
    default, response, pca = metrics["LMF default K"], metrics["LMF response-only K"], metrics["PCA"]
    assert default["batch R2"] < 0.1 < response["batch R2"]  # about 0.01 against 0.91 at the time of writing
    assert default["kNN batch mixing"] > 0.4 > pca["kNN batch mixing"]  # about 0.60 against 0.10
    assert default["NMI"] >= pca["NMI"]  # about 0.76 against 0.62
    assert metrics["LMF default K + H"]["batch R2"] > 0.5  # H puts the chemistry back (about 0.93)
    mapping = json.loads(path.read_text())["mapping_accuracy"]
    assert mapping["LMF default K"] > 0.7  # about 0.87 on the 290 held-out 3' v1 cells


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_tutorial_is_a_percent_format_notebook(script):
    notebook = jupytext.read(script)
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds.count("markdown") >= 4 and kinds.count("code") >= 4
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# ")


def _markdown(script: Path) -> str:
    return "\n".join(cell.source for cell in jupytext.read(script).cells if cell.cell_type == "markdown")


def test_figure_names_in_prose_match_the_code():
    for script in SCRIPTS:
        described = set(re.findall(r"\*\*`([\w.]+\.png)`\*\*", _markdown(script)))
        assert described == EXPECTED[script.stem], script.name
