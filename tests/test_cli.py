"""``lmf-omics fit`` end to end on the real CITE-seq data, and its failure modes."""

import hashlib

import anndata as ad
import numpy as np
import pytest

from lmf_omics.cli import main

OPTIONS = {
    "--response": "obsm:protein_counts",
    "--fixed": "X",
    "--random": "obs:hashtag",
    "--n-factors": "8",
    "--tol": "1e-5",
}


def _options(**override):
    """The fit options as argv, with ``n_factors="3"`` style overrides."""
    merged = {**OPTIONS, **{f"--{name.replace('_', '-')}": value for name, value in override.items()}}
    return [token for pair in merged.items() for token in pair]


FIT = _options()


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def cite_fit(shared_data, tmp_path_factory):
    source = shared_data / "eccite_pbmc_500.h5ad"
    target = tmp_path_factory.mktemp("cli") / "fitted.h5ad"
    before = _digest(source)
    code = main(["--quiet", "fit", str(source), "-o", str(target), *FIT])
    return code, source, target, before


def test_fit_writes_codes_for_protein_from_rna_and_hashtag(cite_fit):
    code, source, target, before = cite_fit
    assert code == 0
    assert _digest(source) == before  # the input is never touched
    adata = ad.read_h5ad(target)
    assert adata.obsm["X_lmf"].shape == (500, 8)
    assert adata.varm["lmf_loadings_fixed"].shape == (19521, 8)
    stored = adata.uns["lmf"]
    assert stored["params"]["random"] == "obs:hashtag" and stored["converged"]
    assert stored["total_variance_explained"]["response"] > 0.5  # 8 factors of 49 raw ADT counts
    # four hashtags: the random code is one vector per hashtag
    H = adata.obsm["X_lmf_random"]
    for tag in adata.obs["hashtag"].unique():
        rows = H[(adata.obs["hashtag"] == tag).to_numpy()]
        np.testing.assert_allclose(rows, np.broadcast_to(rows[0], rows.shape), atol=1e-8)
    assert not list(target.parent.glob(".*.tmp"))  # no temporary file left behind


