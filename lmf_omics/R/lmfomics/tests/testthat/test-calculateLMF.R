test_that("runLMF stores K + H, K and H with distinct column names and scater's attributes", {
  skip_without_python()
  sce <- fit_small(small_sce(), random = "batch")
  expect_equal(SingleCellExperiment::reducedDimNames(sce), c("LMF", "LMF_fixed", "LMF_random"))
  combined <- SingleCellExperiment::reducedDim(sce, "LMF")
  expect_equal(colnames(combined), paste0("LMF_", 1:3))
  expect_equal(colnames(SingleCellExperiment::reducedDim(sce, "LMF_fixed")), paste0("LMF_fixed_", 1:3))
  expect_equal(colnames(SingleCellExperiment::reducedDim(sce, "LMF_random")), paste0("LMF_random_", 1:3))
  expect_equal(rownames(combined), colnames(sce))
  expect_equal(unclass(combined)[, ], SingleCellExperiment::reducedDim(sce, "LMF_fixed")[, ] +
                 SingleCellExperiment::reducedDim(sce, "LMF_random")[, ], tolerance = 1e-12, ignore_attr = TRUE)
  variance <- attr(combined, "varExplained")
  expect_equal(dim(variance), c(3L, 3L))
  expect_equal(colnames(variance), c("response", "fixed", "random"))
  expect_true(all(variance >= 0 & variance <= 1))
  expect_equal(unname(attr(combined, "percentVar")), 100 * unname(variance[, "response"]))
  expect_equal(dim(attr(combined, "rotation")), c(40L, 3L))
  meta <- S4Vectors::metadata(sce)$LMF
  expect_true(is.character(meta$model) && nchar(meta$model) > 100)
  expect_equal(meta$modalities$random, "batch")
  expect_equal(rownames(meta$loadings$random), c("batch=a", "batch=b", "batch=c"))
})

test_that("calculateLMF on matrices equals runLMF on the experiment", {
  skip_without_python()
  sce <- small_sce()
  stored <- fit_small(sce, random = "batch")
  codes <- calculateLMF(SingleCellExperiment::logcounts(sce),
                        response = SummarizedExperiment::assay(SingleCellExperiment::altExp(sce, "ADT"), "logcounts"),
                        random = sce$batch, ncomponents = 3, tol = 1e-4, random_state = 0)
  expect_equal(colnames(codes), paste0("LMF_", 1:3))
  expect_equal(codes[, ], SingleCellExperiment::reducedDim(stored, "LMF")[, ], tolerance = 1e-12, ignore_attr = TRUE)
  expect_equal(attr(codes, "fixed")[, ], SingleCellExperiment::reducedDim(stored, "LMF_fixed")[, ], tolerance = 1e-12,
               ignore_attr = TRUE)
  transposed <- calculateLMF(t(SingleCellExperiment::logcounts(sce)),
                             response = t(SummarizedExperiment::assay(SingleCellExperiment::altExp(sce, "ADT"),
                                                                      "logcounts")),
                             random = sce$batch, ncomponents = 3, tol = 1e-4, random_state = 0, transposed = TRUE)
  expect_equal(transposed[, ], codes[, ], tolerance = 1e-12, ignore_attr = TRUE)
})

test_that("dense, dgCMatrix, dgRMatrix, dgTMatrix, DelayedMatrix and HDF5Matrix assays give the same fit", {
  skip_without_python()
  sce <- small_sce()
  reference <- SingleCellExperiment::reducedDim(fit_small(sce), "LMF")
  dense <- SingleCellExperiment::logcounts(sce)
  forms <- list(
    dgCMatrix = methods::as(dense, "CsparseMatrix"),
    dgRMatrix = methods::as(dense, "RsparseMatrix"),
    dgTMatrix = methods::as(dense, "TsparseMatrix"),
    DelayedMatrix = DelayedArray::DelayedArray(methods::as(dense, "CsparseMatrix"))
  )
  if (requireNamespace("HDF5Array", quietly = TRUE)) forms$HDF5Matrix <- HDF5Array::writeHDF5Array(dense, with.dimnames = TRUE)
  for (form in names(forms)) {
    SingleCellExperiment::logcounts(sce) <- forms[[form]]
    codes <- SingleCellExperiment::reducedDim(fit_small(sce), "LMF")
    expect_equal(codes, reference, tolerance = 1e-10, label = form)
  }
  expect_true("HDF5Matrix" %in% names(forms))
})

