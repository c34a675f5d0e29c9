# lmfomics from real R on the shared ECCITE-seq data (run by tests/r/test_lmf_r.py through testthat).
#
# A SingleCellExperiment is read from the .h5ad (the RNA counts become a dgCMatrix built by hand, the ADT
# counts an altExp), fitted with runLMF(), and compared with the Python fit of the same data (tl.lmf in the
# pytest process, NumPy 2) that the pytest side wrote to CSV files in $LMF_R_EXPECTED.

suppressPackageStartupMessages({
  library(testthat)
  library(lmfomics)
  library(SingleCellExperiment)
})

expected_dir <- Sys.getenv("LMF_R_EXPECTED")
data_dir <- Sys.getenv("LMF_OMICS_DATA")
stopifnot(nzchar(expected_dir), nzchar(data_dir))
expected <- function(name) as.matrix(read.csv(file.path(expected_dir, paste0(name, ".csv")), row.names = 1,
                                              check.names = FALSE))
params <- as.list(read.csv(file.path(expected_dir, "params.csv")))
TOL <- 1e-6
max_abs <- function(a, b) max(abs(a - b))
n_factors <- params$n_factors

sce <- lmf_read_h5ad(file.path(data_dir, "eccite_pbmc_500.h5ad"), alt_exps = c(ADT = "protein_counts"))
keep <- Matrix::rowSums(counts(sce) > 0) >= params$min_cells
fitted <- runLMF(sce, response = "ADT", random = "hashtag", assay.type = "counts", ncomponents = n_factors,
                 subset_row = keep, random_state = params$random_state)

test_that("reticulate embeds the virtualenv made by install_lmf_python(), with NumPy < 2", {
  config <- reticulate::py_config()
  expect_equal(normalizePath(config$python),
               normalizePath(file.path(Sys.getenv("WORKON_HOME"), "lmf-omics", "bin", "python")))
  expect_true(numeric_version(config$numpy$version) < "2.0")
})

test_that("the SingleCellExperiment holds the h5ad's counts (dgCMatrix built by hand)", {
  summary <- expected("summary")
  expect_s4_class(counts(sce), "dgCMatrix")
  expect_equal(dim(sce), c(19521L, 500L))
  expect_equal(dim(altExp(sce, "ADT")), c(49L, 500L))
  expect_equal(colnames(sce), rownames(expected("codes")))
  expect_equal(length(counts(sce)@x), summary[["rna_nonzero", 1]])
  expect_equal(sum(counts(sce)), summary[["rna_total", 1]])
  expect_equal(sum(counts(sce)[, 7]), summary[["rna_total_cell7", 1]])
  expect_equal(sum(assay(altExp(sce, "ADT"))), summary[["adt_total", 1]])
  expect_equal(levels(sce$hashtag), c("HTO28_5P", "HTO29_5P", "HTO30_5P", "HTO44_5P"))
})

test_that("runLMF agrees with the Python fit of the same data to 1e-6", {
  for (name in c("codes", "fixed_codes", "random_codes")) {
    stored <- reducedDim(fitted, c(codes = "LMF", fixed_codes = "LMF_fixed", random_codes = "LMF_random")[[name]])
    expect_equal(rownames(stored), colnames(sce))
    difference <- max_abs(unclass(stored)[, ], expected(name)[colnames(sce), ])
    cat(sprintf("max |R - Python| of %s: %.3g\n", name, difference))
    expect_lt(difference, TOL)
  }
  adt <- rowData(altExp(fitted, "ADT"))$LMF_loadings_response
  reference <- expected("loadings_response")
  expect_equal(rownames(adt), rownames(reference))
  expect_lt(max_abs(adt, reference) / max(abs(reference)), TOL)
  genes <- rowData(fitted)$LMF_loadings_fixed
  reference <- expected("loadings_fixed")
  expect_equal(rownames(genes), rownames(sce))
  expect_true(all(is.na(genes[!keep, ])))
  expect_lt(max_abs(genes[keep, ], reference[keep, ]) / max(abs(reference)), TOL)
  meta <- metadata(fitted)$LMF
  expect_lt(max_abs(meta$variance_explained, expected("variance_explained")), TOL)
  expect_equal(rownames(meta$loadings$random), paste0("hashtag=", levels(sce$hashtag)))
  expect_true(meta$converged)
})

test_that("lmf_h5ad fits the file directly, with the same numbers", {
  fit <- lmf_h5ad(file.path(expected_dir, "eccite_used.h5ad"), response = "obsm:protein_counts", fixed = "X",
                  random = "obs:hashtag", n_factors = n_factors, mask_var = "used", random_state = params$random_state)
  expect_equal(rownames(fit$codes), colnames(sce))
  expect_lt(max_abs(fit$codes, unclass(reducedDim(fitted, "LMF"))[, ]), TOL)
  expect_equal(rownames(fit$loadings$fixed), rownames(sce)[keep])
})
