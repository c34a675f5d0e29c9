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
# # CITE-seq: proteins from RNA, with the sample hashtag as a random effect
#
# 500 ECCITE-seq PBMCs (Mimitou et al. 2019) with RNA counts for 19,521 genes, counts of 49 antibody-derived
# tags (ADT) and one of four sample hashtags per cell. The model:
#
# * response **Y**: the 49 proteins, CLR-normalised;
# * fixed effects **X**: the log-normalised RNA of the 2,000 most variable genes;
# * random effects **Z**: the hashtag (one-hot).
#
# `Y ≈ (K + H) αᵀ`, `X ≈ K βᵀ`, `Z ≈ H uᵀ`: the same factor links protein loadings α to gene loadings β,
# so reading the two side by side says which genes go with which proteins.
#
# As in a mixed model, the fixed code K (`obsm["X_lmf_fixed"]`) describes the cells with the random
# effect removed, while `obsm["X_lmf"]` = K + H includes it by construction. We check which of the two
# follows the hashtag, cluster on the right one, read the loadings, and finally predict the proteins of
# held-out cells from their RNA with `lmf.tl.predict`.

# %%
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scanpy as sc
from sklearn.metrics import normalized_mutual_info_score

import lmf_omics as lmf

OUT = Path(os.environ.get("LMF_TUTORIAL_OUTDIR", "tutorial_output")) / "cite_seq_pbmc"
OUT.mkdir(parents=True, exist_ok=True)

adata = lmf.datasets.eccite_pbmc_500()
print(adata)

# %% [markdown]
# ## Prepare each modality
# RNA: library-size normalisation, log1p and 2,000 highly variable genes (scanpy's functions, through
# `lmf.pp.normalize_rna`; the raw counts stay in `layers["counts"]`). Protein: the centred log-ratio
# with muon's semantics, across cells for each protein (`axis=0`).

# %%
lmf.pp.normalize_rna(adata, layer="counts", n_top_genes=2000)
lmf.pp.clr(adata, source="obsm:protein_counts", axis=0, key_added="protein_clr")
print(adata.obsm["protein_clr"].iloc[:3, :6].round(2))

# %% [markdown]
# ## Fit
# Every option that matters is spelled out. The default codes are *encoded*: the fixed code is a linear
# encoding of the RNA, `K = X̃ W_K`, and the random code one of the hashtag, `H = Z̃ W_H`; the proteins
# decide, through the fit, which directions of the RNA matter.

# %%
OPTIONS = {
    "response": "obsm:protein_clr",
    "fixed": "X",
    "random": "obs:hashtag",
    "mask_var": "highly_variable",
    "n_factors": 15,
    "solver": "joint",
    "codes": "encoded",
    "ridge": 1e-3,
    "max_iter": 500,
    "tol": 1e-6,
    "random_state": 0,
}
lmf.tl.lmf(adata, **OPTIONS, key_added="lmf")
totals = {name: round(float(value), 3) for name, value in adata.uns["lmf"]["total_variance_explained"].items()}
print(totals)

# %% [markdown]
# `response_fixed_code` and `response_random_code` are the R² of the proteins by `Kαᵀ` and by `Hαᵀ` alone.
# Nearly all the protein variance the model explains goes through the fixed code (at the time of writing
# 0.54 of 0.55); the random code, an encoding of the hashtag, explains almost none of it (under 0.01): the
# hashtag has no effect on the proteins, as expected of four hashed aliquots of one sample.
#
# ## Which code carries the hashtag?
# The four hashtags mark cells of one control sample, so cell-type clusters should not follow them. We
# cluster (Leiden, resolution 0.8) on RNA PCs, on the proteins alone and on each LMF code, and measure the
# NMI between clusters and hashtag (0: clusters ignore the hashtag). For comparison we also fit the paper's
# form, `codes="free"`, where every cell's K and H are free parameters fitted to all its modalities.


# %%
def hashtag_nmi(rep: str) -> float:
    sc.pp.neighbors(adata, use_rep=rep, n_neighbors=15, random_state=0, key_added="nn_check")
    sc.tl.leiden(
        adata,
        resolution=0.8,
        flavor="igraph",
        n_iterations=2,
        random_state=0,
        neighbors_key="nn_check",
        key_added="leiden_check",
    )
    return round(normalized_mutual_info_score(adata.obs["hashtag"], adata.obs["leiden_check"]), 3)


