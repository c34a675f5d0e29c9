"""Datasets: scanpy's bundled ``pbmc68k_reduced`` (offline), and real datasets downloaded once into a cache.

Each real dataset is read from the folder in ``$LMF_OMICS_DATA`` when that variable is set (nothing is
downloaded then), else from a cache directory (``~/.cache/lmf_omics/data`` on Linux), which
:mod:`pooch` fills on first use from ``$LMF_OMICS_DATA_URL`` (default :data:`DATA_URL`) and checks
against the file's SHA-256 in :data:`REGISTRY`. Every dataset keeps its source's licence, named in
its loader's docstring.
"""

from __future__ import annotations

import os
from pathlib import Path

from anndata import AnnData

ENV_VAR = "LMF_OMICS_DATA"
URL_ENV_VAR = "LMF_OMICS_DATA_URL"
DATA_URL: str | None = None
"""Where the dataset files are published (a folder URL). None yet: the public sources do not host these
subsets as files, so until a release mirrors them ``$LMF_OMICS_DATA_URL`` or ``$LMF_OMICS_DATA`` must be set."""

REGISTRY = {
    "eccite_pbmc_500.h5ad": "sha256:b5faf044f690cc67cf73ef2826b0f44920505e179ca18b25e9b610f0a00e9e98",
    "breast_st_3slices.h5ad": "sha256:7785220bc1c7cf93552c846b341f5aa837f5110871de15110dd0a5599753996b",
    "pbmc_3chemistries_1200.h5ad": "sha256:c6c512f9b83c641726adf9f42adae32b5a37647fe0c695efa5228c48d930c1b4",
    "visium_mouse_brain_49spots.h5ad": "sha256:f0227d2639b803401afd65c432ac047c6f04710221dbdf7f3d70a18eff1a3766",
    "visium_mouse_brain_49spots_hne.jpg": "sha256:b87670003e05039f8c924d53fe98f3606991c78ffc629a3ee8f56bc5dd134269",
}
"""File name → checksum of every downloadable dataset."""


__all__ = [
    "DATA_URL",
    "REGISTRY",
    "DatasetDownloadError",
    "breast_st_3slices",
    "cache_dir",
    "eccite_pbmc_500",
    "pbmc68k_reduced",
    "pbmc_3chemistries_1200",
    "read_shared",
    "shared_data_dir",
    "shared_path",
    "visium_mouse_brain_49spots",
    "visium_mouse_brain_49spots_image",
]


class DatasetDownloadError(OSError):
    """A dataset could not be downloaded (offline, unreachable, or a checksum mismatch)."""


def pbmc68k_reduced() -> AnnData:
    """700 PBMCs × 765 genes shipped inside scanpy (works offline).

    Returns
    -------
    AnnData
        scanpy's ``pbmc68k_reduced``: ``.raw`` log-normalised, ``X`` scaled, ``obs["bulk_labels"]``
        cell types, QC and cell-cycle covariates.
    """
    import scanpy as sc

    return sc.datasets.pbmc68k_reduced()


def shared_data_dir() -> Path:
    """Folder the datasets are read from: ``$LMF_OMICS_DATA`` if set, else the download cache.

    Returns
    -------
    Path
        The folder (the cache is created on first download, not here).
    """
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return cache_dir()


def cache_dir() -> Path:
    """The download cache: ``lmf_omics/data`` in the user's cache directory (``$XDG_CACHE_HOME`` on Linux).

    Returns
    -------
    Path
        The folder (created on first download).
    """
    import pooch

    return Path(pooch.os_cache("lmf_omics")) / "data"


def read_shared(name: str) -> AnnData:
    """Read a dataset, e.g. ``"eccite_pbmc_500.h5ad"``, with a clear error if it is absent or damaged.

    Parameters
    ----------
    name
        A file name of :data:`REGISTRY`.

    Returns
    -------
    AnnData
        The dataset.
    """
    from ._io import read_h5ad

    return read_h5ad(shared_path(name), "shared dataset")


def shared_path(name: str) -> Path:
    """Local path of a dataset file, downloaded into the cache first if needed.

    Parameters
    ----------
    name
        A file name of :data:`REGISTRY`.

    Returns
    -------
    Path
        The file, in ``$LMF_OMICS_DATA`` when set, else in :func:`cache_dir`.

    Raises
    ------
    FileNotFoundError
        ``$LMF_OMICS_DATA`` is set but has no such file.
    DatasetDownloadError
        The download failed (offline, unreachable) or the file does not match its checksum.
    """
    if name not in REGISTRY:
        raise ValueError(f"name={name!r} is not a dataset of lmf_omics; use one of {sorted(REGISTRY)}")
    if os.environ.get(ENV_VAR):
        path = Path(os.environ[ENV_VAR]) / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; set {ENV_VAR} to the folder holding the shared datasets")
        return path
    return _download(name)


