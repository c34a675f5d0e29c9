"""``tl.lmf`` on a backed AnnData: the matrix is streamed from the file, the result equals the in-memory fit."""

import hashlib

import anndata as ad
import numpy as np
import pytest
from scipy import sparse

import lmf_omics as lmf
from lmf_omics._core.backends import StreamedMatrix
from lmf_omics._modalities import read_aligned, read_modality

from .planted import N_FACTORS, planted_adata

OPTIONS = {
    "response": "obsm:protein",
    "fixed": "X",
    "random": "obs:batch",
    "n_factors": N_FACTORS,
    "tol": 1e-9,
    "mask_var": "highly_variable",
    "progress": False,
}


def test_backed_fit_streams_x_and_equals_the_in_memory_fit(tmp_path):
    adata = planted_adata()
    adata.X = sparse.csr_matrix(adata.X)
    path = tmp_path / "planted.h5ad"
    adata.write_h5ad(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    lmf.tl.lmf(adata, **OPTIONS)

    backed = ad.read_h5ad(path, backed="r")
    modality = read_modality(backed, "X", role="fixed", mask_var=backed.var["highly_variable"].to_numpy())
    assert isinstance(modality.matrix, StreamedMatrix)  # the masked features are read chunk by chunk
    lmf.tl.lmf(backed, **OPTIONS)
    for key in ("X_lmf", "X_lmf_fixed", "X_lmf_random"):
        np.testing.assert_allclose(backed.obsm[key], adata.obsm[key], atol=1e-8 * np.abs(adata.obsm[key]).max())
    np.testing.assert_allclose(backed.varm["lmf_loadings_fixed"], adata.varm["lmf_loadings_fixed"], atol=1e-8)
    backed.file.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest  # the file is only read


@pytest.mark.parametrize("dense", [False, True], ids=["sparse X", "dense X"])
def test_backed_query_in_another_gene_order_is_streamed_and_matches(tmp_path, dense):
    """A backed query whose genes are shuffled: columns picked chunk by chunk, codes as in memory."""
    cells = planted_adata(seed=3, n=160)
    reference, query = cells[:120].copy(), cells[120:].copy()
    lmf.tl.lmf(reference, **{**OPTIONS, "tol": 1e-6})
    query = query[:, np.random.default_rng(0).permutation(query.n_vars)].copy()
    if dense:
        query.X = query.X.toarray()
    path = tmp_path / "query.h5ad"
    query.write_h5ad(path)
    lmf.tl.transform(query, reference)

    backed = ad.read_h5ad(path, backed="r")
    matrix, _ = read_aligned(backed, "X", lmf.get.features(reference)["fixed"], role="fixed")
    assert isinstance(matrix, StreamedMatrix)  # not loaded into memory
    lmf.tl.transform(backed, reference)
    for key in ("X_lmf", "X_lmf_fixed", "X_lmf_random"):
        np.testing.assert_allclose(backed.obsm[key], query.obsm[key], atol=1e-10)
    backed.file.close()
