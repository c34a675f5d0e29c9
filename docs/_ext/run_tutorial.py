"""Run one percent-format tutorial cell by cell and write it as a MyST page with its printed output and figures.

``python run_tutorial.py SCRIPT OUTDIR``: the tutorial writes its files to ``OUTDIR/<name>/`` (through
``$LMF_TUTORIAL_OUTDIR``, as in the tests); the page ``OUTDIR/<name>.md`` shows each code cell, what it
printed, and below it every figure that cell wrote.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

import jupytext
import matplotlib

MAX_OUTPUT_LINES = 60


def render(script: Path, outdir: Path) -> Path:
    matplotlib.use("Agg")
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
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(cell.source, f"{script}:cell {number}", "exec"), namespace)  # noqa: S102 - our tutorial
        parts.append(f"```python\n{cell.source}\n```")
        if printed.getvalue().strip():
            parts.append(f"```text\n{_clip(printed.getvalue())}\n```")
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
