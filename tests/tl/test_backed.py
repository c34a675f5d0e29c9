"""``tl.lmf`` on a backed AnnData: the matrix is streamed from the file, the result equals the in-memory fit."""

import hashlib

import anndata as ad
import numpy as np
from scipy import sparse

import lmf_omics as lmf
from lmf_omics._core.backends import StreamedMatrix
from lmf_omics._modalities import read_modality

from .planted import N_FACTORS, planted_adata

OPTIONS = {"response": "obsm:protein", "fixed": "X", "random": "obs:batch", "n_factors": N_FACTORS, "tol": 1e-9,
           "mask_var": "highly_variable", "progress": False}


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
