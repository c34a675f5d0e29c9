"""Scale-out benchmark: 10^7 cells streamed from an on-disk h5ad, and a dask.distributed LocalCluster fit.

    python benchmarks/scale_out.py                          # everything (over an hour on 2 cores: see the README)
    python benchmarks/scale_out.py --write-only             # only the 10^7-cell h5ad
    python benchmarks/scale_out.py --sizes 10000 100000 --skip-dask   # a quick run
    python benchmarks/scale_out.py --only-shift             # only the streamed fits with random_effect="shift"
    python benchmarks/scale_out.py --report                 # redo the table and figure from the CSV

A new run of a task at a size replaces that row of the CSV; the others are kept.

Data (``--scratch``, default ``/work/scratch/scaleout``):

* ``cells_<N>.h5ad``: N cells written chunk by chunk (``CHUNK`` cells each, chunk ``i`` drawn from the
  seed ``(seed, i)``, so the file is deterministic and never whole in memory) with the same generator as
  ``scale.py``'s: ``X`` = the response, 2,000 genes of log1p negative-binomial counts (CSR);
  ``obsm/fixed`` = the fixed-effect data, 1,000 features (CSR); ``obsm/covariates`` = Z, one-hot batch
  (8 levels) + 2 continuous covariates (dense). It opens with ``anndata.read_h5ad(path, backed="r")``.
  Fits at fewer cells use the file's first n cells (:class:`RowPrefix`; no copy).
* ``cells_1000000.h5``: ``scale.py``'s 10^6-cell set (from ``--scale-cache``) as three CSR groups, read
  by the dask workers.

Each fit runs in its own process, reporting wall time, its own peak RSS (``VmHWM``), the load average and
its BLAS (threadpoolctl); a watchdog kills a process tree whose RSS passes ``--max-rss-gb`` or when the
machine's available memory falls under 1.5 GB. Tasks: ``streamed`` (StreamedMatrix on each element of the
h5ad; ``streamed_shift`` the same with ``random_effect="shift"``), ``memory`` (the same cells loaded as
scipy/numpy), ``scale_memory`` / ``scale_streamed`` (the scale set in memory / streamed), ``dask`` (the
scale set as dask arrays of CSR chunks that the workers of a 2-process LocalCluster read from the file;
bytes that reach the client are counted).

Writes ``results/scale_out.md``, ``results/scale_out_runs.csv`` and ``results/scale_out.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy import sparse

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # this checkout's lmf_omics, not an installed one
import scale  # noqa: E402  (the generator's pieces, the fit task and the RSS readers)

CHUNK = 100_000  # cells per chunk written (chunk i is drawn from the seed (seed, i))
SUB = 20_000  # cells per block drawn at once inside a chunk (bounds the dense intermediates)
SHAPE = {"p_y": 2000, "p_x": 1000, "density_y": 0.025, "density_x": 0.03}


# ------------------------------------------------------------------------------ data
def parameters(*, p_y, p_x, density_y, density_x, seed=0) -> dict:
    """Loadings, effects and feature baselines, drawn as ``scale.generate`` draws them."""
    rng = np.random.default_rng(seed)
    return {
        "loading_y": rng.standard_normal((p_y, scale.RANK)).astype(np.float32) / np.sqrt(scale.RANK),
        "loading_x": rng.standard_normal((p_x, scale.RANK)).astype(np.float32) / np.sqrt(scale.RANK),
        "batch_effects": rng.standard_normal((scale.BATCHES, scale.RANK)).astype(np.float32) * 0.5,
        "covariate_effects": rng.standard_normal((2, scale.RANK)).astype(np.float32) * 0.3,
        "base_y": rng.normal(np.log(density_y) - 1.0, 1.0, p_y).astype(np.float32),
        "base_x": rng.normal(np.log(density_x) - 1.0, 1.0, p_x).astype(np.float32),
    }


def chunk(index: int, m: int, params: dict, seed: int = 0) -> dict:
    """Chunk ``index`` of ``m`` cells: Y, X as CSR float32, Z dense float32 (n × 10), from seed ``(seed, index)``."""
    rng = np.random.default_rng([seed, index])
    parts = {"Y": [], "X": [], "Z": []}
    for start in range(0, m, SUB):
        rows = min(SUB, m - start)
        fixed = rng.standard_normal((rows, scale.RANK)).astype(np.float32)
        batch = rng.integers(0, scale.BATCHES, rows)
        covariates = rng.standard_normal((rows, 2)).astype(np.float32)
        random = params["batch_effects"][batch] + covariates @ params["covariate_effects"]
        for name, code, key in (("Y", fixed + random, "y"), ("X", fixed, "x")):
            loading, base = params[f"loading_{key}"], params[f"base_{key}"]
            r, c, values = scale._nb_entries(rng, base[None, :] + code @ loading.T)
            parts[name].append(sparse.csr_matrix((values, (r, c)), shape=(rows, loading.shape[0])))
        one_hot = np.zeros((rows, scale.BATCHES), np.float32)
        one_hot[np.arange(rows), batch] = 1
        parts["Z"].append(np.hstack([one_hot, covariates]))
    return {
        "Y": sparse.vstack(parts["Y"], format="csr"),
        "X": sparse.vstack(parts["X"], format="csr"),
        "Z": np.vstack(parts["Z"]),
    }


def generate(n: int, *, chunk_size: int = CHUNK, seed: int = 0, **shape) -> dict:
    """The first ``n`` cells in memory: the chunks the writer writes, stacked."""
    params = parameters(**(SHAPE | shape), seed=seed)
    blocks = [chunk(i, min(chunk_size, n - a), params, seed) for i, a in enumerate(range(0, n, chunk_size))]
    return {
        "Y": sparse.vstack([b["Y"] for b in blocks], format="csr"),
        "X": sparse.vstack([b["X"] for b in blocks], format="csr"),
        "Z": np.vstack([b["Z"] for b in blocks]),
    }


def _chunk_job(job):
    index, m, shape, seed = job
    return chunk(index, m, parameters(**shape, seed=seed), seed)


def _encode(node, kind: str, version: str) -> None:
    node.attrs["encoding-type"], node.attrs["encoding-version"] = kind, version


def _dataframe(f, name: str, n: int, prefix: str) -> None:
    """An empty dataframe of ``n`` rows named ``<prefix><i>`` (the names written in blocks)."""
    import h5py

    group = f.create_group(name)
    _encode(group, "dataframe", "0.2.0")
    group.attrs["_index"] = "_index"
    group.attrs.create("column-order", np.array([], dtype=h5py.string_dtype()), dtype=h5py.string_dtype())
    index = group.create_dataset("_index", (n,), dtype=h5py.string_dtype())
    _encode(index, "string-array", "0.2.0")
    for a in range(0, n, CHUNK):
        index[a : min(a + CHUNK, n)] = np.char.add(prefix, np.arange(a, min(a + CHUNK, n)).astype(str)).astype(object)


def _csr_group(parent, name: str, n: int, p: int):
    """An empty, growable CSR group (anndata's encoding) of ``n`` rows."""
    group = parent.create_group(name)
    _encode(group, "csr_matrix", "0.1.0")
    group.attrs["shape"] = (n, p)
    group.create_dataset("data", (0,), np.float32, maxshape=(None,), chunks=(1 << 18,))
    group.create_dataset("indices", (0,), np.int32, maxshape=(None,), chunks=(1 << 18,))
    group.create_dataset("indptr", (n + 1,), np.int64)
    return group


def _append(group, rows: sparse.csr_matrix, start: int) -> None:
    """Append a CSR block whose first row is ``start``."""
    offset = int(group["indptr"][start]) if start else 0
    low, high = offset, offset + rows.nnz
    for field in ("data", "indices"):
        group[field].resize((high,))
        group[field][low:high] = getattr(rows, field)
    group["indptr"][start : start + rows.shape[0] + 1] = rows.indptr.astype(np.int64) + offset


def write_h5ad(
    path: Path, n: int, *, chunk_size: int = CHUNK, seed: int = 0, processes: int = 1, log=None, **shape
) -> None:
    """Write ``n`` cells to an AnnData-readable h5ad, chunk by chunk (drawn on ``processes`` processes)."""
    import h5py

    shape = SHAPE | shape
    jobs = [(i, min(chunk_size, n - a), shape, seed) for i, a in enumerate(range(0, n, chunk_size))]
    tmp = path.with_suffix(".partial")
    with h5py.File(tmp, "w") as f:
        _encode(f, "anndata", "0.1.0")
        _dataframe(f, "obs", n, "cell")
        _dataframe(f, "var", shape["p_y"], "gene")
        for name in ("obsm", "varm", "obsp", "varp", "layers", "uns"):
            _encode(f.create_group(name), "dict", "0.1.0")
        groups = {"Y": _csr_group(f, "X", n, shape["p_y"]), "X": _csr_group(f["obsm"], "fixed", n, shape["p_x"])}
        z = f["obsm"].create_dataset("covariates", (n, scale.BATCHES + 2), np.float32, chunks=(min(n, 1 << 16), 10))
        _encode(z, "array", "0.2.0")
        for (index, m, _, _), block in zip(jobs, _map(_chunk_job, jobs, processes)):
            start = index * chunk_size
            for name, group in groups.items():
                _append(group, block[name], start)
            z[start : start + m] = block["Z"]
            if log and (index + 1) % 10 == 0:
                log(f"  {start + m:,} cells written")
    tmp.rename(path)


def _map(function, jobs, processes: int):
    """``map`` in order, on a pool of processes when ``processes > 1``."""
    if processes <= 1:
        yield from map(function, jobs)
        return
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        yield from pool.imap(function, jobs)


class RowPrefix:
    """The first ``n`` rows of an HDF5 CSR group, as a group :class:`StreamedMatrix` reads (no copy)."""

    def __init__(self, group, n: int):
        self._group, self.name, self.file = group, group.name, group.file
        self._indptr = np.asarray(group["indptr"][: n + 1])
        self.attrs = {"encoding-type": "csr_matrix", "shape": (n, int(group.attrs["shape"][1]))}

    def keys(self):
        return ["data", "indices", "indptr"]

    def __getitem__(self, key):
        return self._indptr if key == "indptr" else self._group[key]


class DensePrefix:
    """The first ``n`` rows of a dense HDF5 dataset."""

    def __init__(self, dataset, n: int):
        self._dataset, self.shape, self.dtype = dataset, (n, dataset.shape[1]), dataset.dtype

    def __getitem__(self, rows: slice):
        return self._dataset[rows]  # StreamedMatrix asks for row slices inside the prefix


def h5ad_elements(f, n: int) -> dict:
    """Y, X, Z of the first ``n`` cells of an open h5ad, as StreamedMatrix."""
    from lmf_omics._core.backends import StreamedMatrix

    return {
        "Y": StreamedMatrix(RowPrefix(f["X"], n)),
        "X": StreamedMatrix(RowPrefix(f["obsm/fixed"], n)),
        "Z": StreamedMatrix(DensePrefix(f["obsm/covariates"], n)),
    }


def load_prefix(f, n: int) -> dict:
    """Y, X, Z of the first ``n`` cells of an open h5ad, in memory."""

    def csr(group):
        indptr = group["indptr"][: n + 1]
        return sparse.csr_matrix(
            (group["data"][: indptr[-1]], group["indices"][: indptr[-1]], indptr),
            shape=(n, int(group.attrs["shape"][1])),
        )

    return {"Y": csr(f["X"]), "X": csr(f["obsm/fixed"]), "Z": f["obsm/covariates"][:n]}


# ------------------------------------------------------------------------------- dask
def read_rows(path: str, name: str, start: int, stop: int) -> sparse.csr_matrix:
    """Rows ``start:stop`` of the CSR group ``name`` of an HDF5 file (run on a worker)."""
    import h5py

    with h5py.File(path, "r") as f:
        group = f[name]
        indptr = group["indptr"][start : stop + 1]
        low, high = int(indptr[0]), int(indptr[-1])
        return sparse.csr_matrix(
            (group["data"][low:high], group["indices"][low:high], indptr - low),
            shape=(stop - start, int(group.attrs["shape"][1])),
        )


def dask_csr(path: Path, name: str, rows_per_chunk: int = 50_000):
    """A dask array of CSR row chunks, each read by the task that needs it (the graph holds only offsets)."""
    import dask
    import dask.array as da
    import h5py

    with h5py.File(path, "r") as f:
        n, p = (int(s) for s in f[name].attrs["shape"])
        dtype = f[name]["data"].dtype
    meta = sparse.csr_matrix((0, p), dtype=dtype)
    blocks = [
        da.from_delayed(
            dask.delayed(read_rows, pure=True)(str(path), name, a, min(a + rows_per_chunk, n)),
            shape=(min(a + rows_per_chunk, n) - a, p),
            dtype=dtype,
            meta=meta,
        )
        for a in range(0, n, rows_per_chunk)
    ]
    return da.concatenate(blocks, axis=0)


def counting_dask_matrix():
    """A :class:`~lmf_omics._core.backends.DaskMatrix` that counts the bytes of what it brings to the client."""
    from lmf_omics._core.backends import DaskMatrix

    class CountingDaskMatrix(DaskMatrix):
        counts: dict  # method -> [calls, bytes]

        def __init__(self, array):
            super().__init__(array)
            self.counts = {}

        def _count(self, method: str, nbytes: int) -> None:
            calls, total = self.counts.get(method, (0, 0))
            self.counts[method] = (calls + 1, total + int(nbytes))

        def matmul(self, right, out=None, **options):
            result = super().matmul(right, out=out, **options)
            product = result[0] if isinstance(result, tuple) else result
            self._count("matmul", product.shape[0] * product.shape[1] * 8)  # the float64 parts that travel
            return result

        def rmatmul(self, left):
            out = super().rmatmul(left)
            self._count("rmatmul", out.nbytes)
            return out

        def gram_product(self, right, **options):
            total = super().gram_product(right, **options)
            rows = options.get("out")  # the n-row product travels only when it is kept, in its own dtype
            self._count("gram_product", sum(part.nbytes for part in total))  # p × k, k and k × k sums
            if rows is not None:
                self._count("gram_product_rows", rows.nbytes)
            return total

        def column_moments(self, observed):
            mean, variance = super().column_moments(observed)
            self._count("column_moments", mean.nbytes + variance.nbytes)
            return mean, variance

        def content_keys(self, observed):
            keys = super().content_keys(observed)
            self._count("content_keys", keys.features.nbytes + keys.cells.nbytes)  # p and n: one column each
            return keys

        def scan(self, observed):
            out = super().scan(observed)
            self._count("scan", 0 if out.nan_rows is None else out.nan_rows.nbytes)
            return out

        def chunks(self):
            for a, b, rows in super().chunks():
                self._count("chunks", scale.csr_bytes(rows) if sparse.issparse(rows) else rows.nbytes)
                yield a, b, rows

    return CountingDaskMatrix


class TcpBytes:
    """Bytes this process reads from TCP connections while inside, by who sent them.

    Wraps ``distributed.comm.tcp.read_bytes_rw``, through which every frame of a message is read
    (the 8-byte length prefix of each message is not counted). With a ``LocalCluster`` the scheduler
    runs in the client's process, so the reads are split by the peer's port: ``from_scheduler``
    (what the ``Client`` receives: results come this way when ``direct_to_workers=False``),
    ``from_workers`` (the scheduler's or client's connections to a worker's listening port:
    gathered results) and ``other`` (connections into the scheduler: the client's graphs, with
    the n × k slices they carry, and the workers' task reports).
    """

    def __init__(self, scheduler_address: str, worker_addresses):
        self.scheduler_port = _port(scheduler_address)
        self.worker_ports = {_port(a) for a in worker_addresses}
        self.bytes = {"from_scheduler": 0, "from_workers": 0, "other": 0}

    def __enter__(self):
        from distributed.comm import tcp

        self._original = original = tcp.read_bytes_rw

        async def counted(stream, n):
            out = await original(stream, n)
            self.bytes[self._kind(stream)] += n
            return out

        tcp.read_bytes_rw = counted
        return self

    def __exit__(self, *exc):
        from distributed.comm import tcp

        tcp.read_bytes_rw = self._original

    def _kind(self, stream) -> str:
        try:
            port = stream.socket.getpeername()[1]
        except (AttributeError, OSError):
            return "other"
        if port == self.scheduler_port:
            return "from_scheduler"
        return "from_workers" if port in self.worker_ports else "other"


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def _worker_peak_mb() -> float:
    return scale._own_peak_rss_mb()


def task_dask(h5: Path, workers: int = 2) -> dict:
    """The default fit of the scale set on a LocalCluster whose workers read the row chunks from ``h5``."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster, direct_to_workers=False) as client:  # results come through the scheduler
            matrix = counting_dask_matrix()
            data = {name: matrix(dask_csr(h5, name)) for name in "YXZ"}
            with TcpBytes(cluster.scheduler_address, client.scheduler_info()["workers"]) as tcp:
                result = scale.task_lmf(data)
            peaks = client.run(_worker_peak_mb)
    counts = {name: m.counts for name, m in data.items()}
    n, k = data["Y"].shape[0], scale.K
    result.update(
        worker_peak_mb=", ".join(f"{mb:,.0f}" for mb in sorted(peaks.values())),
        counted_to_client_bytes=sum(b for c in counts.values() for _, b in c.values()),
        counted_tall_bytes=sum(c.get(m, (0, 0))[1] for c in counts.values() for m in ("matmul", "gram_product_rows")),
        chunks_to_client_bytes=sum(c.get("chunks", (0, 0))[1] for c in counts.values()),
        counts=json.dumps(counts),
        tcp_from_scheduler_bytes=tcp.bytes["from_scheduler"],
        tcp_from_workers_bytes=tcp.bytes["from_workers"],
        tcp_other_bytes=tcp.bytes["other"],
        n_by_k_bytes=n * k * 8,
    )
    return result


# ------------------------------------------------------------------------- the child
def _blas() -> str:
    from threadpoolctl import threadpool_info

    return "; ".join(f"{i['internal_api']} {i.get('version')} ({i['num_threads']} threads)" for i in threadpool_info())


def run_task(args) -> None:
    """In a child process: run one fit, print one JSON line."""
    import anndata  # noqa: F401  (libraries first: the baseline is the interpreter with them)
    import h5py

    import lmf_omics  # noqa: F401

    baseline = scale._rss_mb()
    load = os.getloadavg()[0]
    loaded = baseline
    h5ad = args.scratch / f"cells_{args.file_n}.h5ad"
    if args.task in ("streamed", "streamed_shift"):
        options = {"random_effect": "shift"} if args.task == "streamed_shift" else {}
        with h5py.File(h5ad, "r") as f:
            result = scale.task_lmf(h5ad_elements(f, args.n), **options)
    elif args.task == "memory":
        with h5py.File(h5ad, "r") as f:
            data = load_prefix(f, args.n)
        loaded = scale._rss_mb()
        result = scale.task_lmf(data)
    elif args.task == "scale_memory":
        data = scale.cached(args.n, args.scale_cache)
        loaded = scale._rss_mb()
        result = scale.task_lmf(data)
    elif args.task == "scale_streamed":
        from lmf_omics._core.backends import StreamedMatrix

        with h5py.File(args.scratch / f"cells_{args.n}.h5", "r") as f:
            result = scale.task_lmf({name: StreamedMatrix(f[name]) for name in "YXZ"})
    elif args.task == "dask":
        result = task_dask(args.scratch / f"cells_{args.n}.h5")
    else:
        raise SystemExit(f"unknown task {args.task}")
    result.update(
        peak_rss_mb=scale._own_peak_rss_mb(),
        baseline_rss_mb=baseline,
        loaded_rss_mb=loaded,
        load_before=load,
        load_after=os.getloadavg()[0],
        blas=_blas(),
    )
    print("RESULT " + json.dumps(result), flush=True)


# ------------------------------------------------------------------------ the driver
def _tree_rss_mb(pid: int) -> float:
    """RSS of a process and its descendants (MB)."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/status") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0) / 1e3
            with open(f"/proc/{current}/task/{current}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def _available_mb() -> float:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:")) / 1e3


