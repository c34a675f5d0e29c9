"""How many power iterations the principal basis needs: accuracy and cost against 0, 1, 2 and 4, and the exact basis.

    python benchmarks/principal_bases.py                 # the real sets and 10^5 synthetic cells
    python benchmarks/principal_bases.py --cells 1000000 # also the scale set's 10^6 (cached by scale.py)

For each X (the fixed-effect data of a default fit) and each number of power iterations ``q``
(``2q + 2`` products of X), it reports the time of ``principal_basis`` (n_pcs = 60, the default
for k = 30), the share of X̃'s variance in the leading 60 directions the basis captures against
the best possible (numpy's SVD where X fits densely, else the basis with q = 8), and the default
fit's final objective and response R² (``random_effect="response"``, so only the basis changes).
Writes ``results/principal_bases.md``. The randomised rows are forced (``EXACT_ENTRIES = 0``);
where X has at most ``subspace.EXACT_ENTRIES`` entries the default is the ``exact`` row (the
eigenvectors of X̃'s smaller Gram matrix, :func:`lmf_omics._core.subspace.exact_basis`), else one
power iteration (``POWER_ITERATIONS``), kept to the pass budget of fits at scale; see
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

QS = (0, 1, 2, 4)
EXACT = "exact"
N_PCS, K = 60, 30


def real_sets() -> dict:
    import scanpy as sc

    from lmf_omics import datasets

    sets = {}
    for name, loader, batch, response in (
        ("PBMC, 3 chemistries (HVG)", datasets.pbmc_3chemistries_1200, "batch", None),
        ("ECCITE (HVG)", datasets.eccite_pbmc_500, "hashtag", "protein_counts"),
    ):
        adata = loader()
        sc.pp.normalize_total(adata, target_sum=1e4)
        sc.pp.log1p(adata)
        sc.pp.highly_variable_genes(adata, n_top_genes=2000, subset=True)
        Y = adata.obsm[response] if response else adata.X
        Z = np.eye(adata.obs[batch].nunique())[adata.obs[batch].cat.codes.to_numpy()]
        Y = Y.to_numpy() if hasattr(Y, "to_numpy") else Y
        sets[name] = {"Y": np.log1p(Y) if response else Y, "X": adata.X, "Z": Z}
    return sets


def synthetic(n: int, cache: Path) -> dict:
    import scale

    return scale.cached(n, cache)


def captured_share(operator, basis) -> float:
    """‖Ãᵀ U‖² (the variance the basis captures)."""
    return float(np.sum(operator.rmatmul(basis.vectors) ** 2))


def best_share(operator, data, rng) -> tuple[float, str]:
    from lmf_omics._core.subspace import principal_basis

    n, p = data.shape
    if n * p <= 3e7:
        dense = data.toarray() if hasattr(data, "toarray") else np.asarray(data)
        values = np.linalg.svd(dense - dense.mean(0), compute_uv=False)
        return float(np.sum(values[:N_PCS] ** 2)), "numpy SVD"
    return captured_share(operator, principal_basis(operator, N_PCS, rng=rng, power_iterations=8)), "q = 8"


def run(name: str, data: dict) -> list[dict]:
    from lmf_omics import LinearMixedForms
    from lmf_omics._core import parallel, subspace
    from lmf_omics._core.operators import Operator

    operator = Operator.from_data(data["X"])
    with parallel.workers(None):
        best, reference = best_share(operator, data["X"], np.random.default_rng(0))
    rows = []
    default, exact_entries = subspace.POWER_ITERATIONS, subspace.EXACT_ENTRIES
    variants = ([EXACT] if subspace.exact_applies(operator, N_PCS) else []) + list(QS)
    try:
        for q in variants:
            subspace.EXACT_ENTRIES = exact_entries if q == EXACT else 0
            iterations = default if q == EXACT else q
            with parallel.workers(None):
                start = time.perf_counter()
                basis = subspace.principal_basis(
                    operator, N_PCS, rng=np.random.default_rng(0), power_iterations=iterations
                )
                seconds = time.perf_counter() - start
                share = captured_share(operator, basis) / best
            subspace.POWER_ITERATIONS = iterations
            subspace.principal_basis.__kwdefaults__["power_iterations"] = iterations
            model = LinearMixedForms(K if data["X"].shape[1] > K else 10, random_effect="response", progress=False)
            start = time.perf_counter()
            model.fit(data["Y"], data["X"], data["Z"])
            rows.append(
                {
                    "set": name,
                    "cells": data["X"].shape[0],
                    "q": q,
                    "products": "Gram + 1" if q == EXACT else str(2 * q + 2),
                    "basis_s": seconds,
                    "captured": share,
                    "reference": reference,
                    "objective": float(model.objective_history_[-1]),
                    "response_r2": float(model.total_variance_explained_["response"]),
                    "fit_s": time.perf_counter() - start,
                }
            )
            print(rows[-1], flush=True)
    finally:
        subspace.POWER_ITERATIONS, subspace.EXACT_ENTRIES = default, exact_entries
        subspace.principal_basis.__kwdefaults__["power_iterations"] = default
    return rows


def table(rows: list[dict]) -> list[str]:
    from threadpoolctl import threadpool_info

    from lmf_omics._core import subspace

    blas = "; ".join(f"{i['internal_api']} {i['version']} {i['num_threads']} threads" for i in threadpool_info())
    lines = [
        "# Principal bases: power iterations and the exact basis against accuracy and cost",
        "",
        f"`python benchmarks/principal_bases.py` — BLAS: {blas}; OPENBLAS_CORETYPE="
        f"{os.environ.get('OPENBLAS_CORETYPE', 'unset')}; load {os.getloadavg()[0]:.1f}; n_pcs = {N_PCS}. "
        f"Default: `exact` where X has at most {subspace.EXACT_ENTRIES:,} entries, "
        f"else q = {subspace.POWER_ITERATIONS}.",
        "",
        "| set | cells | q | products of X | basis (s) | variance captured / best | best from "
        "| fit objective | vs q = 4 | response R² |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for row in rows:
        top = next(r for r in rows if r["set"] == row["set"] and r["q"] == max(QS))
        lines.append(
            f"| {row['set']} | {row['cells']:,} | {row['q']} | {row['products']} | {row['basis_s']:.2f} | "
            f"{row['captured']:.5f} | {row['reference']} | {row['objective']:.5f} | "
            f"{row['objective'] / top['objective'] - 1:+.2%} | {row['response_r2']:.4f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, nargs="*", default=[100_000])
    parser.add_argument("--cache", type=Path, default=HERE / "cache")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "principal_bases.md")
    args = parser.parse_args()
    rows = []
    for name, data in real_sets().items():
        rows += run(name, data)
    for n in args.cells:
        rows += run("scale set (synthetic, X 5,000 features)", synthetic(n, args.cache))
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text("\n".join(table(rows)) + "\n")
    print("\n".join(table(rows)))


if __name__ == "__main__":
    main()
