"""Row blocks in a sliding window against pairs in lockstep: the default fit and a bare pass, alternated.

    python benchmarks/row_block_schedule.py                 # 10^5 cells, 10 pairs (scale.py's data)
    python benchmarks/row_block_schedule.py --n 1000000 --pairs 4

``parallel.ordered_map`` keeps ``threads + 1`` blocks submitted, so a thread starts its next block as
soon as it finishes one. Before, blocks ran in groups of ``threads`` and each group waited for its
slowest block and for the caller to take (add) the results. Both schedules give the same results in
the same order; only the wall time differs. The two are timed in one process, one after the other,
in alternating order (this machine's speed drifts between runs), and the paired ratio is reported.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import threadpoolctl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def lockstep_map(function, items, *, ahead=1):
    """The previous schedule: groups of ``threads`` items, each group finished before the next starts.

    (``ahead`` is accepted, as ``parallel.ordered_map`` takes it, and has no meaning here.)
    """
    from lmf_omics._core import parallel

    current = parallel._POOL.get()
    if current is None or len(items) < 2:
        yield from map(function, items)
        return
    pool, threads = current
    for first in range(0, len(items), threads):
        yield from pool.map(function, items[first : first + threads])


def main(argv: list[str] | None = None) -> None:
    import scale

    from lmf_omics import LinearMixedForms
    from lmf_omics._core import parallel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "lmf_omics_scale")
    args = parser.parse_args(argv)
    data = scale.cached(args.n, args.cache)
    blas = [(i["internal_api"], i["version"], i.get("architecture")) for i in threadpoolctl.threadpool_info()]
    print(f"BLAS: {blas}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}; cores: {parallel.usable_cores()}")
    print(f"{args.n:,} cells, k = {scale.K}, {args.pairs} pairs; load average before: {os.getloadavg()[0]:.2f}")
    schedules = {"sliding window": parallel.ordered_map, "lockstep": lockstep_map}
    fits: dict[str, list[float]] = {name: [] for name in schedules}
    bare: dict[str, list[float]] = {name: [] for name in schedules}
    try:
        for pair in range(args.pairs):
            order = list(schedules) if pair % 2 == 0 else list(schedules)[::-1]
            for name in order:
                parallel.ordered_map = schedules[name]
                start = time.perf_counter()
                LinearMixedForms(scale.K, progress=False).fit(data["Y"], data["X"], data["Z"])
                fits[name].append(time.perf_counter() - start)
                bare[name].append(scale.task_bare(data, repeats=1, threaded=True)["seconds"])
    finally:
        parallel.ordered_map = schedules["sliding window"]
    print("| schedule | fit, median (s) | fit, min (s) | threaded bare pass, median (s) |")
    print("|---|---:|---:|---:|")
    for name in schedules:
        print(f"| {name} | {np.median(fits[name]):.3f} | {min(fits[name]):.3f} | {np.median(bare[name]):.3f} |")
    ratios = np.array(fits["sliding window"]) / np.array(fits["lockstep"])
    print(
        f"paired fit ratio, sliding window / lockstep: median {np.median(ratios):.3f} "
        f"(pairs: {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
