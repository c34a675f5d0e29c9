"""The harness of the bad-input catalogues: run one case, check nothing was corrupted, count the outcome.

Every public entry point has a catalogue (``tests/**/test_bad_inputs.py``) of :class:`Case` s. A case
builds fresh inputs, calls the entry point and expects either a clean error (type, message naming
the bad value and the fix, raised before any work) or documented handling (it works, and only the
documented keys are added). Either way every input is fingerprinted before and after:

* an AnnData by the bytes of its h5ad file (anndata writes the same object to the same bytes), or,
  when anndata cannot write it at all (e.g. an obsm DataFrame with integer column names), by its
  pickle plus ``anndata.tests.helpers.assert_equal``;
* arrays, sparse matrices, DataFrames and fitted estimators by their bytes (pickle);
* files by their bytes (or their absence), with no temporary file left beside them.

After documented handling, the keys the case documents are removed from a copy of the AnnData
first; anything else that changed is a corruption. ``RECORDS`` collects every outcome for the
table printed at the end of the session (see ``tests/conftest.py``).
"""

from __future__ import annotations

import hashlib
import pickle
import re
import tempfile
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

CATEGORIES = (
    "NaN/inf in a modality",
    "bad counts",
    "mismatched cells",
    "duplicated names",
    "missing key",
    "obs column",
    "single cell",
    "single feature",
    "all-zero modality",
    "constant feature",
    "n_factors",
    "dtype",
    "sparse format",
    "DataFrame",
    "options",
    "files",
    "view",
    "stored fit",
    "keys",
)
CLEAN, HANDLED = "clean error", "documented handling"
RECORDS: list[dict] = []  # one per case run in this session


@dataclass(frozen=True)
class Case:
    """One bad (or odd) input to one entry point.

    ``build(tmp)`` returns the named inputs (AnnData, arrays, estimators, file paths); ``call(inputs)``
    runs the entry point on them. ``error`` and ``match`` describe the expected clean error; with
    ``error=None`` the input is handled as documented: ``writes`` lists what may be added, changed or removed
    (``"obsm/X_lmf"``, ``"uns/lmf"``, ``"var/highly_variable"``, ``"file/output"``; ``*`` matches any
    suffix) and ``check(inputs, result)`` asserts what the handling promises.
    """

    entry: str
    category: str
    name: str
    build: Callable[[Path], dict]
    call: Callable[[dict], object]
    error: type | tuple[type, ...] | None = None
    match: str | None = None
    writes: tuple[str, ...] = ()
    check: Callable[[dict, object], None] | None = None

    def __post_init__(self):
        assert self.category in CATEGORIES, self.category
        assert (self.error is None) == (self.match is None), f"{self.name}: an error needs a message pattern"

    @property
    def id(self) -> str:
        return f"{self.entry}: {self.name}"


# entry points' work starts in these functions: an expected error must come before any of them
WORK = (
    ("lmf_omics._core.fitting", "fit_weighted"),
    ("lmf_omics._core.encode", "encode"),
    ("scanpy.pp", "normalize_total"),
    ("lmf_omics.pp._protein", "clr_matrix"),
    ("lmf_omics.pp._covariates", "_read_obs"),
    ("lmf_omics.pp._spatial", "neighbourhood_mean"),
    ("squidpy.im", "calculate_image_features"),
    ("lmf_omics._io", "write_h5ad_atomic"),
    ("decoupler.mt", "ulm"),
)


@contextmanager
def work_spy(monkeypatch):
    """Record the work functions called (patched in place, restored by ``monkeypatch``)."""
    import importlib

    started: list[str] = []
    for module_name, qualified in WORK:
        module = importlib.import_module(module_name)
        owner_name, _, name = qualified.rpartition(".")
        owner = getattr(module, owner_name) if owner_name else module
        assert hasattr(owner, name), f"WORK names {module_name}.{qualified}, which no longer exists"
        original = getattr(owner, name)

        def spy(*args, __original=original, __name=f"{module_name}.{qualified}", **kwargs):
            started.append(__name)
            return __original(*args, **kwargs)

        monkeypatch.setattr(owner, name, spy)
    yield started