sc.pp.pca(adata, n_comps=15, mask_var="highly_variable", random_state=0)
adata.obsm["protein_clr_array"] = adata.obsm["protein_clr"].to_numpy()
lmf.tl.lmf(adata, **{**OPTIONS, "codes": "free"}, key_added="lmf_free")
print(
    "free codes:",
    {name: round(float(value), 3) for name, value in adata.uns["lmf_free"]["total_variance_explained"].items()},
)
leak = pd.Series(
    {
        "RNA PCA (15)": hashtag_nmi("X_pca"),
        "proteins (CLR)": hashtag_nmi("protein_clr_array"),
        "LMF encoded: K (X_lmf_fixed)": hashtag_nmi("X_lmf_fixed"),
        "LMF encoded: K + H (X_lmf)": hashtag_nmi("X_lmf"),
        "LMF free: K": hashtag_nmi("X_lmf_free_fixed"),
        "LMF free: K + H": hashtag_nmi("X_lmf_free"),
    },
    name="NMI(clusters, hashtag)",
)
print(leak.to_string())

# %% [markdown]
# Neither the RNA nor the proteins cluster by hashtag (at the time of writing NMI 0.02 and 0.01), and
# neither does the fixed code K (the table above; 0.02 with the paper's random effect): it is an encoding of the
# RNA with the hashtag removed from its principal scores (the default `random_effect="states"`), the
# representation of the cells *with the random effect accounted for*, as in a mixed model. `X_lmf` = K + H is
# another matter (0.64):
# it adds the random code, which encodes the hashtag by construction (it must reconstruct Z), so the
# hashtag becomes a direction of the embedding and Leiden splits cell types by it. That is what K + H is
# for when the random effect matters (a treatment, a donor effect one wants to see); down-weighting Z
# (`weights={"random": ...}`) is no remedy, H is still an encoding of the hashtag. **Cluster on
# `X_lmf_fixed` when the random effect is a nuisance** (hashtag, batch, section, cell cycle). With free
# codes (the paper's form) K is a free parameter fitted jointly with H in `Y ≈ (K + H) αᵀ`; it partly
# cancels H's hashtag offsets there (the free fit's `response_random_code`, printed above, is negative:
# H alone moves the proteins away from the data) and so picks up some of the hashtag itself (at the time
# of writing NMI 0.12 for K, 0.45 for K + H). With the encoded default, K can carry only what the RNA
# carries. The table printed above is the one to read.
#
# ## Clusters and UMAP on the fixed code

# %%
sc.pp.neighbors(adata, use_rep="X_lmf_fixed", n_neighbors=15, random_state=0)
sc.tl.leiden(adata, resolution=0.8, flavor="igraph", n_iterations=2, random_state=0, key_added="leiden_lmf")
sc.tl.umap(adata, random_state=0)
markers = ["CD4", "CD8", "CD14", "CD19", "CD56", "MHCII (HLA-DR)"]
for marker in markers:
    adata.obs[f"{marker} ADT"] = adata.obsm["protein_clr"][marker].to_numpy()
with plt.rc_context({"figure.figsize": (3.6, 3.2)}):
    fig = sc.pl.umap(
        adata,
        color=["leiden_lmf", "hashtag", *[f"{m} ADT" for m in markers]],
        ncols=4,
        wspace=0.45,
        size=18,
        cmap="viridis",
        show=False,
        return_fig=True,
    )
fig.savefig(OUT / "umap_lmf.png", dpi=120, bbox_inches="tight")
print(pd.crosstab(adata.obs["leiden_lmf"], adata.obs["hashtag"]))

# %% [markdown]
# **`umap_lmf.png`**: UMAP of the graph built on `X_lmf_fixed` (the fixed code K), coloured by Leiden
# cluster, by hashtag and by six marker proteins (CLR). The markers mark separate groups: CD8 and CD4
# T cells (most of these 500 cells are T cells), CD14 with HLA-DR on a small group of monocytes, CD19
# with HLA-DR on the B cells; CD56 is high on only a handful of cells (few NK cells here). The hashtag
# colours are mixed within the groups, and the cross-tabulation printed above shows every cluster drawing
# on several hashtags (not evenly: with 500 cells, a small cluster can miss one hashtag by chance or by a
# real difference between the hashed samples).

# %% [markdown]
# ## Variance explained and convergence

