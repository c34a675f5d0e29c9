# Linear Mixed Forms (lmf_omics) from R, through reticulate.
#
#   Y ~ (K + H) alpha'    X ~ K beta'    Z ~ H u'
#
# Set up once: a Python with lmf-omics (and, for Debian's reticulate 1.28, numpy < 2), then
#
#   Sys.setenv(RETICULATE_PYTHON = "/path/to/venv/bin/python")
#   source(system2(Sys.getenv("RETICULATE_PYTHON"), c("-m", "lmf_omics.r", "--path"), stdout = TRUE))
#   sce <- lmf_sce(sce, response = "altExp:ADT", fixed = "assay:counts", random = "colData:hashtag",
#                  n_factors = 10)
#   reducedDim(sce, "LMF")          # K + H, cells x factors; also "LMF_fixed" (K) and "LMF_random" (H)
#
# Functions: lmf_sce() fits a SingleCellExperiment; lmf_h5ad() fits an .h5ad file and returns a list;
# lmf_read_h5ad() reads an .h5ad into a SingleCellExperiment; lmf_as_dgCMatrix() turns a scipy sparse
# matrix into a dgCMatrix. The fitting is Python's lmf_omics.tl.lmf (through lmf_omics.r): the same
# numbers as in Python.

lmf_python <- function() {
  reticulate::import("lmf_omics.r")
}

#' Fit Linear Mixed Forms on a SingleCellExperiment.
#'
#' Each modality is a spec string:
#'   "assay:<name>"             an assay of sce (features x cells), e.g. "assay:counts"
#'   "altExp:<name>[:<assay>]"  an assay of altExp(sce, name) (its first assay by default), e.g. "altExp:ADT"
#'   "reducedDim:<name>"        a reducedDim of sce (cells x dimensions), e.g. "reducedDim:PCA"
#'   "colData:<col>[,<col>]"    colData columns: numeric as they are; factor, character, logical one-hot
#' random = NULL fits Y ~ K alpha', X ~ K beta'. subset_row (logical, integer or character) restricts
#' every "assay:" modality to some rows, as in scater/scran; loadings of other rows are NA.
#' ... are options of lmf_omics.tl.lmf: solver, center, scale, weights (named list), ridge, max_iter,
#' tol, random_state.
#'
#' Returns sce with reducedDim(sce, name) = K + H, paste0(name, "_fixed") = K and, with a random
#' modality, paste0(name, "_random") = H (cells x factors); loadings as matrix columns
#' paste0(name, "_loadings_", role) of rowData(sce) ("assay:" modalities) or of
#' rowData(altExp(sce, alt)) ("altExp:" modalities); and metadata(sce)[[name]]: every modality's
#' loadings (features x factors), variance_explained (factors x modalities, R^2),
#' total_variance_explained, objective_history, n_iter, converged, params and the specs.
lmf_sce <- function(sce, response, fixed, random = NULL, n_factors = 10L, ..., subset_row = NULL,
                    name = "LMF") {
  if (!methods::is(sce, "SingleCellExperiment")) {
    stop("lmf_sce: sce must be a SingleCellExperiment, got ", class(sce)[1], call. = FALSE)
  }
  specs <- Filter(Negate(is.null), list(response = response, fixed = fixed, random = random))
  rows <- .lmf_rows(sce, subset_row)
  parts <- Map(function(spec, role) .lmf_modality(sce, spec, role, rows), specs, names(specs))
  fit <- lmf_python()$fit(
    response = parts$response$data, fixed = parts$fixed$data,
    random = if (is.null(parts$random)) NULL else parts$random$data,
    cell_names = colnames(sce),
    feature_names = lapply(parts, function(part) part$features),
    labels = specs,
    cells_in = lapply(parts, function(part) part$cells_in),
    n_factors = n_factors, ...
  )
  fit <- .lmf_named(fit)
  .lmf_store(sce, fit, parts, specs, name)
}

#' Fit Linear Mixed Forms on an .h5ad file (read only) and return the result as a list.
#'
#' response, fixed, random are AnnData modality specs: "X", "raw", "layer:<name>", "obsm:<key>",
#' "obs:<col>[,<col>]". ... as for lmf_sce(), plus mask_var (a boolean var column).
#' The list holds codes, fixed_codes, random_codes (cells x factors, with dimnames), loadings
#' (features x factors, by role), variance_explained (factors x modalities),
#' total_variance_explained, objective_history, n_iter, converged and params.
lmf_h5ad <- function(path, response, fixed, random = NULL, n_factors = 10L, ...) {
  .lmf_check_file(path)
  fit <- lmf_python()$fit_h5ad(normalizePath(path), response = response, fixed = fixed, random = random,
                               n_factors = n_factors, ...)
  .lmf_named(fit)
}

