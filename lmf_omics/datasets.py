"""Datasets: scanpy's bundled pbmc68k_reduced, and the project's shared real datasets by path."""

from __future__ import annotations

import os
from pathlib import Path

from anndata import AnnData

ENV_VAR = "LMF_OMICS_DATA"


def pbmc68k_reduced() -> AnnData:
    """700 PBMCs × 765 genes shipped inside scanpy (works offline).

    Returns
    -------
    scanpy's ``pbmc68k_reduced``: scaled expression in ``X``, log-normalised in ``raw``,
    cell-cycle and quality covariates in ``obs``.
    """
    import scanpy as sc

    return sc.datasets.pbmc68k_reduced()


def shared_data_dir() -> Path:
    """Folder of the shared datasets: ``$LMF_OMICS_DATA``, else ``shared/data`` beside the checkout.

    Looked up next to the source tree first, then next to the current directory.

    Returns
    -------
    The folder (which may not exist: :func:`shared_path` says so clearly).
    """
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    candidates = [Path(__file__).resolve().parents[2] / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    return next((path for path in candidates if path.is_dir()), candidates[0])


def read_shared(name: str) -> AnnData:
    """Read a shared dataset, with a clear error if it is absent or damaged.

    Parameters
    ----------
    name
        File name in :func:`shared_data_dir`, e.g. ``"eccite_pbmc_500.h5ad"``.

    Returns
    -------
    The dataset, read into memory.

    Raises
    ------
    FileNotFoundError
        If the file is not there (set ``LMF_OMICS_DATA``).
    ValueError
        If the file is not a readable h5ad.
    """
    from ._io import read_h5ad

    return read_h5ad(shared_path(name), "shared dataset")


def shared_path(name: str) -> Path:
    """Path of a shared data file, with a clear error if it is absent.

    Parameters
    ----------
    name
        File name in :func:`shared_data_dir`.

    Returns
    -------
    The file's path.

    Raises
    ------
    FileNotFoundError
        If the file is not there (set ``LMF_OMICS_DATA``).
    """
    path = shared_data_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; set {ENV_VAR} to the folder holding the shared datasets")
    return path


def eccite_pbmc_500() -> AnnData:
    """ECCITE-seq PBMCs: RNA counts in ``X``, ADT counts in ``obsm["protein_counts"]``, ``obs["hashtag"]``.

    Returns
    -------
    The dataset (read with :func:`read_shared`; errors as there).
    """
    return read_shared("eccite_pbmc_500.h5ad")


def breast_st_3slices() -> AnnData:
    """Three serial breast-cancer spatial sections (``obs["slice"]``, ``obsm["spatial"]``).

    Returns
    -------
    The dataset (read with :func:`read_shared`; errors as there).
    """
    return read_shared("breast_st_3slices.h5ad")


def visium_mouse_brain_49spots() -> AnnData:
    """49 Visium spots of adult mouse brain (log-normalised).

    ``obsm["spatial"]`` are ``(x, y)`` pixels of :func:`visium_mouse_brain_49spots_image`.

    Returns
    -------
    The dataset (read with :func:`read_shared`; errors as there).
    """
    return read_shared("visium_mouse_brain_49spots.h5ad")


def visium_mouse_brain_49spots_image() -> Path:
    """Path of the H&E crop (JPEG, 950 × 1717 pixels) under :func:`visium_mouse_brain_49spots`.

    Returns
    -------
    The image file's path (``img=`` of :func:`lmf_omics.pp.image_features`).
    """
    return shared_path("visium_mouse_brain_49spots_hne.jpg")
