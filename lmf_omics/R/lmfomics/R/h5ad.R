# .h5ad files from R, through Python's anndata.

#' Fit Linear Mixed Forms on an .h5ad file
#'
#' Reads the file (it is not changed) and fits it with Python's `lmf_omics.tl.lmf`, for
#' collaborators who exchange AnnData files.
#'
#' @param path The .h5ad file.
#' @param response,fixed,random AnnData modality specs: `"X"`, `"raw"`, `"layer:<name>"`,
#'   `"obsm:<key>"`, `"obs:<col>[,<col>]"`; `random = NULL` for none.
#' @param n_factors Number of factors.
#' @param ... Options of the model as for [runLMF()], plus `mask_var` (a boolean `var` column).
#' @return A list: `codes`, `fixed_codes`, `random_codes` (cells x factors, with dimnames),
#'   `loadings` (features x factors, by modality), `variance_explained` (factors x
#'   modalities), `total_variance_explained`, `objective_history`, `n_iter`, `converged` and
#'   `params`.
#' @examples
#' \dontrun{
#' fit <- lmf_h5ad("pbmc.h5ad", response = "obsm:protein_counts", fixed = "X", random = "obs:hashtag")
#' }
#' @export
lmf_h5ad <- function(path, response, fixed, random = NULL, n_factors = 10, ...) {
  .lmf_check_file(path)
  options <- list(...)
  mask_var <- options$mask_var
  options$mask_var <- NULL
  options <- .lmf_options(options, n_factors, "n_factors")
  fit <- .lmf_call("fit_h5ad", c(list(path = normalizePath(path), response = response, fixed = fixed,
                                      random = random, mask_var = mask_var), options))
  .lmf_named(fit)
}

#' Read an .h5ad file into a SingleCellExperiment
#'
#' Through Python's anndata: `X` becomes the assay called `assay` (features x cells; sparse
#' stays sparse), `obs` the colData, `var` the rowData; chosen `obsm` entries become
#' alternative experiments or reducedDims.
#'
#' @param path The .h5ad file.
#' @param assay Name of the assay that holds `X`.
#' @param alt_exps `obsm` entries to become altExps (features x cells), e.g.
#'   `c(ADT = "protein_counts")`; unnamed entries keep the `obsm` key as their name.
#' @param reduced_dims `obsm` entries to become reducedDims, e.g. `c(PCA = "X_pca")`.
#' @return A SingleCellExperiment.
#' @examples
#' \dontrun{
#' sce <- lmf_read_h5ad("eccite_pbmc_500.h5ad", alt_exps = c(ADT = "protein_counts"))
#' }
#' @export
lmf_read_h5ad <- function(path, assay = "counts", alt_exps = character(), reduced_dims = character()) {
  .lmf_check_file(path)
  .lmf_module()$ENTRY_POINTS  # starts Python through lmf_omics.r, with its set-up checks, before anything crosses
  anndata <- reticulate::import("anndata", convert = FALSE)
  adata <- tryCatch(anndata$read_h5ad(normalizePath(path)), error = function(e) {
    stop("cannot read '", path, "' as an .h5ad file: ", .lmf_python_message(e), call. = FALSE)
  })
  cells <- .lmf_strings(adata$obs_names)
  genes <- .lmf_strings(adata$var_names)
  counts <- .lmf_from_python(adata$X, transpose = TRUE)
  dimnames(counts) <- list(genes, cells)
  sce <- SingleCellExperiment::SingleCellExperiment(
    assays = stats::setNames(list(counts), assay),
    colData = .lmf_frame(adata$obs, cells), rowData = .lmf_frame(adata$var, genes)
  )
  obsm <- function(key) {
    keys <- .lmf_strings(adata$obsm)
    if (!key %in% keys) {
      stop("lmf_read_h5ad: '", key, "' is not in obsm; available: ", paste(keys, collapse = ", "), call. = FALSE)
    }
    adata$obsm$`__getitem__`(key)
  }
  for (alt in .lmf_named_keys(alt_exps)) {
    value <- .lmf_from_python(obsm(alt$key), transpose = TRUE)
    colnames(value) <- cells
    SingleCellExperiment::altExp(sce, alt$name) <- SingleCellExperiment::SingleCellExperiment(
      assays = stats::setNames(list(value), assay)
    )
  }
  for (dim in .lmf_named_keys(reduced_dims)) {
    value <- as.matrix(.lmf_from_python(obsm(dim$key)))
    rownames(value) <- cells
    SingleCellExperiment::reducedDim(sce, dim$name) <- value
  }
  sce
}

