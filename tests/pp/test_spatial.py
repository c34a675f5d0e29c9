"""spatial_context: squidpy's graph per section times the data, against a brute-force reference."""

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from scipy import sparse

import lmf_omics as lmf


@pytest.fixture
def sections():
    """Two sections sharing one coordinate range: only library_key keeps them apart."""
    rng = np.random.default_rng(1)
    n = 80
    adata = AnnData(sparse.random(n, 30, density=0.3, format="csr", random_state=2))
    adata.obsm["spatial"] = rng.uniform(0, 10, size=(n, 2))
    adata.obs["section"] = pd.Categorical(np.repeat(["s1", "s2"], n // 2))
    adata.obs["cell_type"] = pd.Categorical(rng.choice(["T", "B", "tumour"], n))
    adata.obsm["X_pca"] = rng.standard_normal((n, 5))
    return adata


def _reference_mean(coords, groups, values, k):
    """Mean over the k nearest other spots of the same section, by brute force."""
    out = np.zeros_like(values, dtype=float)
    for i in range(len(coords)):
        same = np.flatnonzero((groups == groups[i]) & (np.arange(len(coords)) != i))
        nearest = same[np.argsort(np.linalg.norm(coords[same] - coords[i], axis=1))[:k]]
        out[i] = values[nearest].mean(axis=0)
    return out


def test_niche_mean_per_section_matches_brute_force(sections):
    lmf.pp.spatial_context(sections, library_key="section", n_neighs=5)
    niche = sections.obsm["spatial_context"]
    assert sparse.issparse(niche)  # sparse in, sparse out
    expected = _reference_mean(sections.obsm["spatial"], sections.obs["section"].to_numpy(), sections.X.toarray(), 5)
    np.testing.assert_allclose(niche.toarray(), expected, rtol=1e-10, atol=1e-12)
    graph = sections.obsp["spatial_context_connectivities"]
    rows, cols = graph.nonzero()
    groups = sections.obs["section"].to_numpy()
    assert (groups[rows] == groups[cols]).all()
    assert sections.uns["spatial_context"]["params"]["library_key"] == "section"
    np.testing.assert_array_equal(sections.uns["spatial_context"]["features"], sections.var_names)


def test_thin_obsm_and_composition_sources(sections):
    lmf.pp.spatial_context(sections, source="obsm:X_pca", library_key="section", key_added="niche_pca")
    expected = _reference_mean(sections.obsm["spatial"], sections.obs["section"].to_numpy(), sections.obsm["X_pca"], 6)
    np.testing.assert_allclose(sections.obsm["niche_pca"].to_numpy(), expected, rtol=1e-10, atol=1e-12)
    lmf.pp.spatial_context(sections, source="obs:cell_type", library_key="section", key_added="composition")
    composition = sections.obsm["composition"]
    assert sparse.issparse(composition)
    np.testing.assert_allclose(composition.sum(axis=1), 1.0)


def test_include_self_and_pcs(sections):
    lmf.pp.spatial_context(sections, library_key="section", include_self=True, n_comps=4, key_added="niche")
    expected = _reference_mean(sections.obsm["spatial"], sections.obs["section"].to_numpy(), sections.X.toarray(), 6)
    expected = (6 * expected + sections.X.toarray()) / 7  # the spot itself joins its 6 nearest neighbours
    centred = expected - expected.mean(axis=0)
    _, singular, _ = np.linalg.svd(centred, full_matrices=False)
    pcs = sections.obsm["niche"]
    assert pcs.shape == (80, 4)
    np.testing.assert_allclose(np.linalg.svd(pcs, compute_uv=False), singular[:4], rtol=1e-6)
    np.testing.assert_allclose(
        sections.uns["niche"]["variance_ratio"], singular[:4] ** 2 / (singular**2).sum(), rtol=1e-6
    )


def test_radius_graph_leaves_isolated_spots_with_their_own_values(sections):
    sections.obsm["spatial"][0] = [100.0, 100.0]
    lmf.pp.spatial_context(sections, method="radius", radius=2.0, library_key="section")
    np.testing.assert_allclose(sections.obsm["spatial_context"][0].toarray(), sections.X[0].toarray())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spatial_key": "xy"}, "'xy' not found in adata.obsm"),
        ({"library_key": "slide"}, "'slide' not found in adata.obs"),
        ({"method": "voronoi"}, "method='voronoi'"),
        ({"radius": 2.0}, "only used with method='radius'"),
        ({"method": "radius"}, "radius=None must be a positive number"),
        ({"n_neighs": 0}, "n_neighs=0"),
        ({"n_comps": 500}, "n_comps=500"),
        ({"library_key": "section", "n_neighs": 40}, "section 's1' has 40 spots; n_neighs=40 needs more than 40"),
        ({"source": "layer:counts"}, "'counts' not found in adata.layers"),
    ],
)
def test_bad_options_raise_and_write_nothing(sections, kwargs, message):
    with pytest.raises((ValueError, KeyError), match=message):
        lmf.pp.spatial_context(sections, **kwargs)
    assert "spatial_context" not in sections.obsm and not sections.obsp


def test_three_real_sections():
    adata = lmf.datasets.breast_st_3slices()
    lmf.pp.spatial_context(adata, library_key="slice", n_comps=10)
    assert adata.obsm["spatial_context"].shape == (769, 10)
    rows, cols = adata.obsp["spatial_context_connectivities"].nonzero()
    assert (adata.obs["slice"].to_numpy()[rows] == adata.obs["slice"].to_numpy()[cols]).all()
    np.testing.assert_array_equal(np.bincount(rows), 6)
