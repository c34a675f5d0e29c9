# Arguments checked in R, before any work, with messages in the R user's words.

.lmf_check_string <- function(value, what) {
  if (!is.character(value) || length(value) != 1L || is.na(value) || !nzchar(value)) {
    stop(what, " must be one non-empty character string, got ", .lmf_show(value), call. = FALSE)
  }
}

.lmf_show <- function(value) {
  shown <- paste(utils::capture.output(utils::str(value, give.attr = FALSE, vec.len = 3)), collapse = " ")
  if (nchar(shown) > 80L) paste0(substr(shown, 1L, 77L), "...") else trimws(shown)
}

.lmf_whole <- function(value, what, minimum = 1) {
  ok <- is.numeric(value) && length(value) == 1L && !is.na(value) && is.finite(value) &&
    value == round(value) && value >= minimum
  if (!ok) {
    stop(what, " must be one whole number >= ", minimum, ", got ", .lmf_show(value), call. = FALSE)
  }
  as.integer(value)
}

.lmf_cells <- function(n, what) {
  if (n < 2L) stop(what, " has ", n, " cell(s); LMF needs at least 2", call. = FALSE)
}

# The options passed on to Python (lmf_omics.r.model_options() names them): checked, then as plain values.
# set.seed() drives random_state when it is not given, as in Bioconductor's functions.
.lmf_options <- function(options, n_factors, what_n = "ncomponents", BPPARAM = NULL) {
  known <- .lmf_option_names()
  named <- names(options)
  if (length(options) && (is.null(named) || any(!nzchar(named)))) {
    stop("options in ... must be named (e.g. max_iter = 200); the options are: ", paste(known, collapse = ", "),
         call. = FALSE)
  }
  unknown <- setdiff(named, known)
  if (length(unknown)) {
    stop("unknown option(s) ", paste(sQuote(unknown, FALSE), collapse = ", "), "; the options are: ",
         paste(known, collapse = ", "), call. = FALSE)
  }
  options$n_factors <- .lmf_whole(n_factors, what_n)
  options$weights <- .lmf_weights(options$weights)
  options$random_state <- if (is.null(options$random_state)) {
    sample.int(.Machine$integer.max, 1L)
  } else {
    .lmf_whole(options$random_state, "random_state", minimum = 0)
  }
  options <- .lmf_parallel(options, BPPARAM, known)
  for (name in setdiff(names(options), c("weights", "n_factors"))) {
    value <- options[[name]]
    if (!is.null(value) && (!is.atomic(value) || length(value) != 1L || is.na(value))) {
      stop(name, " must be a single value (a number, string or TRUE/FALSE), got ", .lmf_show(value), call. = FALSE)
    }
  }
  options
}

.lmf_option_names <- function() {
  if (is.null(.lmf$options)) {
    .lmf$options <- names(.lmf_call("model_options", list()))
  }
  setdiff(.lmf$options, "n_factors")  # given as ncomponents / n.factors
}

# weights: a named numeric vector or list, by role.
.lmf_weights <- function(weights) {
  if (is.null(weights)) return(NULL)
  roles <- c("response", "fixed", "random")
  if (is.list(weights)) {
    lengths_ok <- all(vapply(weights, length, 1L) == 1L)
    numbers_ok <- lengths_ok && all(vapply(weights, is.numeric, TRUE))
    if (!numbers_ok) stop("weights must hold one number per modality, got ", .lmf_show(weights), call. = FALSE)
    weights <- unlist(weights)
  }
  if (!is.numeric(weights) || is.null(names(weights)) || any(!names(weights) %in% roles) ||
      anyDuplicated(names(weights)) || any(is.na(weights) | !is.finite(weights) | weights < 0)) {
    stop("weights must be a named vector or list of finite numbers >= 0 with names among ",
         paste(roles, collapse = ", "), ", e.g. c(response = 1, fixed = 2); got ", .lmf_show(weights), call. = FALSE)
  }
  as.list(weights)
}

# BPPARAM: its number of workers becomes n_jobs (the fit's threads) where the model has that option.
.lmf_parallel <- function(options, BPPARAM, known) {
  if (is.null(BPPARAM)) return(options)
  if ("n_jobs" %in% known && is.null(options$n_jobs) && requireNamespace("BiocParallel", quietly = TRUE)) {
    options$n_jobs <- BiocParallel::bpnworkers(BPPARAM)
    message("lmfomics: BPPARAM gives n_jobs = ", options$n_jobs, " (the fit runs in Python on that many threads)")
  } else {
    message("lmfomics: BPPARAM is ignored; the fit runs in Python on its own threads")
  }
  options
}

# scuttle's .subset2index semantics: NULL for all rows, logical, integer or character (a factor by
# its labels, not its codes); out-of-range, NA and duplicated selections are errors.
.lmf_subset_rows <- function(subset_row, x) {
  rows <- seq_len(nrow(x))
  if (is.null(subset_row)) return(rows)
  names(rows) <- rownames(x)
  if (is.factor(subset_row)) subset_row <- as.character(subset_row)
  if (is.logical(subset_row) && length(subset_row) != nrow(x)) {
    stop("subset_row is a logical of length ", length(subset_row), "; it needs one value per row (", nrow(x), ")",
         call. = FALSE)
  }
  if (anyNA(subset_row)) stop("subset_row has NA; select rows by TRUE/FALSE, index or name", call. = FALSE)
  if (is.character(subset_row) && is.null(rownames(x))) {
    stop("subset_row names rows, but x has no row names; select rows by index", call. = FALSE)
  }
  chosen <- tryCatch(unname(rows[subset_row]), error = function(e) NA_integer_)
  if (anyNA(chosen)) {
    missing <- if (is.character(subset_row)) setdiff(subset_row, rownames(x)) else character()
    stop("subset_row selects rows that x does not have",
         if (length(missing)) paste0(" (", paste(utils::head(missing, 5), collapse = ", "), ")"), call. = FALSE)
  }
  if (anyDuplicated(chosen)) {
    twice <- unique(chosen[duplicated(chosen)])
    stop("subset_row selects ", length(twice), " row(s) more than once (e.g. ",
         if (is.null(rownames(x))) twice[1] else rownames(x)[twice[1]], "); select each row once", call. = FALSE)
  }
  if (!length(chosen)) stop("subset_row selects no rows", call. = FALSE)
  chosen
}
