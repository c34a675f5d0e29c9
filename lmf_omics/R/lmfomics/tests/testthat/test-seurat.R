test_that("RunLMF stores lmf, lmf_fixed and lmf_random that RunUMAP, FindNeighbors and FindClusters use", {
  skip_without_python()
  skip_if_not_installed("Seurat")
  set.seed(3)
  sce <- small_sce(n_cells = 60)
  object <- Seurat::CreateSeuratObject(SingleCellExperiment::counts(sce), meta.data = as.data.frame(
    SummarizedExperiment::colData(sce)))
  object[["ADT"]] <- Seurat::CreateAssayObject(SummarizedExperiment::assay(SingleCellExperiment::altExp(sce, "ADT"),
                                                                           "counts"))
  object <- Seurat::NormalizeData(object, verbose = FALSE)
  object <- Seurat::NormalizeData(object, assay = "ADT", normalization.method = "CLR", verbose = FALSE)
  object <- Seurat::FindVariableFeatures(object, nfeatures = 30, verbose = FALSE)
  object <- RunLMF(object, response.assay = "ADT", random = "batch", n.factors = 4, seed.use = 1, verbose = FALSE,
                   tol = 1e-4)
  expect_true(all(c("lmf", "lmf_fixed", "lmf_random") %in% Seurat::Reductions(object)))
  expect_equal(SeuratObject::Key(object[["lmf"]]), "LMF_")
  expect_equal(SeuratObject::Key(object[["lmf_fixed"]]), "LMFfixed_")
  fixed <- SeuratObject::Embeddings(object, "lmf_fixed")
  expect_equal(dim(fixed), c(60L, 4L))
  expect_equal(colnames(fixed), paste0("LMFfixed_", 1:4))
  expect_equal(SeuratObject::Embeddings(object, "lmf"), fixed + SeuratObject::Embeddings(object, "lmf_random"),
               tolerance = 1e-12, ignore_attr = TRUE)
  loadings <- SeuratObject::Loadings(object, "lmf_fixed")
  expect_setequal(rownames(loadings), Seurat::VariableFeatures(object))
  expect_equal(rownames(SeuratObject::Loadings(object, "lmf")), rownames(object[["ADT"]]))
  expect_equal(rownames(SeuratObject::Loadings(object, "lmf_random")), c("batch=a", "batch=b", "batch=c"))
  # the same fit as runLMF on the same matrices
  same <- calculateLMF(Seurat::GetAssayData(object, slot = "data")[Seurat::VariableFeatures(object), ],
                       response = Seurat::GetAssayData(object, assay = "ADT", slot = "data"), random = object$batch,
                       ncomponents = 4, random_state = 1, tol = 1e-4)
  expect_equal(attr(same, "fixed")[, ], fixed, tolerance = 1e-12, ignore_attr = TRUE)
  object <- suppressWarnings(  # Seurat 4.3 warns once that its default UMAP method changed
    Seurat::RunUMAP(object, reduction = "lmf_fixed", dims = 1:4, n.neighbors = 10, verbose = FALSE))
  expect_equal(dim(SeuratObject::Embeddings(object, "umap")), c(60L, 2L))
  object <- Seurat::FindNeighbors(object, reduction = "lmf_fixed", dims = 1:4, k.param = 10, verbose = FALSE)
  object <- Seurat::FindClusters(object, resolution = 0.8, verbose = FALSE)  # on RNA_snn, from lmf_fixed
  expect_gte(nlevels(object$seurat_clusters), 2L)
  expect_equal(length(object$seurat_clusters), 60L)
  object <- Seurat::FindNeighbors(object, reduction = "lmf", dims = 1:4, k.param = 10, verbose = FALSE,
                                  graph.name = c("lmf_nn", "lmf_snn"))
  object <- Seurat::FindClusters(object, graph.name = "lmf_snn", resolution = 0.8, verbose = FALSE)
  expect_equal(length(object$lmf_snn_res.0.8), 60L)
})
