#' Map new cells onto a fit: codes and predicted responses
#'
#' `transformLMF()` gives query cells the codes of a fit made by [runLMF()] on a reference
#' (Python's `lmf_omics.tl.transform`); `predictLMF()` predicts the response of query cells
#' from their fixed-effect data and covariates alone (`lmf_omics.tl.predict`), e.g. the
#' proteins of cells that have only RNA. The query's modalities are read as the reference's
#' were (the same `assay.type`, altExp and colData columns); features are matched by name.
#' A covariate level never seen in the reference (a new sample) gets a random code of zero,
#' as a mixed model predicts a new group.
#'
#' @param x The query, a SingleCellExperiment.
#' @param reference A SingleCellExperiment fitted by [runLMF()], or its
#'   `metadata(reference)[[name]]`.
#' @param name The name the fit was stored under (`runLMF(name = )`); `transformLMF()` writes
#'   the query's codes under the same names.
#' @return `transformLMF()`: `x` with `reducedDim(x, name)`, `paste0(name, "_fixed")` and
#'   (with covariates) `paste0(name, "_random")`. `predictLMF()`: the predicted response,
#'   response features x query cells.
#' @examples
#' if (lmf_python_available()) {
#'   library(SingleCellExperiment)
#'   set.seed(1)
#'   sce <- SingleCellExperiment(list(logcounts = matrix(rnorm(40 * 60), 40, 60,
#'     dimnames = list(paste0("gene", 1:40), paste0("cell", 1:60)))))
#'   altExp(sce, "ADT") <- SummarizedExperiment(list(logcounts = matrix(rnorm(8 * 60), 8, 60,
#'     dimnames = list(paste0("protein", 1:8), colnames(sce)))))
#'   reference <- runLMF(sce[, 1:40], response = "ADT", ncomponents = 3)
#'   query <- transformLMF(sce[, 41:60], reference)
#'   dim(reducedDim(query, "LMF"))
#'   dim(predictLMF(sce[, 41:60], reference))
#' }
#' @export
transformLMF <- function(x, reference, name = "LMF") {
  fit <- .lmf_reference(reference, name)
  parts <- .lmf_query_parts(x, fit, c("response", "fixed", "random"))
  codes <- .lmf_call("transform", c(list(model = fit$model), .lmf_arguments(parts, colnames(x))))
  k <- ncol(codes$codes)
  for (suffix in c("", "_fixed", "_random")) {
    values <- codes[[c("codes", "fixed_codes", "random_codes")[match(suffix, c("", "_fixed", "_random"))]]]
    if (!is.null(values)) dimnames(values) <- list(colnames(x), paste0(name, suffix, "_", seq_len(k)))
    SingleCellExperiment::reducedDim(x, paste0(name, suffix)) <- values
  }
  x
}

#' @rdname transformLMF
#' @export
predictLMF <- function(x, reference, name = "LMF") {
  fit <- .lmf_reference(reference, name)
  parts <- .lmf_query_parts(x, fit, c("fixed", "random"))
  predicted <- .lmf_call("predict", c(list(model = fit$model), .lmf_arguments(parts, colnames(x))))
  values <- t(predicted$predicted)
  dimnames(values) <- list(unlist(predicted$feature_names), colnames(x))
  values
}

.lmf_reference <- function(reference, name) {
  .lmf_check_string(name, "name")
  fit <- if (methods::is(reference, "SingleCellExperiment")) S4Vectors::metadata(reference)[[name]] else reference
  if (!is.list(fit) || !is.character(fit$model) || is.null(fit$modalities)) {
    stop("reference must be a SingleCellExperiment fitted by runLMF(name = \"", name, "\") or its ",
         "metadata(reference)[[\"", name, "\"]]", call. = FALSE)
  }
  fit
}

# The query's modalities, read as the reference's were; a modality the query lacks is left out.
.lmf_query_parts <- function(x, fit, roles) {
  if (!methods::is(x, "SingleCellExperiment")) {
    stop("x must be a SingleCellExperiment, got ", class(x)[1], call. = FALSE)
  }
  .lmf_cells(ncol(x), "x")
  modalities <- fit$modalities
  parts <- list()
  if ("fixed" %in% roles && modalities$fixed$assay.type %in% SummarizedExperiment::assayNames(x)) {
    parts$fixed <- .lmf_matrix_part(.lmf_assay(x, modalities$fixed$assay.type), "x")
  }
  alt <- modalities$response$altExp
  if ("response" %in% roles && !is.null(alt) && alt %in% SingleCellExperiment::altExpNames(x)) {
    experiment <- SingleCellExperiment::altExp(x, alt)
    parts$response <- .lmf_matrix_part(.lmf_assay(experiment, modalities$response$assay.type,
                                                  paste0("altExp(x, \"", alt, "\")")), "response")
  }
  if ("random" %in% roles && length(modalities$random) &&
      all(modalities$random %in% colnames(SummarizedExperiment::colData(x)))) {
    parts$random <- .lmf_covariate_part(.lmf_coldata(x, modalities$random), ncol(x), "random")
  }
  if (!length(parts)) {
    stop("x has none of the reference's modalities (assay \"", modalities$fixed$assay.type, "\"",
         if (!is.null(alt)) paste0(", altExp \"", alt, "\""),
         if (length(modalities$random)) paste0(", colData ", paste(modalities$random, collapse = ", ")), ")",
         call. = FALSE)
  }
  parts
}