# %%
plt.close(lmf.pl.variance_explained(adata, save=OUT / "variance_explained.png").figure)
plt.close(lmf.pl.convergence(adata, save=OUT / "convergence.png").figure)
print(lmf.get.variance_explained(adata).head(6).round(3))

# %% [markdown]
# **`variance_explained.png`**: R² (%) of the proteins (Y), the RNA (X) and the hashtag (Z) by each
# factor. The leading factors explain a large share of the protein variance (at the time of writing 23%
# and 11% for factors 1 and 2) and, at the same time, several % of the RNA (2,000 noisy genes in 500
# cells), which is what ties genes to proteins. The hashtag is a four-level one-hot of rank 3: the random
# code is an exact encoding of it (total R² of Z is 1), carried mostly by three factors that explain little
# protein variance (at the time of writing factors 6, 7 and 9, about 29-36% of Z each). Factors are
# ordered by the protein variance of K + H and not split into "fixed" and "random" ones, so a factor can
# carry both: factor 6 explains a few % of the proteins *and* a third of the hashtag. That is why K and H
# are stored separately (`X_lmf_fixed`, `X_lmf_random`). **`convergence.png`**: the objective of the
# exact block-coordinate solver, falling at every iteration (steeply in the first few) until its relative
# change is below `tol`.

# %% [markdown]
# ## Which genes load on the factors that drive which proteins

# %%
proteins = lmf.get.loadings(adata, role="response")
genes = lmf.get.loadings(adata, role="fixed")
leading = lmf.get.variance_explained(adata)["response"].nlargest(4).index
rows = []
for factor in leading:
    up_p, down_p = proteins[factor].nlargest(3), proteins[factor].nsmallest(3)
    up_g, down_g = genes[factor].nlargest(5), genes[factor].nsmallest(5)
    rows.append(
        {
            "factor": factor,
            "proteins +": ", ".join(up_p.index),
            "genes +": ", ".join(up_g.index),
            "proteins -": ", ".join(down_p.index),
            "genes -": ", ".join(down_g.index),
        }
    )
pairs = pd.DataFrame(rows).set_index("factor")
pairs.to_csv(OUT / "genes_and_proteins_per_factor.csv")
print(pairs.to_string())

factor_numbers = [int(name.removeprefix("Factor")) for name in leading[:3]]
axes = lmf.pl.loadings(
    adata, roles=["response", "fixed"], factors=factor_numbers, n_top=10, save=OUT / "loadings_proteins_genes.png"
)
plt.close(axes[0, 0].figure)

# %% [markdown]
# **`loadings_proteins_genes.png`**: for the three factors that explain most of the protein variance,
# the ten largest protein loadings (top row) and gene loadings (bottom row); red rises with the factor,
# blue falls. A protein and a gene with the same sign on one factor rise together across cells. The
# table printed above (also `genes_and_proteins_per_factor.csv`) lists, for the four leading factors,
# the proteins and genes at both ends. At the time of writing the first two were the classic PBMC axes,
# with the proteins' own transcripts among the top genes: Factor 1 put myeloid and antigen-presenting
# proteins (HLA-DR, CD31, CD11b) with *LYZ*, *S100A8*, *S100A9*, *CST3*, *HLA-DRA* against CD8, CD2,
# CD7 with the cytotoxic *GNLY*, *NKG7*, *CCL5*; Factor 2 naive CD4 T cells (CD4, CD27, CD28 with
# *TCF7*, *SELL*) against cytotoxic cells (CD8 with *GNLY*, *NKG7*, *CCL5*, *CST7*). Factor 3 the B
# cells (CD19, HLA-DR with *CD74*, *HLA-DRA*, *MS4A1*, *CD79A*); Factor 4 naive CD8 T cells (CD27, CD62L
# with *SELL*, *CD8B*, *CD8A*, *TCF7*) against CD4 and HLA-DR with *S100A4*, *IL32*. The hashtag is
# carried by factors 6, 7 and 9 (above), little by these four (at most 8.5% of Z, factor 1). Read the
# printed table for the run in front of you.

# %% [markdown]
# ## Proteins of new cells, from their RNA
# A fit applies to cells it has never seen: `lmf.tl.transform` encodes them and `lmf.tl.predict` predicts
# their response, `Ŷ = (K + H) αᵀ` (plus the protein means) with K and H computed from their RNA and
# hashtag, exactly as for the training cells. To see how well that works we hold out 100 random cells,
# fit on the other 400 with the same options, predict the held-out cells' proteins and compare them with
# what was measured (which `tl.predict` never reads). (The protein CLR above was computed once on all
# 500 cells; the held-out cells enter it only through each protein's geometric mean.)