def measure(task: str, n: int, args) -> dict:
    """Run one task in a child process (its own session) under a memory watchdog."""
    command = [sys.executable, __file__, "--task", task, "--n", str(n), "--file-n", str(args.file_n)]
    command += ["--scratch", str(args.scratch), "--scale-cache", str(args.scale_cache)]
    started, tree_peak, killed = time.time(), 0.0, None
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with open(args.scratch / "child.out", "w+") as out, open(args.scratch / "child.err", "w+") as err:
        child = subprocess.Popen(command, stdout=out, stderr=err, env=env, start_new_session=True)
        while child.poll() is None:
            tree_peak = max(tree_peak, _tree_rss_mb(child.pid))
            if tree_peak > args.max_rss_gb * 1e3 or _available_mb() < 1500:
                killed = f"killed by the watchdog at {tree_peak:,.0f} MB (available {_available_mb():,.0f} MB)"
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
                break
            time.sleep(0.5)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    if killed or child.returncode or not lines:
        print(stderr[-3000:], file=sys.stderr)
        reason = killed or f"exit {child.returncode}"
        return {"task": task, "n": n, "error": reason, "tree_peak_mb": tree_peak, "seconds": time.time() - started}
    result = json.loads(lines[-1][len("RESULT ") :])
    result.update(task=task, n=n, wall_with_startup=time.time() - started, tree_peak_mb=tree_peak)
    print(
        f"{n:>11,} {task:<15} {result['seconds']:8.1f} s  peak {result['peak_rss_mb']:8.0f} MB  "
        f"(tree {tree_peak:,.0f} MB)  iters {result.get('iterations')}  "
        f"load {result['load_before']:.1f}->{result['load_after']:.1f}",
        flush=True,
    )
    return result


