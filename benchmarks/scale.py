"""Scale benchmark: LMF against sc.pp.pca, a bare product pass and MOFA+ at 10^4-10^6 cells.

    python benchmarks/scale.py                       # 1e4, 1e5, 1e6 cells (about 15 min on 2 cores once the data exist)
    python benchmarks/scale.py --sizes 10000 100000  # a quicker run

Synthetic data (cached in ``--cache``; generated once per size): Y = 2,000 genes of negative-binomial
counts (dispersion 1) with a planted rank-10 structure of fixed and batch codes, log1p, ~5-6 % non-zero;
X = 5,000 sparse features driven by the fixed code, ~3 % non-zero; Z = one-hot batch (8 levels) plus two
continuous covariates; all CSR float32; k = 30. Every measurement runs in its own process, which reports
wall time and its own peak RSS (``VmHWM``: ``ru_maxrss`` survives ``exec``, so a child of a driver that
generated the data would report the driver's peak), its RSS after loading the data, and the load average around it.

Writes ``results/scale.md`` (table and ratios), ``results/scale_runs.csv`` and ``results/scale.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy import sparse

HERE = Path(__file__).resolve().parent
K = 30
RANK, BATCHES = 10, 8


# ------------------------------------------------------------------------------ data
def _nb_entries(rng, log_mean):
    """NB counts with dispersion 1 (geometric): a count is non-zero with probability μ/(1+μ), then 1 + Geom."""
    mu = np.exp(log_mean, dtype=np.float32)
    hit = rng.random(mu.shape, dtype=np.float32) < mu / (1 + mu)
    rows, cols = np.nonzero(hit)
    counts = rng.geometric(1.0 / (1.0 + mu[rows, cols].astype(np.float64)))
    return rows, cols, np.log1p(counts).astype(np.float32)


def generate(n, *, p_y=2000, p_x=5000, density_y=0.07, density_x=0.03, seed=0, chunk=20_000):
    """Y (NB counts of K + H, log1p), X (NB counts of K, log1p), Z (batch one-hot + 2 covariates), CSR float32."""
    rng = np.random.default_rng(seed)
    loading_y = rng.standard_normal((p_y, RANK)).astype(np.float32) / np.sqrt(RANK)
    loading_x = rng.standard_normal((p_x, RANK)).astype(np.float32) / np.sqrt(RANK)
    batch_effects = rng.standard_normal((BATCHES, RANK)).astype(np.float32) * 0.5
    covariate_effects = rng.standard_normal((2, RANK)).astype(np.float32) * 0.3
    base_y = rng.normal(np.log(density_y) - 1.0, 1.0, p_y).astype(np.float32)  # gene baselines, log-normal
    base_x = rng.normal(np.log(density_x) - 1.0, 1.0, p_x).astype(np.float32)
    parts = {"Y": [], "X": [], "Z": []}
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        fixed = rng.standard_normal((m, RANK)).astype(np.float32)
        batch = rng.integers(0, BATCHES, m)
        covariates = rng.standard_normal((m, 2)).astype(np.float32)
        random = batch_effects[batch] + covariates @ covariate_effects
        for name, code, loading, base in (("Y", fixed + random, loading_y, base_y), ("X", fixed, loading_x, base_x)):
            rows, cols, values = _nb_entries(rng, base[None, :] + code @ loading.T)
            parts[name].append(sparse.csr_matrix((values, (rows, cols)), shape=(m, loading.shape[0])))
        one_hot = sparse.csr_matrix((np.ones(m, np.float32), (np.arange(m), batch)), shape=(m, BATCHES))
        parts["Z"].append(sparse.hstack([one_hot, sparse.csr_matrix(covariates)], format="csr"))
    return {name: sparse.vstack(blocks, format="csr") for name, blocks in parts.items()}


def cached(n: int, cache: Path) -> dict:
    paths = {name: cache / f"{name}_{n}.npz" for name in "YXZ"}
    if not all(p.exists() for p in paths.values()):
        cache.mkdir(parents=True, exist_ok=True)
        data = generate(n)
        for name, path in paths.items():
            sparse.save_npz(path, data[name], compressed=False)
    return {name: sparse.load_npz(path) for name, path in paths.items()}


def csr_bytes(matrix) -> int:
    return matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes


def write_h5(data: dict, path: Path) -> None:
    """The three matrices as CSR groups of one HDF5 file (as AnnData stores sparse matrices)."""
    import h5py

    with h5py.File(path, "w") as f:
        for name, matrix in data.items():
            group = f.create_group(name)
            group.attrs["encoding-type"], group.attrs["shape"] = "csr_matrix", matrix.shape
            for field in ("data", "indices", "indptr"):
                group[field] = getattr(matrix, field)


# ------------------------------------------------------------------------- measurements
def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _own_peak_rss_mb() -> float:
    """This process's peak RSS since its ``exec`` (``VmHWM``); ``ru_maxrss`` keeps the parent's across ``exec``."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1e3
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def task_bare(data, repeats=2, threaded=False):
    """One pass of ``A @ B`` and ``Aᵀ @ C`` for Y, X and Z with k = 30 (plain scipy, or our row blocks)."""
    from lmf_omics._core import parallel

    rng = np.random.default_rng(0)
    n = data["Y"].shape[0]
    C = rng.standard_normal((n, K))
    rights = {name: rng.standard_normal((m.shape[1], K)) for name, m in data.items()}
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        if threaded:
            with parallel.workers(None):
                for name, matrix in data.items():
                    parallel.matmul(matrix, rights[name]), parallel.rmatmul(matrix, C)
        else:
            for name, matrix in data.items():
                matrix @ rights[name], matrix.T @ C
        times.append(time.perf_counter() - start)
    return {"seconds": min(times), "iterations": 1}


