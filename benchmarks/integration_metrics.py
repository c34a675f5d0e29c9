"""scib's integration metrics (Luecken et al. 2022, Nat Methods), written from their definitions.

numpy, scipy, scikit-learn and scanpy only, so the metrics run wherever the package runs; where
scib-metrics is installed, ``integration.py`` prints its values beside these for the same
embeddings. Every score is in [0, 1], higher is better:

* batch: ``batch_asw`` (1 − |silhouette of batch| within each label), ``ilisi`` (median
  integration LISI, (LISI − 1)/(B − 1)), ``kbet`` (Büttner's χ² acceptance rate per label),
  ``graph_connectivity``, ``pcr_batch`` (fraction of the uncorrected PCA's batch variance removed),
  and ``batch_r2`` reported beside them (mean R² of the batch indicators regressed on the
  embedding; lower is better, not in the aggregate);
* biology: ``label_asw`` ((silhouette + 1)/2), ``nmi`` and ``ari`` of Leiden clusters (the
  resolution with the best NMI on a fixed grid), ``clisi`` ((L − median LISI)/(L − 1)),
  ``isolated_label`` (label ASW of the labels seen in the fewest batches);
* ``overall = 0.4 · batch + 0.6 · bio``, each the unweighted mean of its raw (not min-max scaled)
  metrics, as scib aggregates.

A *space* is what the neighbourhood metrics read: every metric but the silhouettes, PCR and R²
works from a dense matrix of pairwise distances, Euclidean for an embedding or shortest paths on a
graph (BBKNN), so graph outputs get the graph metrics on the same definitions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse, stats
from scipy.sparse.csgraph import connected_components, dijkstra
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, pairwise_distances, silhouette_samples

BATCH_METRICS = ("batch_asw", "ilisi", "kbet", "graph_connectivity", "pcr_batch")
BIO_METRICS = ("label_asw", "nmi", "ari", "clisi", "isolated_label")
RESOLUTIONS = tuple(np.round(np.arange(0.1, 2.01, 0.1), 2))
PERPLEXITY = 30
GRAPH_NEIGHBOURS = 15


@dataclass(frozen=True)
class Space:
    """Pairwise distances between cells (n × n) and the kNN graph the clustering metrics use."""

    distances: np.ndarray
    connectivities: sparse.csr_matrix

    @classmethod
    def of_embedding(cls, embedding: np.ndarray) -> Space:
        distances = pairwise_distances(np.asarray(embedding, dtype=float))
        return cls(distances, umap_connectivities(distances, GRAPH_NEIGHBOURS))

    @classmethod
    def of_graph(cls, distances: sparse.spmatrix, connectivities: sparse.spmatrix) -> Space:
        """Shortest-path distances on a graph's weighted edges; unreachable cells are infinitely far."""
        return cls(dijkstra(sparse.csr_matrix(distances), directed=False), sparse.csr_matrix(connectivities))

    def neighbours(self, k: int, subset: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Indices (into ``subset``) and distances of each cell's ``k`` nearest others, nearest first."""
        distances = self.distances if subset is None else self.distances[np.ix_(subset, subset)]
        distances = distances.copy()
        np.fill_diagonal(distances, np.inf)
        k = min(k, distances.shape[0] - 1)
        order = np.argsort(distances, axis=1, kind="stable")[:, :k]
        return order, np.take_along_axis(distances, order, axis=1)


def _codes(labels) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(np.asarray(labels), sort=True)
    return codes, len(uniques)


def simpson_index(distances: np.ndarray, neighbour_codes: np.ndarray, n_codes: int, perplexity: float) -> np.ndarray:
    """Harmony's ``compute_simpson``: Gaussian weights with the bandwidth set by binary search on β
    so that each cell's neighbourhood has the given perplexity, then Σ_c (weight of category c)²."""
    distances = np.where(np.isfinite(distances), distances, np.nan)
    distances = distances - np.nanmin(distances, axis=1, keepdims=True)  # same weights, no underflow
    target = np.log(perplexity)
    beta = np.ones(distances.shape[0])
    low = np.full_like(beta, -np.inf)
    high = np.full_like(beta, np.inf)
    for _ in range(50):
        weights = np.nan_to_num(np.exp(-distances * beta[:, None]))
        total = weights.sum(axis=1)
        entropy = np.log(total) + beta * np.nansum(distances * weights, axis=1) / total
        gap = entropy - target
        if np.all(np.abs(gap) < 1e-5):
            break
        up = gap > 0
        low = np.where(up, beta, low)
        high = np.where(up, high, beta)
        beta = np.where(
            up,
            np.where(np.isinf(high), beta * 2, (beta + high) / 2),
            np.where(np.isinf(low), beta / 2, (beta + low) / 2),
        )
    weights = weights / weights.sum(axis=1, keepdims=True)
    per_code = np.zeros((distances.shape[0], n_codes))
    np.add.at(
        per_code,
        (np.repeat(np.arange(distances.shape[0]), distances.shape[1]), neighbour_codes.ravel()),
        weights.ravel(),
    )
    return (per_code**2).sum(axis=1)


def lisi(space: Space, labels, perplexity: float = PERPLEXITY) -> np.ndarray:
    """Per-cell LISI (1/Simpson) over the 3·perplexity nearest cells."""
    codes, n_codes = _codes(labels)
    index, distances = space.neighbours(int(3 * perplexity))
    return 1.0 / simpson_index(distances, codes[index], n_codes, perplexity)


def ilisi(space: Space, batch) -> float:
    n_batches = _codes(batch)[1]
    return float((np.median(lisi(space, batch)) - 1) / (n_batches - 1))


def clisi(space: Space, labels) -> float:
    n_labels = _codes(labels)[1]
    return float((n_labels - np.median(lisi(space, labels))) / (n_labels - 1))


def label_asw(embedding: np.ndarray, labels) -> float:
    return float((silhouette_samples(embedding, np.asarray(labels)).mean() + 1) / 2)


def batch_asw(embedding: np.ndarray, batch, labels) -> float:
    """Mean over labels of the mean 1 − |silhouette| of the batches within that label's cells."""
    batch, labels = np.asarray(batch), np.asarray(labels)
    scores = []
    for label in np.unique(labels):
        mask = labels == label
        if len(np.unique(batch[mask])) < 2 or mask.sum() < 3:
            continue
        scores.append(np.mean(1 - np.abs(silhouette_samples(embedding[mask], batch[mask]))))
    return float(np.mean(scores))


def kbet_acceptance(index: np.ndarray, batch_codes: np.ndarray, n_batches: int, alpha: float = 0.05) -> float:
    """Fraction of neighbourhoods whose batch counts pass a χ² test against the overall frequencies."""
    expected = np.bincount(batch_codes, minlength=n_batches) / len(batch_codes) * index.shape[1]
    observed = np.zeros((index.shape[0], n_batches))
    np.add.at(observed, (np.repeat(np.arange(index.shape[0]), index.shape[1]), batch_codes[index].ravel()), 1)
    statistic = ((observed - expected) ** 2 / expected).sum(axis=1)
    return float(np.mean(stats.chi2.sf(statistic, df=n_batches - 1) >= alpha))


def kbet(space: Space, batch, labels, alpha: float = 0.05) -> float:
    """scib's kBET per label: k0 = a quarter of the mean batch size in the label, clipped to [10, 70]."""
    batch, labels = np.asarray(batch), np.asarray(labels)
    scores = []
    for label in np.unique(labels):
        subset = np.flatnonzero(labels == label)
        codes, n_batches = _codes(batch[subset])
        if n_batches < 2:
            continue
        k0 = int(np.clip(np.floor(np.bincount(codes).mean() / 4), 10, 70))
        if len(subset) <= k0:
            continue
        index, distances = space.neighbours(k0, subset)
        if not np.all(np.isfinite(distances)):  # a graph split within the label: kBET is undefined
            scores.append(0.0)
            continue
        scores.append(kbet_acceptance(index, codes, n_batches, alpha))
    return float(np.mean(scores))


def graph_connectivity(space: Space, labels) -> float:
    """Mean over labels of the largest connected component's share of the label's cells in the kNN graph."""
    labels = np.asarray(labels)
    shares = []
    for label in np.unique(labels):
        subset = np.flatnonzero(labels == label)
        _, component = connected_components(space.connectivities[subset][:, subset], directed=False)
        shares.append(np.bincount(component).max() / len(subset))
    return float(np.mean(shares))


def _r2_of_design(design: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """R² of each column of ``targets`` regressed by least squares on ``design`` with an intercept."""
    design = design - design.mean(axis=0)
    targets = targets - targets.mean(axis=0)
    coef, *_ = np.linalg.lstsq(design, targets, rcond=None)
    residual = ((targets - design @ coef) ** 2).sum(axis=0)
    total = (targets**2).sum(axis=0)
    return 1 - residual / np.where(total > 0, total, 1)


def one_hot(values) -> np.ndarray:
    codes, n_codes = _codes(values)
    return np.eye(n_codes)[codes]


def batch_r2(embedding: np.ndarray, batch) -> float:
    """Mean R² of the batch indicators regressed linearly on the embedding (0: no linear batch left)."""
    return float(np.mean(_r2_of_design(np.asarray(embedding, dtype=float), one_hot(batch))))


def pcr(embedding: np.ndarray, batch, n_comps: int = 50) -> float:
    """Batch's share of the embedding's variance: R² of each principal component on the batch, weighted
    by the component's variance."""
    centred = np.asarray(embedding, dtype=float) - np.mean(embedding, axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    n_comps = min(n_comps, len(s))
    scores, variance = u[:, :n_comps] * s[:n_comps], s[:n_comps] ** 2
    return float(np.sum(_r2_of_design(one_hot(batch), scores) * variance) / np.sum(variance))


def pcr_batch(embedding: np.ndarray, uncorrected: np.ndarray, batch) -> float:
    before = pcr(uncorrected, batch)
    return float(np.clip((before - pcr(embedding, batch)) / before, 0, 1))


def isolated_label(embedding: np.ndarray, labels, batch) -> float:
    """Mean over the labels present in the fewest batches of their cells' label silhouette, (s + 1)/2,
    against all other cells."""
    labels, batch = np.asarray(labels), np.asarray(batch)
    batches_per_label = pd.Series(batch).groupby(labels).nunique()
    isolated = batches_per_label.index[batches_per_label == batches_per_label.min()]
    scores = []
    for label in isolated:
        mask = labels == label
        silhouettes = silhouette_samples(embedding, mask)
        scores.append((silhouettes[mask].mean() + 1) / 2)
    return float(np.mean(scores))


def umap_connectivities(distances: np.ndarray, n_neighbors: int) -> sparse.csr_matrix:
    """scanpy's default kNN graph (UMAP's fuzzy simplicial set, local connectivity 1) from dense distances.

    Each cell's ``n_neighbors`` nearest (itself included, as scanpy counts) get weights
    exp(−max(0, d − ρ)/σ), ρ the distance to the nearest other cell and σ set by bisection so that the
    weights of the others sum to log2(n_neighbors); the graph is W + Wᵀ − W ∘ Wᵀ. Written out here
    so that the metrics need no numba compilation (scanpy's takes minutes on a loaded machine).
    """
    n = distances.shape[0]
    order = np.argsort(distances, axis=1, kind="stable")[:, :n_neighbors]
    near = np.take_along_axis(distances, order, axis=1)[:, 1:]
    rho = near[:, 0]
    excess = np.maximum(near - rho[:, None], 0)
    target = np.log2(n_neighbors)
    low, high = np.zeros(n), np.full(n, np.inf)
    sigma = np.ones(n)
    for _ in range(64):
        total = np.exp(-excess / sigma[:, None]).sum(axis=1)
        above = total > target
        high = np.where(above, sigma, high)
        low = np.where(above, low, sigma)
        sigma = np.where(np.isinf(high), sigma * 2, (low + high) / 2)
    sigma = np.maximum(sigma, 1e-3 * np.mean(near))
    weights = np.exp(-excess / sigma[:, None])
    rows = np.repeat(np.arange(n), n_neighbors - 1)
    graph = sparse.csr_matrix((weights.ravel(), (rows, order[:, 1:].ravel())), shape=(n, n))
    return (graph + graph.T - graph.multiply(graph.T)).tocsr()


def leiden_labels(connectivities: sparse.spmatrix, resolution: float) -> np.ndarray:
    """Leiden (igraph, modularity, two iterations as scanpy's igraph flavour) on the weighted graph; fixed seed."""
    import random

    import igraph

    upper = sparse.triu(connectivities, k=1).tocoo()
    graph = igraph.Graph(n=connectivities.shape[0], edges=list(zip(upper.row.tolist(), upper.col.tolist())))
    random.seed(0)
    partition = graph.community_leiden(
        objective_function="modularity", weights=upper.data, resolution=resolution, n_iterations=2
    )
    return np.asarray(partition.membership)


def nmi_ari(space: Space, labels, resolutions=RESOLUTIONS) -> tuple[float, float]:
    """NMI and ARI of the Leiden clustering whose resolution (on the grid) gives the best NMI."""
    best = (-1.0, 0.0)
    for resolution in resolutions:
        clusters = leiden_labels(space.connectivities, resolution)
        nmi = normalized_mutual_info_score(labels, clusters)
        if nmi > best[0]:
            best = (nmi, adjusted_rand_score(labels, clusters))
    return float(best[0]), float(best[1])


def batch_scores(space: Space, embedding: np.ndarray | None, uncorrected: np.ndarray, batch, labels) -> dict:
    """The batch metrics; a graph (``embedding=None``) gets iLISI, kBET and graph connectivity only."""
    scores = {"ilisi": ilisi(space, batch), "kbet": kbet(space, batch, labels)}
    scores["graph_connectivity"] = graph_connectivity(space, labels)
    if embedding is not None:
        scores["batch_asw"] = batch_asw(embedding, batch, labels)
        scores["pcr_batch"] = pcr_batch(embedding, uncorrected, batch)
        scores["batch_r2"] = batch_r2(embedding, batch)
    return scores


def bio_scores(space: Space, embedding: np.ndarray | None, labels, batch) -> dict:
    nmi, ari = nmi_ari(space, labels)
    scores = {"nmi": nmi, "ari": ari, "clisi": clisi(space, labels)}
    if embedding is not None:
        scores["label_asw"] = label_asw(embedding, labels)
        scores["isolated_label"] = isolated_label(embedding, labels, batch)
    return scores


def aggregate(scores: dict) -> dict:
    """scib's aggregation of the metrics present: batch and bio means, overall 0.4 · batch + 0.6 · bio."""
    out = {}
    for name, metrics in (("batch", BATCH_METRICS), ("bio", BIO_METRICS)):
        present = [scores[m] for m in metrics if m in scores and np.isfinite(scores[m])]
        out[name] = float(np.mean(present)) if present else np.nan
    out["overall"] = 0.4 * out["batch"] + 0.6 * out["bio"]
    return out


def all_scores(embedding: np.ndarray | None, uncorrected: np.ndarray, batch, labels, space=None, bio: bool = True):
    """Every metric of an embedding (or, with ``embedding=None``, of the graph in ``space``) and the aggregates;
    ``bio=False`` for data without labels (``labels`` then groups the cells for kBET, batch ASW and graph
    connectivity, e.g. all in one group)."""
    space = space if space is not None else Space.of_embedding(embedding)
    scores = batch_scores(space, embedding, uncorrected, batch, labels)
    if bio:
        scores |= bio_scores(space, embedding, labels, batch)
    return scores | aggregate(scores)