def prepare(args) -> dict:
    """The h5ad of ``--file-n`` cells and the scale set's HDF5 file (each written once)."""
    info = {}
    h5ad = args.scratch / f"cells_{args.file_n}.h5ad"
    written = h5ad.with_name(h5ad.name + ".json")  # the write's time, kept beside the file
    if not h5ad.exists():
        print(f"writing {h5ad} ({args.file_n:,} cells, {CHUNK:,} per chunk) ...", flush=True)
        start = time.perf_counter()
        write_h5ad(h5ad, args.file_n, processes=args.processes, log=print)
        seconds = time.perf_counter() - start
        written.write_text(json.dumps({"write_seconds": seconds, "write_peak_mb": scale._own_peak_rss_mb()}))
    if written.exists():
        info |= json.loads(written.read_text())
    info |= {"file_n": args.file_n, "file_bytes": h5ad.stat().st_size} | describe(h5ad)
    if not args.skip_dask:
        h5 = args.scratch / f"cells_{args.dask_n}.h5"
        if not h5.exists():
            scale.write_h5(scale.cached(args.dask_n, args.scale_cache), h5)
        info["scale_h5_bytes"] = h5.stat().st_size
    return info


def describe(h5ad: Path) -> dict:
    """Shapes, stored entries and densities of the file's elements; checks that anndata opens it backed."""
    import anndata as ad
    import h5py

    backed = ad.read_h5ad(h5ad, backed="r")
    info = {"anndata_backed": f"{backed.n_obs} × {backed.n_vars}, obsm {list(backed.obsm.keys())}"}
    backed.file.close()
    with h5py.File(h5ad, "r") as f:
        for label, name in (("Y", "X"), ("X", "obsm/fixed")):
            n, p = (int(s) for s in f[name].attrs["shape"])
            nnz = int(f[name]["indptr"][-1])
            info |= {f"{label}_shape": f"{n} × {p}", f"{label}_nnz": nnz, f"{label}_density": nnz / (n * p)}
        info["Z_shape"] = " × ".join(str(s) for s in f["obsm/covariates"].shape)
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000, 3_000_000, 10_000_000])
    parser.add_argument("--memory-sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--file-n", type=int, default=10_000_000, help="cells in the h5ad")
    parser.add_argument("--dask-n", type=int, default=1_000_000, help="the scale set's size for the dask fit")
    parser.add_argument("--scratch", type=Path, default=Path("/work/scratch/scaleout"))
    parser.add_argument("--scale-cache", type=Path, default=Path("/work/scratch/scale_cache"))
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--processes", type=int, default=2, help="processes drawing the chunks")
    parser.add_argument("--max-rss-gb", type=float, default=20.0, help="the watchdog's limit on a run's RSS")
    parser.add_argument(
        "--shift-sizes",
        type=int,
        nargs="*",
        default=[100_000, 1_000_000],
        help="sizes of the streamed fit with random_effect='shift' (the default's cost without states)",
    )
    parser.add_argument("--only-shift", action="store_true", help="run only the shift fits (merged into the CSV)")
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--write-only", action="store_true")
    parser.add_argument("--report", action="store_true", help="only redo the table and figure from --out")
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.task:
        run_task(args)
        return
    if args.report:
        report(args.out)
        return
    args.scratch.mkdir(parents=True, exist_ok=True)
    info = prepare(args)
    print(json.dumps(info, indent=1), flush=True)
    if args.write_only:
        return
    args.out.mkdir(parents=True, exist_ok=True)
    inputs_path = args.out / "scale_out_inputs.json"
    old = json.loads(inputs_path.read_text()) if inputs_path.exists() else {}
    inputs_path.write_text(json.dumps(old | info, indent=1))
    print(f"load average at start: {os.getloadavg()}", flush=True)
    runs = [measure("streamed_shift", n, args) for n in args.shift_sizes]
    if args.only_shift:
        write_csv(runs, args.out / "scale_out_runs.csv")
        report(args.out)
        return
    if not args.skip_dask:
        runs += [measure(task, args.dask_n, args) for task in ("dask", "scale_memory", "scale_streamed")]
    runs += [measure("memory", n, args) for n in args.memory_sizes]
    runs += [measure("streamed", n, args) for n in args.sizes]
    write_csv(runs, args.out / "scale_out_runs.csv")
    report(args.out)
    print(f"load average at end: {os.getloadavg()}")