#' Read an .h5ad file into a SingleCellExperiment (through Python's anndata).
#'
#' X becomes the assay called `assay` (features x cells; sparse stays sparse), obs the colData, var
#' the rowData. alt_exps names obsm entries to become altExps (features x cells), e.g.
#' c(ADT = "protein_counts"); reduced_dims names obsm entries to become reducedDims, e.g.
#' c(PCA = "X_pca"). Unnamed entries keep the obsm key as their name.
lmf_read_h5ad <- function(path, assay = "counts", alt_exps = character(), reduced_dims = character()) {
  .lmf_check_file(path)
  anndata <- reticulate::import("anndata", convert = FALSE)
  adata <- anndata$read_h5ad(normalizePath(path))
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
    SingleCellExperiment::altExp(sce, alt$name) <- SummarizedExperiment::SummarizedExperiment(
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

#' A scipy sparse matrix (a Python object, e.g. from an anndata imported with convert = FALSE) as a
#' dgCMatrix, built from its slots: reticulate 1.28 cannot convert scipy >= 1.11 sparse matrices.
lmf_as_dgCMatrix <- function(x, transpose = FALSE) {
  parts <- lmf_python()$sparse_parts(x, transpose = transpose)
  Matrix::sparseMatrix(i = as.vector(parts$i), p = as.vector(parts$p), x = as.vector(parts$x),
                       dims = as.integer(parts$dim), index1 = FALSE)
}

# ---------------------------------------------------------------------------------- internals

# One modality: the data to send, its feature names, orientation, and where its loadings go.
.lmf_modality <- function(sce, spec, role, rows) {
  if (!is.character(spec) || length(spec) != 1L || is.na(spec)) {
    stop("lmf_sce: ", role, " must be one spec string such as \"assay:counts\", \"altExp:ADT\", ",
         "\"reducedDim:PCA\" or \"colData:batch\"", call. = FALSE)
  }
  kind <- sub(":.*$", "", spec)
  target <- sub("^[^:]*:", "", spec)
  if (!grepl(":", spec, fixed = TRUE) || !nzchar(target)) kind <- "bad"
  label <- paste0(role, " = \"", spec, "\"")
  switch(kind,
    assay = {
      data <- .lmf_assay(sce, target, label)[rows, , drop = FALSE]
      list(data = .lmf_sendable(data), features = rownames(data), cells_in = "columns",
           home = "rowData", rows = rows)
    },
    altExp = {
      alt <- sub(":.*$", "", target)
      assay_name <- if (grepl(":", target, fixed = TRUE)) sub("^[^:]*:", "", target) else NULL
      .lmf_check_name(alt, SingleCellExperiment::altExpNames(sce), "altExpNames(sce)", label)
      experiment <- SingleCellExperiment::altExp(sce, alt)
      data <- if (is.null(assay_name)) SummarizedExperiment::assay(experiment, 1L) else
        .lmf_assay(experiment, assay_name, label)
      list(data = .lmf_sendable(data), features = rownames(experiment), cells_in = "columns",
           home = "altExp", alt = alt)
    },
    reducedDim = {
      .lmf_check_name(target, SingleCellExperiment::reducedDimNames(sce), "reducedDimNames(sce)", label)
      data <- SingleCellExperiment::reducedDim(sce, target)
      list(data = .lmf_sendable(data), features = colnames(data), cells_in = "rows", home = "metadata")
    },
    colData = {
      columns <- trimws(strsplit(target, ",", fixed = TRUE)[[1]])
      for (column in columns) {
        .lmf_check_name(column, colnames(SummarizedExperiment::colData(sce)), "colnames(colData(sce))", label)
      }
      frame <- as.data.frame(SummarizedExperiment::colData(sce)[, columns, drop = FALSE], optional = TRUE)
      list(data = .lmf_covariates(frame), features = NULL, cells_in = "rows", home = "metadata")
    },
    stop("lmf_sce: ", label, " is not a modality spec; use \"assay:<name>\", \"altExp:<name>[:<assay>]\", ",
         "\"reducedDim:<name>\" or \"colData:<col>[,<col>]\"", call. = FALSE)
  )
}

.lmf_assay <- function(experiment, assay_name, label) {
  .lmf_check_name(assay_name, SummarizedExperiment::assayNames(experiment), "assayNames", label)
  SummarizedExperiment::assay(experiment, assay_name, withDimnames = TRUE)
}

.lmf_check_name <- function(name, available, where, label) {
  if (!name %in% available) {
    stop("lmf_sce: ", label, ": '", name, "' not found in ", where, "; available: ",
         if (length(available)) paste(available, collapse = ", ") else "none", call. = FALSE)
  }
}

# Rows of the main experiment used by "assay:" modalities.
.lmf_rows <- function(sce, subset_row) {
  if (is.null(subset_row)) return(seq_len(nrow(sce)))
  if (is.logical(subset_row) && length(subset_row) != nrow(sce)) {
    stop("lmf_sce: subset_row is a logical of length ", length(subset_row), "; it needs one value per row (",
         nrow(sce), ")", call. = FALSE)
  }
  index <- seq_len(nrow(sce))
  names(index) <- rownames(sce)
  rows <- tryCatch(unname(index[subset_row]), error = function(e) NULL)
  if (is.null(rows) || anyNA(rows) || length(rows) == 0L) {
    stop("lmf_sce: subset_row must select rows of sce (logical of length nrow(sce), indices or row names)",
         call. = FALSE)
  }
  rows
}

# Matrices reticulate can pass: base matrices as they are, sparse ones as a dgCMatrix (scipy CSC).
.lmf_sendable <- function(data) {
  if (is.matrix(data)) return(data)
  if (methods::is(data, "sparseMatrix")) {
    return(methods::as(methods::as(methods::as(data, "CsparseMatrix"), "generalMatrix"), "dMatrix"))
  }
  if (isTRUE(DelayedArray::is_sparse(data))) return(methods::as(data, "dgCMatrix"))
  as.matrix(data)
}

# colData columns as a data.frame reticulate passes faithfully: reticulate 1.28 sends a character NA
# as the string "NA" and a logical NA as TRUE, but a factor's NA as a missing value.
.lmf_covariates <- function(frame) {
  for (column in names(frame)) {
    values <- frame[[column]]
    if (is.character(values) || is.logical(values)) frame[[column]] <- factor(values)
  }
  rownames(frame) <- NULL
  frame
}

# Attach dimnames to the matrices of a result from Python.
.lmf_named <- function(fit) {
  for (codes in c("codes", "fixed_codes", "random_codes")) {
    if (!is.null(fit[[codes]])) dimnames(fit[[codes]]) <- list(fit$cell_names, fit$factor_names)
  }
  for (role in names(fit$loadings)) {
    dimnames(fit$loadings[[role]]) <- list(fit$feature_names[[role]], fit$factor_names)
  }
  fit$variance_explained <- do.call(cbind, lapply(fit$variance_explained, as.numeric))
  rownames(fit$variance_explained) <- fit$factor_names
  fit$total_variance_explained <- unlist(fit$total_variance_explained)
  fit$objective_history <- as.numeric(fit$objective_history)
  fit
}

# Store a fit in sce: everything is built first, then assigned.
.lmf_store <- function(sce, fit, parts, specs, name) {
  stored <- fit[setdiff(names(fit), c("codes", "fixed_codes", "random_codes", "cell_names", "feature_names"))]
  stored$modalities <- specs
  for (codes in c("codes", "fixed_codes", "random_codes")) {
    if (!is.null(fit[[codes]])) rownames(fit[[codes]]) <- colnames(sce)  # NULL when sce has no colnames
  }
  SingleCellExperiment::reducedDim(sce, name) <- fit$codes
  SingleCellExperiment::reducedDim(sce, paste0(name, "_fixed")) <- fit$fixed_codes
  SingleCellExperiment::reducedDim(sce, paste0(name, "_random")) <- fit$random_codes
  for (role in names(parts)) {
    part <- parts[[role]]
    column <- paste0(name, "_loadings_", role)
    if (part$home == "rowData") {
      full <- matrix(NA_real_, nrow(sce), length(fit$factor_names), dimnames = list(rownames(sce), fit$factor_names))
      full[part$rows, ] <- fit$loadings[[role]]
      SummarizedExperiment::rowData(sce)[[column]] <- full
    } else if (part$home == "altExp") {
      experiment <- SingleCellExperiment::altExp(sce, part$alt)
      SummarizedExperiment::rowData(experiment)[[column]] <- fit$loadings[[role]]
      SingleCellExperiment::altExp(sce, part$alt) <- experiment
    }
  }
  S4Vectors::metadata(sce)[[name]] <- stored
  sce
}

.lmf_check_file <- function(path) {
  if (!is.character(path) || length(path) != 1L || !file.exists(path)) {
    stop("'", paste(path, collapse = " "), "' is not a file; give the path of an .h5ad file", call. = FALSE)
  }
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
