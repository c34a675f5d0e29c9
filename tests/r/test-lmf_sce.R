# lmf.R from real R (run by tests/r/test_lmf_r.py through Rscript and testthat).
#
# A SingleCellExperiment is built in R from the shared ECCITE-seq .h5ad (read through reticulate and
# anndata; the RNA counts become a dgCMatrix built by hand, the ADT counts an altExp), fitted with
# lmf_sce(), and compared with the Python fit of the same data (tl.lmf in the pytest process, NumPy 2)
# that the pytest side wrote to CSV files in $LMF_R_EXPECTED.

suppressPackageStartupMessages({
  library(testthat)
  library(SingleCellExperiment)
})

expected_dir <- Sys.getenv("LMF_R_EXPECTED")
data_dir <- Sys.getenv("LMF_OMICS_DATA")
stopifnot(nzchar(expected_dir), nzchar(data_dir), nzchar(Sys.getenv("RETICULATE_PYTHON")))
source(system2(Sys.getenv("RETICULATE_PYTHON"), c("-m", "lmf_omics.r", "--path"), stdout = TRUE))

expected <- function(name) as.matrix(read.csv(file.path(expected_dir, paste0(name, ".csv")), row.names = 1,
                                              check.names = FALSE))
params <- as.list(read.csv(file.path(expected_dir, "params.csv")))
TOL <- 1e-6
max_abs <- function(a, b) max(abs(a - b))
n_factors <- params$n_factors

sce <- lmf_read_h5ad(file.path(data_dir, "eccite_pbmc_500.h5ad"), alt_exps = c(ADT = "protein_counts"))
keep <- Matrix::rowSums(counts(sce) > 0) >= params$min_cells
fitted <- lmf_sce(sce, response = "altExp:ADT", fixed = "assay:counts", random = "colData:hashtag",
                  n_factors = n_factors, subset_row = keep)

