"""The README's main job: ``lmf-omics demo`` on the bundled pbmc68k_reduced."""

import anndata as ad
import matplotlib.pyplot as plt

from lmf_omics.cli import main


def test_demo_writes_h5ad_and_figures(tmp_path):
    assert main(["--quiet", "demo", "--outdir", str(tmp_path), "--n-factors", "8"]) == 0
    adata = ad.read_h5ad(tmp_path / "lmf_demo.h5ad")
    assert adata.obsm["X_lmf"].shape == (700, 8)
    assert adata.obsm["X_umap"].shape == (700, 2)
    assert adata.obs["leiden_lmf"].nunique() > 3
    assert adata.uns["lmf"]["params"]["random"].startswith("obs:phase")
    for name in ("variance_explained.png", "convergence.png", "umap_lmf.png"):
        image = plt.imread(tmp_path / name)
        assert image[..., :3].std() > 0.05, name
