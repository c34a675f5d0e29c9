"""Where a default fit spends its time: cProfile of one fit, grouped by phase.

    python benchmarks/profile_fit.py --n 100000        # data from scale.py's cache (generated if missing)

Prints the phases (column moments and keys, principal bases, the random effect's correction,
projection of Y, iterations, loadings, codes) and the functions with the most time of their own,
and writes ``results/profile_<n>.txt``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

PHASES = {  # (file fragment, function) -> phase
    ("operators.py", "from_data"): "column moments and X's content keys (one pass each)",
    ("subspace.py", "principal_basis"): "principal bases of X and Z (keyed sketch, q = 1: 4 products of X, 2 reads)",
    ("random_effects.py", "correct"): "the random effect removed from X's principal scores",
    ("subspace.py", "corrected_basis"): "basis of the corrected scores",
    ("problems.py", "build"): "projection of Y (and of X on a corrected basis): one pass each",
    ("solvers.py", "iterate"): "iterations (r-space only)",
    ("problems.py", "loadings"): "loadings over the features (kept frames: no pass)",
    ("problems.py", "code"): "codes K = U G, H = Q G",
}


def main() -> None:
    import scale

    from lmf_omics import LinearMixedForms

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--codes", default="encoded")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "lmf_omics_scale")
    args = parser.parse_args()
    data = scale.cached(args.n, args.cache)
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    model = LinearMixedForms(scale.K, codes=args.codes, progress=False).fit(data["Y"], data["X"], data["Z"])
    profiler.disable()
    total = time.perf_counter() - start
    stats = pstats.Stats(profiler)
    title = (
        f"{args.codes} fit, {args.n:,} cells, k = {scale.K}: {total:.2f} s wall, {model.n_iter_} iterations, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    lines = [title, "", "phase | seconds (cumulative) | share"]
    for (fragment, name), phase in PHASES.items():
        seconds = sum(
            entry[3]
            for (path, _, function), entry in stats.stats.items()
            if path.endswith(fragment) and function == name
        )
        lines.append(f"{phase} | {seconds:.2f} | {seconds / total:.0%}")
    buffer = io.StringIO()
    pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(15)
    lines += [
        "",
        "functions with the most time of their own (thread waits = products on the worker threads):",
        buffer.getvalue(),
    ]
    text = "\n".join(lines)
    print(text)
    out = HERE / "results" / f"profile_{args.codes}_{args.n}.txt"
    out.write_text(text)


if __name__ == "__main__":
    main()
