# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Cell-cycle and QC covariates as random effects (pbmc68k_reduced)
#
# scanpy's bundled `pbmc68k_reduced` (700 PBMCs, 765 genes) carries cell-cycle scores and phase, the
# mitochondrial fraction and the sequencing depth of every cell. Here they are the random-effect
# modality **Z**: the random code **H** takes up what they explain, and the fixed code **K** keeps the
# expression structure they do not. We then ask whether clustering on **K** (`X_lmf_fixed`) recovers the
# curated cell types in `obs["bulk_labels"]` better or worse than clustering on PCA, with the same number
# of dimensions, the same neighbour graph settings and the same Leiden resolutions, scored by the
# adjusted Rand index (ARI) and normalised mutual information (NMI). Whichever wins is reported.

# %%
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import scanpy as sc
from sklearn.linear_model import LinearRegression
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

import lmf_omics as lmf

OUT = Path(os.environ.get("LMF_TUTORIAL_OUTDIR", "tutorial_output")) / "pbmc68k_covariates"
OUT.mkdir(parents=True, exist_ok=True)
N_FACTORS = 15
RESOLUTIONS = (0.4, 0.6, 0.8, 1.0, 1.4)

adata = lmf.datasets.pbmc68k_reduced()
print(adata)

# %% [markdown]
# ## Covariates as a design matrix
# `lmf.pp.covariates` one-hot encodes the phase and standardises the numeric covariates, so depth
# (thousands of counts) does not outweigh a cell-cycle score.

# %%
lmf.pp.covariates(adata, keys=["phase", "S_score", "G2M_score", "percent_mito", "n_counts"], key_added="covariates")
print(adata.obsm["covariates"].describe().T[["mean", "std"]].round(2))

# %% [markdown]
# ## Fit
# Response **Y**: the scaled expression in `X`; fixed effects **X**: the log-normalised expression in
# `raw`; random effects **Z**: the covariates. Every option that matters is spelled out, so the tutorial
# does not depend on defaults. With the default encoded codes, K is a linear encoding of the expression
# (`K = X̃ W_K`) and H one of the covariates (`H = Z̃ W_H`).

# %%
lmf.tl.lmf(
    adata,
    response="X",
    fixed="raw",
    random="obsm:covariates",
    n_factors=N_FACTORS,
    scale=True,
    solver="joint",
    codes="encoded",
    ridge=1e-3,
    max_iter=500,
    tol=1e-6,
    random_state=0,
)
totals = adata.uns["lmf"]["total_variance_explained"]
print({name: round(float(value), 3) for name, value in totals.items()})

# %% [markdown]
# ## How much cell-cycle and QC signal is left in each embedding?
# R² of a linear regression of each covariate on each 15-dimensional embedding. A fixed code free of
# the covariates should predict them worse than PCA does; the random code should predict them well.

# %%
sc.pp.pca(adata, n_comps=N_FACTORS, random_state=0, key_added="X_pca15")
embeddings = {"PCA": "X_pca15", "LMF K + H": "X_lmf", "LMF fixed K": "X_lmf_fixed", "LMF random H": "X_lmf_random"}
covariate_r2 = pd.DataFrame(
    {
        name: {
            covariate: LinearRegression()
            .fit(adata.obsm[key], adata.obs[covariate])
            .score(adata.obsm[key], adata.obs[covariate])
            for covariate in ["S_score", "G2M_score", "percent_mito", "n_counts"]
        }
        for name, key in embeddings.items()
    }
).round(3)
print(covariate_r2)

# %% [markdown]
# ## Leiden on each embedding, scored against `bulk_labels`

# %%
rows = []
for name, key in list(embeddings.items())[:3]:
    sc.pp.neighbors(adata, use_rep=key, n_neighbors=15, random_state=0, key_added=f"nn_{key}")
    for resolution in RESOLUTIONS:
        clusters = f"leiden_{key}_{resolution}"
        sc.tl.leiden(
            adata,
            resolution=resolution,
            flavor="igraph",
            n_iterations=2,
            random_state=0,
            neighbors_key=f"nn_{key}",
            key_added=clusters,
        )
        rows.append(
            {
                "embedding": name,
                "resolution": resolution,
                "clusters": adata.obs[clusters].nunique(),
                "ARI": adjusted_rand_score(adata.obs["bulk_labels"], adata.obs[clusters]),
                "NMI": normalized_mutual_info_score(adata.obs["bulk_labels"], adata.obs[clusters]),
            }
        )
scores = pd.DataFrame(rows)
scores.to_csv(OUT / "ari_nmi.csv", index=False)
print(scores.round(3).to_string(index=False))
summary = scores.groupby("embedding", sort=False)[["ARI", "NMI"]].agg(["mean", "max"]).round(3)
print(summary)

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
for ax, metric in zip(axes, ["ARI", "NMI"], strict=True):
    for name, group in scores.groupby("embedding", sort=False):
        ax.plot(group["resolution"], group[metric], marker="o", label=name)
    ax.set_xlabel("Leiden resolution")
    ax.set_ylabel(f"{metric} vs bulk_labels")
    ax.set_title(f"{metric}: clusters vs curated cell types")
