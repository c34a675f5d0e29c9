# Linear Mixed Forms on a SingleCellExperiment, from R
# =====================================================
#
# A CITE-seq experiment as Bioconductor keeps it: RNA counts in the main assay, the antibody-derived
# tags (ADT) in altExp(sce, "ADT"), the sample hashtag in colData. LMF explains the proteins (response Y)
# through the RNA (fixed-effect data X) and the hashtag (random-effect covariates Z):
#
#     Y ~ (K + H) alpha'    X ~ K beta'    Z ~ H u'
#
# and the codes come back into the object: reducedDim "LMF" (K + H), "LMF_fixed" (K), "LMF_random" (H),
# the loadings in rowData, everything else in metadata. The fitting runs in Python (lmf_omics) through
# reticulate, so the numbers are those of the Python package.
#
# Run it with a Python that has lmf-omics installed (and numpy < 2 for Debian's reticulate 1.28):
#
#     RETICULATE_PYTHON=/path/to/venv/bin/python Rscript tutorials/r_singlecellexperiment.R
#
# The data are read from $LMF_OMICS_DATA, else ../shared/data. Writes lmf_sce_codes.png.

suppressPackageStartupMessages(library(SingleCellExperiment))

# 1. The R functions ship inside the Python package; Python tells where --------------------------------
python <- Sys.getenv("RETICULATE_PYTHON", "python3")
source(system2(python, c("-m", "lmf_omics.r", "--path"), stdout = TRUE))

# 2. A SingleCellExperiment --------------------------------------------------------------------------
# Any SingleCellExperiment will do. This one is read from an .h5ad: X becomes the "counts" assay (a
# dgCMatrix), obsm["protein_counts"] the ADT altExp and obsm["hashtag_counts"] a reducedDim.
data_dir <- Sys.getenv("LMF_OMICS_DATA", file.path("..", "shared", "data"))
sce <- lmf_read_h5ad(file.path(data_dir, "eccite_pbmc_500.h5ad"),
                     alt_exps = c(ADT = "protein_counts"), reduced_dims = c(HTO = "hashtag_counts"))
sce

# 3. Normalise as usual in R: log of library-size-normalised counts (sparse stays sparse) ---------------
size <- Matrix::colSums(counts(sce))
logcounts(sce) <- log1p(Matrix::t(Matrix::t(counts(sce)) / size * stats::median(size)))
assay(altExp(sce, "ADT"), "logcounts") <- log1p(assay(altExp(sce, "ADT"), "counts"))
keep <- Matrix::rowSums(counts(sce) > 0) >= 50           # genes detected in at least 10% of the cells
cat(sprintf("%d cells; %d of %d genes kept; %d proteins\n", ncol(sce), sum(keep), nrow(sce),
            nrow(altExp(sce, "ADT"))))

# 4. Fit ----------------------------------------------------------------------------------------------
# Modalities are named like "assay:<name>", "altExp:<name>[:<assay>]", "reducedDim:<name>" and
# "colData:<col>[,<col>]"; subset_row restricts the "assay:" modalities to some genes.
sce <- lmf_sce(sce, response = "altExp:ADT:logcounts", fixed = "assay:logcounts", random = "colData:hashtag",
               n_factors = 10, subset_row = keep)
sce
fit <- metadata(sce)$LMF
cat(sprintf("converged: %s after %d iterations\n", fit$converged, fit$n_iter))

# 5. What the factors explain ---------------------------------------------------------------------------
# R^2 per factor and modality (as MOFA reports it), and in total; "response_fixed_code" and
# "response_random_code" split the proteins' R^2 between the RNA-driven code K and the hashtag code H.
print(round(100 * fit$variance_explained, 1))
print(round(fit$total_variance_explained, 3))

# The proteins and genes that load most on the first two factors.
proteins <- rowData(altExp(sce, "ADT"))$LMF_loadings_response
genes <- rowData(sce)$LMF_loadings_fixed                 # NA for genes outside subset_row
for (factor in 1:2) {
  cat(sprintf("Factor%d  proteins: %s\n         genes:    %s\n", factor,
              paste(names(sort(abs(proteins[, factor]), decreasing = TRUE))[1:5], collapse = ", "),
              paste(names(sort(abs(genes[, factor]), decreasing = TRUE))[1:5], collapse = ", ")))
}

# 6. Fixed and random codes -------------------------------------------------------------------------------
# The random code H is a function of the hashtag alone (a random effect per sample: the hashtag explains
# all of it). The fixed code K is learnt from the RNA; where the samples differ in their RNA, K differs
# between samples too, and the clusters below show how much.
hashtag_r2 <- function(codes) mean(apply(codes, 2, function(v) summary(lm(v ~ sce$hashtag))$r.squared))
cat(sprintf("mean R^2 of the hashtag: fixed code %.3f, random code %.3f\n",
            hashtag_r2(reducedDim(sce, "LMF_fixed")), hashtag_r2(reducedDim(sce, "LMF_random"))))

# 7. Cluster on the codes and look ------------------------------------------------------------------------
set.seed(0)
sce$lmf_cluster <- factor(kmeans(reducedDim(sce, "LMF_fixed"), centers = 6, nstart = 20)$cluster)
print(table(cluster = sce$lmf_cluster, hashtag = sce$hashtag))
cluster_colours <- grDevices::hcl.colors(nlevels(sce$lmf_cluster), "Dark 3")
hashtag_colours <- grDevices::hcl.colors(nlevels(sce$hashtag), "Set 2")

grDevices::png("lmf_sce_codes.png", width = 1600, height = 720, res = 130)
graphics::par(mfrow = c(1, 2), mar = c(4.2, 4.2, 3, 7.5), xpd = NA)
scatter <- function(codes, groups, colours, title, legend_title) {
  plot(codes[, 1], codes[, 2], col = colours[groups], pch = 16, cex = 0.7, xlab = "Factor1", ylab = "Factor2",
       main = title)
  graphics::legend("topright", inset = c(-0.33, 0), legend = levels(groups), col = colours, pch = 16,
                   cex = 0.8, title = legend_title, bty = "n")
}
scatter(reducedDim(sce, "LMF_fixed"), sce$lmf_cluster, cluster_colours, "fixed code K (RNA)", "k-means")
scatter(reducedDim(sce, "LMF"), sce$hashtag, hashtag_colours, "combined code K + H", "hashtag")
invisible(grDevices::dev.off())
cat("wrote lmf_sce_codes.png\n")

# 8. Files instead of objects ------------------------------------------------------------------------------
# Collaborators who exchange .h5ad files can fit one directly and get the same list back (codes with
# dimnames, loadings, variance explained), e.g.
#   fit <- lmf_h5ad("pbmc.h5ad", response = "obsm:protein_counts", fixed = "X", random = "obs:hashtag",
#                   n_factors = 10, mask_var = "highly_variable")
