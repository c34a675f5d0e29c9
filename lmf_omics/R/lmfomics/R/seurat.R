#' Linear Mixed Forms on a Seurat object
#'
#' The Seurat counterpart of [runLMF()], in the manner of `Seurat::RunPCA()`: the response is
#' an assay such as `"ADT"`, the fixed-effect data the features of another assay (by default
#' the default assay's `VariableFeatures()`), the random-effect covariates `meta.data`
#' columns. The codes are stored as three dimensional reductions that `RunUMAP(reduction = )`,
#' `FindNeighbors(reduction = )` and the rest use: `reduction.name` (`K + H`, loadings of the
#' response's features), `paste0(reduction.name, "_fixed")` (`K`, loadings of the fixed-effect
#' features) and `paste0(reduction.name, "_random")` (`H`, loadings of the covariates' levels).
#'
#' @param object A Seurat object.
#' @param response.assay The assay of the response (e.g. `"ADT"`).
#' @param assay The assay of the fixed-effect data; default `DefaultAssay(object)`.
#' @param features Features of `assay` to use; default `VariableFeatures(object, assay = assay)`,
#'   or all when none are set.
#' @param response.features Features of `response.assay` to use; default all.
#' @param random `meta.data` columns used as random-effect covariates, or `NULL`.
#' @param n.factors Number of factors.
#' @param slot The slot of both assays to read (`"data"`: normalised values).
#' @param reduction.name,reduction.key Name and key of the combined reduction; the fixed and
#'   random ones are named `paste0(reduction.name, "_fixed")`, key `LMFfixed_`, and so on.
#' @param seed.use Seed of the fit; `NULL` draws it from R's random numbers (`set.seed()`).
#' @param verbose Print what was fitted.
#' @param ... Options of the model, as for [runLMF()] (e.g. `max_iter = 200`).
#' @return `object` with the three reductions; their `misc` holds the variance explained and
#'   the fit.
#' @examples
#' if (lmf_python_available() && requireNamespace("Seurat", quietly = TRUE)) {
#'   set.seed(1)
#'   rna <- matrix(rpois(40 * 60, 3), 40, 60, dimnames = list(paste0("gene", 1:40), paste0("cell", 1:60)))
#'   adt <- matrix(rpois(8 * 60, 20), 8, 60, dimnames = list(paste0("protein", 1:8), colnames(rna)))
#'   object <- Seurat::CreateSeuratObject(rna)
#'   object[["ADT"]] <- Seurat::CreateAssayObject(adt)
#'   object <- Seurat::NormalizeData(object, verbose = FALSE)
#'   object <- Seurat::NormalizeData(object, assay = "ADT", normalization.method = "CLR", verbose = FALSE)
#'   object$batch <- rep(c("a", "b", "c"), 20)
#'   object <- RunLMF(object, response.assay = "ADT", random = "batch", n.factors = 3, verbose = FALSE)
#'   Seurat::Reductions(object)
#' }
#' @export
RunLMF <- function(object, response.assay = "ADT", assay = NULL, features = NULL, response.features = NULL,
                   random = NULL, n.factors = 10, slot = "data", reduction.name = "lmf", reduction.key = "LMF_",
                   seed.use = NULL, verbose = TRUE, ...) {
  .lmf_need_seurat()
  if (!methods::is(object, "Seurat")) stop("object must be a Seurat object, got ", class(object)[1], call. = FALSE)
  .lmf_cells(ncol(object), "object")
  assay <- if (is.null(assay)) SeuratObject::DefaultAssay(object) else assay
  for (name in c(assay, response.assay)) .lmf_seurat_assay(object, name)
  .lmf_check_string(reduction.name, "reduction.name")
  if (!grepl("^[[:alnum:]]+_$", reduction.key)) {
    stop("reduction.key must be letters and digits followed by '_', e.g. \"LMF_\"; got ", .lmf_show(reduction.key),
         call. = FALSE)
  }
  if (is.null(features)) features <- SeuratObject::VariableFeatures(object, assay = assay)
  if (!length(features)) features <- rownames(object[[assay]])
  fixed <- .lmf_seurat_data(object, assay, slot, features, "features")
  response <- .lmf_seurat_data(object, response.assay, slot, response.features, "response.features")
  covariates <- if (length(random)) .lmf_seurat_meta(object, random)
  options <- list(...)
  if (!is.null(seed.use)) options$random_state <- seed.use
  parts <- list(
    response = .lmf_matrix_part(response, paste0("response.assay = \"", response.assay, "\"")),
    fixed = .lmf_matrix_part(fixed, paste0("assay = \"", assay, "\"")),
    random = .lmf_covariate_part(covariates, ncol(object), "random")
  )
  fit <- .lmf_fit(parts, colnames(object), n.factors, options, NULL,
                  renames = c(n_factors = "n.factors", random_state = "seed.use"))
  if (verbose) {
    message("RunLMF: ", ncol(fit$codes), " factors from ", nrow(response), " ", response.assay, " and ",
            nrow(fixed), " ", assay, " features", if (length(random)) paste0(", random: ", paste(random, collapse = ", ")),
            "; converged: ", fit$converged, " after ", fit$n_iter, " iterations")
  }
  stem <- sub("_$", "", reduction.key)
  misc <- list(variance_explained = fit$variance_explained, fit = fit[c("model", "total_variance_explained",
                                                                         "objective_history", "n_iter", "converged",
                                                                         "params")])
  reductions <- list(
    list(name = reduction.name, key = reduction.key, codes = fit$codes, loadings = fit$loadings$response,
         assay = response.assay),
    list(name = paste0(reduction.name, "_fixed"), key = paste0(stem, "fixed_"), codes = fit$fixed_codes,
         loadings = fit$loadings$fixed, assay = assay),
    list(name = paste0(reduction.name, "_random"), key = paste0(stem, "random_"), codes = fit$random_codes,
         loadings = fit$loadings$random, assay = assay)
  )
  for (reduction in reductions) {
    if (is.null(reduction$codes)) next
    object[[reduction$name]] <- .lmf_dimreduc(reduction, colnames(object), misc)
  }
  object
}

