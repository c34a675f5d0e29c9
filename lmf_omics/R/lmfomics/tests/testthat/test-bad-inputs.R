# The R catalogue of bad inputs: each case is an R error or an R warning (never a Python traceback),
# raised with the argument as the R user typed it; the input object is unchanged. The counts are printed.

with_column <- function(sce, name, values) {
  SummarizedExperiment::colData(sce)[[name]] <- values
  sce
}
with_na <- function(sce, assay, row, col, value = NA) {
  SummarizedExperiment::assay(sce, assay)[row, col] <- value
  sce
}
adt_na <- function(sce) {
  alt <- SingleCellExperiment::altExp(sce, "ADT")
  SummarizedExperiment::assay(alt, "logcounts")[2, 4] <- NA
  SingleCellExperiment::altExp(sce, "ADT") <- alt
  sce
}

bad_input_cases <- list(
  list("ncomponents = NA", function(x) runLMF(x, response = "ADT", ncomponents = NA), "error",
       "ncomponents must be one whole number >= 1, got  ?logi NA"),
  list("ncomponents = 2.5", function(x) runLMF(x, response = "ADT", ncomponents = 2.5), "error",
       "ncomponents must be one whole number >= 1, got  ?num 2.5"),
  list("ncomponents = 0", function(x) runLMF(x, response = "ADT", ncomponents = 0), "error", "whole number >= 1"),
  list("ncomponents = c(2, 3)", function(x) runLMF(x, response = "ADT", ncomponents = c(2, 3)), "error",
       "one whole number"),
  list("more factors than proteins", function(x) runLMF(x, response = "ADT", ncomponents = 9), "error",
       "ncomponents = 9 is larger than the features of assay\\(altExp\\(x, \"ADT\"\\), \"logcounts\"\\) \\(8\\)"),
  list("assay.type missing", function(x) runLMF(x, response = "ADT", assay.type = "normcounts"), "error",
       "assay.type = \"normcounts\" is not an assay of x; available: counts, logcounts"),
  list("an altExp that is not there", function(x) runLMF(x, response = "HTO"), "error",
       "response = \"HTO\" is not an alternative experiment of x; altExpNames\\(x\\): ADT"),
  list("a colData column that is not there", function(x) runLMF(x, response = "ADT", random = "donor"), "error",
       "random: 'donor' not found in colnames\\(colData\\(x\\)\\); available: batch, depth, flag"),
  list("an unknown option", function(x) runLMF(x, response = "ADT", n_factor = 3), "error",
       "unknown option\\(s\\) 'n_factor'; the options are: .*max_iter"),
  list("weights unnamed", function(x) runLMF(x, response = "ADT", weights = c(1, 2)), "error",
       "weights must be a named vector or list"),
  list("weights for an unknown role", function(x) runLMF(x, response = "ADT", weights = c(protein = 1)), "error",
       "names among response, fixed, random"),
  list("weights negative", function(x) runLMF(x, response = "ADT", weights = list(fixed = -1)), "error",
       "finite numbers >= 0"),
  list("weights as text", function(x) runLMF(x, response = "ADT", weights = list(fixed = "a")), "error",
       "one number per modality"),
  list("max_iter of length 2", function(x) runLMF(x, response = "ADT", max_iter = c(1, 2)), "error",
       "max_iter must be a single value"),
  list("max_iter = NA", function(x) runLMF(x, response = "ADT", max_iter = NA), "error", "max_iter must be a single"),
  list("an unknown solver", function(x) runLMF(x, response = "ADT", solver = "fast"), "error",
       "solver.*'fast'", "lmfomics_error"),
  list("subset_row with NA", function(x) runLMF(x, response = "ADT", subset_row = c("g1", NA)), "error",
       "subset_row has NA"),
  list("subset_row names absent", function(x) runLMF(x, response = "ADT", subset_row = c("g1", "nope")), "error",
       "subset_row selects rows that x does not have \\(nope\\)"),
  list("subset_row duplicated", function(x) runLMF(x, response = "ADT", subset_row = c("g1", "g2", "g1")), "error",
       "subset_row selects 1 row\\(s\\) more than once \\(e.g. g1\\)"),
  list("subset_row factor duplicated", function(x) runLMF(x, response = "ADT", subset_row = factor(c("g3", "g3", "g4"))),
       "error", "more than once \\(e.g. g3\\)"),
  list("subset_row logical too short", function(x) runLMF(x, response = "ADT", subset_row = c(TRUE, FALSE)), "error",
       "subset_row is a logical of length 2; it needs one value per row \\(40\\)"),
  list("subset_row out of range", function(x) runLMF(x, response = "ADT", subset_row = 41:42), "error",
       "selects rows that x does not have"),
  list("a Date column", function(x) runLMF(with_column(x, "day", as.Date("2024-01-01") + seq_len(ncol(x))),
                                         response = "ADT", random = "day"), "error",
       "column 'day' is a Date; LMF needs numbers or categories: as.numeric\\(day\\)"),
  list("a POSIXct column", function(x) runLMF(with_column(x, "time", as.POSIXct("2024-01-01", tz = "UTC") +
                                                           seq_len(ncol(x))), response = "ADT", random = "time"),
       "error", "column 'time' is a POSIXct"),
  list("a list column", function(x) runLMF(with_column(x, "bag", as.list(seq_len(ncol(x)))), response = "ADT",
                                         random = "bag"), "error", "column 'bag' is a list"),
  list("0 cells", function(x) runLMF(x[, 0], response = "ADT"), "error", "x has 0 cell\\(s\\); LMF needs at least 2"),
  list("1 cell", function(x) runLMF(x[, 1], response = "ADT"), "error", "x has 1 cell\\(s\\); LMF needs at least 2"),
  list("R NA in the RNA", function(x) runLMF(with_na(x, "logcounts", 3, 5), response = "ADT"), "error",
       "assay\\(x, \"logcounts\"\\) has 1 missing value\\(s\\) \\(R NA\\), the first for cell 'c5' and feature 'g3'"),
  list("R Inf in the RNA", function(x) runLMF(with_na(x, "logcounts", 2, 7, Inf), response = "ADT"), "error",
       "1 infinite value\\(s\\) \\(R Inf\\), the first for cell 'c7' and feature 'g2'"),
  list("R NA in the altExp", function(x) runLMF(adt_na(x), response = "ADT"), "error",
       "assay\\(altExp\\(x, \"ADT\"\\), \"logcounts\"\\) has 1 missing value.*cell 'c4' and feature 'p2'"),
  list("R NA in a character covariate", function(x) runLMF(with_column(x, "batch", replace(x$batch, 7, NA)),
                                                          response = "ADT", random = "batch"), "error",
       "random = \"batch\": column 'batch' has 1 missing value\\(s\\) \\(R NA\\), the first for cell 'c7'"),
  list("R NA in a logical covariate", function(x) runLMF(with_column(x, "flag", replace(x$flag, 2, NA)),
                                                        response = "ADT", random = "flag"), "error",
       "column 'flag' has 1 missing.*cell 'c2'"),
  list("R NA in an integer covariate", function(x) runLMF(with_column(x, "n", replace(seq_len(ncol(x)), 9, NA)),
                                                         response = "ADT", random = "n"), "error",
       "column 'n' has 1 missing.*cell 'c9'"),
  list("a logical matrix with NA", function(x) calculateLMF(SingleCellExperiment::counts(x) > 2,
                                                           response = replace(SingleCellExperiment::counts(x) > 1, 5, NA),
                                                           ncomponents = 2), "error",
       "response has 1 missing value\\(s\\) \\(NA\\), the first for cell 'c1' and feature 'g5'"),
  list("a character matrix", function(x) calculateLMF(SingleCellExperiment::counts(x),
                                                     response = matrix("a", 2, ncol(x))), "error",
       "response must be numeric, got a character matrix"),
  list("response with other cells", function(x) calculateLMF(SingleCellExperiment::counts(x),
                                                            response = SingleCellExperiment::counts(x)[, 1:5]),
       "error", "response has 5 cells \\(columns\\), but x has 30 cells"),
  list("random with other cells", function(x) calculateLMF(SingleCellExperiment::counts(x),
                                                          response = SingleCellExperiment::counts(x), random = 1:3),
       "error", "random describes 3 cells, but the data have 30"),
  list("a constant response", function(x) calculateLMF(SingleCellExperiment::counts(x), response = matrix(1, 3, ncol(x)),
                                                      ncomponents = 2), "error",
       "response has no variance after centring"),
  list("not converged", function(x) runLMF(x, response = "ADT", ncomponents = 2, max_iter = 2), "warning",
       "did not converge in 2 iterations \\(tol=1e-06\\); increase max_iter or tol"),
  list("a reference without a fit", function(x) transformLMF(x, x), "error", "fitted by runLMF"),
  list("a query that is not an experiment", function(x) predictLMF(SingleCellExperiment::counts(x), x), "error",
       "reference must be a SingleCellExperiment fitted by runLMF"),
  list("name not a string", function(x) runLMF(x, response = "ADT", name = 1), "error",
       "name must be one non-empty character string"),
  list("a Seurat function on an SCE", function(x) RunLMF(x), "error", "object must be a Seurat object"),
  list("an h5ad file that is not there", function(x) lmf_h5ad("nope.h5ad", "X", "X"), "error",
       "'nope.h5ad' is not a file"),
  list("a file that is not h5ad", function(x) {
    path <- tempfile(fileext = ".h5ad")
    writeLines("junk", path)
    lmf_read_h5ad(path)
  }, "error", "cannot read '.*' as an .h5ad file")
)