def task_lmf(data, codes="encoded", max_iter=500, source=None, **options):
    from lmf_omics import LinearMixedForms
    from lmf_omics._core import fitting

    spent = []
    original = fitting.iterate

    def timed(*args, **kwargs):  # time inside the iteration loop (the setup is outside it)
        start = time.perf_counter()
        result = original(*args, **kwargs)
        spent.append(time.perf_counter() - start)
        return result

    fitting.iterate = timed
    model = LinearMixedForms(K, codes=codes, max_iter=max_iter, progress=False, **options)
    start = time.perf_counter()
    model.fit(data["Y"], data["X"], data["Z"])
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "iterations": model.n_iter_,
        "converged": bool(model.converged_),
        "loop_seconds": spent[0],
        "per_iteration": spent[0] / model.n_iter_,
        "response_r2": float(model.total_variance_explained_["response"]),
    }


def task_lmf_streamed(path: Path):
    """The default fit with all three matrices streamed from an HDF5 file in row chunks."""
    import h5py

    from lmf_omics._core.backends import StreamedMatrix

    with h5py.File(path, "r") as f:
        data = {name: StreamedMatrix(f[name]) for name in "YXZ"}
        return task_lmf(data)


WIDE = {"features": 20_000, "per_cell": 2_000}  # a denser X (10 % of 20,000 features) for the streamed-memory run


def write_wide(n: int, path: Path, seed: int = 1) -> None:
    """An n × 20,000 CSR matrix with 2,000 log1p counts per cell, written chunk by chunk (never whole in memory)."""
    import h5py

    rng = np.random.default_rng(seed)
    per, p = WIDE["per_cell"], WIDE["features"]
    with h5py.File(path, "w") as f:
        group = f.create_group("X")
        group.attrs["encoding-type"], group.attrs["shape"] = "csr_matrix", (n, p)
        group["indptr"] = np.arange(n + 1, dtype=np.int64) * per
        data = group.create_dataset("data", (n * per,), dtype=np.float32)
        indices = group.create_dataset("indices", (n * per,), dtype=np.int32)
        for start in range(0, n, 10_000):
            rows = min(10_000, n - start)
            columns = np.sort(rng.choice(p, size=(rows, per), replace=True), axis=1)  # sorted; a repeat adds up
            data[start * per : (start + rows) * per] = np.log1p(rng.geometric(0.5, rows * per)).astype(np.float32)
            indices[start * per : (start + rows) * per] = columns.ravel()


def task_lmf_streamed_wide(cache: Path, n: int):
    """The default fit with Y and Z from the cells file and a 20,000-feature X streamed from its own file."""
    import h5py

    from lmf_omics._core.backends import StreamedMatrix

    wide = cache / f"wide_{n}.h5"  # written by the driver (its memory is not this process's)
    with h5py.File(cache / f"cells_{n}.h5", "r") as cells, h5py.File(wide, "r") as x:
        data = {"Y": StreamedMatrix(cells["Y"]), "X": StreamedMatrix(x["X"]), "Z": StreamedMatrix(cells["Z"])}
        result = task_lmf(data)
    result["file_mb"] = wide.stat().st_size / 1e6
    return result