axes[1].legend(frameon=False)
fig.savefig(OUT / "ari_nmi.png", dpi=130)

# %% [markdown]
# **`ari_nmi.png`** plots ARI (left) and NMI (right) against the Leiden resolution for clusters found on
# PCA, on the combined code K + H and on the fixed code K, all 15-dimensional with the same graph. The
# numbers are printed above and written to `ari_nmi.csv`; read them there rather than from this text.
#
# At the time of writing (seeded, every option explicit) both LMF codes came out ahead of PCA on average,
# by a small margin: averaged over the five resolutions ARI was 0.48 for K, 0.49 for K + H and 0.43 for
# PCA, and NMI 0.64, 0.63 and 0.63. They do not win everywhere: PCA has the best ARI and NMI at the coarsest
# resolution (0.51 and 0.66 at 0.4, against 0.44 and 0.64 for K) and the best single NMI; K has the best
# single ARI (0.52 at 0.8 and 1.0, level with K + H at 1.0). Differences of 0.01-0.02 on one dataset with one seed
# are not a strong result; what the comparison supports is that taking the covariates out into H costs
# nothing here and, if anything, helps a little, as expected when the curated labels follow identity
# rather than the cell cycle.
#
# The covariate R² table above shows what the default `random_effect="states"` removes: K predicts the S
# score with R² 0.10 (PCA 0.65), the G2M score with 0.05 (PCA 0.51) and depth with 0.29 (PCA 0.41): the
# covariates' linear trace is mostly gone from K, though not all of it (depth is only partly linear in the
# expression, and the correction acts within soft cell states, shrunk). H (R² 1.0 for every covariate) is an
# exact encoding of Z, and K + H predicts every covariate better than PCA: it carries them by construction.

# %%
sc.tl.umap(adata, neighbors_key="nn_X_pca15", random_state=0)
adata.obsm["X_umap_pca"] = adata.obsm["X_umap"].copy()
sc.tl.umap(adata, neighbors_key="nn_X_lmf_fixed", random_state=0)
adata.obsm["X_umap_lmf_fixed"] = adata.obsm["X_umap"].copy()
fig, axes = plt.subplots(2, 2, figsize=(11.5, 9), layout="constrained")
for row, basis in enumerate(["umap_pca", "umap_lmf_fixed"]):
    for col, colour in enumerate(["bulk_labels", "phase"]):
        sc.pl.embedding(
            adata,
            basis=basis,
            color=colour,
            ax=axes[row, col],
            show=False,
            legend_fontsize=7,
            title=f"{colour} on UMAP of {'PCA' if row == 0 else 'LMF fixed code K'}",
        )
fig.savefig(OUT / "umap_pca_vs_fixed.png", dpi=110)

# %% [markdown]
# **`umap_pca_vs_fixed.png`**: UMAPs of the PCA graph (top) and of the fixed-code graph (bottom),
# coloured by the curated cell type (left) and the cell-cycle phase (right). Cell types should form the
# same islands in both; the phase colours show whether cycling cells still group together. At the time of
# writing both showed the CD34+ cells, the CD14+ monocytes (with some dendritic cells), a mixed T/NK group
# and the B cells (with a lobe of their own in both); the dendritic cells are two islands on PCA and one on K.
# S-phase cells are spread over the islands in both; the few G2M cells lie among the lymphocytes in both.

# %%
plt.close(lmf.pl.variance_explained(adata, save=OUT / "variance_explained.png").figure)
covariate_factors = lmf.get.variance_explained(adata)["random"].nlargest(4).index.str.removeprefix("Factor").astype(int)
print("factors explaining most of the covariates:", list(covariate_factors))
print(lmf.get.variance_explained(adata).loc[[f"Factor{i}" for i in covariate_factors]].round(3))
axes = lmf.pl.loadings(
    adata, roles="random", factors=sorted(covariate_factors), n_top=7, save=OUT / "covariate_loadings.png"
)
plt.close(axes[0, 0].figure)

# %% [markdown]
# **`variance_explained.png`** is the R² (%) of each modality by each factor. The response and the fixed
# expression share the leading factors (a few % each: single-cell expression is noisy), while the
# covariates (Z) are explained by a handful of later factors of their own, which explain little
# expression. **`covariate_loadings.png`** shows the covariate loadings u of the four factors that explain
# most of Z: which mix of cell-cycle phase and scores, depth and mitochondrial fraction each one encodes.
# At the time of writing these were factors 9, 7, 5 and 12 (34%, 24%, 16% and 13% of Z, printed above; each
# under 1.5% of the expression) and four distinct axes: the S phase and S score against G1 (9), the G2M phase
# and score (7), depth (`n_counts`, against the mitochondrial fraction and G2M) (5) and the mitochondrial
# fraction with depth (12).

# %%
results = {
    "covariate_r2": covariate_r2.to_dict(),
    "mean_ari": scores.groupby("embedding")["ARI"].mean().to_dict(),
    "mean_nmi": scores.groupby("embedding")["NMI"].mean().to_dict(),
    "total_variance_explained": {k: float(v) for k, v in totals.items()},
}
(OUT / "results.json").write_text(json.dumps(results, indent=2))
plt.close("all")
