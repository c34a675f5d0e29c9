"""``lmf-omics`` writes atomically: killed mid-write, the target holds the old file or nothing, never part of one.

The command runs as a real process (``python -m lmf_omics.cli``) on an input whose output takes a
while to write (a large layer and many small ``uns`` entries); the test waits until the temporary
output appears, then sends SIGTERM or SIGKILL.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
from scipy import sparse

import lmf_omics
from lmf_omics import _io
from lmf_omics.cli import main

from .reliability import counts_adata

PACKAGE_ROOT = Path(lmf_omics.__file__).resolve().parents[1]
FIT = ["--response", "obsm:protein", "--fixed", "X", "--n-factors", "2", "--max-iter", "5"]
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@pytest.fixture(scope="module")
def big_input(tmp_path_factory):
    """Cells whose h5ad takes about a second to write: a 64 MB layer and 3,000 small uns arrays."""
    adata = counts_adata(n=2000, n_genes=30)
    adata.layers["big"] = sparse.random(2000, 30, density=0.5, format="csr", random_state=0)
    adata.obsm["wide"] = np.random.default_rng(0).standard_normal((2000, 4000))
    adata.uns["many"] = {f"entry{i}": np.arange(20) for i in range(3000)}
    path = tmp_path_factory.mktemp("atomic") / "cells.h5ad"
    adata.write_h5ad(path)
    return path


def _command(source, target):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-m", "lmf_omics.cli", "--quiet", "fit", str(source), "-o", str(target), *FIT],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_while_writing(process, target, signum, timeout=120.0):
    """Send ``signum`` once the temporary output has started to fill; return the temporary file's path."""
    temporary = target.with_name(f".{target.name}.{process.pid}.tmp")
    deadline = time.monotonic() + timeout
    while not (temporary.is_file() and temporary.stat().st_size > 1_000_000):
        assert process.poll() is None, f"the command ended before writing: {process.communicate()}"
        assert time.monotonic() < deadline, "the temporary output never appeared"
        time.sleep(0.002)
    process.send_signal(signum)
    process.wait(timeout=60)
    return temporary


@pytest.mark.parametrize("old", [True, False], ids=["over an old output", "no old output"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_during_the_write_leaves_the_old_file_or_nothing(big_input, tmp_path, signum, old):
    target = tmp_path / "out.h5ad"
    if old:
        counts_adata(n=7).write_h5ad(target)
    before = target.read_bytes() if old else None
    process = _command(big_input, target)
    temporary = _kill_while_writing(process, target, signum)
    _, stderr = process.communicate()
    if signum == signal.SIGTERM:  # handled: the temporary file is removed and the user told so, in one line
        assert process.returncode == 143
        assert stderr.strip().splitlines()[-1] == "lmf-omics: error: stopped by SIGTERM; no output was written"
        assert "Traceback" not in stderr and "Exception ignored" not in stderr
        assert not temporary.exists()
    else:  # nothing can run after SIGKILL: at most the hidden temporary file stays beside the target
        assert process.returncode == -signal.SIGKILL
    left = {p.name for p in tmp_path.iterdir()} - {temporary.name}  # (the temporary file only after SIGKILL)
    assert left == ({"out.h5ad"} if old else set())
    if old:
        assert target.read_bytes() == before
        assert ad.read_h5ad(target).n_obs == 7
    else:
        assert not target.exists()


def test_a_corrupt_input_is_one_line_and_exit_1_from_a_real_process(tmp_path):
    source = tmp_path / "broken.h5ad"
    source.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # an HDF5 signature and nothing else
    process = _command(source, tmp_path / "out.h5ad")
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    assert len(stderr.strip().splitlines()) == 1
    assert stderr.startswith(f"lmf-omics: error: cannot read input file {str(source)!r} as an .h5ad file (")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.h5ad"]


def test_a_failure_inside_the_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, capsys):
    source, target = tmp_path / "cells.h5ad", tmp_path / "out.h5ad"
    counts_adata().write_h5ad(source)
    counts_adata(n=5).write_h5ad(target)
    before = target.read_bytes()
    write = _io._write_bytes

    def fails_halfway(path, data):
        write(path, data[:1000])  # a partial file, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_io, "_write_bytes", fails_halfway)
    assert main(["--quiet", "fit", str(source), "-o", str(target), *FIT]) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["cells.h5ad", "out.h5ad"]


def test_the_rename_is_the_last_step(tmp_path, monkeypatch):
    """If the rename itself fails the old file stays and the temporary one goes."""
    target = tmp_path / "out.h5ad"
    target.write_bytes(b"old")

    def refuse(source, destination):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_io.os, "replace", refuse)
    with pytest.raises(PermissionError):
        _io.write_h5ad_atomic(counts_adata(n=5), target)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.h5ad"]


def _small_tmpfs(folder: Path, size: str):
    """Mount a tmpfs of ``size`` on ``folder`` (root only); ``False`` where that is not allowed."""
    folder.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    except OSError:
        return False
    return done.returncode == 0


def _limited_file_size(limit: int):
    import resource

    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _run_real(source, target, preexec_fn=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "lmf_omics.cli", "--quiet", "fit", str(source), "-o", str(target), *FIT],
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=preexec_fn,
        timeout=600,
    )


def _assert_one_line_and_old_output(done, target, before, folder):
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("lmf-omics: error: ")]
    assert len(errors) == 1 and "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    assert target.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == [target.name], "a temporary file was left"


@pytest.mark.parametrize("fault", ["full disk", "file-size limit"])
def test_a_full_disk_or_a_file_size_limit_is_one_line_exit_1_and_the_old_output(big_input, tmp_path, fault):
    """HDF5 crashed the interpreter (exit 139, hundreds of lines) when its own writes failed."""
    folder = tmp_path / "out"
    limit = None
    if fault == "full disk":
        if not _small_tmpfs(folder, "2m"):
            pytest.skip("cannot mount a tmpfs here (not root)")
    else:
        folder.mkdir()
        limit = _limited_file_size(2_000_000)
    target = folder / "out.h5ad"
    target.write_bytes(b"old output")
    try:
        done = _run_real(big_input, target, preexec_fn=limit)
        _assert_one_line_and_old_output(done, target, b"old output", folder)
        expected = "not enough space" if fault == "full disk" else "File too large"
        assert expected in done.stderr
    finally:
        if fault == "full disk":
            subprocess.run(["umount", str(folder)], check=False)


def test_a_disk_that_fills_during_the_write(tmp_path, monkeypatch, capsys):
    """The free-space check passed, then the disk filled (another process): the write itself fails cleanly."""
    folder = tmp_path / "out"
    if not _small_tmpfs(folder, "200k"):
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        source, target = tmp_path / "cells.h5ad", folder / "out.h5ad"
        counts_adata(n=2000, n_genes=200).write_h5ad(source)
        target.write_bytes(b"old output")
        monkeypatch.setattr(_io, "_check_room", lambda folder, size: None)
        assert main(["--quiet", "fit", str(source), "-o", str(target), *FIT]) == 1
        error = capsys.readouterr().err
        assert "No space left on device" in error and error.count("lmf-omics: error:") == 1
        assert target.read_bytes() == b"old output" and [p.name for p in folder.iterdir()] == ["out.h5ad"]
    finally:
        subprocess.run(["umount", str(folder)], check=False)