def task_pca(data):
    import anndata as ad
    import scanpy as sc

    adata = ad.AnnData(data["Y"])
    start = time.perf_counter()
    sc.pp.pca(adata, n_comps=K)
    return {"seconds": time.perf_counter() - start, "iterations": 1}


def task_mofa(data, iterations):
    from mofapy2.run.entry_point import entry_point

    views = [data["Y"].toarray(), data["X"].toarray()]  # MOFA+ takes dense views
    ent = entry_point()
    ent.set_data_options(scale_views=False)
    ent.set_data_matrix([[v] for v in views], views_names=["Y", "X"])
    ent.set_model_options(factors=K)
    ent.set_train_options(iter=iterations, convergence_mode="fast", seed=0, verbose=False, quiet=True)
    ent.build()
    start = time.perf_counter()
    ent.run()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "iterations": iterations, "per_iteration": seconds / iterations}


def run_task(args) -> None:
    """In a child process: load the data, run one task, print one JSON line."""
    sys.path.insert(0, str(HERE.parent))
    import anndata  # noqa: F401  (libraries first: the baseline is the interpreter with them)
    import scanpy  # noqa: F401

    import lmf_omics  # noqa: F401

    if args.task == "mofa":
        import mofapy2.run.entry_point  # noqa: F401
    baseline = _rss_mb()
    load = os.getloadavg()[0]
    if args.task in ("lmf_streamed", "lmf_streamed_wide"):
        if args.task == "lmf_streamed":
            result = task_lmf_streamed(args.cache / f"cells_{args.n}.h5")
        else:
            result = task_lmf_streamed_wide(args.cache, args.n)
        loaded = baseline
    else:
        data = cached(args.n, args.cache)
        loaded = _rss_mb()
        if args.task == "bare":
            result = task_bare(data)
        elif args.task == "bare_threaded":
            result = task_bare(data, threaded=True)
        elif args.task == "lmf":
            result = task_lmf(data)
        elif args.task == "lmf_free":
            result = task_lmf(data, codes="free", max_iter=args.free_iter)
        elif args.task == "pca":
            result = task_pca(data)
        elif args.task == "mofa":
            result = task_mofa(data, args.mofa_iter)
        else:
            raise SystemExit(f"unknown task {args.task}")
    peak = _own_peak_rss_mb()
    result.update(
        peak_rss_mb=peak,
        baseline_rss_mb=baseline,
        loaded_rss_mb=loaded,
        load_before=load,
        load_after=os.getloadavg()[0],
    )
    print("RESULT " + json.dumps(result))


# ------------------------------------------------------------------------------- driver
TASKS = ("bare", "bare_threaded", "lmf", "lmf_free", "lmf_streamed", "lmf_streamed_wide", "pca", "mofa")
LABELS = {
    "bare": "bare product pass (scipy, 1 thread)",
    "bare_threaded": "bare product pass (row blocks, 2 threads)",
    "lmf": "LMF default (encoded)",
    "lmf_free": "LMF free codes",
    "lmf_streamed": "LMF default, streamed from HDF5",
    "lmf_streamed_wide": "LMF default, streamed, X of 20,000 features at 10 %",
    "pca": "sc.pp.pca(n_comps=30) on Y",
    "mofa": "MOFA+ (mofapy2)",
}


def measure(task: str, n: int, args) -> dict:
    command = [
        sys.executable,
        __file__,
        "--task",
        task,
        "--n",
        str(n),
        "--cache",
        str(args.cache),
        "--mofa-iter",
        str(args.mofa_iter),
        "--free-iter",
        str(args.free_iter),
    ]
    started = time.time()
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, env={**os.environ, "PYTHONWARNINGS": "ignore"}
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        print(done.stdout[-2000:], done.stderr[-4000:], file=sys.stderr)
        return {"task": task, "n": n, "error": f"exit {done.returncode}"}
    result = json.loads(lines[-1][len("RESULT ") :])
    result.update(task=task, n=n, wall_with_startup=time.time() - started)
    print(
        f"{n:>9,} {task:<14} {result['seconds']:9.2f} s  peak {result['peak_rss_mb']:8.0f} MB  "
        f"iters {result.get('iterations')}  load {result['load_before']:.1f}->{result['load_after']:.1f}",
        flush=True,
    )
    return result


