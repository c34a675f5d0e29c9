#' Linear Mixed Forms on a matrix, SummarizedExperiment or SingleCellExperiment
#'
#' Fits `Y ~ (K + H) alpha'`, `X ~ K beta'`, `Z ~ H u'`: the response `Y` (e.g. surface
#' proteins) is explained by a fixed code `K` learnt from the fixed-effect data `X` (e.g. the
#' RNA of the same cells) and a random code `H` learnt from random-effect covariates `Z`
#' (e.g. the sample or batch). `calculateLMF()` returns the codes; `runLMF()` stores them in
#' `reducedDims(x)`, as [scater::calculatePCA()] and [scater::runPCA()] do. The fitting is
#' the Python package lmf-omics (`lmf_omics.tl.lmf`), so the numbers are those of the Python
#' package.
#'
#' @param x The fixed-effect data: a numeric matrix (base, sparse `Matrix` or
#'   `DelayedArray`) with features in rows and cells in columns, or a
#'   SummarizedExperiment/SingleCellExperiment whose assay `assay.type` is used.
#' @param response The response, for the same cells: a features x cells matrix, a
#'   SummarizedExperiment (its assay `response.assay.type`), or, for a SingleCellExperiment,
#'   the name of an alternative experiment (`altExp(x, response)`).
#' @param random Random-effect covariates: `NULL` (none), names of `colData(x)` columns, a
#'   data.frame or DataFrame with one row per cell, a factor or vector, or a cells x
#'   covariates matrix. Numeric columns are used as they are; factor, character and logical
#'   columns are one-hot encoded; Date and time columns are an error (convert them).
#' @param ncomponents Number of factors `k`.
#' @param subset_row Rows of `x` to use, as in scater: logical, integer or character (a factor
#'   by its labels), `NULL` for all. Loadings of the other rows are `NA`.
#' @param transposed Whether `x` (and a matrix `response`) have cells in rows.
#' @param BPPARAM Accepted for scater's signature. Where the Python model has an `n_jobs`
#'   option its number of workers becomes `n_jobs`; otherwise it is ignored, with a message.
#' @param assay.type The assay of `x` used as the fixed-effect data.
#' @param response.assay.type The assay of a SummarizedExperiment `response`.
#' @param ... Options of the model (see Details), e.g. `max_iter = 200`, `weights = c(response = 1, fixed = 2)`.
#' @param name For `runLMF()`: the stem of the reducedDims written.
#' @param .labels Internal: how error messages name the modalities.
#'
#' @details The options in `...` are those of Python's `lmf_omics.tl.lmf`: `solver`, `codes`,
#' `n_pcs`, `center`, `scale`, `weights` (a named vector or list by modality: `response`,
#' `fixed`, `random`), `ridge`, `max_iter`, `tol` and `random_state`. Without
#' `random_state` the seed is drawn from R's random numbers, so `set.seed()` makes fits
#' reproducible. Python's warnings (e.g. that the fit did not converge) arrive as R warnings;
#' its errors as R errors.
#'
#' @return `calculateLMF()`: the combined code `K + H`, a cells x `ncomponents` matrix with
#' columns `LMF_1`, ..., and attributes `fixed` (`K`, columns `LMF_fixed_1`, ...), `random`
#' (`H`, or `NULL`), `varExplained` (R^2 of each factor in each modality, factors x
#' modalities), `percentVar` (percentage of the response's variance each factor explains),
#' `rotation` (loadings of `x`'s features, `NA` outside `subset_row`), `loadings` (a list by
#' modality) and `fit` (convergence, options, the model for [transformLMF()]).
#'
#' `runLMF()`: `x` with `reducedDim(x, name)` (`K + H`, with the attributes `varExplained`,
#' `percentVar` and `rotation`), `reducedDim(x, paste0(name, "_fixed"))` (`K`) and
#' `reducedDim(x, paste0(name, "_random"))` (`H`); loadings in
#' `rowData(x)[[paste0(name, "_loadings_fixed")]]` and, for an altExp response,
#' `rowData(altExp(x, response))[[paste0(name, "_loadings_response")]]`; and the fit in
#' `metadata(x)[[name]]`, which [transformLMF()] and [predictLMF()] use.
#'
#' @seealso [transformLMF()], [predictLMF()], [RunLMF()] for Seurat objects.
#' @examples
#' if (lmf_python_available()) {
#'   library(SingleCellExperiment)
#'   set.seed(1)
#'   sce <- SingleCellExperiment(list(logcounts = matrix(rnorm(40 * 60), 40, 60,
#'     dimnames = list(paste0("gene", 1:40), paste0("cell", 1:60)))))
#'   altExp(sce, "ADT") <- SummarizedExperiment(list(logcounts = matrix(rnorm(8 * 60), 8, 60,
#'     dimnames = list(paste0("protein", 1:8), colnames(sce)))))
#'   sce$batch <- rep(c("a", "b", "c"), 20)
#'   sce <- runLMF(sce, response = "ADT", random = "batch", ncomponents = 3)
#'   reducedDimNames(sce)
#'   attr(reducedDim(sce, "LMF"), "percentVar")
#'   codes <- calculateLMF(logcounts(sce), response = assay(altExp(sce, "ADT"), "logcounts"),
#'                         random = sce$batch, ncomponents = 3)
#'   dim(codes)
#' }
#' @name calculateLMF
#' @aliases calculateLMF runLMF
NULL

