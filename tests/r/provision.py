"""What the R tests need, provisioned by the tests themselves with the README's own set-up commands.

The README's R section gives the set-up of a fresh Debian 12 as one ```bash block (apt-get update, apt-get
install, R CMD INSTALL of the R package, ``lmfomics::install_lmf_python(".")``). They are run here exactly as
written, from the checkout's root, each timed, with an environment that only says *where* things go:

* ``R_LIBS`` a per-run library, so ``R CMD INSTALL`` installs this checkout's R package there;
* ``WORKON_HOME`` a cache folder (``$LMF_OMICS_CACHE``, default ``~/.cache/lmf_omics``), where reticulate
  keeps the virtualenv ``lmf-omics`` that ``install_lmf_python()`` makes; a second run finds it and only
  reinstalls the checkout into it.

Then the packages only the checks need (testthat, knitr, ...) are installed from Debian. Anything that cannot be
provisioned raises :class:`Unavailable`; the conftest turns it into a failure under ``CI`` and a skip elsewhere.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

# what R CMD check, the package's tests and its vignette use beyond the README's set-up
CHECK_APT_PACKAGES = (
    "r-cran-testthat",
    "r-cran-knitr",
    "r-cran-markdown",
    "r-bioc-scran",
    "r-bioc-hdf5array",
    "r-bioc-biocparallel",
    "r-cran-gridextra",
)
SETUP_SECTION = "## Use it from R"
ENVNAME = "lmf-omics"
TIMEOUT = 3000
LOCK_RETRIES, LOCK_WAIT = 10, 30  # seconds


class Unavailable(RuntimeError):
    """R or its Python environment cannot be provisioned here; the message says why and what to do."""


@dataclass
class REnvironment:
    """Where R runs, its library and the virtualenv it embeds, with the seconds each set-up command took."""

    rscript: str
    library: Path
    workon_home: Path
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def python(self) -> Path:
        return self.workon_home / ENVNAME / "bin" / "python"

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for R: this run's library; reticulate finds the virtualenv by itself."""
        return _environment(self.library, self.workon_home, **extra)


def readme_setup(readme: Path) -> list[str]:
    """The commands of the README's R set-up: the first ```bash block of its R section, one per line."""
    sections = re.split(r"\n(?=## )", readme.read_text())
    section = next(s for s in sections if s.startswith(SETUP_SECTION))
    block = re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    if block is None:
        raise AssertionError(f"the README's {SETUP_SECTION!r} section has no ```bash block")
    return [line.strip() for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lmf_omics"
    return Path(os.environ.get("LMF_OMICS_CACHE") or default)


def provision(repo: Path, library: Path) -> REnvironment:
    """Run the README's set-up, then install what the checks need; raises :class:`Unavailable`."""
    if os.geteuid() != 0:
        raise Unavailable("the README's set-up installs Debian packages and needs root")
    if shutil.which("apt-get") is None:
        raise Unavailable("no apt-get: the README's R set-up is for Debian 12")
    library.mkdir(parents=True, exist_ok=True)
    workon_home = cache_dir() / "virtualenvs"
    workon_home.mkdir(parents=True, exist_ok=True)
    environment = _environment(library, workon_home, DEBIAN_FRONTEND="noninteractive")
    timings = {}
    with _locked(cache_dir() / "r-setup.lock"):  # parallel runs share the apt lock and the virtualenv
        for command in readme_setup(repo / "README.md"):
            timings[command] = _timed(command, repo, environment)
        check_install = "apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 " + " ".join(
            CHECK_APT_PACKAGES
        )
        timings["(checks only) " + check_install] = _timed(check_install, repo, environment)
    rscript = shutil.which("Rscript")
    if rscript is None:
        raise Unavailable("Rscript is missing after the README's set-up")
    return REnvironment(rscript=rscript, library=library, workon_home=workon_home, timings=timings)


def _environment(library: Path, workon_home: Path, **extra: str) -> dict[str, str]:
    drop = ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV", "RETICULATE_PYTHON", "R_LIBS_USER")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(R_LIBS=str(library), WORKON_HOME=str(workon_home), PYTHONNOUSERSITE="1")
    # thin matrices on 2 shared cores: threaded OpenBLAS only spins (measured ~3x slower fits)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.update(extra)
    return env


def _timed(command: str, cwd: Path, env: dict[str, str]) -> float:
    """Seconds ``command`` took; run again while another apt run holds the dpkg lock (a shared machine)."""
    start = time.perf_counter()
    for attempt in range(LOCK_RETRIES + 1):
        try:
            done = subprocess.run(
                ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, env=env, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise Unavailable(f"{command!r} failed: {error}") from error
        if done.returncode == 0 or "Could not get lock" not in done.stderr or attempt == LOCK_RETRIES:
            break
        time.sleep(LOCK_WAIT)
    if done.returncode != 0:
        raise Unavailable(f"{command!r} failed (exit {done.returncode}): {(done.stderr + done.stdout)[-3000:]}")
    return time.perf_counter() - start


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