# %%
held_out = np.zeros(adata.n_obs, dtype=bool)
held_out[np.random.default_rng(0).choice(adata.n_obs, size=100, replace=False)] = True
reference, query = adata[~held_out].copy(), adata[held_out].copy()
lmf.tl.lmf(reference, **OPTIONS, key_added="lmf")
lmf.tl.predict(query, reference, key="lmf")
predicted, measured = query.obsm["lmf_predicted"], query.obsm["protein_clr"]
baseline = reference.obsm["protein_clr"].mean()  # predicting every protein by its training mean
r2_held_out = 1 - ((measured - predicted) ** 2).to_numpy().sum() / ((measured - baseline) ** 2).to_numpy().sum()
correlation = predicted.corrwith(measured).dropna().sort_values(ascending=False)
print(f"held-out R² of all 49 proteins (0 = training means): {r2_held_out:.3f}")
print("Pearson r, predicted vs measured, best and worst proteins:")
print(pd.concat([correlation.head(6), correlation.tail(6)]).round(2).to_string())

fig, axes = plt.subplots(2, 3, figsize=(10.5, 6.6), layout="constrained")
for ax, marker in zip(axes.flat, markers, strict=True):
    ax.scatter(measured[marker], predicted[marker], s=12, alpha=0.7, color="tab:blue", edgecolor="none")
    low = min(measured[marker].min(), predicted[marker].min())
    high = max(measured[marker].max(), predicted[marker].max())
    ax.plot([low, high], [low, high], color="grey", lw=0.8, ls="--")
    ax.set_title(f"{marker}  (r = {correlation[marker]:.2f})")
    ax.set_xlabel("measured (CLR)")
    ax.set_ylabel("predicted from RNA")
fig.suptitle("100 held-out cells: proteins predicted by tl.predict vs measured")
fig.savefig(OUT / "predicted_vs_measured.png", dpi=120)

# %% [markdown]
# **`predicted_vs_measured.png`**: for six marker proteins, the held-out cells' predicted level (from
# their RNA and hashtag) against the measured one; the dashed line is equality, r the Pearson correlation.
# At the time of writing the held-out R² over all 49 proteins was 0.41 (0 is predicting each protein by
# its training mean), and the lineage markers were predicted well: CD11b 0.87, CD8 0.87, HLA-DR 0.86,
# CD4 0.81, CD19 0.80. Rare populations are harder: CD14 (r 0.54) is predicted for some monocytes but stays near
# zero for others, and CD56 (0.39), high on a few NK cells only, is barely predicted; the worst proteins
# (r 0.2-0.3, printed above) are mostly markers these cells hardly express (CD1a, CD66b, CD138, C-kit),
# whose measured levels are background. The same call works for a genuinely new sample: `tl.predict(new, adata)`,
# with a hashtag (or batch) never seen in training giving a zero random code, as a mixed model predicts a
# new group.

# %% [markdown]
# ## The same cells as a MuData, beside muon's MOFA+
# In scverse, CITE-seq data usually live in a MuData: one AnnData per modality. `lmf.tl.lmf` reads it
# directly; a spec names the modality first (`"prot"` is its X, `"rna:layer:counts"` a layer,
# `"obs:hashtag"` the MuData's own obs). Cells a modality lacks are unobserved in it (the union of cells,
# aligned by obs names, as muon does), the codes land in `mdata.obsm` and the loadings in each modality's
# `varm`. The fit is the one above: the same matrices reach the same core. Beside it, muon's
# `mu.tl.mofa` on the same MuData (15 factors, its defaults) if mofapy2 is installed. Both are scored the
# same way here: the share of each centred modality its factors and loadings reconstruct.

# %%
import time

import anndata as ad
import mudata as md

genes = adata.var_names[adata.var["highly_variable"].to_numpy()]
protein_clr = adata.obsm["protein_clr"]
rna = ad.AnnData(adata[:, genes].X.copy(), obs=pd.DataFrame(index=adata.obs_names), var=pd.DataFrame(index=genes))
prot = ad.AnnData(
    protein_clr.to_numpy(), obs=pd.DataFrame(index=adata.obs_names), var=pd.DataFrame(index=protein_clr.columns)
)
if hasattr(md, "set_options"):  # mudata 0.3; 0.4 has no such option, its behaviour is this one
    md.set_options(pull_on_update=False)  # obs columns are not pulled from the modalities
