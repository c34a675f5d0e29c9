"""Run one percent-format tutorial cell by cell and write it as a MyST page with its printed output and figures.

``python run_tutorial.py SCRIPT OUTDIR``: the tutorial writes its files to ``OUTDIR/<name>/`` (through
``$LMF_TUTORIAL_OUTDIR``, as in the tests); the page ``OUTDIR/<name>.md`` shows each code cell, what it
printed, what it wrote to standard error (Python warnings, the package's and scanpy's log records) as a
"messages" block, and below them every figure that cell wrote. A reader sees a warning beside the code that
raised it, as in a notebook; on the build's terminal it would be lost, or taken for a warning of the site.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from pathlib import Path

import jupytext
import matplotlib

MAX_OUTPUT_LINES = 60


def _capture_logs() -> None:
    """Send the package's and scanpy's log records to the current ``sys.stderr``, at their usual levels.

    By default both write to the standard error of start-up, which the cells' redirection does not reach.
    """
    import scanpy as sc

    sc.settings.logfile = _CurrentStderrFile()
    handler = logging.StreamHandler(_CurrentStderrFile())  # a handler of the user's: the package uses it
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logging.getLogger("lmf_omics").addHandler(handler)


class _CurrentStderrFile(io.TextIOBase):
    """A file object writing to whatever ``sys.stderr`` is at each write (so into the running cell's messages)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A Python warning as ``Category (package): message``, without this machine's paths."""
    parts = Path(filename).parts
    where = parts[parts.index("site-packages") + 1] if "site-packages" in parts else Path(filename).name
    (file or sys.stderr).write(f"{category.__name__} ({where}): {message}\n")


def render(script: Path, outdir: Path) -> Path:
    matplotlib.use("Agg")
    _capture_logs()
    warnings.showwarning = _show_warning
    os.environ["LMF_TUTORIAL_OUTDIR"] = str(outdir)
    figures = outdir / script.stem
    namespace = {"__name__": "__main__", "__file__": str(script)}
    parts = []
    for number, cell in enumerate(jupytext.read(script).cells):
        if cell.cell_type == "markdown":
            parts.append(cell.source)
            continue
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        before = _stamps(figures)
        printed, messages = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(messages):
            exec(compile(cell.source, f"{script}:cell {number}", "exec"), namespace)  # noqa: S102 - our tutorial
        parts.append(f"```python\n{cell.source}\n```")
        if printed.getvalue().strip():
            parts.append(f"```text\n{_clip(printed.getvalue())}\n```")
        if messages.getvalue().strip():
            parts.append(f"```{{code-block}} text\n:caption: messages\n\n{_clip(messages.getvalue())}\n```")
        after = _stamps(figures)
        for name in sorted(name for name, stamp in after.items() if before.get(name) != stamp):
            parts.append(f"```{{image}} {script.stem}/{name}\n:alt: {name}\n:width: 100%\n```")
    page = outdir / f"{script.stem}.md"
    page.write_text("\n\n".join(parts) + "\n")
    return page


def _stamps(folder: Path) -> dict[str, int]:
    return {path.name: path.stat().st_mtime_ns for path in folder.glob("*.png")} if folder.is_dir() else {}


def _clip(text: str) -> str:
    lines = text.rstrip().splitlines()
    if len(lines) <= MAX_OUTPUT_LINES:
        return "\n".join(lines)
    return "\n".join([*lines[:MAX_OUTPUT_LINES], f"... ({len(lines) - MAX_OUTPUT_LINES} more lines)"])


if __name__ == "__main__":
    print(render(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()))
