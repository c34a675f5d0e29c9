"""Atomic h5ad writing: the target holds the old file or the complete new one, never a partial one."""

from __future__ import annotations

import os
from pathlib import Path

from anndata import AnnData


def write_h5ad_atomic(adata: AnnData, path: str | os.PathLike) -> Path:
    """Write to a temporary file beside ``path``, then rename it over ``path`` in one step."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        adata.write_h5ad(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path