#' A scipy sparse matrix as a dgCMatrix
#'
#' reticulate 1.28 cannot convert scipy >= 1.11 sparse matrices; this builds the dgCMatrix
#' from its slots (never densified).
#'
#' @param x A scipy sparse matrix (a Python object, e.g. from a module imported with
#'   `convert = FALSE`).
#' @param transpose Return its transpose (e.g. AnnData's cells x genes `X` as genes x cells).
#' @return A dgCMatrix.
#' @examples
#' if (lmf_python_available()) {
#'   scipy <- reticulate::import("scipy.sparse", convert = FALSE)
#'   lmf_as_dgCMatrix(scipy$eye(3L, format = "csr"))
#' }
#' @export
lmf_as_dgCMatrix <- function(x, transpose = FALSE) {
  parts <- .lmf_call("sparse_parts", list(matrix = x, transpose = transpose))
  Matrix::sparseMatrix(i = as.vector(parts$i), p = as.vector(parts$p), x = as.vector(parts$x),
                       dims = as.integer(parts$dim), index1 = FALSE)
}

# Attach dimnames to the matrices of a result from Python.
.lmf_named <- function(fit) {
  for (codes in c("codes", "fixed_codes", "random_codes")) {
    if (!is.null(fit[[codes]])) dimnames(fit[[codes]]) <- list(unlist(fit$cell_names), unlist(fit$factor_names))
  }
  for (role in names(fit$loadings)) {
    dimnames(fit$loadings[[role]]) <- list(unlist(fit$feature_names[[role]]), unlist(fit$factor_names))
  }
  fit$variance_explained <- do.call(cbind, lapply(fit$variance_explained, as.numeric))
  rownames(fit$variance_explained) <- unlist(fit$factor_names)
  fit$total_variance_explained <- unlist(fit$total_variance_explained)
  fit$objective_history <- as.numeric(fit$objective_history)
  fit
}

.lmf_check_file <- function(path) {
  if (!is.character(path) || length(path) != 1L || is.na(path) || !file.exists(path) || dir.exists(path)) {
    stop("'", paste(path, collapse = " "), "' is not a file; give the path of an .h5ad file", call. = FALSE)
  }
}

.lmf_python_message <- function(error) {
  message <- sub("\n.*$", "", conditionMessage(error))
  sub("^[A-Za-z.]*(Error|Exception): ", "", message)
}

.lmf_strings <- function(names) {
  as.character(reticulate::py_to_r(reticulate::import_builtins(convert = FALSE)$list(names)))
}

# A Python matrix (numpy, scipy sparse or pandas DataFrame) as an R matrix or dgCMatrix.
.lmf_from_python <- function(value, transpose = FALSE) {
  scipy <- reticulate::import("scipy.sparse", convert = FALSE)
  if (reticulate::py_to_r(scipy$issparse(value))) return(lmf_as_dgCMatrix(value, transpose = transpose))
  data <- .lmf_quietly(reticulate::py_to_r(value))
  data <- if (is.data.frame(data)) as.matrix(data) else data
  if (transpose) base::t(data) else data
}

.lmf_frame <- function(frame, names) {
  data <- .lmf_quietly(reticulate::py_to_r(frame$reset_index(drop = TRUE)))
  rownames(data) <- names
  data
}

# reticulate 1.28 converts pandas objects with the deprecated Index.format: silence that FutureWarning.
.lmf_quietly <- function(expr) {
  warnings <- reticulate::import("warnings")
  with(warnings$catch_warnings(), {
    warnings$simplefilter("ignore", reticulate::import_builtins()$FutureWarning)
    expr
  })
}

.lmf_named_keys <- function(keys) {
  labels <- if (is.null(names(keys))) keys else ifelse(nzchar(names(keys)), names(keys), keys)
  Map(function(key, label) list(key = unname(key), name = unname(label)), keys, labels)
}