# ------------------------------------------------------------------------ the report
def write_csv(runs, path: Path) -> None:
    """Merge ``runs`` into the CSV (a new run of a task at a size replaces the old)."""
    old = read_csv(path) if path.exists() else []
    keys = {(r["task"], r["n"]) for r in runs}
    runs = [r for r in old if (r["task"], r["n"]) not in keys] + runs
    fields = sorted({key for run in runs for key in run})
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(runs)


def read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return [{k: scale._number(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


LABELS = {
    "streamed": "streamed from the h5ad (StreamedMatrix)",
    "streamed_shift": "streamed, random_effect='shift'",
    "memory": "in memory (scipy CSR, from the h5ad)",
    "scale_memory": "scale set, in memory",
    "scale_streamed": "scale set, streamed from HDF5",
    "dask": "scale set, dask LocalCluster (2 × 1 thread)",
}


def per_cell_bytes(runs, task: str = "streamed") -> tuple[float, float] | None:
    """Least-squares slope (bytes per cell) and intercept (MB) of (peak − baseline) against cells."""
    points = [
        (r["n"], r["peak_rss_mb"] - r["baseline_rss_mb"])
        for r in runs
        if r["task"] == task and r["n"] >= 100_000 and "error" not in r
    ]
    if len(points) < 2:
        return None
    slope, intercept = np.polyfit(*zip(*points), 1)
    return slope * 1e6, intercept


def write_table(runs, info, path: Path) -> None:
    ok = [r for r in runs if "error" not in r]
    lines = [
        "# Scale-out benchmark",
        "",
        f"Machine: {os.cpu_count()} cores, 24 GiB, shared with other jobs, k = {scale.K}; BLAS as threadpoolctl "
        "reports it after the fit (during one the core holds it to one thread). "
        f"h5ad: {info.get('file_n', 0):,} cells, "
        f"{info.get('file_bytes', 0) / 1e9:.2f} GB; Y (`X`) {info.get('Y_shape')} at density "
        f"{info.get('Y_density', 0):.4f}, X (`obsm/fixed`) {info.get('X_shape')} at density "
        f"{info.get('X_density', 0):.4f}, Z (`obsm/covariates`, dense) {info.get('Z_shape')}"
        + (
            f"; written in {info['write_seconds']:.0f} s (peak RSS of the writer {info['write_peak_mb']:.0f} MB)."
            if "write_seconds" in info
            else "."
        ),
        "",
        "| cells | fit | time (s) | iterations | peak RSS (MB) | above baseline (MB) | bytes / cell above baseline "
        "| load | BLAS |",
        "|---:|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for run in sorted(runs, key=lambda r: (r["task"], r["n"])):
        if "error" in run:
            reason = "stopped from outside (SIGKILL)" if run["error"] == "exit -9" else run["error"]
            lines.append(
                f"| {run['n']:,} | {LABELS[run['task']]} | {reason} after {run['seconds']:.0f} s | | "
                f"{run['tree_peak_mb']:,.0f} so far (watchdog's sample) | | | | |"
            )
            continue
        above = run["peak_rss_mb"] - run["baseline_rss_mb"]
        lines.append(
            f"| {run['n']:,} | {LABELS[run['task']]} | {run['seconds']:.1f} | {run['iterations']} | "
            f"{run['peak_rss_mb']:,.0f} | {above:,.0f} | {above * 1e6 / run['n']:,.0f} | "
            f"{run['load_before']:.1f}→{run['load_after']:.1f} | {run['blas']} |"
        )
    for task in ("streamed", "streamed_shift"):
        fit = per_cell_bytes(ok, task)
        if fit:
            lines += [
                "",
                f"{LABELS[task]}: peak above baseline ≈ {fit[0]:,.0f} bytes per cell + {fit[1]:,.0f} MB "
                f"(least squares over 10^5 cells and more); {fit[0] / 8:,.0f} float64 values per cell.",
            ]
    dask = next((r for r in ok if r["task"] == "dask"), None)
    if dask:
        memory = next((r for r in ok if r["task"] == "scale_memory" and r["n"] == dask["n"]), None)
        lines += [
            "",
            f"Dask ({dask['n']:,} cells, 2 worker processes × 1 thread, the workers read the CSR row chunks "
            f"from the HDF5 file): {dask['seconds']:.1f} s"
            + (
                f" ({dask['seconds'] / memory['seconds']:.2f}× the in-memory fit's {memory['seconds']:.1f} s)"
                if memory
                else ""
            )
            + f"; worker peaks {dask['worker_peak_mb']} MB; "
            f"client process (scheduler included) peak {dask['peak_rss_mb']:,.0f} MB.",
            "",
            f"Bytes to the client: {dask['counted_to_client_bytes'] / 1e6:,.1f} MB of results counted by the "
            f"DaskMatrix wrapper ({dask['counted_tall_bytes'] / 1e6:,.1f} MB of them the n-row results of `A @ B` "
            "and the kept rows of `gram_product`, "
            f"{dask['counted_tall_bytes'] / dask['n_by_k_bytes']:.1f}× an n × {scale.K} float64 matrix; "
            "rows brought whole "
            f"by `chunks()`: {dask['chunks_to_client_bytes'] / 1e6:,.1f} MB); TCP bytes read by the client's process "
            f"(`TcpBytes`): {dask['tcp_from_scheduler_bytes'] / 1e6:,.1f} MB by the Client from the scheduler, "
            f"{dask['tcp_from_workers_bytes'] / 1e6:,.1f} MB by the in-process scheduler from the workers, "
            f"{dask['tcp_other_bytes'] / 1e6:,.1f} MB other (graphs into the scheduler, task reports). "
            f"Calls and bytes per matrix: `{dask['counts']}`.",
        ]
    path.write_text("\n".join(lines) + "\n")


def plot(runs, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2), sharex=True)
    styles = {
        "streamed": {"marker": "o"},
        "memory": {"marker": "s"},
        "streamed_shift": {"marker": "v", "linestyle": "--"},
        "scale_memory": {"marker": "D", "linestyle": "none", "fillstyle": "none", "markersize": 9},
        "scale_streamed": {"marker": "o", "linestyle": "none", "fillstyle": "none", "markersize": 11},
        "dask": {"marker": "*", "linestyle": "none", "markersize": 14},
    }
    for task, style in styles.items():
        points = sorted(
            (r["n"], r["seconds"], r["peak_rss_mb"]) for r in runs if r["task"] == task and "error" not in r
        )
        if points:
            n, seconds, rss = zip(*points)
            for ax, values in zip(axes, (seconds, rss)):
                ax.plot(n, values, label=LABELS[task], **style)
    for run in runs:
        if "error" in run and run["tree_peak_mb"] > 1000:  # a run stopped part way: its memory so far
            how = "killed by the watchdog" if "watchdog" in run["error"] else "stopped"
            label = f"{LABELS[run['task']]}: {how} after {run['seconds']:.0f} s (its RSS then)"
            axes[1].plot(run["n"], run["tree_peak_mb"], "rx", markersize=12, label=label)
    axes[0].axhline(15 * 60, color="grey", linestyle=":", label="targets: 15 min, 6 GB")
    axes[1].axhline(6000, color="grey", linestyle=":")
    for ax, label in zip(axes, ("wall time of the fit (s)", "peak RSS of the process (MB)")):
        ax.set(xscale="log", yscale="log", xlabel="cells", ylabel=label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_title("time (2 cores)")
    axes[1].set_title("peak memory (dask: the client's process)")
    handles, labels = axes[0].get_legend_handles_labels()
    extra = [(h, lab) for h, lab in zip(*axes[1].get_legend_handles_labels()) if lab not in labels]
    handles, labels = handles + [h for h, _ in extra], labels + [lab for _, lab in extra]
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.17, 1, 1))
    fig.savefig(path, dpi=130)


def report(out: Path) -> None:
    """Table and figure from ``scale_out_runs.csv`` and ``scale_out_inputs.json``."""
    runs = read_csv(out / "scale_out_runs.csv")
    path = out / "scale_out_inputs.json"
    info = json.loads(path.read_text()) if path.exists() else {}
    write_table(runs, info, out / "scale_out.md")
    plot(runs, out / "scale_out.png")


if __name__ == "__main__":
    main()