#' @export
#' @rdname calculateLMF
setGeneric("calculateLMF", function(x, ...) standardGeneric("calculateLMF"))

#' @export
#' @rdname calculateLMF
setGeneric("runLMF", function(x, ...) standardGeneric("runLMF"))

#' @export
#' @rdname calculateLMF
setMethod("calculateLMF", "ANY", function(x, response, random = NULL, ncomponents = 10, subset_row = NULL,
                                          transposed = FALSE, BPPARAM = NULL, ..., .labels = list()) {
  labels <- utils::modifyList(list(fixed = "x", response = "response", random = "random"), .labels)
  if (isTRUE(transposed)) x <- t(x)
  if (isTRUE(transposed) && (is.matrix(response) || methods::is(response, "Matrix"))) response <- t(response)
  .lmf_cells(ncol(x), "x")
  rows <- .lmf_subset_rows(subset_row, x)
  parts <- list(
    response = .lmf_response_part(response, ncol(x), labels$response),
    fixed = .lmf_matrix_part(x, labels$fixed, rows),
    random = .lmf_covariate_part(random, ncol(x), labels$random)
  )
  .lmf_codes(.lmf_fit(parts, colnames(x), ncomponents, list(...), BPPARAM), x, rows)
})

#' @export
#' @rdname calculateLMF
setMethod("calculateLMF", "SummarizedExperiment", function(x, response, random = NULL, ..., assay.type = "logcounts",
                                                           response.assay.type = assay.type, .labels = list()) {
  labels <- list(fixed = paste0("assay(x, ", .lmf_quote(assay.type), ")"))
  if (is.character(random)) {
    labels$random <- paste0("random = ", .lmf_quote(random))
    random <- .lmf_coldata(x, random)
  }
  fixed <- .lmf_assay(x, assay.type)
  if (methods::is(response, "SummarizedExperiment")) {
    response <- .lmf_assay(response, response.assay.type, "response")
  }
  calculateLMF(fixed, response = response, random = random, ...,
               .labels = utils::modifyList(labels, .labels))
})

#' @export
#' @rdname calculateLMF
setMethod("calculateLMF", "SingleCellExperiment", function(x, response, random = NULL, ..., assay.type = "logcounts",
                                                           response.assay.type = assay.type) {
  labels <- list()
  if (is.character(response) && length(response) == 1L) {
    labels$response <- paste0("assay(altExp(x, ", .lmf_quote(response), "), ", .lmf_quote(response.assay.type), ")")
    response <- .lmf_altexp(x, response)
  }
  methods::callNextMethod(x, response = response, random = random, ..., assay.type = assay.type,
                          response.assay.type = response.assay.type, .labels = labels)
})

#' @export
#' @rdname calculateLMF
setMethod("runLMF", "SingleCellExperiment", function(x, response, random = NULL, ..., assay.type = "logcounts",
                                                     response.assay.type = assay.type, name = "LMF") {
  .lmf_check_string(name, "name")
  codes <- calculateLMF(x, response = response, random = random, ..., assay.type = assay.type,
                        response.assay.type = response.assay.type)
  fit <- attr(codes, "fit")
  fit$modalities <- list(
    fixed = list(assay.type = assay.type),
    response = if (is.character(response) && length(response) == 1L) {
      list(altExp = response, assay.type = response.assay.type)
    },
    random = if (is.character(random)) random
  )
  .lmf_store(x, codes, fit, name)
})

.lmf_altexp <- function(x, name) {
  available <- SingleCellExperiment::altExpNames(x)
  if (!name %in% available) {
    stop("response = \"", name, "\" is not an alternative experiment of x; altExpNames(x): ",
         if (length(available)) paste(available, collapse = ", ") else "none", call. = FALSE)
  }
  SingleCellExperiment::altExp(x, name)
}