test_that("reticulate embeds the NumPy < 2 venv", {
  config <- reticulate::py_config()
  expect_equal(normalizePath(config$python), normalizePath(Sys.getenv("RETICULATE_PYTHON")))
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

test_that("lmf_sce stores the codes as reducedDims with the cells' names", {
  for (name in c("LMF", "LMF_fixed", "LMF_random")) {
    codes <- reducedDim(fitted, name)
    expect_equal(dim(codes), c(500L, n_factors))
    expect_equal(rownames(codes), colnames(sce))
    expect_equal(colnames(codes), paste0("Factor", seq_len(n_factors)))
  }
  expect_equal(reducedDim(fitted, "LMF"), reducedDim(fitted, "LMF_fixed") + reducedDim(fitted, "LMF_random"),
               tolerance = 1e-12)
})

test_that("lmf_sce agrees with the Python fit of the same data to 1e-6", {
  for (name in c("codes", "fixed_codes", "random_codes")) {
    stored <- reducedDim(fitted, c(codes = "LMF", fixed_codes = "LMF_fixed", random_codes = "LMF_random")[[name]])
    difference <- max_abs(stored, expected(name)[colnames(sce), ])
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
  expect_equal(unlist(meta$modalities), c(response = "altExp:ADT", fixed = "assay:counts", random = "colData:hashtag"))
  expect_true(meta$converged)
})

test_that("lmf_h5ad fits the file directly, with the same numbers", {
  fit <- lmf_h5ad(file.path(expected_dir, "eccite_used.h5ad"), response = "obsm:protein_counts", fixed = "X",
                  random = "obs:hashtag", n_factors = n_factors, mask_var = "used")
  expect_equal(rownames(fit$codes), colnames(sce))
  expect_lt(max_abs(fit$codes, reducedDim(fitted, "LMF")), TOL)
  expect_lt(max_abs(fit$random_codes, reducedDim(fitted, "LMF_random")), TOL)
  expect_equal(rownames(fit$loadings$fixed), rownames(sce)[keep])
  expect_equal(colnames(fit$variance_explained), c("response", "fixed", "random"))
})

# Small simulated experiments for the input conversions (fast: a few cells and features).
small_sce <- function(seed = 1) {
  set.seed(seed)
  genes <- matrix(rpois(40 * 30, 3), 40, 30, dimnames = list(paste0("g", 1:40), paste0("c", 1:30)))
  sce <- SingleCellExperiment(assays = list(counts = genes),
                              colData = DataFrame(batch = rep(c("a", "b", "c"), 10), depth = runif(30),
                                                  flag = rep(c(TRUE, FALSE), 15)))
  altExp(sce, "ADT") <- SummarizedExperiment(list(counts = matrix(rpois(8 * 30, 20), 8, 30,
                                                                  dimnames = list(paste0("p", 1:8), colnames(sce)))))
  reducedDim(sce, "PCA") <- matrix(rnorm(30 * 5), 30, 5)
  sce
}
small_fit <- function(sce, ...) lmf_sce(sce, response = "altExp:ADT", fixed = "assay:counts", n_factors = 3,
                                        tol = 1e-4, ...)

test_that("integer, double and dgCMatrix assays give the same fit", {
  sce <- small_sce()
  expect_type(counts(sce), "integer")
  as_integer <- reducedDim(small_fit(sce, random = "colData:batch"), "LMF")
  counts(sce) <- counts(sce) + 0
  expect_equal(reducedDim(small_fit(sce, random = "colData:batch"), "LMF"), as_integer, tolerance = 1e-12)
  counts(sce) <- as(counts(sce), "CsparseMatrix")
  expect_equal(reducedDim(small_fit(sce, random = "colData:batch"), "LMF"), as_integer, tolerance = 1e-12)
})

test_that("reducedDim and mixed colData modalities work; loadings land in metadata", {
  sce <- small_fit(small_sce(), random = "colData:batch,depth,flag")
  random <- metadata(sce)$LMF$loadings$random
  expect_equal(rownames(random), c("batch=a", "batch=b", "batch=c", "depth", "flag=FALSE", "flag=TRUE"))
  pca <- lmf_sce(small_sce(), response = "altExp:ADT", fixed = "reducedDim:PCA", n_factors = 2, tol = 1e-4)
  expect_equal(dim(metadata(pca)$LMF$loadings$fixed), c(5L, 2L))
  expect_false("LMF_random" %in% reducedDimNames(pca))
})

test_that("R's NA is reported, not fitted: numeric, integer, character, logical, factor", {
  sce <- small_sce()
  counts(sce)[3, 5] <- NA
  expect_error(small_fit(sce), "1 missing value\\(s\\) \\(R NA\\), the first for cell 'c5' and feature 'g3'")
  sce <- small_sce()
  assay(altExp(sce, "ADT"))[2, 4] <- NA_integer_
  expect_error(small_fit(sce), "altExp:ADT has 1 missing value\\(s\\).*cell 'c4' and feature 'p2'")
  sce <- small_sce()
  sce$batch[7] <- NA
  expect_error(small_fit(sce, random = "colData:batch"), "column 'batch' has 1 missing value\\(s\\) \\(R NA\\), the first for cell 'c7'")
  sce <- small_sce()
  sce$flag[2] <- NA
  expect_error(small_fit(sce, random = "colData:flag"), "column 'flag' has 1 missing.*cell 'c2'")
  sce <- small_sce()
  sce$depth[9] <- NA
  expect_error(small_fit(sce, random = "colData:depth"), "column 'depth' has 1 missing.*cell 'c9'")
})

test_that("an experiment without dimnames is fitted without warnings", {
  sce <- small_sce()
  bare <- SingleCellExperiment(assays = list(counts = unname(counts(sce))))
  altExp(bare, "ADT") <- SummarizedExperiment(list(counts = unname(assay(altExp(sce, "ADT")))))
  expect_warning(fitted <- small_fit(bare), NA)
  expect_null(rownames(reducedDim(fitted, "LMF")))
  expect_equal(rownames(metadata(fitted)$LMF$loadings$fixed)[1:2], c("fixed1", "fixed2"))
})

test_that("bad specs are named with what is available", {
  sce <- small_sce()
  expect_error(lmf_sce(sce, response = "altExp:HTO", fixed = "assay:counts"), "'HTO' not found in altExpNames\\(sce\\); available: ADT")
  expect_error(lmf_sce(sce, response = "altExp:ADT", fixed = "assay:logcounts"), "available: counts")
  expect_error(lmf_sce(sce, response = "altExp:ADT", fixed = "counts"), "is not a modality spec")
  expect_error(lmf_sce(counts(sce), response = "altExp:ADT", fixed = "assay:counts"), "must be a SingleCellExperiment")
  expect_error(small_fit(sce, subset_row = c(TRUE, FALSE)), "subset_row is a logical of length 2")
  expect_error(small_fit(sce, subset_row = c("g1", "nope")), "subset_row must select rows")
})