def run_case(case: Case, tmp: Path, monkeypatch, records: list | None = None) -> dict:
    """Run ``case`` and return its record (appended to ``records``, default ``RECORDS``); never raises for it."""
    inputs = case.build(tmp)
    before = {name: fingerprint(value, case.writes) for name, value in inputs.items()}
    record = {
        "entry": case.entry,
        "category": case.category,
        "case": case.name,
        "expected": CLEAN if case.error else HANDLED,
        "problems": [],
    }
    problems = record["problems"]
    with work_spy(monkeypatch) as started:
        try:
            result = case.call(inputs)
        except Exception as raised:  # noqa: BLE001  (classified below)
            record["error"] = f"{type(raised).__name__}: {raised}"
            _check_error(case, raised, started, problems)
            outcome = CLEAN
        else:
            record["error"] = None
            outcome = HANDLED
            if case.error:
                problems.append(f"no error; expected {case.error} matching {case.match!r}")
            elif case.check is not None:
                try:
                    case.check(inputs, result)
                except AssertionError as failed:
                    problems.append(f"handled, but not as documented: {failed}")
    corrupted = _changes(inputs, before, case.writes if outcome == HANDLED else ())
    record["corrupted"] = corrupted
    problems.extend(f"corrupted: {change}" for change in corrupted)
    record["outcome"] = "corrupted" if corrupted else (outcome if not problems else f"{outcome} (with problems)")
    (RECORDS if records is None else records).append(record)
    return record


def assert_clean(record: dict) -> None:
    """The case ended as it should: a clean error or documented handling, and nothing corrupted."""
    assert record["outcome"] == record["expected"], "; ".join(record["problems"]) or record["outcome"]


def _check_error(case: Case, raised: Exception, started: list[str], problems: list[str]) -> None:
    message = str(raised)
    if case.error is None:
        problems.append(f"unexpected {type(raised).__name__}: {message}")
        return
    if not isinstance(raised, case.error):
        problems.append(f"raised {type(raised).__name__} ({message}), expected {case.error}")
    if not message.strip() or not re.search(case.match, message):
        problems.append(f"message {message!r} does not match {case.match!r}")
    if started:
        problems.append(f"raised after work started ({started})")


# ----------------------------------------------------------------------------------- fingerprints
def fingerprint(value, writes: tuple[str, ...] = ()) -> tuple:
    """What must not change: bytes of an h5ad file, a pickle, or a file on disk.

    An AnnData's fingerprint also holds the bytes without the ``writes`` keys it already has (a
    documented handling may replace those) and the list of its keys.
    """
    parts = container_parts(value)
    if parts is not None:
        return ("container", tuple(fingerprint(part, writes) for part in parts))
    if isinstance(value, AnnData):
        full = _anndata_bytes(value)
        present = [k for k in _keys(value) if _documented(k, writes)]
        return ("anndata", full, _anndata_bytes(_without(value, present)) if present else full, _keys(value))
    if isinstance(value, Path):
        siblings = sorted(p.name for p in value.parent.glob(f".{value.name}.*.tmp")) if value.parent.is_dir() else []
        return ("file", _digest(value.read_bytes()) if value.is_file() else None, tuple(siblings))
    return ("object", _digest(pickle.dumps(_plain(value))))


def container_parts(value) -> list[AnnData] | None:
    """The AnnData objects a MuData or SpatialData is made of (``None`` for anything else).

    A MuData: its modalities, then its own obs, obsm and uns as an AnnData; a SpatialData: its
    tables, then its element names (as an AnnData's uns), so an element added or lost shows.
    """
    kind = type(value).__name__
    if kind == "MuData":
        own = AnnData(obs=value.obs.copy(), obsm=dict(value.obsm), uns=dict(value.uns))
        return [*value.mod.values(), own]
    if kind == "SpatialData":
        names = AnnData(uns={"elements": sorted(str(name) for _, name, _ in value.gen_elements())})
        return [*value.tables.values(), names]
    return None