.lmf_response_part <- function(response, n_cells, label) {
  if (is.null(response)) stop("response is missing; give the response modality", call. = FALSE)
  if (is.null(dim(response)) || ncol(response) != n_cells) {
    stop(label, " has ", if (is.null(dim(response))) "no columns" else paste(ncol(response), "cells (columns)"),
         ", but x has ", n_cells, " cells", call. = FALSE)
  }
  .lmf_matrix_part(response, label)
}

# A character vector as R code: "a" or c("a", "b").
.lmf_quote <- function(values) {
  if (!is.character(values)) return(deparse(values))
  quoted <- paste0("\"", values, "\"")
  if (length(quoted) == 1L) quoted else paste0("c(", paste(quoted, collapse = ", "), ")")
}

# The fit itself: parts to Python and back, with names.
.lmf_fit <- function(parts, cell_names, ncomponents, options, BPPARAM, renames = c(n_factors = "ncomponents")) {
  options <- .lmf_options(options, ncomponents, renames[["n_factors"]], BPPARAM)
  fit <- .lmf_call("fit", c(.lmf_arguments(parts, cell_names), options), renames)
  fit$loadings <- Map(function(values, names) {
    dimnames(values) <- list(unlist(names), NULL)
    values
  }, fit$loadings, fit$feature_names[names(fit$loadings)])
  fit$variance_explained <- do.call(cbind, lapply(fit$variance_explained, as.numeric))
  fit$total_variance_explained <- unlist(fit$total_variance_explained)
  fit$objective_history <- as.numeric(fit$objective_history)
  fit$cell_names <- cell_names
  fit
}

# calculateLMF's value: K + H with attributes, in scater's manner.
.lmf_codes <- function(fit, x, rows, stem = "LMF") {
  k <- ncol(fit$codes)
  name <- function(codes, suffix) {
    if (is.null(codes)) return(NULL)
    dimnames(codes) <- list(fit$cell_names, paste0(stem, suffix, "_", seq_len(k)))
    codes
  }
  factors <- paste0(stem, "_", seq_len(k))
  loadings <- lapply(fit$loadings, function(values) {
    colnames(values) <- factors
    values
  })
  rotation <- matrix(NA_real_, nrow(x), k, dimnames = list(rownames(x), factors))
  rotation[rows, ] <- loadings$fixed
  variance <- fit$variance_explained
  rownames(variance) <- factors
  codes <- name(fit$codes, "")
  attr(codes, "fixed") <- name(fit$fixed_codes, "_fixed")
  attr(codes, "random") <- name(fit$random_codes, "_random")
  attr(codes, "varExplained") <- variance
  attr(codes, "percentVar") <- 100 * variance[, "response"]
  attr(codes, "rotation") <- rotation
  attr(codes, "loadings") <- loadings
  attr(codes, "fit") <- fit[c("model", "total_variance_explained", "objective_history", "n_iter", "converged",
                              "params")]
  codes
}

# runLMF's storage: everything is built first, then assigned.
.lmf_store <- function(x, codes, fit, name) {
  k <- ncol(codes)
  rename <- function(codes, suffix) {
    if (is.null(codes)) return(NULL)
    colnames(codes) <- paste0(name, suffix, "_", seq_len(k))
    rownames(codes) <- colnames(x)
    codes
  }
  loadings <- attr(codes, "loadings")
  combined <- rename(codes, "")
  factors <- colnames(combined)
  rotation <- attr(codes, "rotation")
  colnames(rotation) <- factors
  for (extra in c("fixed", "random", "loadings", "fit")) attr(combined, extra) <- NULL
  rownames(attr(combined, "varExplained")) <- factors
  attr(combined, "rotation") <- rotation
  names(attr(combined, "percentVar")) <- factors
  fixed <- rename(attr(codes, "fixed"), "_fixed")
  random <- rename(attr(codes, "random"), "_random")
  fit$loadings <- lapply(loadings, function(values) {
    colnames(values) <- factors
    values
  })
  fit$variance_explained <- attr(combined, "varExplained")
  fit$feature_names <- NULL
  SingleCellExperiment::reducedDim(x, name) <- combined
  SingleCellExperiment::reducedDim(x, paste0(name, "_fixed")) <- fixed
  SingleCellExperiment::reducedDim(x, paste0(name, "_random")) <- random
  SummarizedExperiment::rowData(x)[[paste0(name, "_loadings_fixed")]] <- rotation
  alt <- fit$modalities$response$altExp
  if (!is.null(alt)) {
    experiment <- SingleCellExperiment::altExp(x, alt)
    SummarizedExperiment::rowData(experiment)[[paste0(name, "_loadings_response")]] <- fit$loadings$response
    SingleCellExperiment::altExp(x, alt) <- experiment
  }
  S4Vectors::metadata(x)[[name]] <- fit
  x
}
