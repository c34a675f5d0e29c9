"""Reading and atomic writing of h5ad files.

The target holds the old file or the complete new one, never a partial one.
"""

from __future__ import annotations

import errno
import os
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
    :func:`write_h5ad_atomic` renames its file into place.

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


def write_h5ad_atomic(adata: AnnData, path: str | os.PathLike) -> Path:
    """Write to a temporary file beside ``path``, flush it to disk, then rename it over ``path`` in one step.

    Whatever stops the write (an error, or Ctrl-C and SIGTERM under :func:`signals_stop_writes`, as
    in the CLI) removes the temporary file and leaves ``path`` as it was; a SIGKILL leaves at most
    the hidden temporary file (``.<name>.<pid>.tmp``) beside an untouched ``path``.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        adata.write_h5ad(temporary)
        _fsync(temporary)
        if _stopped:  # a signal arrived, and its exception was swallowed inside the write
            raise _EXCEPTIONS[_stopped[0]](_stopped[0])
        os.replace(temporary, path)
        _fsync(path.parent)  # the rename itself survives a crash
    finally:
        temporary.unlink(missing_ok=True)
    return path


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