def _anndata_bytes(adata: AnnData) -> tuple[str, str]:
    """``("h5ad", digest)`` of its h5ad file, or ``("content", digest)`` when anndata cannot write it."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "snapshot.h5ad"
        try:
            adata.write_h5ad(path)
        except Exception:  # noqa: BLE001  (e.g. a DataFrame with integer column names)
            return "content", _digest(pickle.dumps(_anndata_content(adata)))
        return "h5ad", _digest(path.read_bytes())


def _anndata_content(adata: AnnData) -> dict:
    """Every part of an AnnData by content (what its h5ad file would hold)."""
    mappings = {
        slot: {key: _plain(value) for key, value in getattr(adata, slot).items()}
        for slot in ("obsm", "varm", "layers", "obsp", "varp")
    }
    return {
        "X": _plain(adata.X),
        "obs": _plain(adata.obs),
        "var": _plain(adata.var),
        "uns": _plain(dict(adata.uns)),
        "raw": None if adata.raw is None else _plain(adata.raw.to_adata().X),
        **mappings,
    }


def _keys(adata: AnnData) -> tuple:
    """Every key in every mapping of an AnnData (uns recursively)."""

    def nested(mapping, prefix):
        for key, value in mapping.items():
            yield f"{prefix}/{key}"
            if isinstance(value, Mapping):
                yield from nested(value, f"{prefix}/{key}")

    keys = [f"{slot}/{key}" for slot in ("obsm", "varm", "layers", "obsp", "varp") for key in getattr(adata, slot)]
    keys += [f"obs/{c}" for c in adata.obs.columns] + [f"var/{c}" for c in adata.var.columns]
    keys += list(nested(adata.uns, "uns"))
    return tuple(sorted(keys))


def _plain(value):
    """Objects whose pickle is their content (a fitted estimator: its attributes)."""
    if hasattr(value, "get_params") and hasattr(value, "fit"):
        return {name: _plain(v) for name, v in sorted(vars(value).items())}
    if isinstance(value, dict):
        return {name: _plain(v) for name, v in value.items()}
    if sparse.issparse(value):  # by content: a sparse matrix's pickle also holds cached flags
        parts = ("data", "indices", "indptr", "row", "col", "offsets")
        value = value.tocoo() if value.format in ("dok", "lil") else value
        return (
            value.format,
            value.shape,
            str(value.dtype),
            *(np.asarray(getattr(value, p)).tobytes() for p in parts if hasattr(value, p)),
        )
    if isinstance(value, pd.DataFrame):  # by content: a DataFrame's pickle follows its internal blocks
        return (
            list(map(repr, value.columns)),
            list(map(str, value.dtypes)),
            list(map(repr, value.index)),
            pd.util.hash_pandas_object(value, index=False).to_numpy().tobytes() if len(value.columns) else b"",
        )
    return value


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _changes(inputs: dict, before: dict, writes: tuple[str, ...]) -> list[str]:
    """What changed in the inputs beyond the documented ``writes`` (none after an error)."""
    changes = []
    for name, value in inputs.items():
        parts = container_parts(value)
        if parts is not None:
            for index, (part, was) in enumerate(zip(parts, before[name][1])):
                changes.extend(f"{name}[{index}]: {c}" for c in _anndata_changes(part, was, writes))
        elif isinstance(value, AnnData):
            changes.extend(f"{name}: {c}" for c in _anndata_changes(value, before[name], writes))
        elif f"file/{name}" in writes and isinstance(value, Path):
            continue
        elif fingerprint(value) != before[name]:
            changes.append(f"{name} changed")
    return changes


def _anndata_changes(adata: AnnData, before: tuple, writes: tuple[str, ...]) -> list[str]:
    _, full, core, keys_before = before
    keys_after = _keys(adata)
    if not writes:
        return [] if _anndata_bytes(adata) == full and keys_after == keys_before else ["content changed"]
    undocumented = [k for k in keys_after if k not in keys_before and not _documented(k, writes)]
    if undocumented:
        return [f"undocumented keys added: {undocumented}"]
    removed = [k for k in keys_before if k not in keys_after and not _documented(k, writes)]
    if removed:
        return [f"keys removed: {removed}"]
    if _anndata_bytes(_without(adata, [k for k in keys_after if _documented(k, writes)])) != core:
        return ["content changed outside the documented keys"]
    if full[0] == "h5ad" and _anndata_bytes(adata)[0] != "h5ad":  # what was added can be saved too
        return ["no longer writable as h5ad"]
    return []


def _documented(key: str, writes: tuple[str, ...]) -> bool:
    return any(key == w or (w.endswith("*") and key.startswith(w[:-1])) for w in writes)


def _without(adata: AnnData, keys: list[str]) -> AnnData:
    """A copy of ``adata`` without ``keys`` (top-level uns keys and their contents)."""
    copy = adata.copy()
    for key in sorted(keys, key=lambda k: -k.count("/")):
        slot, _, name = key.partition("/")
        if slot == "uns":
            if "/" not in name:
                copy.uns.pop(name, None)
        elif slot in ("obs", "var"):
            getattr(copy, slot).pop(name)
        else:
            getattr(copy, slot).pop(name, None)
    return copy


# --------------------------------------------------------------------------------- summary table
def summary_table(records: list[dict]) -> list[str]:
    """Lines of the count table: per entry point and in total."""
    if not records:
        return []
    frame = pd.DataFrame(records)
    rows = []
    for entry, group in [*frame.groupby("entry", sort=True), ("total", frame)]:
        rows.append(
            {
                "entry point": entry,
                "inputs tried": len(group),
                "clean errors": int((group["outcome"] == CLEAN).sum()),
                "documented handling": int((group["outcome"] == HANDLED).sum()),
                "corruptions": int(group["corrupted"].map(bool).sum()),
                "other": int((~group["outcome"].isin([CLEAN, HANDLED]) & ~group["corrupted"].map(bool)).sum()),
            }
        )
    table = pd.DataFrame(rows)
    widths = {c: max(len(c), *(len(str(v)) for v in table[c])) for c in table.columns}

    def line(values):
        return "| " + " | ".join(str(v).ljust(widths[c]) for c, v in zip(table.columns, values)) + " |"

    lines = [line(table.columns), "|" + "|".join("-" * (w + 2) for w in widths.values()) + "|"]
    return lines + [line(row) for row in table.itertuples(index=False)]


# ------------------------------------------------------------------------------- shared builders
def counts_adata(n: int = 40, n_genes: int = 30, n_proteins: int = 6, seed: int = 0) -> AnnData:
    """Small CITE-seq-like cells: sparse RNA counts in X (a dense copy in a layer), protein counts in obsm,
    a categorical batch, a numeric covariate, spatial coordinates and an HVG flag."""
    rng = np.random.default_rng(seed)
    latent = rng.gamma(2.0, 1.0, size=(n, 3))
    rna = rng.poisson(latent @ rng.gamma(1.0, 1.0, size=(3, n_genes)))
    protein = rng.poisson(3 * latent @ rng.gamma(1.0, 1.0, size=(3, n_proteins)))
    adata = AnnData(sparse.csr_matrix(rna.astype(np.float32)))
    adata.obs_names = [f"cell{i}" for i in range(n)]
    adata.var_names = [f"gene{i}" for i in range(n_genes)]
    adata.layers["dense"] = np.log1p(rna.astype(np.float64))
    adata.obsm["protein"] = pd.DataFrame(protein, index=adata.obs_names, columns=[f"ADT{i}" for i in range(n_proteins)])
    adata.obsm["spatial"] = rng.uniform(0, 100, size=(n, 2))
    adata.obs["batch"] = pd.Categorical(rng.choice(["b1", "b2", "b3"], n))
    adata.obs["depth"] = rna.sum(axis=1).astype(np.float64)
    adata.var["highly_variable"] = np.arange(n_genes) % 3 != 0
    return adata


# edits of a counts_adata, shared by the catalogues: each returns a function of the AnnData (or a frame)
def set_obs(column, values):
    def edit(adata):
        adata.obs[column] = values(adata)

    return edit


def set_obsm(key, values):
    def edit(adata):
        adata.obsm[key] = values(adata)

    return edit


def protein(change):
    """Edit the protein counts as a float DataFrame."""
    return set_obsm("protein", lambda a: change(a.obsm["protein"].astype(np.float64)))


def at(row, column, value):
    def change(frame):
        frame.iloc[row, column] = value
        return frame

    return change


def duplicate_names(axis="obs"):
    """The second obs (or var) name made equal to the first."""

    def edit(adata):
        names = list(getattr(adata, f"{axis}_names"))
        names[1] = names[0]
        setattr(adata, f"{axis}_names", names)

    return edit


def finite_codes(key: str = "X_lmf", adata_name: str = "adata"):
    """A check: the codes exist for every cell and are finite."""

    def check(inputs, result):
        adata = inputs[adata_name] if result is None else result
        codes = adata.obsm[key]
        assert codes.shape[0] == adata.n_obs and np.all(np.isfinite(codes)), f"obsm[{key!r}] not finite"

    return check


# sparse matrices as a user's might be: entries stored twice, out of order, or a corrupt structure
def split_entries(matrix, fraction=1.0, shuffle=False, fmt="csr"):
    """``matrix`` as CSR (or CSC) with a ``fraction`` of its entries stored twice as halves (same sum)."""
    coo = sparse.coo_matrix(np.asarray(matrix, dtype=np.float64))
    rng = np.random.default_rng(0)
    split = rng.random(coo.nnz) < fraction
    rows = np.concatenate([coo.row, coo.row[split]])
    cols = np.concatenate([coo.col, coo.col[split]])
    values = np.concatenate([np.where(split, coo.data / 2, coo.data), coo.data[split] / 2])
    major, minor = (rows, cols) if fmt == "csr" else (cols, rows)
    order = np.lexsort((rng.random(len(rows)) if shuffle else minor, major))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(major, minlength=coo.shape[0 if fmt == "csr" else 1]))])
    build = sparse.csr_matrix if fmt == "csr" else sparse.csc_matrix
    return build((values[order], minor[order], indptr), shape=coo.shape)


def edit_x(edit):
    """Change a copy of ``adata.X`` in place with ``edit`` (e.g. corrupt one index) and put it back."""

    def change(adata):
        X = adata.X.copy()
        edit(X)
        adata.X = X

    return change


def split_x(fraction):
    """``adata.X`` with a ``fraction`` of its entries stored twice as halves, unsorted (float32)."""

    def change(adata):
        adata.X = split_entries(adata.X.toarray(), fraction=fraction, shuffle=True).astype(np.float32)

    return change
