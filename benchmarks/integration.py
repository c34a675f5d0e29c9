"""Integration benchmark: does LMF's fixed code K remove the random effect, against the usual tools?

One run, side by side, on the shared data (``../shared/data``):

* ``pbmc_3chemistries_1200.h5ad``: batch = ``obs["batch"]`` (three 10x chemistries), labels =
  ``obs["cell_type"]``; scib's batch and biology metrics (``integration_metrics.py``);
* ``breast_st_3slices.h5ad``: the section (``obs["slice"]``) as the random effect, no labels: the
  batch metrics (kBET, batch ASW and graph connectivity over all spots as one label) and Moran's I of
  each embedding's factors on each section's spatial graph (squidpy, 6 nearest spots), mean over
  factors and sections: spatial structure kept;
* ``eccite_pbmc_500.h5ad``: the hashtag as a negative control (the RNA carries none to remove). The
  labels are Leiden clusters (resolution 1) of the CLR protein's 15 principal components, an
  independent modality, so that PCA is not scored against its own clusters; biology must not get
  worse than PCA's.
* new levels: each PBMC chemistry held out in turn, the methods fitted on the other two, the held-out
  cells mapped and labelled by a 15-nearest-neighbour vote of the reference cells; each breast section held
  out in turn and mapped (mixing with the reference sections, Moran's I of the mapped factors).

Preprocessing as issue 14: counts, ``normalize_total`` + ``log1p`` + 2,000 HVGs (all 1,767 genes of the
PBMC set); PCA with 30 components on the HVGs; LMF as
``lmf.tl.lmf(a, response="X", fixed="X", random="obs:<batch>", mask_var="highly_variable", n_factors=30)``.

    python benchmarks/integration.py                                  # writes benchmarks/results/integration.*
    python benchmarks/integration.py --lmf-variant '{"random_effect": "states"}' --lmf-variant '{"codes": "free"}'
    python benchmarks/integration.py --datasets pbmc --no-scvi --no-mapping   # a quick look
    python benchmarks/integration.py --lmf-variant '{"states_settings": {"rounds": 5, "cluster_steps": 20}}'

``states_settings`` is not an option of ``tl.lmf``: fields of ``lmf_omics._core.random_effects.Settings``
(the states correction's internal settings) for that row only, to compare them side by side.

Peers: ``pip install ".[bench]"`` (harmonypy, scanorama, bbknn, scvi-tools, symphonypy, scib-metrics); a
missing peer is skipped and the table says so. Times are wall-clock on whatever machine runs it.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scanpy as sc
from anndata import AnnData
from sklearn.neighbors import KNeighborsClassifier

sys.path.insert(0, str(Path(__file__).parent))
import integration_metrics as metrics  # noqa: E402

import lmf_omics as lmf  # noqa: E402
from lmf_omics._core import problems  # noqa: E402
from lmf_omics.datasets import read_shared  # noqa: E402

RESULTS = Path(__file__).parent / "results"
N_COMPS = 30
N_TOP_GENES = 2000
TRANSFER_NEIGHBOURS = 15
LMF_DEFAULT: dict = {}
LMF_BUILTIN_VARIANTS = ({"codes": "free"}, {"solver": "paper"})
STATES_SETTINGS = "states_settings"  # a variant's key for random_effects.Settings fields (not a tl.lmf option)


# ------------------------------------------------------------------------------------ data
@dataclass(frozen=True)
class Dataset:
    name: str
    file: str
    batch: str
    labels: str | None  # an obs column, or None
    spatial: bool = False


DATASETS = {
    "pbmc": Dataset("pbmc", "pbmc_3chemistries_1200.h5ad", "batch", "cell_type"),
    "breast": Dataset("breast", "breast_st_3slices.h5ad", "slice", None, spatial=True),
    "eccite": Dataset("eccite", "eccite_pbmc_500.h5ad", "hashtag", "protein_clusters"),
}


def log_normalised(adata: AnnData) -> AnnData:
    """Counts → normalize_total + log1p → 2,000 HVGs flagged (not subset) → PCA (30) on them."""
    adata = adata.copy()
    adata.X = adata.layers["counts"].copy()
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    sc.pp.highly_variable_genes(adata, n_top_genes=min(N_TOP_GENES, adata.n_vars))
    sc.pp.pca(adata, n_comps=N_COMPS, mask_var="highly_variable", svd_solver="arpack", random_state=0)
    return adata


def protein_clusters(adata: AnnData) -> np.ndarray:
    """Leiden clusters (resolution 1) of the CLR protein's principal components: labels from another modality."""
    counts = np.asarray(adata.obsm["protein_counts"], dtype=float)
    clr = np.log1p(counts)
    clr -= clr.mean(axis=1, keepdims=True)
    protein = AnnData(clr.astype(np.float32))
    sc.pp.pca(protein, n_comps=15, svd_solver="arpack", random_state=0)
    space = metrics.Space.of_embedding(protein.obsm["X_pca"])
    return metrics.leiden_labels(space.connectivities, 1.0).astype(str)