mdata = md.MuData({"rna": rna, "prot": prot})
mdata.obs["hashtag"] = adata.obs["hashtag"].to_numpy()
mu_options = {name: value for name, value in OPTIONS.items() if name not in ("response", "fixed", "random", "mask_var")}
start = time.perf_counter()
lmf.tl.lmf(mdata, response="prot", fixed="rna", random="obs:hashtag", **mu_options)
lmf_seconds = time.perf_counter() - start
mudata_difference = float(np.abs(mdata.obsm["X_lmf"] - adata.obsm["X_lmf"]).max())
print(mdata)
print(f"max |codes(MuData) - codes(AnnData)| = {mudata_difference:.1e}")


def reconstructed(values, codes, loadings) -> float:
    """R² of a modality: 1 - ‖Ã - codes loadingsᵀ‖² / ‖Ã‖², Ã the centred values."""
    values = np.asarray(values.toarray() if hasattr(values, "toarray") else values, dtype=np.float64)
    centred = values - values.mean(axis=0)
    return float(1 - ((centred - codes @ loadings.T) ** 2).sum() / (centred**2).sum())


side_by_side = {
    "LMF (tl.lmf)": {
        "seconds": round(lmf_seconds, 2),
        "R² prot": reconstructed(prot.X, mdata.obsm["X_lmf"], lmf.get.loadings(mdata, role="response").to_numpy()),
        "R² rna": reconstructed(rna.X, mdata.obsm["X_lmf_fixed"], lmf.get.loadings(mdata, role="fixed").to_numpy()),
    }
}
try:
    import mofapy2  # noqa: F401
    import muon as mu
except ImportError:
    mofa_status = "mofapy2 (or muon) is not installed: pip install 'lmf-omics[mofa]' to run MOFA+ here"
else:
    for modality in mdata.mod.values():
        modality.var["highly_variable"] = True  # every feature above, for both
    start = time.perf_counter()
    mu.tl.mofa(mdata, n_factors=15, outfile=str(OUT / "mofa.hdf5"), seed=0, quiet=True)
    seconds = time.perf_counter() - start

    def mofa_weights(name):  # rows of mdata.varm["LFs"] of one modality, in its order (some names repeat)
        rows = mdata.varmap[name].ravel()
        return mdata.varm["LFs"][np.argsort(rows)[-mdata.mod[name].n_vars :]]

    side_by_side["MOFA+ (mu.tl.mofa)"] = {
        "seconds": round(seconds, 2),
        "R² prot": reconstructed(prot.X, mdata.obsm["X_mofa"], mofa_weights("prot")),
        "R² rna": reconstructed(rna.X, mdata.obsm["X_mofa"], mofa_weights("rna")),
    }
    mofa_status = "ran"
print(pd.DataFrame(side_by_side).T.round(3).to_string())
print("MOFA+:", mofa_status)

# %% [markdown]
# The table printed above is the comparison for the run in front of you (times measured on the machine
# running it). LMF reconstructs the RNA from the fixed code K alone and the proteins from K + H; MOFA+'s
# factors reconstruct both views. Without mofapy2 the MOFA+ row is missing and the line below the table
# says so. At the time of writing, on a quiet 2-core machine (mofapy2 0.7.5, muon 0.1.9), the
# codes of the MuData fit equalled those of the AnnData fit exactly (difference 0), LMF took 0.08 s and MOFA+
# 4.5 s, and the share reconstructed was 0.55 of the proteins and 0.32 of the RNA for LMF against 0.63 and
# 0.23 for MOFA+ (15 factors each). `lmf.tl.transform(new_mdata, mdata)` and `lmf.tl.predict` take MuData
# too, and `mdata.write_h5mu` keeps a fit that `lmf.get.model` rebuilds.

# %%
results = {
    "total_variance_explained": totals,
    "hashtag_nmi": leak.to_dict(),
    "held_out_r2": float(r2_held_out),
    "held_out_correlation": correlation.round(4).to_dict(),
    "n_clusters": int(adata.obs["leiden_lmf"].nunique()),
    "leading_factors": list(leading),
    "mudata": {"max_code_difference": mudata_difference, "side_by_side": side_by_side, "mofa": mofa_status},
}
(OUT / "results.json").write_text(json.dumps(results, indent=2))
plt.close("all")