test_that("set.seed() drives the seed when random_state is not given", {
  skip_without_python()
  sce <- small_sce()
  fit <- function() runLMF(sce, response = "ADT", ncomponents = 3, tol = 1e-4)
  set.seed(11)
  first <- fit()
  set.seed(11)
  again <- fit()
  set.seed(12)
  other <- fit()
  seed <- function(x) S4Vectors::metadata(x)$LMF$params$random_state
  expect_identical(seed(first), seed(again))
  expect_false(identical(seed(first), seed(other)))
  expect_identical(SingleCellExperiment::reducedDim(first, "LMF"), SingleCellExperiment::reducedDim(again, "LMF"))
})

test_that("subset_row follows scuttle: logical, indices, names and factors by their labels", {
  skip_without_python()
  sce <- small_sce()
  chosen <- c("g3", "g1", "g7", "g10", "g20", "g4")
  by_name <- fit_small(sce, subset_row = chosen)
  as_factor <- fit_small(sce, subset_row = factor(chosen, levels = rev(chosen)))  # codes 6, 5, ... are other rows
  by_index <- fit_small(sce, subset_row = match(chosen, rownames(sce)))
  by_logical <- fit_small(sce, subset_row = rownames(sce) %in% chosen)
  codes <- function(x) SingleCellExperiment::reducedDim(x, "LMF")
  expect_equal(codes(as_factor), codes(by_name), tolerance = 1e-12)
  expect_equal(codes(by_index), codes(by_name), tolerance = 1e-12)
  expect_equal(abs(codes(by_logical)), abs(codes(by_name)), tolerance = 1e-8)  # same rows, another order
  loadings <- SummarizedExperiment::rowData(by_name)$LMF_loadings_fixed
  expect_true(all(is.na(loadings[setdiff(rownames(sce), chosen), ])))
  expect_false(anyNA(loadings[chosen, ]))
})

test_that("rowData loadings survive subsetting and cbind", {
  skip_without_python()
  sce <- fit_small(small_sce())
  loadings <- SummarizedExperiment::rowData(sce)$LMF_loadings_fixed
  subset <- sce[c("g5", "g2"), 1:10]
  expect_equal(SummarizedExperiment::rowData(subset)$LMF_loadings_fixed, loadings[c("g5", "g2"), ])
  both <- BiocGenerics::cbind(sce[, 1:10], sce[, 11:30])  # what cbind() is once SingleCellExperiment is attached
  expect_equal(SummarizedExperiment::rowData(both)$LMF_loadings_fixed, loadings)
  expect_equal(SingleCellExperiment::reducedDim(both, "LMF_fixed"), SingleCellExperiment::reducedDim(sce, "LMF_fixed"))
  adt <- SummarizedExperiment::rowData(SingleCellExperiment::altExp(sce, "ADT"))$LMF_loadings_response
  expect_equal(dim(adt), c(8L, 3L))
})

test_that("colData covariates: character, logical and numeric columns; weights as a vector or a list", {
  skip_without_python()
  sce <- fit_small(small_sce(), random = c("batch", "depth", "flag"))
  random <- S4Vectors::metadata(sce)$LMF$loadings$random
  expect_equal(rownames(random), c("batch=a", "batch=b", "batch=c", "depth", "flag=FALSE", "flag=TRUE"))
  as_vector <- fit_small(small_sce(), weights = c(response = 1, fixed = 2))
  as_list <- fit_small(small_sce(), weights = list(response = 1, fixed = 2))
  expect_equal(SingleCellExperiment::reducedDim(as_vector, "LMF"), SingleCellExperiment::reducedDim(as_list, "LMF"))
  expect_equal(S4Vectors::metadata(as_vector)$LMF$params$weights$fixed, 2)
})

test_that("BPPARAM is accepted with a message, never sent to Python", {
  skip_without_python()
  skip_if_not_installed("BiocParallel")
  expect_message(fit_small(small_sce(), BPPARAM = BiocParallel::SerialParam()), "BPPARAM")
})
