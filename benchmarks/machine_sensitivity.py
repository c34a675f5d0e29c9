"""Which side of LMF / sc.pp.pca moves with the BLAS kernel and the BLAS threads (issue 15's machine ratio).

    python benchmarks/machine_sensitivity.py --n 100000 --cache benchmarks/cache

Runs the default LMF fit, ``sc.pp.pca(n_comps=30)`` and the threaded bare product pass of
``scale.py`` (same synthetic data, cached by it) in fresh processes under each combination of
``OPENBLAS_CORETYPE`` (the machines' setting, ``Haswell``, or unset: OpenBLAS picks its kernel from
the CPU) and ``OPENBLAS_NUM_THREADS`` (1 or 2), and reports the kernel threadpoolctl saw, the times
and the ratios, best of ``--repeats`` runs each. Writes ``results/machine_sensitivity.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETTINGS = [("Haswell", "2"), ("Haswell", "1"), (None, "2"), (None, "1")]
TASKS = ("lmf", "pca", "bare_threaded")


def child(task: str, n: int, cache: Path) -> None:
    """In a fresh process: time one task of scale.py, print the kernel and the seconds as JSON."""
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))
    import scale
    from threadpoolctl import threadpool_info

    data = scale.cached(n, cache)
    runs = {"lmf": scale.task_lmf, "pca": scale.task_pca, "bare_threaded": lambda d: scale.task_bare(d, threaded=True)}
    seconds = runs[task](data)["seconds"]
    kernels = sorted({f"{i['internal_api']} {i.get('architecture')} ×{i['num_threads']}" for i in threadpool_info()})
    print("RESULT " + json.dumps({"seconds": seconds, "kernels": kernels, "load": os.getloadavg()[0]}))


def measure(task: str, n: int, cache: Path, coretype: str | None, threads: str, repeats: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    env.update(OPENBLAS_NUM_THREADS=threads, PYTHONWARNINGS="ignore")
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    results = []
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, __file__, "--child", task, "--n", str(n), "--cache", str(cache)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
        results.append(json.loads(line[len("RESULT ") :]))
    best = min(results, key=lambda r: r["seconds"])
    return {**best, "loads": [round(r["load"], 1) for r in results]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--cache", type=Path, default=HERE / "cache")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "machine_sensitivity.md")
    parser.add_argument("--child", choices=TASKS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.n, args.cache)
        return
    rows = []
    for coretype, threads in SETTINGS:
        times = {task: measure(task, args.n, args.cache, coretype, threads, args.repeats) for task in TASKS}
        rows.append((coretype or "unset", threads, times))
        print(rows[-1], flush=True)
    lines = [
        "# LMF and sc.pp.pca under the BLAS kernel and threads",
        "",
        f"`python benchmarks/machine_sensitivity.py --n {args.n}`: {args.n:,} cells of `scale.py`'s synthetic set, "
        f"best of {args.repeats} fresh processes per cell of the table; 2 cores.",
        "",
        "| OPENBLAS_CORETYPE | BLAS threads | kernel (threadpoolctl) | LMF default (s) | sc.pp.pca (s) "
        "| bare pass (s) | LMF / PCA | LMF / bare | loads |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for coretype, threads, times in rows:
        lmf, pca, bare = (times[t]["seconds"] for t in TASKS)
        loads = ", ".join(str(x) for t in TASKS for x in times[t]["loads"])
        lines.append(
            f"| {coretype} | {threads} | {'; '.join(times['pca']['kernels'])} | {lmf:.2f} | {pca:.2f} | {bare:.2f} "
            f"| {lmf / pca:.2f} | {lmf / bare:.1f} | {loads} |"
        )
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