test_that("every bad input is an R error or warning naming it, and the input is unchanged", {
  skip_without_python()
  sce <- small_sce()
  before <- sce
  counts <- c(error = 0L, warning = 0L)
  for (case in bad_input_cases) {
    name <- case[[1]]
    expected <- case[[3]]
    outcome <- tryCatch({
      withCallingHandlers(case[[2]](sce), warning = function(w) {
        if (expected == "warning") stop(structure(class = c("seen_warning", "error", "condition"),
                                                  list(message = conditionMessage(w), call = NULL, original = w)))
      })
      NULL
    }, error = identity)
    if (expected == "warning") {
      expect_s3_class(outcome, "seen_warning")
      expect_s3_class(outcome$original, "lmfomics_warning")
    } else {
      expect_s3_class(outcome, "error")
      expect_false(inherits(outcome, "Rcpp::exception"), label = name)
      expect_no_match(conditionMessage(outcome), "Traceback|obsm:|help\\(lmf_omics|Detailed", label = name)
    }
    if (length(case) >= 5) expect_s3_class(outcome, case[[5]])
    expect_match(conditionMessage(outcome), case[[4]], label = name)
    counts[[expected]] <- counts[[expected]] + 1L
  }
  expect_identical(sce, before)
  expect_equal(sum(counts), length(bad_input_cases))
  cat(sprintf("\nR bad inputs tried: %d; R errors: %d; R warnings: %d\n", length(bad_input_cases), counts[["error"]],
              counts[["warning"]]))
})
