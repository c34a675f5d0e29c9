"""Cost of the default random effect (``random_effect="states"``) at 10^4-10^6 cells.

    python benchmarks/states_cost.py                          # n = 10^4, 10^5, 10^6 (about a minute)
    python benchmarks/states_cost.py --sizes 10000 100000     # quicker

Times ``States().correct(S, design, Settings(), keys=keys)`` alone (the correction of X's principal
scores that ``EncodedProblem.for_fit`` runs once per fit), as a fit runs it: inside
``parallel.workers(None)`` (every core for the row blocks, BLAS on one thread; ``--bare``: outside,
BLAS on its own threads), and, separately, its ``tracemalloc`` peak,
reported in units of one more ``n × r`` float64 array beyond ``S`` and the corrected scores (the
result itself is one of them), and how often the apply computes a cell's effect (1 with the
default single correction per cell; more only for settings with ``apply_rounds`` above 1).
"no keys" fits the states on every cell (up to 10^5 here).

The scores are a planted mixture, not a PCA: ``r = 60`` components whose variance decays as
``1/(1 + k)``, 20 cell types, 8 batches that shift each type differently (random slopes by state)
and two continuous covariates with a common slope, plus noise; Z = the 8 batch indicators and the
2 covariates (the scale set's design, ``benchmarks/scale.py``). The keys stand in for the content
keys of the data: an order-free hash of each cell's scores.
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc
from contextlib import nullcontext

import numpy as np
import threadpoolctl

from lmf_omics._core import parallel, random_effects
from lmf_omics._core.random_effects import Settings, States, design_of

R, TYPES, BATCHES = 60, 20, 8


def planted_scores(n: int, seed: int = 0):
    """Scores (n × 60), Z (n × 10: batch one-hot, two covariates), cell types, batches."""
    rng = np.random.default_rng(seed)
    decay = 1.0 / np.sqrt(1.0 + np.arange(R))
    centres = rng.normal(0, 4, (TYPES, R)) * decay
    shifts = rng.normal(0, 1.5, (BATCHES, TYPES, R)) * decay  # batch × type: differs by state
    slopes = rng.normal(0, 0.5, (2, R)) * decay
    types, batches = rng.integers(0, TYPES, n), rng.integers(0, BATCHES, n)
    covariates = rng.normal(size=(n, 2))
    scores = centres[types] + shifts[batches, types] + covariates @ slopes + rng.normal(size=(n, R)) * decay
    return scores, np.c_[np.eye(BATCHES)[batches], covariates], types, batches


def content_keys(scores: np.ndarray) -> np.ndarray:
    """An order-free uint64 hash of each row's values (a wrapping sum of splitmix64 of their bits)."""
    with np.errstate(over="ignore"):
        z = np.ascontiguousarray(scores).view(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return (z ^ (z >> np.uint64(31))).sum(axis=1, dtype=np.uint64)


def measure(scores, design, keys, repeats: int) -> tuple[float, float, float]:
    """Best wall and CPU time (s) over ``repeats``, and the tracemalloc peak in n × r float64 arrays."""
    times = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        States().correct(scores, design, Settings(), keys=keys)
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    tracemalloc.start()
    States().correct(scores, design, Settings(), keys=keys)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    wall, cpu = min(times)
    return wall, cpu, peak / scores.nbytes


def corrections_per_cell(scores, design, keys) -> float:
    """How often the apply computes a cell's effect, on average (1: one correction per cell, the default)."""
    counted, effect = [], random_effects._effect

    def counting(design, states, coefficients):
        counted.append(states.shape[1])
        return effect(design, states, coefficients)

    random_effects._effect = counting
    try:
        correction = States().correct(scores, design, Settings(), keys=keys)
        counted.clear()
        correction.apply(scores, design)
    finally:
        random_effects._effect = effect
    return sum(counted) / scores.shape[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bare", action="store_true", help="outside parallel.workers (BLAS on its own threads)")
    parser.add_argument("--no-keys-up-to", type=int, default=100_000, help="fit on every cell up to this n")
    args = parser.parse_args(argv)
    info = threadpoolctl.threadpool_info()
    blas = [(i["internal_api"], i["version"], i["num_threads"], i.get("architecture")) for i in info]
    print(f"BLAS: {blas}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}; cores: {os.cpu_count()}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"context: {'bare call' if args.bare else 'as in a fit: parallel.workers(None)'}")
    print("| n | keys | fitted on | wall (s) | CPU (s) | tracemalloc peak (n × r f64) | corrections per cell | load |")
    print("|---|---|---|---|---|---|---|---|")
    settings = Settings()
    for n in args.sizes:
        scores, raw, _, _ = planted_scores(n)
        design = design_of(raw, np.ones(n, bool))
        keys = content_keys(scores)
        for label, given in (("keys", keys), ("no keys", None)):
            if given is None and n > args.no_keys_up_to:
                continue
            fitted = n if given is None else min(n, settings.fit_cells)
            with nullcontext() if args.bare else parallel.workers(None):
                wall, cpu, peak = measure(scores, design, given, args.repeats if n < 1_000_000 else 2)
                rounds = corrections_per_cell(scores, design, given)
            load = os.getloadavg()[0]
            row = f"| {n:,} | {label} | {fitted:,} | {wall:.3f} | {cpu:.3f} | {peak:.2f} | {rounds:.3f} | {load:.2f} |"
            print(row, flush=True)


if __name__ == "__main__":
    main()
