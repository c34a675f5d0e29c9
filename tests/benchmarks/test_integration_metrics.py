"""benchmarks/integration_metrics.py against independent references (scikit-learn, scipy, hand-computed)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, sparse
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression
from sklearn.metrics import pairwise_distances, silhouette_samples, silhouette_score

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "integration_metrics.py"
spec = importlib.util.spec_from_file_location("integration_metrics", PATH)
metrics = importlib.util.module_from_spec(spec)
spec.loader.exec_module(metrics)


@pytest.fixture(scope="module")
def blobs():
    """Three cell types × two batches, the batch a shift along one axis."""
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 40)
    batch = np.tile(["x", "y"], 60)
    centres = {"a": [0, 0, 0], "b": [6, 0, 0], "c": [0, 6, 0]}
    embedding = np.array([centres[label] for label in labels], dtype=float) + rng.normal(size=(120, 3))
    embedding[batch == "y", 2] += 1.5
    return embedding, batch, labels


def test_label_asw_is_sklearn_silhouette_rescaled(blobs):
    embedding, _, labels = blobs
    assert metrics.label_asw(embedding, labels) == pytest.approx(
        (silhouette_score(embedding, labels) + 1) / 2, abs=1e-12
    )


def test_batch_asw_is_one_minus_absolute_batch_silhouette_within_labels(blobs):
    embedding, batch, labels = blobs
    expected = np.mean(
        [np.mean(1 - np.abs(silhouette_samples(embedding[labels == c], batch[labels == c]))) for c in "abc"]
    )
    assert metrics.batch_asw(embedding, batch, labels) == pytest.approx(expected, abs=1e-12)


def test_batch_r2_is_the_mean_r2_of_the_indicators(blobs):
    embedding, batch, _ = blobs
    indicators = metrics.one_hot(batch)
    expected = np.mean([LinearRegression().fit(embedding, column).score(embedding, column) for column in indicators.T])
    assert metrics.batch_r2(embedding, batch) == pytest.approx(expected, abs=1e-10)
    assert metrics.batch_r2(embedding - embedding[:, [2]] * [0, 0, 1], batch) < 0.05  # batch axis dropped


def test_pcr_is_the_variance_weighted_r2_of_the_components(blobs):
    embedding, batch, _ = blobs
    pca = PCA().fit(embedding)
    scores, design = pca.transform(embedding), metrics.one_hot(batch)
    r2 = [LinearRegression().fit(design, s).score(design, s) for s in scores.T]
    expected = np.sum(np.array(r2) * pca.explained_variance_) / np.sum(pca.explained_variance_)
    assert metrics.pcr(embedding, batch) == pytest.approx(expected, abs=1e-10)
    assert metrics.pcr_batch(embedding, embedding, batch) == 0.0


def test_lisi_with_equidistant_neighbours_is_the_inverse_simpson_of_the_counts():
    distances = np.ones((6, 6)) - np.eye(6)
    space = metrics.Space(distances, sparse.csr_matrix(distances))
    batch = np.array(["x", "x", "x", "y", "y", "y"])
    # each cell sees 2 of its own batch and 3 of the other among its 5 neighbours: 1 / (0.4² + 0.6²)
    np.testing.assert_allclose(metrics.lisi(space, batch, perplexity=2), 25 / 13, rtol=1e-12)


def test_simpson_bandwidth_matches_a_root_found_perplexity():
    distances = np.array([[0.5, 1.0, 1.5, 2.0, 3.0, 4.0]])
    codes = np.array([[0, 1, 0, 1, 1, 0]])
    perplexity = 3.0

    def entropy_gap(beta):
        weights = np.exp(-distances[0] * beta)
        p = weights / weights.sum()
        return -(p * np.log(p)).sum() - np.log(perplexity)

    beta = optimize.brentq(entropy_gap, 1e-6, 50)
    p = np.exp(-distances[0] * beta)
    p /= p.sum()
    expected = p[codes[0] == 0].sum() ** 2 + p[codes[0] == 1].sum() ** 2
    assert metrics.simpson_index(distances, codes, 2, perplexity)[0] == pytest.approx(expected, rel=1e-4)


def test_kbet_accepts_mixed_and_rejects_segregated_neighbourhoods():
    codes = np.tile([0, 1], 50)
    mixed = np.array([(np.arange(20) + i) % 100 for i in range(100)])  # 10 of each batch around every cell
    segregated = np.array([np.flatnonzero(codes == codes[i])[:20] for i in range(100)])
    assert metrics.kbet_acceptance(mixed, codes, 2) == 1.0
    assert metrics.kbet_acceptance(segregated, codes, 2) == 0.0


def test_graph_connectivity_is_the_largest_component_share():
    graph = sparse.csr_matrix(np.kron(np.eye(2), np.ones((3, 3))))  # cells 0-2 and 3-5 form two cliques
    space = metrics.Space(np.zeros((6, 6)), graph)
    assert metrics.graph_connectivity(space, np.array([0, 0, 0, 0, 1, 1])) == pytest.approx((3 / 4 + 1) / 2)


def test_leiden_nmi_ari_recover_disconnected_cliques():
    graph = sparse.csr_matrix(np.kron(np.eye(3), np.ones((8, 8))) - np.eye(24))
    space = metrics.Space(np.zeros((24, 24)), graph)
    assert metrics.nmi_ari(space, np.repeat([0, 1, 2], 8), resolutions=(0.5, 1.0)) == pytest.approx((1.0, 1.0))


def test_isolated_label_is_the_rescaled_silhouette_of_the_rarest_label(blobs):
    embedding, batch, labels = blobs
    batch = np.where(labels == "c", "x", batch)  # c is seen in one batch only
    mask = labels == "c"
    expected = (silhouette_samples(embedding, mask)[mask].mean() + 1) / 2
    assert metrics.isolated_label(embedding, labels, batch) == pytest.approx(expected, abs=1e-12)


def test_umap_connectivities_are_symmetric_fuzzy_weights_on_the_nearest(blobs):
    embedding, _, _ = blobs
    distances = pairwise_distances(embedding)
    graph = metrics.umap_connectivities(distances, 15)
    assert abs(graph - graph.T).max() < 1e-12
    assert graph.data.min() > 0 and graph.data.max() <= 1 + 1e-12
    nearest = np.argsort(distances + np.eye(len(distances)) * 1e9, axis=1)[:, 0]
    np.testing.assert_allclose(graph[np.arange(len(nearest)), nearest].A1, 1.0)  # local connectivity 1
    # each cell's own row (before symmetrising) sums to log2(15) over its 14 neighbours
    rows = graph.multiply(distances <= np.sort(distances, axis=1)[:, [14]])
    assert np.all(rows.sum(axis=1).A1 >= np.log2(15) - 1e-6)
