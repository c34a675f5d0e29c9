"""Docstring parts shared by public functions, written once (as scanpy's ``_doc_params``)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

FIT = """\
adata
    AnnData with a fit under ``key``.
key
    ``key_added`` of the fit (:func:`lmf_omics.tl.lmf`)."""

PLOT = """\
ax
    Axes to draw on (default a new figure).
show, save
    Show the figure; write it to this path."""

NO_FIT = """\
MissingKeyError
    (a ``KeyError``) If there is no fit under ``key``."""


def fill(**parts: str) -> Callable:
    """Replace each line ``{name}`` of the decorated function's docstring by ``parts[name]``, indented as it.

    Parameters
    ----------
    **parts
        Name → text (numpydoc lines, unindented).

    Returns
    -------
    The decorator; it raises ``KeyError`` for a placeholder line with no part.
    """

    def decorate(function):
        lines = []
        for line in function.__doc__.splitlines():
            name = line.strip()
            if name.startswith("{") and name.endswith("}") and name[1:-1].isidentifier():
                lines.append(textwrap.indent(parts[name[1:-1]], line[: len(line) - len(line.lstrip())]))
            else:
                lines.append(line)
        function.__doc__ = "\n".join(lines)
        return function

    return decorate