def _download(name: str) -> Path:
    import pooch

    base = os.environ.get(URL_ENV_VAR) or DATA_URL
    if base is None:
        raise DatasetDownloadError(
            f"{name} is not in {cache_dir()} and no download address is configured: set {ENV_VAR} to a folder "
            f"holding the file, or {URL_ENV_VAR} to a folder URL serving it (checked against its sha256)"
        )
    url = base.rstrip("/") + "/" + name
    try:  # a cached file whose checksum matches is used as it is
        return Path(pooch.retrieve(url, known_hash=REGISTRY[name], fname=name, path=cache_dir(), progressbar=False))
    except ValueError as error:  # pooch: the downloaded file's hash does not match
        raise DatasetDownloadError(
            f"the download of {name} from {url} does not match its checksum {REGISTRY[name]} (not kept); "
            f"retry, or set {ENV_VAR} to a folder holding the file"
        ) from error
    except OSError as error:  # offline, refused, HTTP errors (requests' exceptions are OSErrors)
        raise DatasetDownloadError(
            f"could not download {name} from {url} ({type(error).__name__}: {error}); "
            f"check the network or {URL_ENV_VAR}, or set {ENV_VAR} to a folder holding the file"
        ) from error


def eccite_pbmc_500() -> AnnData:
    """ECCITE-seq PBMCs: RNA counts in ``X``, ADT counts in ``obsm["protein_counts"]``, ``obs["hashtag"]``.

    500 cells of the control sample of Mimitou et al. 2019 (Nature Methods, GEO GSE126310), the subset
    distributed with the CiteFuse R package; licence GPL-3. ``X`` and ``layers["counts"]``: raw RNA UMI
    counts, 19,521 genes (sparse); ``obsm["protein_counts"]``: 49 antibodies (DataFrame);
    ``obsm["hashtag_counts"]``: 4 hashtag oligos.

    Returns
    -------
    AnnData
        Downloaded once, see :mod:`lmf_omics.datasets`.
    """
    return read_shared("eccite_pbmc_500.h5ad")


def breast_st_3slices() -> AnnData:
    """Three serial breast-cancer spatial sections (``obs["slice"]``, ``obsm["spatial"]``).

    Ståhl et al. 2016 (Science), layer 2, sections 1-3 as distributed with raphael-group/paste; licence
    BSD-3-Clause. 769 spots × 6,397 genes, raw counts (sparse); ``obsm["spatial"]``: array coordinates
    within each section.

    Returns
    -------
    AnnData
        Downloaded once, see :mod:`lmf_omics.datasets`.
    """
    return read_shared("breast_st_3slices.h5ad")


def pbmc_3chemistries_1200() -> AnnData:
    """PBMCs from three 10x chemistries (3' v1, 3' v2, 5'), with annotated cell types.

    The reference set distributed with immunogenomics/symphony (Kang et al. 2021, Nat Commun); licence
    GPL-3. 1,200 cells × 1,767 genes, UMI counts in ``X`` and ``layers["counts"]`` (sparse);
    ``obs["batch"]``: chemistry; ``obs["cell_type"]``: 9 types; ``obs["cell_type_broad"]``,
    ``obs["percent_mito"]``.

    Returns
    -------
    AnnData
        Downloaded once, see :mod:`lmf_omics.datasets`.
    """
    return read_shared("pbmc_3chemistries_1200.h5ad")


def visium_mouse_brain_49spots() -> AnnData:
    """49 Visium spots of adult mouse brain (log-normalised, 1,999 genes).

    From squidpy's test data (10x V1 adult mouse brain); licence BSD-3-Clause. ``obsm["spatial"]`` are
    ``(x, y)`` pixels of :func:`visium_mouse_brain_49spots_image`.

    Returns
    -------
    AnnData
        Downloaded once, see :mod:`lmf_omics.datasets`.
    """
    return read_shared("visium_mouse_brain_49spots.h5ad")


def visium_mouse_brain_49spots_image() -> Path:
    """Path of the H&E crop (JPEG, 950 × 1717 pixels) under :func:`visium_mouse_brain_49spots`.

    From squidpy's test data; licence BSD-3-Clause.

    Returns
    -------
    Path
        The JPEG file, downloaded once (see :mod:`lmf_omics.datasets`).
    """
    return shared_path("visium_mouse_brain_49spots_hne.jpg")
