"""The R package lmfomics from real R, set up with the README's commands (see provision.py).

* ``R CMD build`` and ``R CMD check --no-manual`` of the package: 0 errors, 0 warnings, only the notes listed in
  ``EXPLAINED_NOTES``; its testthat tests (conditions, bad inputs, Seurat, transfer) ran and passed without skips,
  and its vignette ran (figures built).
* The ECCITE-seq fit from R (tests/r/test-eccite.R) against the fit this process makes with ``tl.lmf`` (NumPy 2).
* The README's R snippet, verbatim.
* The set-up checks: a NumPy 2 Python or one without lmf_omics is refused with an R error that says what to run.
"""

import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits  # via scanpy's scikit-learn

from lmf_omics import datasets, tl
from lmf_omics.r import R_PACKAGE

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
N_FACTORS = 8
MIN_CELLS = 100  # genes detected in at least this many cells (1,754 of 19,521) keep the fits quick
R_TIMEOUT = 2400
SUMMARY = re.compile(r"\[ FAIL (\d+) \| WARN (\d+) \| SKIP (\d+) \| PASS (\d+) \]")
# R CMD check's notes that are expected here, and why
EXPLAINED_NOTES = {}


def run_r(r_env, arguments: list[str], cwd: Path, program: str | None = None, **env: str):
    start = time.perf_counter()
    environment = r_env.env(LMF_OMICS_DATA=str(datasets.shared_data_dir()), **env)
    done = subprocess.run(
        [program or r_env.rscript, *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=R_TIMEOUT,
        env=environment,
        check=False,
    )
    return done, time.perf_counter() - start


def test_readme_setup_ran(r_env, record_property):
    """The README's commands ran (provision.py); their times, measured on this machine under its load."""
    timings = {command: round(seconds, 1) for command, seconds in r_env.timings.items()}
    record_property("setup_seconds", timings)
    print("README R set-up (s):", *(f"{s:8.1f}  {c}" for c, s in timings.items()), sep="\n")
    assert r_env.python.is_file()
    assert (r_env.library / "lmfomics" / "DESCRIPTION").is_file()


def test_installed_python_package_ships_the_r_package(r_env, tmp_path):
    done = subprocess.run(
        [str(r_env.python), "-m", "lmf_omics.r", "--path"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=r_env.env(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    installed = Path(done.stdout.strip())
    assert installed.is_relative_to(r_env.python.parents[1]), installed  # the built wheel, not this checkout
    for name in ("DESCRIPTION", "NAMESPACE", "R/calculateLMF.R", "inst/python/constraints.txt"):
        assert (installed / name).read_text() == (R_PACKAGE / name).read_text(), name


@pytest.fixture(scope="module")
def checked(r_env, tmp_path_factory):
    """``R CMD build`` then ``R CMD check --no-manual`` in a scratch folder; no repository is contacted."""
    folder = tmp_path_factory.mktemp("r_check")
    repository = folder / "no-repository" / "src" / "contrib"
    repository.mkdir(parents=True)
    (repository / "PACKAGES").write_text("")
    profile = folder / "Rprofile"
    profile.write_text(f'options(repos = c(CRAN = "file://{repository.parents[1]}"))\n')
    env = {"R_PROFILE_USER": str(profile), "_R_CHECK_FORCE_SUGGESTS_": "true"}
    build, build_seconds = run_r(r_env, ["CMD", "build", str(R_PACKAGE)], folder, program="R", **env)
    assert build.returncode == 0, (build.stdout + build.stderr)[-6000:]
    tarball = next(folder.glob("lmfomics_*.tar.gz"))
    check, check_seconds = run_r(r_env, ["CMD", "check", "--no-manual", tarball.name], folder, program="R", **env)
    print(f"R CMD build: {build_seconds:.0f} s; R CMD check: {check_seconds:.0f} s", check.stdout[-4000:], sep="\n")
    return folder / "lmfomics.Rcheck", check


def test_r_cmd_check_has_no_errors_or_warnings(checked):
    folder, check = checked
    output = check.stdout + check.stderr
    status = re.search(r"^Status: (.*)$", output, flags=re.MULTILINE)
    assert status is not None, output[-6000:]
    assert "ERROR" not in status.group(1) and "WARNING" not in status.group(1), output[-8000:]
    notes = re.findall(r"^\* (checking .*?) \.\.\. NOTE$", output, flags=re.MULTILINE)
    assert set(notes) <= set(EXPLAINED_NOTES), notes
    assert "cannot open URL" not in output  # no repository was contacted


def test_package_tests_ran_under_r_cmd_check_without_skips(checked, record_property):
    folder, _ = checked
    log = (folder / "tests" / "testthat.Rout").read_text()
    failed, warned, skipped, passed = map(int, SUMMARY.findall(log)[-1])
    assert (failed, warned, skipped) == (0, 0, 0), log[-6000:]
    assert passed >= 200, log[-3000:]
    counts = re.search(r"R bad inputs tried: (\d+); R errors: (\d+); R warnings: (\d+)", log)
    assert counts is not None, log[-3000:]
    tried, errors, warnings = map(int, counts.groups())
    record_property("r_bad_inputs", {"tried": tried, "errors": errors, "warnings": warnings})
    print(f"R bad inputs: {tried} tried, {errors} R errors, {warnings} R warnings; testthat PASS {passed}")
    assert tried == errors + warnings and tried >= 40


def test_vignette_ran_with_its_figures(checked):
    folder, _ = checked
    html = (folder / "lmfomics" / "doc" / "lmfomics.html").read_text()
    assert "was built without the Python side" not in html
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 3
    assert "converged: TRUE" in html
    assert "lmf_fixed" in html and "&quot;lmf_random&quot;" in html


@pytest.fixture(scope="module")
def expected(tmp_path_factory) -> Path:
    """The Python fit of the shared ECCITE-seq data, and the same data with the gene mask as a file."""
    folder = tmp_path_factory.mktemp("r_expected")
    adata = datasets.eccite_pbmc_500()
    adata.var["used"] = np.asarray((adata.X > 0).sum(0)).ravel() >= MIN_CELLS
    adata.write_h5ad(folder / "eccite_used.h5ad")
    with threadpool_limits(1):  # as the R side: threaded BLAS only spins on these thin matrices
        tl.lmf(
            adata,
            response="obsm:protein_counts",
            fixed="X",
            random="obs:hashtag",
            n_factors=N_FACTORS,
            mask_var="used",
            random_state=0,
            progress=False,
        )
    factors = [f"Factor{i + 1}" for i in range(N_FACTORS)]
    uns = adata.uns["lmf"]
    tables = {
        "codes": pd.DataFrame(adata.obsm["X_lmf"], adata.obs_names, factors),
        "fixed_codes": pd.DataFrame(adata.obsm["X_lmf_fixed"], adata.obs_names, factors),
        "random_codes": pd.DataFrame(adata.obsm["X_lmf_random"], adata.obs_names, factors),
        "loadings_response": pd.DataFrame(
            uns["modalities"]["response"]["loadings"], adata.obsm["protein_counts"].columns, factors
        ),
        "loadings_fixed": pd.DataFrame(adata.varm["lmf_loadings_fixed"], adata.var_names, factors),
        "variance_explained": pd.DataFrame(uns["variance_explained"], factors),
        "summary": pd.DataFrame(
            {
                "value": {
                    "rna_nonzero": adata.X.nnz,
                    "rna_total": adata.X.sum(dtype=np.float64),
                    "rna_total_cell7": adata.X[6].sum(dtype=np.float64),
                    "adt_total": adata.obsm["protein_counts"].to_numpy().sum(dtype=np.float64),
                }
            }
        ),
    }
    for name, table in tables.items():
        table.to_csv(folder / f"{name}.csv", float_format="%.17g")
    pd.DataFrame({"n_factors": [N_FACTORS], "min_cells": [MIN_CELLS], "random_state": [0]}).to_csv(
        folder / "params.csv", index=False
    )
    return folder


def test_eccite_fit_from_r_matches_python(r_env, expected, tmp_path):
    script = HERE / "test-eccite.R"
    runner = (
        "reporter <- testthat::ProgressReporter$new(show_praise = FALSE);"
        f"results <- as.data.frame(testthat::test_file({str(script)!r}, reporter = reporter));"
        "quit(status = as.integer(any(results$failed > 0 | results$error)))"
    )
    done, seconds = run_r(r_env, ["-e", runner], tmp_path, LMF_R_EXPECTED=str(expected))
    output = done.stdout + done.stderr
    print(output[-3000:], f"R part: {seconds:.1f} s", sep="\n")
    summaries = SUMMARY.findall(output)
    assert done.returncode == 0 and summaries, output[-6000:]
    failed, warned, skipped, passed = map(int, summaries[-1])
    assert (failed, warned, skipped) == (0, 0, 0), output[-6000:]
    assert passed >= 25, output[-6000:]


def readme_r_snippet() -> str:
    section = next(
        s for s in re.split(r"\n(?=## )", (REPO / "README.md").read_text()) if s.startswith("## Use it from R")
    )
    return re.search(r"```r\n(.*?)```", section, flags=re.DOTALL).group(1)


def test_readme_r_snippet_runs_verbatim(r_env, tmp_path):
    script = tmp_path / "readme.R"
    script.write_text(readme_r_snippet())
    done, _ = run_r(r_env, [str(script)], REPO)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert '"LMF"        "LMF_fixed"  "LMF_random"' in output, output[-3000:]
    assert re.search(r"^\[1\]\s+49\s+100$", output, flags=re.MULTILINE), output[-3000:]
    assert "Warning" not in output, output[-3000:]


FIT = (
    "library(lmfomics); x <- matrix(rnorm(200), 10, 20); "
    "tryCatch(calculateLMF(x, response = x[1:3, ], ncomponents = 2), error = function(e) {"
    "cat(class(e)[1], conditionMessage(e), sep = '\\n'); quit(status = 3)})"
)


def test_a_numpy_2_python_is_refused_with_what_to_run(r_env, tmp_path):
    """RETICULATE_PYTHON is honoured, and checked: this process's Python has NumPy 2."""
    assert int(np.__version__.split(".")[0]) >= 2
    done, _ = run_r(r_env, ["-e", FIT], tmp_path, RETICULATE_PYTHON=sys.executable, PYTHONPATH=str(REPO))
    output = done.stdout + done.stderr
    assert done.returncode == 3, output[-3000:]
    assert f"has NumPy {np.__version__}, but reticulate 1.28 needs NumPy < 2" in output, output[-3000:]
    assert "Run lmfomics::install_lmf_python()" in output


def test_a_python_without_lmf_omics_is_refused_with_what_to_run(r_env, tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([str(Path(sys.base_prefix) / "bin" / "python3"), "-m", "venv", str(bare)], check=True, timeout=300)
    done, _ = run_r(r_env, ["-e", FIT], tmp_path, RETICULATE_PYTHON=str(bare / "bin" / "python"))
    output = done.stdout + done.stderr
    assert done.returncode == 3, output[-3000:]
    assert "the Python module lmf_omics cannot be imported" in output, output[-3000:]
    assert 'lmfomics::install_lmf_python(".")' in output
