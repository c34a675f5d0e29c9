"""Fits on the shared datasets, saved or compared: a refactor must leave them bit-identical.

    python benchmarks/identical_fits.py --save before.npz      # on the old code
    python benchmarks/identical_fits.py --compare before.npz   # on the new code: max |difference| per array

Every combination of solver and form of the codes, with and without a random effect, on the CITE-seq set
(proteins from RNA, hashtag random) and the breast sections (genes from genes, section random).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import scanpy as sc

import lmf_omics as lmf

DATA = Path(os.environ.get("LMF_OMICS_DATA", Path(__file__).parents[1] / ".." / "shared" / "data"))
CONFIGS = {
    "joint_encoded": {},
    "joint_free": {"codes": "free"},
    "paper": {"solver": "paper", "max_iter": 60},
}


def datasets() -> dict:
    cite = sc.read_h5ad(DATA / "eccite_pbmc_500.h5ad")
    lmf.pp.normalize_rna(cite, layer="counts", n_top_genes=2000)
    lmf.pp.clr(cite, source="obsm:protein_counts", axis=0, key_added="protein_clr")
    breast = sc.read_h5ad(DATA / "breast_st_3slices.h5ad")
    lmf.pp.normalize_rna(breast, n_top_genes=1000)
    return {
        "cite": (cite, {"response": "obsm:protein_clr", "fixed": "X", "random": "obs:hashtag"}),
        "breast": (breast, {"response": "X", "fixed": "X", "random": "obs:slice"}),
    }


def fits() -> dict[str, np.ndarray]:
    arrays = {}
    for name, (adata, specs) in datasets().items():
        for config, options in CONFIGS.items():
            for random in (specs["random"], None):
                key = f"{name}_{config}_{'random' if random else 'norandom'}"
                fitted = adata.copy()
                lmf.tl.lmf(
                    fitted,
                    **{**specs, "random": random},
                    mask_var="highly_variable",
                    n_factors=10,
                    progress=False,
                    key_added="f",
                    **options,
                )
                for obsm in ("X_f", "X_f_fixed", "X_f_random"):
                    if obsm in fitted.obsm:
                        arrays[f"{key}/{obsm}"] = np.asarray(fitted.obsm[obsm])
                for varm in fitted.varm:
                    arrays[f"{key}/{varm}"] = np.asarray(fitted.varm[varm])
                arrays[f"{key}/objective"] = np.asarray(fitted.uns["f"]["objective_history"])
    return arrays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--save", type=Path)
    parser.add_argument("--compare", type=Path)
    args = parser.parse_args()
    arrays = fits()
    if args.save:
        np.savez(args.save, **arrays)
        print(f"saved {len(arrays)} arrays to {args.save}")
    if args.compare:
        before = np.load(args.compare)
        worst = 0.0
        for name in sorted(set(before.files) | set(arrays)):
            if name not in arrays or name not in before.files:
                print(f"{name}: only in {'the new' if name in arrays else 'the old'} fits")
                worst = np.inf
                continue
            old, new = before[name], arrays[name]
            difference = np.inf if old.shape != new.shape else float(np.max(np.abs(old - new), initial=0.0))
            worst = max(worst, difference)
            print(f"{name}: shape {new.shape}, max |new - old| = {difference:.3g}")
        print(f"max difference over {len(arrays)} arrays: {worst:.3g}")


if __name__ == "__main__":
    main()
