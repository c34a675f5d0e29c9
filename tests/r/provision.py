"""What the R tests need, provisioned by the tests themselves: Debian's R and a NumPy < 2 Python.

* R: ``Rscript`` with reticulate, Matrix, SingleCellExperiment and testthat. When any is missing
  and we are root, they are installed from Debian (``apt-get update`` first: a fresh machine may
  have no package lists).
* Python: Debian's reticulate 1.28 cannot pass matrices to NumPy 2, so R embeds a virtual
  environment with ``numpy<2`` and the project's dependencies, cached in
  ``$LMF_OMICS_CACHE`` (default ``~/.cache/lmf_omics``) under a hash of its requirements, and
  built once under a file lock. The project itself is built into a per-run folder on
  ``PYTHONPATH`` (``pip install --target``), so the cache never holds stale code and parallel
  runs from different checkouts do not collide; the build also proves the wheel ships ``lmf.R``.

Anything that cannot be provisioned raises :class:`Unavailable`; the conftest turns it into a
failure under ``CI`` and a skip elsewhere.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

APT_PACKAGES = ("r-base-core", "r-cran-reticulate", "r-cran-matrix", "r-bioc-singlecellexperiment", "r-cran-testthat")
R_LIBRARIES = ("reticulate", "Matrix", "SingleCellExperiment", "testthat")
PINNED = ("numpy<2", "hatchling")  # hatchling: build the project without network build isolation
TIMEOUT = 1200


class Unavailable(RuntimeError):
    """R or its Python environment cannot be provisioned here; the message says why and what to do."""


@dataclass
class REnvironment:
    """Where R runs and which Python it embeds, with the seconds each provisioning step took."""

    rscript: str
    python: Path
    site: Path
    timings: dict[str, float] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for Rscript: reticulate uses the venv, which sees this run's lmf_omics first."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "VIRTUAL_ENV")}
        env.update(RETICULATE_PYTHON=str(self.python), PYTHONPATH=str(self.site), PYTHONNOUSERSITE="1")
        # thin matrices on 2 shared cores: threaded OpenBLAS only spins (measured ~3x slower fits)
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        env.update(extra)
        return env


def provision(repo: Path, site: Path) -> REnvironment:
    """R, the cached venv and this checkout's package in ``site``; raises :class:`Unavailable`."""
    timings = {}
    start = time.perf_counter()
    rscript = ensure_r()
    timings["r"] = time.perf_counter() - start
    start = time.perf_counter()
    python = ensure_venv(repo)
    timings["venv"] = time.perf_counter() - start
    start = time.perf_counter()
    install_project(python, repo, site)
    timings["install"] = time.perf_counter() - start
    return REnvironment(rscript=rscript, python=python, site=site, timings=timings)


def ensure_r() -> str:
    if _r_ready():
        return shutil.which("Rscript")
    if os.geteuid() != 0:
        raise Unavailable(
            "Rscript or R packages missing and not root; install them with "
            f"'apt-get install -y {' '.join(APT_PACKAGES)}'"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update"], "apt-get update", env=env)
    _run(["apt-get", "install", "-y", "--no-install-recommends", *APT_PACKAGES], "apt-get install", env=env)
    if not _r_ready():
        raise Unavailable(f"R libraries {R_LIBRARIES} still missing after installing {APT_PACKAGES}")
    return shutil.which("Rscript")


def _r_ready() -> bool:
    if shutil.which("Rscript") is None:
        return False
    libraries = ", ".join(map(repr, R_LIBRARIES))
    check = f"quit(status = !all(nzchar(sapply(c({libraries}), function(p) system.file(package = p)))))"
    return subprocess.run(["Rscript", "-e", check], capture_output=True, timeout=TIMEOUT, check=False).returncode == 0


# Not imported on the R road (lmf_omics.r → tl.lmf → the core); squidpy under numpy<2 sends pip's resolver into
# a long backtrack through its spatial stack.
NOT_FOR_R = ("squidpy",)


def requirements(repo: Path) -> list[str]:
    """``numpy<2``, hatchling and the project's own dependencies (from pyproject.toml) that the R road imports."""
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    return [*PINNED, *(d for d in project["dependencies"] if not d.startswith(NOT_FOR_R))]


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lmf_omics"
    return Path(os.environ.get("LMF_OMICS_CACHE") or default)


def ensure_venv(repo: Path) -> Path:
    """The cached venv's python, built once per requirement set (under a lock, marked complete last)."""
    base = _embeddable_python()
    wanted = requirements(repo)
    key = hashlib.sha256(json.dumps([base, sys.version_info[:2], wanted]).encode()).hexdigest()[:16]
    root = cache_dir() / f"r-venv-{key}"
    python, ready = root / "bin" / "python", root / "READY"
    root.parent.mkdir(parents=True, exist_ok=True)
    with _locked(root.parent / f"r-venv-{key}.lock"):
        if ready.is_file():
            return python
        shutil.rmtree(root, ignore_errors=True)  # a build that died half-way
        _run([base, "-m", "venv", str(root)], "creating the venv")
        _run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *wanted],
            "installing numpy<2 and the dependencies into the venv",
        )
        ready.write_text("\n".join(wanted) + "\n")
    return python


def install_project(python: Path, repo: Path, site: Path) -> None:
    """Build this checkout's wheel and install it (no dependencies) into ``site``."""
    _run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(repo),
        ],
        "installing lmf-omics into the run folder",
    )


def _embeddable_python() -> str:
    """reticulate loads libpython: the base interpreter must be built as a shared library."""
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        raise Unavailable(
            f"{sys.executable} has no shared libpython (not built with --enable-shared); reticulate cannot embed it"
        )
    return str(Path(getattr(sys, "_base_executable", sys.executable)))


@contextmanager
def _locked(path: Path):
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(command: list[str], what: str, env: dict[str, str] | None = None) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Unavailable(f"{what} failed: {error}") from error
    if done.returncode != 0:
        raise Unavailable(f"{what} failed (exit {done.returncode}): {(done.stderr or done.stdout)[-2000:]}")