def tasks_for(n: int, args) -> list[str]:
    tasks = ["bare", "bare_threaded", "lmf", "lmf_streamed", "pca"]
    if n <= args.free_max:
        tasks.insert(3, "lmf_free")
    if n <= args.mofa_max:
        tasks.append("mofa")
    if n == args.wide_n:
        tasks.append("lmf_streamed_wide")
    return tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "lmf_omics_scale")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--mofa-max", type=int, default=10_000, help="largest size MOFA+ runs at")
    parser.add_argument("--mofa-iter", type=int, default=10, help="MOFA+ iterations (it is timed per iteration)")
    parser.add_argument("--free-max", type=int, default=100_000, help="largest size free codes run at")
    parser.add_argument("--free-iter", type=int, default=100, help="iteration cap of the free-codes fit")
    parser.add_argument("--wide-n", type=int, default=100_000, help="size of the run with a denser streamed X")
    parser.add_argument("--report", action="store_true", help="only redo the table and figure from --out")
    parser.add_argument("--task", choices=TASKS, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.task:
        run_task(args)
        return
    if args.report:
        report(args.out)
        return
    runs, inputs = [], {}
    print(f"load average at start: {os.getloadavg()}", flush=True)
    for n in args.sizes:
        start = time.perf_counter()
        data = cached(n, args.cache)
        inputs[n] = {name: csr_bytes(m) / 1e6 for name, m in data.items()} | {
            f"density_{name}": float(m.nnz / np.prod(m.shape)) for name, m in data.items()
        }
        h5 = args.cache / f"cells_{n}.h5"
        if not h5.exists():
            write_h5(data, h5)
        inputs[n]["h5_mb"] = h5.stat().st_size / 1e6
        if n == args.wide_n and not (args.cache / f"wide_{n}.h5").exists():
            write_wide(n, args.cache / f"wide_{n}.h5")
        del data
        print(f"{n:,} cells: data ready in {time.perf_counter() - start:.0f} s; CSR MB {inputs[n]}", flush=True)
        runs += [measure(task, n, args) for task in tasks_for(n, args)]
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(runs, args.out / "scale_runs.csv")
    (args.out / "scale_inputs.json").write_text(json.dumps({str(n): v for n, v in inputs.items()}, indent=1))
    report(args.out)
    print(f"load average at end: {os.getloadavg()}")


def report(out: Path) -> None:
    """Table and figure from ``scale_runs.csv`` and ``scale_inputs.json`` (``--report`` redoes only this)."""
    with open(out / "scale_runs.csv") as f:
        runs = [{key: _number(value) for key, value in row.items() if value != ""} for row in csv.DictReader(f)]
    inputs = {int(n): v for n, v in json.loads((out / "scale_inputs.json").read_text()).items()}
    write_table(runs, inputs, out / "scale.md")
    plot(runs, inputs, out / "scale.png")


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(text, text)


def write_csv(runs, path):
    fields = sorted({key for run in runs for key in run})
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(runs)


def _get(runs, task, n):
    return next((r for r in runs if r["task"] == task and r["n"] == n and "error" not in r), None)


def ratio(a, b) -> str:
    return f"{a / b:.2f}" if a and b else "—"


def blas_settings() -> str:
    """The BLAS libraries, kernels and threads threadpoolctl sees here, and ``OPENBLAS_CORETYPE``."""
    import scipy.linalg  # noqa: F401  (its own OpenBLAS too)
    from threadpoolctl import threadpool_info

    kernels = sorted(
        {f"{i['internal_api']} {i.get('version')} {i.get('architecture')} kernel" for i in threadpool_info()}
    )
    return f"{', '.join(kernels)}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}"


def write_table(runs, inputs, path):
    intro = (
        f"Machine: {os.cpu_count()} cores, shared with other jobs (1-minute load average before → after each "
        f"row in the last column); k = {K}; each row one process (peak RSS = its own VmHWM; 'above input' = peak "
        "minus RSS after loading the CSR matrices; for the streamed fits nothing is loaded). "
        f"BLAS: {blas_settings()}."
    )
    lines = [
        "# Scale benchmark",
        "",
        intro,
        "",
        "| cells | task | time (s) | iterations | s / iteration | peak RSS (MB) | above input (MB) | load |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        if "error" in run:
            lines.append(f"| {run['n']:,} | {LABELS[run['task']]} | failed: {run['error']} | | | | | |")
            continue
        per = run.get("per_iteration")
        lines.append(
            f"| {run['n']:,} | {LABELS[run['task']]} | {run['seconds']:.2f} | {run.get('iterations', '')}"
            f"{'' if run.get('converged', True) else ' (cap)'} | {'' if per is None else f'{per:.3f}'} | "
            f"{run['peak_rss_mb']:.0f} | {run['peak_rss_mb'] - run['loaded_rss_mb']:.0f} | "
            f"{run['load_before']:.1f}→{run['load_after']:.1f} |"
        )
    header = (
        "| cells | input CSR (MB: Y, X, Z) | HDF5 file (MB) | LMF / PCA | LMF / threaded bare pass "
        "| LMF peak − input CSR (MB) | LMF free iteration / bare pass "
        "| LMF streamed peak / file | MOFA+ / LMF (per iteration, per fit) | MOFA+ / LMF memory above input |"
    )
    lines += ["", header, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n, sizes in inputs.items():
        lmf, pca, bare = _get(runs, "lmf", n), _get(runs, "pca", n), _get(runs, "bare", n)
        threaded = _get(runs, "bare_threaded", n)
        above_csr = f"{lmf['peak_rss_mb'] - sum(sizes[m] for m in 'YXZ'):.0f}" if lmf else "—"
        free, mofa, streamed = _get(runs, "lmf_free", n), _get(runs, "mofa", n), _get(runs, "lmf_streamed", n)
        mofa_text = "—"
        if mofa and lmf:
            mofa_text = (
                f"{mofa['per_iteration'] / lmf['seconds']:.1f}x one LMF fit per MOFA+ iteration; "
                f"{mofa['seconds'] / lmf['seconds']:.0f}x for {mofa['iterations']} MOFA+ iterations"
            )
        memory = "—"
        if mofa and lmf:
            memory = ratio(mofa["peak_rss_mb"] - mofa["loaded_rss_mb"], lmf["peak_rss_mb"] - lmf["loaded_rss_mb"])
        lines.append(
            f"| {n:,} | {sizes['Y']:.0f}, {sizes['X']:.0f}, {sizes['Z']:.0f} | {sizes['h5_mb']:.0f} | "
            f"{ratio(lmf and lmf['seconds'], pca and pca['seconds'])} | "
            f"{ratio(lmf and lmf['seconds'], threaded and threaded['seconds'])} | {above_csr} | "
            f"{ratio(free and free['per_iteration'], bare and bare['seconds'])} | "
            f"{ratio(streamed and streamed['peak_rss_mb'], sizes['h5_mb'])} | {mofa_text} | {memory} |"
        )
    for run in runs:
        if run["task"] == "lmf_streamed_wide" and "error" not in run:
            text = (
                f"Streamed fit with a denser X ({run['n']:,} cells × 20,000 features, 2,000 stored per cell): "
                f"X file {run['file_mb']:.0f} MB, peak RSS {run['peak_rss_mb']:.0f} MB "
                f"({run['peak_rss_mb'] / run['file_mb']:.2f} of the file; interpreter and libraries "
                f"{run['baseline_rss_mb']:.0f} MB), {run['seconds']:.1f} s."
            )
            lines += ["", text]
    path.write_text("\n".join(lines) + "\n")


def plot(runs, inputs, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5.4))
    for task in TASKS:
        points = sorted(
            (r["n"], r["seconds"], r["peak_rss_mb"]) for r in runs if r["task"] == task and "error" not in r
        )
        if not points:
            continue
        n, seconds, rss = zip(*points)
        style = (
            {"marker": "*", "markersize": 13, "linestyle": "none"} if task == "lmf_streamed_wide" else {"marker": "o"}
        )
        for ax, values in zip(axes, (seconds, rss)):
            ax.plot(n, values, label=LABELS[task], **style)
    sizes = sorted(inputs)
    axes[1].plot(sizes, [sum(inputs[n][m] for m in "YXZ") for n in sizes], "k--", label="input CSR (Y + X + Z)")
    wide = [r for r in runs if r["task"] == "lmf_streamed_wide" and "error" not in r]
    if wide:
        axes[1].plot(
            [r["n"] for r in wide],
            [r["file_mb"] for r in wide],
            "ks",
            fillstyle="none",
            markersize=10,
            label="its X file (denser run)",
        )
    for ax, label in zip(axes, ("wall time (s)", "peak RSS (MB)")):
        ax.set(xscale="log", yscale="log", xlabel="cells", ylabel=label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_title("time: whole fit, PCA, MOFA+ (10 iterations), one product pass")
    axes[1].set_title("peak memory per process (interpreter included)")
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=130)


if __name__ == "__main__":
    main()