.lmf_need_seurat <- function() {
  if (!requireNamespace("SeuratObject", quietly = TRUE) || !requireNamespace("Seurat", quietly = TRUE)) {
    stop("RunLMF needs the Seurat package (Debian: apt-get install --no-install-recommends r-cran-seurat)",
         call. = FALSE)
  }
}

.lmf_seurat_assay <- function(object, name) {
  available <- SeuratObject::Assays(object)
  if (!is.character(name) || length(name) != 1L || !name %in% available) {
    stop("assay ", .lmf_show(name), " is not in this Seurat object; Assays(object): ",
         paste(available, collapse = ", "), call. = FALSE)
  }
}

.lmf_seurat_data <- function(object, assay, slot, features, what) {
  data <- SeuratObject::GetAssayData(object, assay = assay, slot = slot)
  if (!is.null(features)) {
    missing <- setdiff(features, rownames(data))
    if (length(missing)) {
      stop(what, ": ", length(missing), " feature(s) not in assay \"", assay, "\", e.g. ",
           paste(utils::head(missing, 5), collapse = ", "), call. = FALSE)
    }
    if (anyDuplicated(features)) stop(what, " names a feature twice: ", features[duplicated(features)][1], call. = FALSE)
    data <- data[features, , drop = FALSE]
  }
  data
}

.lmf_seurat_meta <- function(object, columns) {
  available <- colnames(object[[]])
  missing <- setdiff(columns, available)
  if (length(missing)) {
    stop("random: ", paste(sQuote(missing, FALSE), collapse = ", "), " not found in the meta.data columns; ",
         "available: ", paste(available, collapse = ", "), call. = FALSE)
  }
  object[[]][, columns, drop = FALSE]
}

.lmf_dimreduc <- function(reduction, cells, misc) {
  k <- ncol(reduction$codes)
  factors <- paste0(reduction$key, seq_len(k))
  embeddings <- reduction$codes
  dimnames(embeddings) <- list(cells, factors)
  loadings <- reduction$loadings
  colnames(loadings) <- factors
  SeuratObject::CreateDimReducObject(embeddings = embeddings, loadings = loadings, key = reduction$key,
                                     assay = reduction$assay, misc = misc)
}
