"""Reading and atomic writing of h5ad files.

The target holds the old file or the complete new one, never a partial one.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

from anndata import AnnData


class Terminated(BaseException):
    """SIGTERM, as an exception: what was being written is dropped on the way out."""


_stopped: list[int] = []  # SIGTERM/SIGINT received while :func:`signals_stop_writes` is active
_EXCEPTIONS = {signal.SIGTERM: Terminated, signal.SIGINT: KeyboardInterrupt}


@contextmanager
def signals_stop_writes():
    """Stop writes on a signal.

    While active, SIGTERM raises :class:`Terminated` (SIGINT ``KeyboardInterrupt``), and no later
    :func:`write_h5ad_atomic` renames its file into place; SIGXFSZ (a file-size limit reached) is
    ignored, so the write fails with an ``OSError`` instead of killing the process.

    An exception raised by a signal handler can be swallowed: Python drops exceptions raised inside
    weakref callbacks and finalisers, which h5py runs during a write. So the signal is also kept as
    a flag that the write checks before its one irreversible step, and those swallowed exceptions
    are not printed. Main thread only; elsewhere signals are left alone.
    """

    def handler(signum, frame):
        _stopped.append(signum)
        raise _EXCEPTIONS[signum](signum)

    def unraisable(report):
        if not isinstance(report.exc_value, tuple(_EXCEPTIONS.values())):
            previous_hook(report)

    try:
        previous = {signum: signal.signal(signum, handler) for signum in _EXCEPTIONS}
    except ValueError:  # not the main thread
        yield
        return
    if hasattr(signal, "SIGXFSZ"):  # a file-size limit: an OSError (EFBIG) from the write, not a killed process
        previous[signal.SIGXFSZ] = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    previous_hook, sys.unraisablehook = sys.unraisablehook, unraisable
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
        sys.unraisablehook = previous_hook
        _stopped.clear()


def read_h5ad(path: str | os.PathLike, what: str = "input file") -> AnnData:
    """Read an ``.h5ad`` file; a missing, unreadable or corrupt file is one clear ``ValueError`` naming it."""
    import anndata as ad

    path = Path(path).expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"{what} {str(path)!r} is a directory; give the path of an .h5ad file")
    if path.exists() and not path.is_file():
        raise ValueError(f"{what} {str(path)!r} is {_kind(path)}, not an .h5ad file; save the data to a file first")
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    try:
        return ad.read_h5ad(path)
    except MemoryError:
        raise
    except Exception as error:  # h5py/anndata report a damaged file in many ways
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(
            f"cannot read {what} {str(path)!r} as an .h5ad file ({reason}); is it truncated or not an AnnData file?"
        ) from error


WRITE_BLOCK = 1 << 26  # bytes handed to the operating system at a time


def write_h5ad_atomic(adata: AnnData, path: str | os.PathLike) -> Path:
    """Write ``adata`` as an h5ad file at ``path`` in one step: ``path`` holds the old file or the whole new one.

    The file is built in memory first (as much memory as the file's size), then checked against
    the free space, written to a temporary file beside ``path``, flushed to disk, and renamed over
    ``path``. HDF5 never writes to the disk itself: a full disk, a quota or a file-size limit is
    one ``OSError`` (HDF5 crashed the interpreter when its own writes failed). Whatever stops the
    write (an error, or Ctrl-C and SIGTERM under :func:`signals_stop_writes`, as in the CLI)
    removes the temporary file and leaves ``path`` as it was; a SIGKILL leaves at most the hidden
    temporary file (``.<name>.<pid>.tmp``) beside an untouched ``path``.
    """
    path = Path(path)
    check_writable_target(path)
    image = h5ad_image(adata)
    _check_room(path.parent, image.nbytes)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        _write_bytes(temporary, image)
        if _stopped:  # a signal arrived, and its exception was swallowed inside the write
            raise _EXCEPTIONS[_stopped[0]](_stopped[0])
        os.replace(temporary, path)
        _fsync(path.parent)  # the rename itself survives a crash
    finally:
        temporary.unlink(missing_ok=True)
    return path


def check_writable_target(path: Path) -> None:
    """A path to write over is absent or a regular file: a device, FIFO or socket is never replaced."""
    if path.is_symlink() or not path.exists():
        return
    if path.is_dir():
        raise IsADirectoryError(
            f"output {str(path)!r} is a directory; give a file name, e.g. {str(path / 'out.h5ad')!r}"
        )
    if not path.is_file():
        raise ValueError(f"output {str(path)!r} exists and is not a regular file ({_kind(path)}); name a file to write")


def _kind(path: Path) -> str:
    """What a path that is not a regular file is, for messages."""
    for test, name in (
        (path.is_fifo, "a FIFO"),
        (path.is_char_device, "a character device"),
        (path.is_block_device, "a block device"),
        (path.is_socket, "a socket"),
    ):
        if test():
            return name
    return "not a regular file"


def h5ad_image(adata: AnnData) -> memoryview:
    """The bytes of ``adata``'s h5ad file, built in memory by anndata's own element writers."""
    import h5py
    from anndata.io import write_elem

    adata.strings_to_categoricals()  # as AnnData.write_h5ad does
    if adata.raw is not None:
        adata.strings_to_categoricals(adata.raw.var)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as file:
        file.attrs["encoding-type"], file.attrs["encoding-version"] = "anndata", "0.1.0"
        for name in ("X", "raw", "obs", "var"):
            if getattr(adata, name) is not None:
                write_elem(file, name, getattr(adata, name))
        for name in ("obsm", "varm", "obsp", "varp", "layers", "uns"):
            # anndata 0.13: layers[None] is X, written above (as its own write_anndata skips it)
            write_elem(file, name, {k: v for k, v in getattr(adata, name).items() if k is not None})
    return buffer.getbuffer()


def _check_room(folder: Path, size: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < size:
        raise OSError(
            errno.ENOSPC,
            f"not enough space in {str(folder)!r} for the output: it needs {size / 1e6:.1f} MB, {free / 1e6:.1f} MB "
            "are free; free some space or write elsewhere (nothing was written)",
        )


def _write_bytes(path: Path, data: memoryview) -> None:
    """Write ``data`` to a new file at ``path`` and flush it to disk (short writes continued)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        done = 0
        while done < len(data):
            done += os.write(descriptor, data[done : done + WRITE_BLOCK])
        os.fsync(descriptor)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise OSError(
            error.errno, f"cannot write in {str(path.parent)!r} ({reason}); the output was not changed"
        ) from None
    finally:
        os.close(descriptor)


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk; a file system that cannot is not an error."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF) and not path.is_dir():
            raise
    finally:
        os.close(descriptor)
