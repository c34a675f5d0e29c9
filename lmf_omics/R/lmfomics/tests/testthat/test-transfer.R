test_that("transformLMF gives the reference's own cells their codes, features matched by name", {
  skip_without_python()
  sce <- fit_small(small_sce(), random = "batch")
  query <- sce[rev(rownames(sce)), ]  # genes in another order
  SingleCellExperiment::reducedDims(query) <- list()
  query <- transformLMF(query, sce)
  for (name in c("LMF", "LMF_fixed", "LMF_random")) {
    expect_equal(SingleCellExperiment::reducedDim(query, name)[, ], SingleCellExperiment::reducedDim(sce, name)[, ],
                 tolerance = 1e-10, ignore_attr = TRUE, label = name)
  }
  expect_equal(colnames(SingleCellExperiment::reducedDim(query, "LMF_fixed")), paste0("LMF_fixed_", 1:3))
})

test_that("predictLMF predicts the response of query cells from RNA and covariates", {
  skip_without_python()
  sce <- small_sce(n_cells = 45)
  reference <- fit_small(sce[, 1:30], random = "batch")
  query <- sce[, 31:45]
  SingleCellExperiment::altExps(query) <- list()
  predicted <- predictLMF(query, reference)
  expect_equal(dim(predicted), c(8L, 15L))
  expect_equal(dimnames(predicted), list(paste0("p", 1:8), colnames(query)))
  expect_false(anyNA(predicted))
  # the model's own equation: mean + K alpha' + H alpha' on the query's codes (fixed effects only for RNA)
  coded <- transformLMF(query, reference)
  loadings <- S4Vectors::metadata(reference)$LMF$loadings$response
  centred <- predicted - rowMeans(SummarizedExperiment::assay(SingleCellExperiment::altExp(sce[, 1:30], "ADT"),
                                                               "logcounts"))
  expect_equal(t(centred), SingleCellExperiment::reducedDim(coded, "LMF")[, ] %*% t(loadings), tolerance = 1e-8,
               ignore_attr = TRUE)
})

test_that("a query without the fit's features or modalities is an R error that lists them", {
  skip_without_python()
  reference <- fit_small(small_sce())
  query <- small_sce()[c("g1", "g2"), ]
  SingleCellExperiment::altExps(query) <- list()
  expect_error(transformLMF(query, reference), "lacks 38 of the 40 features the fit used", class = "lmfomics_error")
  expect_error(transformLMF(query, S4Vectors::metadata(reference)$LMF), "lacks 38")
  SummarizedExperiment::assays(query) <- list()
  expect_error(predictLMF(query, reference), "none of the reference's modalities")
  expect_error(transformLMF(small_sce(), small_sce()), "fitted by runLMF")
})
