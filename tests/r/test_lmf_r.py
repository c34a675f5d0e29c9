"""lmf.R from real R: testthat and the R tutorial through Rscript, against the Python fit.

The R side (tests/r/test-lmf_sce.R) builds a SingleCellExperiment from the shared ECCITE-seq
.h5ad, fits it with ``lmf_sce()`` through reticulate (NumPy < 2 venv) and compares with the fit
this process makes with ``tl.lmf`` (NumPy 2), written to CSV files with 17 significant digits.
"""

import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits  # via scanpy's scikit-learn

from lmf_omics import datasets, tl
from lmf_omics.r import R_FILE

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
N_FACTORS = 8
MIN_CELLS = 100  # genes detected in at least this many cells (1,754 of 19,521) keep the fits quick
R_TIMEOUT = 900
SUMMARY = re.compile(r"\[ FAIL (\d+) \| WARN (\d+) \| SKIP (\d+) \| PASS (\d+) \]")


@pytest.fixture(scope="module")
def expected(tmp_path_factory) -> Path:
    """The Python fit of the shared ECCITE-seq data, and the same data with the gene mask as a file."""
    folder = tmp_path_factory.mktemp("r_expected")
    adata = datasets.eccite_pbmc_500()
    adata.var["used"] = np.asarray((adata.X > 0).sum(0)).ravel() >= MIN_CELLS
    adata.write_h5ad(folder / "eccite_used.h5ad")
    with threadpool_limits(1):  # as the R side (provision.py): threaded BLAS only spins on these thin matrices
        tl.lmf(
            adata,
            response="obsm:protein_counts",
            fixed="X",
            random="obs:hashtag",
            n_factors=N_FACTORS,
            mask_var="used",
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
    pd.DataFrame({"n_factors": [N_FACTORS], "min_cells": [MIN_CELLS]}).to_csv(folder / "params.csv", index=False)
    return folder


def run_r(r_env, arguments: list[str], cwd: Path, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    environment = r_env.env(LMF_OMICS_DATA=str(datasets.shared_data_dir()), **env)
    done = subprocess.run(
        [r_env.rscript, *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=R_TIMEOUT,
        env=environment,
        check=False,
    )
    return done, time.perf_counter() - start


def test_installed_package_ships_the_r_file(r_env, tmp_path):
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
    assert installed.is_relative_to(r_env.site), installed  # the built wheel, not this checkout
    assert installed.read_text() == R_FILE.read_text()


def test_lmf_sce_from_r_matches_python(r_env, expected, record_property, tmp_path):
    script = HERE / "test-lmf_sce.R"
    runner = (
        f"results <- as.data.frame(testthat::test_file({str(script)!r}, reporter = 'check'));"
        "quit(status = as.integer(any(results$failed > 0 | results$error)))"
    )
    done, seconds = run_r(r_env, ["-e", runner], cwd=tmp_path, LMF_R_EXPECTED=str(expected))
    record_property("r_seconds", round(seconds, 1))
    record_property("provision_seconds", {k: round(v, 1) for k, v in r_env.timings.items()})
    output = done.stdout + done.stderr
    print(output, f"R part: {seconds:.1f} s; provisioning (s): {r_env.timings}", sep="\n")  # shown by pytest -rP
    summaries = SUMMARY.findall(output)
    assert done.returncode == 0 and summaries, output[-6000:]
    failed, warned, skipped, passed = map(int, summaries[-1])
    assert (failed, skipped) == (0, 0), output[-6000:]
    assert passed >= 50, output[-6000:]
    assert warned == 0, output[-6000:]


def test_r_tutorial_runs(r_env, tmp_path):
    tutorial = REPO / "tutorials" / "r_singlecellexperiment.R"
    done, _ = run_r(r_env, [str(tutorial)], cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "reducedDimNames(4): HTO LMF LMF_fixed LMF_random" in output, output[-6000:]
    figure = tmp_path / "lmf_sce_codes.png"
    assert figure.is_file() and figure.stat().st_size > 20_000, output[-6000:]
