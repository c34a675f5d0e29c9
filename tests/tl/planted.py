"""A small AnnData with planted codes: cell types drive RNA (fixed), batches add to protein (random)."""

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

N_CELL_TYPES, N_FACTORS = 4, 4


def planted_adata(seed=0, n=240):
    """Cell types drive the fixed code (RNA), batches add a random code to the protein."""
    rng = np.random.default_rng(seed)
    cell_type = rng.integers(0, N_CELL_TYPES, n)
    batch = rng.integers(0, 3, n)
    K = 3.0 * rng.standard_normal((N_CELL_TYPES, N_FACTORS))[cell_type] + 0.3 * rng.standard_normal((n, N_FACTORS))
    H = rng.standard_normal((3, N_FACTORS))[batch]
    rna = K @ rng.standard_normal((N_FACTORS, 50)) + 0.2 * rng.standard_normal((n, 50))
    rna[rng.random(rna.shape) < 0.4] = 0.0  # sparse, like counts
    protein = (K + H) @ rng.standard_normal((N_FACTORS, 12)) + 0.1 * rng.standard_normal((n, 12))
    adata = AnnData(sparse.csr_matrix(rna))
    adata.obs_names = [f"cell{i}" for i in range(n)]
    adata.var_names = [f"gene{i}" for i in range(50)]
    adata.var["highly_variable"] = np.arange(50) % 5 != 0
    adata.obsm["protein"] = pd.DataFrame(protein, index=adata.obs_names, columns=[f"ADT{i}" for i in range(12)])
    adata.obs["batch"] = pd.Categorical([f"b{b}" for b in batch])
    adata.obs["cell_type"] = pd.Categorical(cell_type.astype(str))
    return adata