def load(dataset: Dataset) -> AnnData:
    adata = log_normalised(read_shared(dataset.file))
    adata.obs[dataset.batch] = adata.obs[dataset.batch].astype(str).astype("category")
    if dataset.name == "eccite":
        adata.obs["protein_clusters"] = pd.Categorical(protein_clusters(adata))
    return adata


# ------------------------------------------------------------------------------------ methods
@dataclass
class Output:
    """An embedding (n × d) or, for graph methods, a kNN graph (distances, connectivities)."""

    embedding: np.ndarray | None = None
    graph: tuple | None = None
    note: str = ""


@dataclass
class Method:
    name: str
    run: Callable[[AnnData, str], Output]
    needs: tuple[str, ...] = field(default_factory=tuple)  # modules it imports

    def missing(self) -> list[str]:
        import importlib.util

        return [module for module in self.needs if importlib.util.find_spec(module) is None]


def pca(adata: AnnData, batch: str) -> Output:
    return Output(adata.obsm["X_pca"].copy())


def harmony(adata: AnnData, batch: str) -> Output:
    import harmonypy

    result = harmonypy.run_harmony(adata.obsm["X_pca"], adata.obs, batch, verbose=False, random_state=0)
    corrected = np.asarray(result.Z_corr)
    return Output(corrected if corrected.shape[0] == adata.n_obs else corrected.T, note="harmonypy defaults")


