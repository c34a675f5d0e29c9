test_that("Python's exceptions arrive as R errors in R words", {
  skip_without_python()
  sce <- small_sce()
  error <- tryCatch(runLMF(sce, response = "ADT", ncomponents = 9), error = identity)
  expect_s3_class(error, "lmfomics_error")
  expect_s3_class(error, "lmfomics_ValueError")
  expect_match(conditionMessage(error), "ncomponents = 9 is larger than the features of assay(altExp(x, \"ADT\"), \"logcounts\") (8)",
               fixed = TRUE)
  expect_no_match(conditionMessage(error), "obsm|n_factors|help\\(lmf_omics|Traceback")
  SummarizedExperiment::assay(SingleCellExperiment::altExp(sce, "ADT"), "logcounts")[] <- 1
  expect_error(runLMF(sce, response = "ADT", ncomponents = 2), "assay\\(altExp\\(x, \"ADT\"\\), \"logcounts\"\\) has no variance",
               class = "lmfomics_error")
})

test_that("Python's warnings arrive as R warnings: suppressWarnings and withCallingHandlers work", {
  skip_without_python()
  sce <- small_sce()
  not_converged <- function() runLMF(sce, response = "ADT", ncomponents = 2, max_iter = 2, random_state = 0)
  expect_warning(not_converged(), "did not converge in 2 iterations", class = "lmfomics_warning")
  expect_no_warning(suppressWarnings(not_converged()))
  seen <- character()
  fitted <- withCallingHandlers(not_converged(), warning = function(w) {
    seen <<- c(seen, conditionMessage(w))
    invokeRestart("muffleWarning")
  })
  expect_length(seen, 1L)
  expect_match(seen, "increase max_iter or tol")
  expect_s4_class(fitted, "SingleCellExperiment")
})

test_that("a good fit raises no warning at all", {
  skip_without_python()
  expect_no_warning(fit_small(small_sce(), random = "batch"))
})