def _fails(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1 and err.startswith("lmf-omics: error: ")
    return err


def test_bad_input_gives_one_line_and_leaves_files_alone(cite_fit, capsys):
    _, source, target, _ = cite_fit
    existing = _digest(target)
    err = _fails(capsys, ["fit", str(source), "-o", str(target), *_options(response="obsm:adt")])
    assert "'adt' not found in adata.obsm; available: ['hashtag_counts', 'protein_counts']" in err
    assert _digest(target) == existing  # a failed run leaves the old output as it was
    err = _fails(capsys, ["fit", str(source), "-o", str(target), *_options(n_factors="60")])
    assert "n_factors=60 is larger than the features of response='obsm:protein_counts' (49)" in err


def test_refuses_to_overwrite_the_input_unless_asked(cite_fit, capsys, tmp_path):
    _, source, _, _ = cite_fit
    err = _fails(capsys, ["fit", str(source), "-o", str(source), *FIT])
    assert "is the input file; pass --in-place" in err
    err = _fails(capsys, ["fit", str(tmp_path / "missing.h5ad"), "-o", str(tmp_path / "out.h5ad"), *FIT])
    assert "does not exist" in err
    err = _fails(capsys, ["fit", str(source), "-o", str(tmp_path / "no" / "out.h5ad"), *FIT])
    assert "output directory" in err and not (tmp_path / "no").exists()


def test_corrupt_input_is_a_clean_error(capsys, tmp_path):
    broken = tmp_path / "broken.h5ad"
    broken.write_bytes(b"not an hdf5 file")
    _fails(capsys, ["fit", str(broken), "-o", str(tmp_path / "out.h5ad"), *FIT])
    assert not (tmp_path / "out.h5ad").exists()


def test_in_place_rewrites_a_copy_of_the_input(cite_fit, tmp_path):
    _, _, target, _ = cite_fit
    copy = tmp_path / "copy.h5ad"
    copy.write_bytes(target.read_bytes())
    argv = [
        "--quiet",
        "fit",
        str(copy),
        "-o",
        str(copy),
        "--in-place",
        *_options(n_factors="3", key_added="lmf3", max_iter="20"),
    ]
    assert main(argv) == 0
    adata = ad.read_h5ad(copy)
    assert adata.obsm["X_lmf3"].shape == (500, 3) and adata.obsm["X_lmf"].shape == (500, 8)


def test_usage_errors_exit_2():
    with pytest.raises(SystemExit) as exit_info:
        main(["fit"])
    assert exit_info.value.code == 2


def test_predict_protein_for_new_cells_from_a_reference_file(shared_data, tmp_path, capsys):
    import anndata as ad

    cells = ad.read_h5ad(shared_data / "eccite_pbmc_500.h5ad")
    reference, query = tmp_path / "reference.h5ad", tmp_path / "query.h5ad"
    cells[:400].copy().write_h5ad(reference)
    cells[400:].copy().write_h5ad(query)
    fitted = tmp_path / "fitted.h5ad"
    assert main(["--quiet", "fit", str(reference), "-o", str(fitted), *_options(n_factors="5")]) == 0
    out = tmp_path / "predicted.h5ad"
    assert main(["--quiet", "predict", str(query), "-r", str(fitted), "-o", str(out)]) == 0
    predicted = ad.read_h5ad(out)
    assert predicted.obsm["lmf_predicted"].shape == (100, 49)
    assert list(predicted.obsm["lmf_predicted"].columns) == list(cells.obsm["protein_counts"].columns)
    assert predicted.obsm["X_lmf"].shape == (100, 5)
    err = _fails(capsys, ["predict", str(query), "-r", str(tmp_path / "none.h5ad"), "-o", str(out)])
    assert "reference file" in err and "does not exist" in err


@pytest.mark.parametrize("codes", ["encoded", "free"])
def test_predict_reads_the_query_once_and_writes_what_transform_and_predict_write(tmp_path, monkeypatch, codes):
    """``lmf-omics predict`` = tl.transform + tl.predict, but each modality of the query is read once."""
    import pandas as pd

    from lmf_omics import tl
    from lmf_omics.tl import _transfer

    from .reliability import counts_adata

    reference, query = counts_adata(seed=1), counts_adata(seed=2)  # the query has protein: the codes use it
    tl.lmf(
        reference,
        response="obsm:protein",
        fixed="X",
        random="obs:batch",
        n_factors=3,
        max_iter=30,
        codes=codes,
        progress=False,
    )
    reference.write_h5ad(tmp_path / "reference.h5ad")
    query.write_h5ad(tmp_path / "query.h5ad")
    reads, original = [], _transfer.read_aligned
    monkeypatch.setattr(_transfer, "read_aligned", lambda *a, **k: reads.append(k["role"]) or original(*a, **k))

    out = tmp_path / "out.h5ad"
    argv = ["--quiet", "predict", str(tmp_path / "query.h5ad"), "-r", str(tmp_path / "reference.h5ad"), "-o", str(out)]
    assert main(argv) == 0
    assert sorted(reads) == ["fixed", "random", "response"]
    written = ad.read_h5ad(out)
    tl.transform(query, reference)
    tl.predict(query, reference)
    for key in ("X_lmf", "X_lmf_fixed", "X_lmf_random"):
        np.testing.assert_allclose(written.obsm[key], query.obsm[key], atol=1e-12)
    pd.testing.assert_frame_equal(written.obsm["lmf_predicted"], query.obsm["lmf_predicted"], atol=1e-12)
    for key in ("lmf_transform", "lmf_predicted"):
        assert written.uns[key]["params"]["modalities"].tolist() == query.uns[key]["params"]["modalities"]


@pytest.mark.parametrize(("flags", "shown"), [([], True), (["--quiet"], False)])
def test_the_command_logs_at_info_whatever_scanpys_verbosity(flags, shown, tmp_path, caplog):
    import scanpy as sc

    from lmf_omics._core.log import logger

    from .reliability import counts_adata

    counts_adata().write_h5ad(tmp_path / "cells.h5ad")
    before, saved_verbosity = logger.level, sc.settings.verbosity
    sc.settings.verbosity = "warning"  # a library default the command line overrides, as its --quiet does
    try:
        argv = [*flags, "fit", str(tmp_path / "cells.h5ad"), "-o", str(tmp_path / "out.h5ad")]
        assert main([*argv, "--response", "obsm:protein", "--fixed", "X", "--n-factors", "2", "--max-iter", "5"]) == 0
    finally:
        sc.settings.verbosity = saved_verbosity
    assert any(r.getMessage().startswith("wrote ") for r in caplog.records) is shown
    assert logger.level == before  # an in-process call leaves the package's logging as it was