def combat(adata: AnnData, batch: str) -> Output:
    hvg = adata[:, adata.var["highly_variable"]].copy()
    hvg.X = hvg.X.toarray() if hasattr(hvg.X, "toarray") else np.asarray(hvg.X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.combat(hvg, key=batch)
    sc.pp.pca(hvg, n_comps=N_COMPS, svd_solver="arpack", random_state=0)
    return Output(hvg.obsm["X_pca"])


def scanorama(adata: AnnData, batch: str) -> Output:
    import scanorama as scanorama_module

    hvg = adata[:, adata.var["highly_variable"]].copy()
    parts = [hvg[hvg.obs[batch] == level].copy() for level in hvg.obs[batch].cat.categories]
    scanorama_module.integrate_scanpy(parts, dimred=N_COMPS, verbose=0)
    embedding = pd.DataFrame(
        np.vstack([part.obsm["X_scanorama"] for part in parts]),
        index=np.concatenate([part.obs_names for part in parts]),
    )
    return Output(embedding.loc[adata.obs_names].to_numpy())


def bbknn(adata: AnnData, batch: str) -> Output:
    import bbknn as bbknn_module

    graph = adata.copy()
    bbknn_module.bbknn(graph, batch_key=batch, use_rep="X_pca")
    return Output(
        graph=(graph.obsp["distances"], graph.obsp["connectivities"]),
        note="graph metrics only; time includes numba compiling",
    )


def scvi(adata: AnnData, batch: str) -> Output:
    import logging

    import scvi as scvi_module
    import torch

    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("scvi").setLevel(logging.ERROR)
    scvi_module.settings.seed = 0
    torch.set_num_threads(1)
    hvg = adata[:, adata.var["highly_variable"]].copy()
    scvi_module.model.SCVI.setup_anndata(hvg, layer="counts", batch_key=batch)
    model = scvi_module.model.SCVI(hvg, n_latent=N_COMPS, n_layers=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.train(accelerator="cpu", enable_progress_bar=False)
    return Output(model.get_latent_representation(), note=f"n_latent {N_COMPS}, 2 layers, default epochs")


@contextmanager
def states_settings(fields: dict | None) -> Iterator[None]:
    """The states correction fitted with these ``Settings`` fields (the package's defaults otherwise)."""
    original = problems.Settings
    if fields:
        problems.Settings = functools.partial(original, **fields)
    try:
        yield
    finally:
        problems.Settings = original


def lmf_fit(adata: AnnData, batch: str, options: dict) -> AnnData:
    fit = adata.copy()
    options = dict(options)
    with states_settings(options.pop(STATES_SETTINGS, None)):
        lmf.tl.lmf(
            fit,
            response="X",
            fixed="X",
            random=f"obs:{batch}",
            mask_var="highly_variable",
            n_factors=N_COMPS,
            progress=False,
            **options,
        )
    return fit


def lmf_method(options: dict) -> Callable[[AnnData, str], Output]:
    def run(adata: AnnData, batch: str) -> Output:
        return Output(lmf_fit(adata, batch, options).obsm["X_lmf_fixed"], note=json.dumps(options))

    return run


def lmf_name(options: dict) -> str:
    def shown(value):
        return " ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else value

    return "LMF K, default" if not options else "LMF K, " + ", ".join(f"{k}={shown(v)}" for k, v in options.items())


def methods(variants: list[dict], with_scvi: bool) -> list[Method]:
    listed = [
        Method("PCA (uncorrected)", pca),
        Method("Harmony", harmony, ("harmonypy",)),
        Method("ComBat + PCA", combat),
        Method("Scanorama", scanorama, ("scanorama",)),
        Method("BBKNN", bbknn, ("bbknn",)),
    ]
    if with_scvi:
        listed.append(Method("scVI", scvi, ("scvi",)))
    for options in [LMF_DEFAULT, *LMF_BUILTIN_VARIANTS, *variants]:
        listed.append(Method(lmf_name(options), lmf_method(options)))
    return listed


# ------------------------------------------------------------------------------------ scoring
def morans_i(adata: AnnData, embedding: np.ndarray, section: str) -> float:
    """Mean over factors and sections of Moran's I of each factor on the section's 6-NN spatial graph."""
    import squidpy as sq

    values = []
    for level in adata.obs[section].cat.categories:
        mask = (adata.obs[section] == level).to_numpy()
        part = AnnData(np.asarray(embedding[mask], dtype=np.float64), obsm={"spatial": adata.obsm["spatial"][mask]})
        part.var_names = [f"f{j}" for j in range(embedding.shape[1])]
        sq.gr.spatial_neighbors(part, coord_type="generic", n_neighs=6)
        table = sq.gr.spatial_autocorr(part, mode="moran", genes=list(part.var_names), n_perms=None, copy=True)
        values.append(table["I"].mean())
    return float(np.mean(values))


def score(adata: AnnData, dataset: Dataset, output: Output) -> dict:
    batch = adata.obs[dataset.batch].to_numpy()
    labels = adata.obs[dataset.labels].to_numpy() if dataset.labels else np.zeros(adata.n_obs)
    space = metrics.Space.of_graph(*output.graph) if output.graph is not None else None
    scores = metrics.all_scores(output.embedding, adata.obsm["X_pca"], batch, labels, space, bio=bool(dataset.labels))
    if dataset.labels is None:
        scores = {k: v for k, v in scores.items() if k not in ("bio", "overall")}
    if dataset.spatial and output.embedding is not None:
        scores["morans_i"] = morans_i(adata, output.embedding, dataset.batch)
    return scores


def run_dataset(dataset: Dataset, listed: list[Method]) -> list[dict]:
    adata = load(dataset)
    rows = []
    for method in listed:
        row = {"dataset": dataset.name, "method": method.name}
        missing = method.missing()
        if missing:
            rows.append(row | {"note": f"not installed: {', '.join(missing)} (pip install '.[bench]')"})
            print(f"[{dataset.name}] {method.name}: skipped, {missing} not installed", flush=True)
            continue
        start = time.perf_counter()
        try:
            output = method.run(adata, dataset.batch)
        except Exception as error:  # a peer that fails is reported, not fatal
            rows.append(row | {"note": f"failed: {type(error).__name__}: {error}"[:200]})
            print(f"[{dataset.name}] {method.name}: failed: {error}", flush=True)
            continue
        row |= {"seconds": time.perf_counter() - start, "note": output.note}
        row |= score(adata, dataset, output)
        print(f"[{dataset.name}] {method.name}: " + ", ".join(_short(row)), flush=True)
        rows.append(row)
    return rows


def _short(row: dict) -> list[str]:
    keys = ("batch_r2", "ilisi", "kbet", "nmi", "ari", "morans_i", "overall", "accuracy", "seconds")
    return [f"{k} {row[k]:.3f}" for k in keys if isinstance(row.get(k), float)]


# ------------------------------------------------------------------------------------ new levels
def knn_accuracy(reference: np.ndarray, labels: np.ndarray, query: np.ndarray, truth: np.ndarray) -> float:
    vote = KNeighborsClassifier(n_neighbors=TRANSFER_NEIGHBOURS).fit(reference, labels).predict(query)
    return float(np.mean(vote == truth))


def mapping_lmf(reference: AnnData, query: AnnData, batch: str, options: dict) -> tuple[np.ndarray, np.ndarray]:
    fitted = lmf_fit(reference, batch, options)
    mapped = query.copy()
    lmf.tl.transform(mapped, fitted)
    return fitted.obsm["X_lmf_fixed"], mapped.obsm["X_lmf_fixed"]


def mapping_pca(reference: AnnData, query: AnnData, batch: str) -> tuple[np.ndarray, np.ndarray]:
    """The reference's PCA, the query projected on its loadings (no correction)."""
    hvg = reference.var["highly_variable"].to_numpy()
    loadings = reference.varm["PCs"][hvg]
    mean = np.asarray(reference.X[:, hvg].mean(axis=0)).ravel()
    return reference.obsm["X_pca"], (query.X[:, hvg] @ loadings) - mean @ loadings


def mapping_harmony_de_novo(adata: AnnData, reference_mask: np.ndarray, batch: str) -> tuple[np.ndarray, np.ndarray]:
    """Harmony on all cells together (the query seen during integration): an optimistic baseline."""
    corrected = harmony(adata, batch).embedding
    return corrected[reference_mask], corrected[~reference_mask]


def mapping_symphony(reference: AnnData, query: AnnData, batch: str) -> tuple[np.ndarray, np.ndarray]:
    import symphonypy

    hvg = reference.var_names[reference.var["highly_variable"]]
    reference, query = reference[:, hvg].copy(), query[:, hvg].copy()
    sc.pp.scale(reference)  # symphonypy reads the reference's gene means and sds from var["mean"], var["std"]
    sc.pp.pca(reference, n_comps=N_COMPS, svd_solver="arpack", random_state=0)
    symphonypy.pp.harmony_integrate(reference, key=batch, verbose=False)
    symphonypy.tl.map_embedding(query, reference, key=batch)
    return reference.obsm["X_pca_harmony"], query.obsm["X_pca_harmony"]


def mapping_candidates(dataset, reference, query, everything, query_mask, variants) -> dict[str, Callable]:
    """Each mapping method as a call returning (reference codes, query codes)."""
    batch = dataset.batch
    candidates = {"PCA projection (uncorrected)": lambda: mapping_pca(reference, query, batch)}
    for options in [LMF_DEFAULT, *variants]:
        candidates[lmf_name(options) + " (tl.transform)"] = lambda o=options: mapping_lmf(reference, query, batch, o)
    candidates["Harmony on all cells (de novo, optimistic)"] = lambda: mapping_harmony_de_novo(
        everything, ~query_mask, batch
    )
    candidates["Symphony (symphonypy)"] = lambda: mapping_symphony(reference, query, batch)
    return candidates


def labels_transferred(dataset: Dataset, reference: AnnData, query: AnnData, codes) -> dict:
    """Cell types: kNN label transfer accuracy against the query's annotation."""
    labels, truth = reference.obs[dataset.labels].to_numpy(), query.obs[dataset.labels].to_numpy()
    return {"accuracy": knn_accuracy(codes[0], labels, codes[1], truth)}


def section_mixed(dataset: Dataset, reference: AnnData, query: AnnData, codes) -> dict:
    """No labels: does the mapped section mix with the reference sections, and keep its spatial structure?

    iLISI and kBET over reference and query together (the three sections as the batch), the batch R² of
    the query-vs-reference indicator, and Moran's I of the query's mapped factors on its own spatial graph.
    """
    reference_codes, query_codes = codes
    joint = np.vstack([reference_codes, query_codes])
    sections = np.concatenate([reference.obs[dataset.batch].astype(str), query.obs[dataset.batch].astype(str)])
    is_query = np.r_[np.zeros(len(reference_codes)), np.ones(len(query_codes))]
    space = metrics.Space.of_embedding(joint)
    return {
        "ilisi": metrics.ilisi(space, sections),
        "kbet": metrics.kbet(space, sections, np.zeros(len(joint))),
        "batch_r2": metrics.batch_r2(joint, is_query.astype(int)),
        "morans_i": morans_i(query, query_codes, dataset.batch),
    }


MAPPING_SCORES = {"pbmc": labels_transferred, "breast": section_mixed}


def run_mapping(variants: list[dict], with_symphony: bool = True, datasets=("pbmc", "breast")) -> list[dict]:
    """Each level of the random effect held out in turn: fit on the others, map it (``tl.transform``), score."""
    rows = []
    for name in datasets:
        dataset, scoring = DATASETS[name], MAPPING_SCORES[name]
        raw = read_shared(dataset.file)
        everything = load(dataset)
        for held_out in sorted(raw.obs[dataset.batch].astype(str).unique()):
            query_mask = (raw.obs[dataset.batch].astype(str) == held_out).to_numpy()
            reference = log_normalised(raw[~query_mask].copy())  # HVGs and PCA of the reference cells only
            reference.obs[dataset.batch] = reference.obs[dataset.batch].astype(str).astype("category")
            query = log_normalised(raw[query_mask].copy())
            query.obs[dataset.batch] = query.obs[dataset.batch].astype(str).astype("category")
            query.var["highly_variable"] = reference.var["highly_variable"]
            candidates = mapping_candidates(dataset, reference, query, everything, query_mask, variants)
            if not with_symphony:
                candidates.pop("Symphony (symphonypy)")
            for method, make in candidates.items():
                row = {"dataset": name, "held_out": held_out, "method": method, "query_cells": int(query_mask.sum())}
                start = time.perf_counter()
                try:
                    codes = make()
                except ImportError as error:
                    rows.append(row | {"note": f"not installed: {error.name}"})
                    continue
                except Exception as error:  # a peer that fails is reported, not fatal
                    rows.append(row | {"note": f"failed: {type(error).__name__}: {error}"[:200]})
                    print(f"[map {name} {held_out}] {method}: failed: {error}", flush=True)
                    continue
                row |= {"seconds": time.perf_counter() - start} | scoring(dataset, reference, query, codes)
                print(f"[map {name} {held_out}] {method}: " + ", ".join(_short(row)), flush=True)
                rows.append(row)
    return rows


# ------------------------------------------------------------------------------------ report
COLUMNS = {
    "batch_asw": "batch ASW",
    "ilisi": "iLISI",
    "kbet": "kBET",
    "graph_connectivity": "graph conn.",
    "pcr_batch": "PCR batch",
    "batch_r2": "batch R² ↓",
    "label_asw": "label ASW",
    "nmi": "NMI",
    "ari": "ARI",
    "clisi": "cLISI",
    "isolated_label": "isolated label",
    "morans_i": "Moran's I",
    "batch": "batch",
    "bio": "bio",
    "overall": "overall",
    "seconds": "time (s)",
}


def markdown_table(frame: pd.DataFrame, columns: list[str]) -> str:
    present = [c for c in columns if c in frame and frame[c].notna().any()]
    header = ["method", *[COLUMNS.get(c, c) for c in present], "note"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in frame.iterrows():
        cells = [str(row["method"])]
        for c in present:
            value = row.get(c)
            cells.append("" if pd.isna(value) else (f"{value:.1f}" if c == "seconds" else f"{value:.3f}"))
        cells.append("" if pd.isna(row.get("note")) else str(row.get("note")))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def environment() -> str:
    from threadpoolctl import threadpool_info

    pools = [f"{p['internal_api']} {p.get('version')} ({p['num_threads']} threads)" for p in threadpool_info()]
    load = os.getloadavg()
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores; load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min); thread pools: {'; '.join(pools)}"
    )


def report(scores: pd.DataFrame, mapping: pd.DataFrame, started: str, finished: str) -> str:
    sections = [
        "# Integration benchmark (`benchmarks/integration.py`)",
        "",
        f"Started: {started}.  ",
        f"Finished: {finished}.  ",
        "Metrics: `benchmarks/integration_metrics.py`, scib's definitions written out (raw values, not min-max "
        "scaled; batch = mean of batch ASW, iLISI, kBET, graph connectivity, PCR batch; bio = mean of label ASW, "
        "NMI, ARI, cLISI, isolated label; overall = 0.4 batch + 0.6 bio). batch R² (↓) is reported, not "
        "aggregated. BBKNN is a graph: iLISI, cLISI, kBET, graph connectivity, NMI and ARI only, and its "
        "aggregates are over those. Times are wall-clock on a shared machine: indicative only.",
    ]
    titles = {
        "pbmc": "PBMC, three chemistries (batch = chemistry, labels = annotated cell types)",
        "breast": "Breast cancer ST, three sections (random effect = section; no labels: batch metrics and Moran's I)",
        "eccite": "ECCITE-seq hashtags, negative control (labels = Leiden clusters of the CLR protein)",
    }
    for name, frame in scores.groupby("dataset", sort=False) if "dataset" in scores else []:
        sections += ["", f"## {titles[name]}", "", markdown_table(frame, list(COLUMNS))]
    cells = mapping[mapping["dataset"] == "pbmc"] if len(mapping) else mapping
    if len(cells):
        wide = cells.pivot_table(index="method", columns="held_out", values="accuracy", sort=False)
        wide["mean"] = wide.mean(axis=1)
        lines = ["| method | " + " | ".join(f"held out {c}" for c in wide.columns[:-1]) + " | mean |"]
        lines.append("|" + "---|" * (len(wide.columns) + 1))
        for method, row in wide.iterrows():
            lines.append(f"| {method} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
        sections += [
            "",
            "## New levels: one chemistry held out, mapped onto the other two",
            "",
            f"kNN ({TRANSFER_NEIGHBOURS} neighbours) label transfer from the reference cells' codes to the query's; "
            "accuracy against the query's annotated cell types.",
            "",
            *lines,
        ]
    spots = mapping[mapping["dataset"] == "breast"] if len(mapping) else mapping
    if len(spots):
        keys = ["ilisi", "kbet", "batch_r2", "morans_i"]
        means = spots.groupby("method", sort=False)[keys + ["seconds"]].mean()
        lines = ["| method | iLISI | kBET | query R² ↓ | Moran's I of the query | time (s) |", "|---" * 6 + "|"]
        for method, row in means.iterrows():
            lines.append(f"| {method} | " + " | ".join(f"{row[k]:.3f}" for k in keys) + f" | {row['seconds']:.1f} |")
        sections += [
            "",
            "## New levels: one breast section held out, mapped onto the other two",
            "",
            "Mean over the three held-out sections. iLISI and kBET over reference and mapped spots together (the "
            "three sections as the batch); query R²: the batch R² of the query-vs-reference indicator (0: no linear "
            "trace of which spots were mapped); Moran's I of the mapped factors on the held-out section's own "
            "6-NN spatial graph (spatial structure kept).",
            "",
            *lines,
        ]
    return "\n".join(sections) + "\n"


def figure(scores: pd.DataFrame, mapping: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = scores["dataset"] if "dataset" in scores else pd.Series(dtype=str)
    labelled = datasets[scores["bio"].notna()] if "bio" in scores else datasets.iloc[:0]
    panels = list(labelled.unique()) + (["breast"] if (datasets == "breast").any() else [])
    mapping = mapping[mapping["dataset"] == "pbmc"] if len(mapping) else mapping
    panels += ["mapping"] if len(mapping) else []
    methods_mapped = mapping["method"].nunique() if len(mapping) else 0
    height = max(4.6, 0.75 * methods_mapped + 1.0)  # room for each mapped method's wrapped name
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), height), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        if panel == "mapping":
            import textwrap

            wide = mapping.pivot_table(index="method", columns="held_out", values="accuracy", sort=False)
            wide.index = [textwrap.fill(name, 30) for name in wide.index]
            wide.plot.barh(ax=ax, width=0.8)
            ax.legend(title="held out", fontsize=7, loc="lower left", bbox_to_anchor=(1.0, 0.0))
            ax.set_xlim(0.6, 1.0)
            ax.set_ylabel("")
            ax.set_xlabel("kNN label-transfer accuracy")
            ax.set_title("held-out chemistry mapped")
            ax.invert_yaxis()
            continue
        frame = scores[scores["dataset"] == panel]
        y_column, y_label = ("bio", "bio score") if panel != "breast" else ("morans_i", "Moran's I (mean over factors)")
        frame = frame[frame[y_column].notna() & frame["batch"].notna()]
        for i, (_, row) in enumerate(frame.iterrows()):
            graph_only = pd.isna(row.get("batch_asw"))  # aggregates over fewer metrics: not comparable
            label = row["method"] + (" (graph metrics only)" if graph_only else "")
            marker = "^" if graph_only else "o"
            ax.scatter(row["batch"], row[y_column], color=plt.cm.tab20(i % 20), s=50, marker=marker, label=label)
        ax.set_xlabel("batch score")
        ax.set_ylabel(y_label)
        ax.set_title(panel)
        ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--no-symphony", action="store_true", help="leave Symphony out of the mapping (slow here)")
    parser.add_argument(
        "--lmf-variant",
        action="append",
        default=[],
        type=json.loads,
        help="JSON keyword arguments of lmf.tl.lmf for an extra LMF row (repeatable)",
    )
    parser.add_argument("--no-scvi", action="store_true", help="leave scVI out (minutes on a CPU)")
    parser.add_argument("--no-mapping", action="store_true", help="leave the held-out chemistry mapping out")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--report",
        nargs="+",
        type=Path,
        metavar="CSV",
        help="redraw the table and figure from saved runs' CSVs (e.g. runs split over processes), no fitting",
    )
    args = parser.parse_args(argv)
    if args.report:
        saved = pd.concat([pd.read_csv(path) for path in args.report], ignore_index=True)
        write(saved, args.out, *(" and ".join(saved[k].dropna().unique()) for k in ("run_started", "run_finished")))
        return
    sc.settings.verbosity = 0
    started = environment()
    print(started, flush=True)
    listed = methods(args.lmf_variant, with_scvi=not args.no_scvi)
    rows = []
    for name in args.datasets:
        rows += [row | {"task": "integration"} for row in run_dataset(DATASETS[name], listed)]
        write(pd.DataFrame(rows), args.out, started, environment())  # progress kept
    if not args.no_mapping:
        rows += [row | {"task": "mapping"} for row in run_mapping(args.lmf_variant, not args.no_symphony)]
    write(pd.DataFrame(rows), args.out, started, environment())
    print((args.out / "integration.md").read_text())


def write(saved: pd.DataFrame, out: Path, started: str, finished: str) -> None:
    """integration.csv (every row), integration.md and integration.png from the rows so far."""
    out.mkdir(parents=True, exist_ok=True)
    saved = saved.copy()
    for key, value in (("run_started", started), ("run_finished", finished)):
        saved[key] = saved[key].fillna(value) if key in saved else value
    saved.to_csv(out / "integration.csv", index=False)
    scores = saved[saved["task"] == "integration"].dropna(axis=1, how="all")
    mapping = saved[saved["task"] == "mapping"].dropna(axis=1, how="all")
    (out / "integration.md").write_text(report(scores, mapping, started, finished))
    figure(scores, mapping, out / "integration.png")


if __name__ == "__main__":
    main()
