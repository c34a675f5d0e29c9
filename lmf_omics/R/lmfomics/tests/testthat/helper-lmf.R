suppressPackageStartupMessages(library(SingleCellExperiment))  # cbind() and the rest, as users have them

# Small simulated experiments (a few cells and features: each fit takes well under a second).

skip_without_python <- function() {
  skip_if_not(lmf_python_available(), "no Python with lmf-omics: run lmfomics::install_lmf_python()")
}

small_sce <- function(seed = 1, n_cells = 30) {
  set.seed(seed)
  cells <- paste0("c", seq_len(n_cells))
  genes <- matrix(rpois(40 * n_cells, 3), 40, n_cells, dimnames = list(paste0("g", 1:40), cells))
  sce <- SingleCellExperiment::SingleCellExperiment(
    assays = list(counts = genes, logcounts = log1p(genes)),
    colData = S4Vectors::DataFrame(batch = rep_len(c("a", "b", "c"), n_cells), depth = stats::runif(n_cells),
                                   flag = rep_len(c(TRUE, FALSE), n_cells))
  )
  proteins <- matrix(rpois(8 * n_cells, 20), 8, n_cells, dimnames = list(paste0("p", 1:8), cells))
  SingleCellExperiment::altExp(sce, "ADT") <- SummarizedExperiment::SummarizedExperiment(
    list(counts = proteins, logcounts = log1p(proteins))
  )
  sce
}

fit_small <- function(sce, ...) {
  runLMF(sce, response = "ADT", ncomponents = 3, tol = 1e-4, random_state = 0, ...)
}
