# Modalities as reticulate can hand them to lmf_omics.r: matrices (features x cells) and covariate tables.

# One modality: what to send, its feature names, orientation, and how errors name it.
.lmf_part <- function(data, label, cells_in = "columns", features = NULL) {
  list(data = data, features = features, cells_in = cells_in, label = label)
}

# A features x cells matrix of any kind (base, dgC/dgR/dgT, DelayedMatrix, HDF5Matrix).
.lmf_matrix_part <- function(data, label, rows = NULL) {
  if (!is.null(rows)) data <- data[rows, , drop = FALSE]
  data <- .lmf_sendable(data, label)
  .lmf_part(data, label, "columns", rownames(data))
}

# Matrices reticulate can pass: base matrices as they are, sparse ones as a dgCMatrix (scipy CSC).
.lmf_sendable <- function(data, label) {
  if (methods::is(data, "sparseMatrix")) {
    data <- methods::as(methods::as(methods::as(data, "CsparseMatrix"), "generalMatrix"), "dMatrix")
  } else if (methods::is(data, "DelayedArray") && isTRUE(DelayedArray::is_sparse(data))) {
    data <- methods::as(data, "dgCMatrix")
  } else if (!is.matrix(data)) {
    data <- tryCatch(as.matrix(data), error = function(e) {
      stop(label, " must be a matrix (base, Matrix or DelayedArray), got ", class(data)[1], call. = FALSE)
    })
  }
  if (is.matrix(data) && !(is.numeric(data) || is.logical(data))) {
    stop(label, " must be numeric, got a ", typeof(data), " matrix; convert it to numbers first", call. = FALSE)
  }
  if (is.logical(data) && anyNA(data)) {  # reticulate would send a logical NA as TRUE
    where <- which(is.na(data), arr.ind = TRUE)[1, ]
    stop(label, " has ", sum(is.na(data)), " missing value(s) (NA), the first for cell ",
         sQuote(.lmf_name(colnames(data), where[[2]]), FALSE), " and feature ",
         sQuote(.lmf_name(rownames(data), where[[1]]), FALSE), "; drop those cells or impute the values",
         call. = FALSE)
  }
  data
}

.lmf_name <- function(names, i) if (is.null(names)) as.character(i) else names[[i]]

# Per-cell covariates (cells in rows): a data.frame or DataFrame, a vector/factor (one covariate) or a matrix.
.lmf_covariate_part <- function(random, n_cells, label) {
  if (is.null(random)) return(NULL)
  frame <- if (methods::is(random, "DataFrame")) {
    as.data.frame(random, optional = TRUE)
  } else if (is.data.frame(random)) {
    random
  } else if (is.matrix(random)) {
    return(.lmf_part(.lmf_sendable(random, label), label, "rows", colnames(random)))
  } else if (is.atomic(random) && is.null(dim(random))) {
    stats::setNames(data.frame(random, stringsAsFactors = FALSE), "random")
  } else {
    stop(label, " must be colData column names, a data.frame, a factor or vector, or a matrix; got ",
         class(random)[1], call. = FALSE)
  }
  if (nrow(frame) != n_cells) {
    stop(label, " describes ", nrow(frame), " cells, but the data have ", n_cells, call. = FALSE)
  }
  .lmf_part(.lmf_covariates(frame, label), label, "rows")
}

# Columns reticulate passes faithfully: numbers as they are; character and logical as factors (reticulate
# 1.28 sends a character NA as "NA" and a logical NA as TRUE, but a factor's NA as missing). Dates and
# times would become one level per cell: an error says how to convert them.
.lmf_covariates <- function(frame, label) {
  if (!ncol(frame)) stop(label, " has no columns; name at least one covariate", call. = FALSE)
  for (column in names(frame)) {
    values <- frame[[column]]
    if (inherits(values, c("Date", "POSIXt", "difftime"))) {
      stop(label, ": column '", column, "' is a ", class(values)[1], "; LMF needs numbers or categories: ",
           "as.numeric(", column, ") for a trend in time, or factor(", column, ") for one level per value",
           call. = FALSE)
    }
    if (is.character(values) || is.logical(values)) {
      frame[[column]] <- factor(values)
    } else if (!is.factor(values) && !is.numeric(values)) {
      stop(label, ": column '", column, "' is a ", class(values)[1], "; use numbers, factors, character or ",
           "logical columns", call. = FALSE)
    } else if (is.factor(values)) {
      frame[[column]] <- droplevels(values)
    }
  }
  rownames(frame) <- NULL
  frame
}

# colData columns of an experiment, by name.
.lmf_coldata <- function(x, columns, what = "random") {
  available <- colnames(SummarizedExperiment::colData(x))
  missing <- setdiff(columns, available)
  if (length(missing)) {
    stop(what, ": ", paste(sQuote(missing, FALSE), collapse = ", "), " not found in colnames(colData(x)); ",
         "available: ", if (length(available)) paste(available, collapse = ", ") else "none", call. = FALSE)
  }
  if (anyDuplicated(columns)) stop(what, " names a column twice: ", columns[duplicated(columns)][1], call. = FALSE)
  SummarizedExperiment::colData(x)[, columns, drop = FALSE]
}

.lmf_assay <- function(x, assay.type, what = "x") {
  if (is.numeric(assay.type)) return(SummarizedExperiment::assay(x, assay.type, withDimnames = TRUE))
  .lmf_check_string(assay.type, "assay.type")
  available <- SummarizedExperiment::assayNames(x)
  if (!assay.type %in% available) {
    stop("assay.type = \"", assay.type, "\" is not an assay of ", what, "; available: ",
         if (length(available)) paste(available, collapse = ", ") else "none", call. = FALSE)
  }
  SummarizedExperiment::assay(x, assay.type, withDimnames = TRUE)
}

# The arguments of lmf_omics.r.fit/transform/predict from parts (NULL parts are left out).
.lmf_arguments <- function(parts, cell_names) {
  parts <- Filter(Negate(is.null), parts)
  c(lapply(parts, `[[`, "data"), list(
    cell_names = cell_names,
    feature_names = lapply(parts, function(part) if (is.null(part$features)) NULL else as.list(part$features)),
    labels = lapply(parts, `[[`, "label"),
    cells_in = lapply(parts, `[[`, "cells_in")
  ))
}
