#' lmfomics: Linear Mixed Forms for single-cell omics from R
#'
#' [runLMF()] and [calculateLMF()] fit SingleCellExperiment objects and matrices in the manner
#' of scater's `runPCA()`; [RunLMF()] fits Seurat objects; [transformLMF()] and
#' [predictLMF()] map new cells; [install_lmf_python()] sets up the Python side (the Python
#' package lmf-omics, called through reticulate).
#'
#' @keywords internal
#' @importFrom methods setGeneric setMethod callNextMethod
"_PACKAGE"
