"""Histology as a modality: per-spot image features by squidpy's ImageContainer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

from .._core.log import logger
from .._optional import require
from .._settings import n_jobs as resolve_n_jobs
from ._checks import check_adata, check_key, check_key_added, check_positive, target

IMAGE_FEATURES = ("summary", "histogram", "texture")
SQUIDPY_FEATURES = ("summary", "histogram", "texture", "segmentation", "custom")  # squidpy.im.calculate_image_features


def image_features(
    adata: AnnData,
    *,
    img,
    features: str | Sequence[str] = IMAGE_FEATURES,
    spatial_key: str = "spatial",
    library_id: str | None = None,
    spot_diameter: float | None = None,
    spot_scale: float = 1.0,
    scale: float = 1.0,
    mask_circle: bool = False,
    features_kwargs: Mapping[str, Mapping] | None = None,
    n_jobs: int | None = None,
    key_added: str = "img_features",
    copy: bool = False,
) -> AnnData | None:
    """Image features of the tissue under every spot, to ``obsm[key_added]`` (a DataFrame).

    Crops the image around each spot with :class:`squidpy.im.ImageContainer` and computes
    :func:`squidpy.im.calculate_image_features` on every crop, so histology can enter
    ``tl.lmf`` as a modality (e.g. ``fixed="obsm:img_features", scale=True``).

    Parameters
    ----------
    adata
        Annotated data matrix with spot centres in ``obsm[spatial_key]`` as ``(x, y)``.
    img
        The image: a file path, an array (height × width [× channels]) or an ``ImageContainer``.
    features
        squidpy feature families: ``"summary"`` (per-channel quantiles, mean, sd),
        ``"histogram"`` (per-channel intensity histogram), ``"texture"`` (grey-level
        co-occurrence statistics), ``"segmentation"`` (needs a segmented layer) or ``"custom"``.
    spatial_key
        ``obsm`` key of the spot centres.
    library_id
        Library in ``uns[spatial_key]`` whose ``scalefactors["spot_diameter_fullres"]`` gives
        the spot size (default: the only one there).
    spot_diameter
        Spot diameter in coordinate units; overrides ``uns[spatial_key]``.
    spot_scale
        Crop diameter as a multiple of the spot diameter (more than 1 adds context).
    scale
        Image pixels per coordinate unit (e.g. the hires scale factor for a hires image with
        full-resolution coordinates).
    mask_circle
        Use only the pixels within the round spot.
    features_kwargs
        Per-family options passed to squidpy (e.g. ``{"histogram": {"bins": 20}}``).
    n_jobs
        Parallel jobs of squidpy (``None``: ``scanpy.settings.n_jobs``; ``-1``: every core).
    key_added
        ``obsm`` key of the features.
    copy
        Return a modified copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or a copy of ``adata`` when ``copy=True``, with ``obsm[key_added]`` (spots ×
    features DataFrame, squidpy's column names) and ``uns[key_added]["params"]``.

    Raises
    ------
    TypeError
        If ``adata`` is not an AnnData.
    FileNotFoundError
        If ``img`` is a path that is not a file.
    ValueError
        If ``features`` names an unknown family, ``img`` is not an image, the spot diameter is
        unknown, or spots lie outside the image (coordinates of another resolution: set ``scale``).
    MissingKeyError
        (a ``KeyError``) If a named key or column is absent; the message lists what is there.

    Examples
    --------
    >>> lmf.pp.image_features(adata, img="hne.jpg", features=["summary", "texture"])
    >>> lmf.tl.lmf(adata, response="X", fixed="obsm:img_features", scale=True)
    """
    sq = require("squidpy")

    check_adata(adata)
    features = [features] if isinstance(features, str) else list(features)
    bad = [f for f in features if f not in SQUIDPY_FEATURES]
    if not features or bad:
        raise ValueError(f"features={features!r}: unknown {bad}; choose from {list(SQUIDPY_FEATURES)}")
    check_key(adata.obsm, spatial_key, "adata.obsm", "spatial_key")
    for name, value in (("spot_scale", spot_scale), ("scale", scale)):
        check_positive(name, value)
    check_key_added(key_added)
    library_id, diameter = _spot_diameter(adata, spatial_key, library_id, spot_diameter)
    container = _container(img, library_id, scale)
    coords = np.asarray(adata.obsm[spatial_key], dtype=np.float64)[:, :2]
    _check_inside(coords * container.data.attrs.get("scale", 1.0), container.shape, spatial_key)

    scratch = AnnData(  # spots named by position: squidpy indexes by name, and obs names may repeat
        obs=pd.DataFrame(index=pd.Index([str(i) for i in range(adata.n_obs)])),
        obsm={"spatial": coords},
        uns={"spatial": {library_id: {"scalefactors": {"spot_diameter_fullres": diameter}}}},
    )
    table = sq.im.calculate_image_features(
        scratch,
        container,
        features=features,
        features_kwargs=dict(features_kwargs or {}),
        library_id=library_id,
        copy=True,
        n_jobs=resolve_n_jobs(n_jobs),
        show_progress_bar=False,
        spot_scale=spot_scale,
        mask_circle=mask_circle,
    )
    table = table.loc[scratch.obs_names].set_axis(adata.obs_names)
    table.columns = table.columns.astype(str)

    out = target(adata, copy)
    out.obsm[key_added] = table
    out.uns[key_added] = {
        "params": {
            "features": features,
            "spot_diameter": diameter,
            "spot_scale": spot_scale,
            "scale": scale,
            "mask_circle": mask_circle,
            "library_id": library_id,
        }
    }
    logger.info("image_features: %d features per spot (%s) -> obsm[%r]", table.shape[1], ", ".join(features), key_added)
    return out if copy else None


def _spot_diameter(adata, spatial_key, library_id, spot_diameter) -> tuple[str, float]:
    """Library id and spot diameter, from the arguments or ``uns[spatial_key]`` (errors name what is missing)."""
    libraries = adata.uns.get(spatial_key, {})
    if library_id is None:
        library_id = next(iter(libraries)) if len(libraries) == 1 else "image"
    if spot_diameter is not None:
        check_positive("spot_diameter", spot_diameter)
        return library_id, float(spot_diameter)
    try:
        return library_id, float(libraries[library_id]["scalefactors"]["spot_diameter_fullres"])
    except (KeyError, TypeError):
        raise ValueError(
            f"no spot diameter at uns[{spatial_key!r}][{library_id!r}]['scalefactors']['spot_diameter_fullres'] "
            f"(libraries there: {sorted(libraries)}); pass spot_diameter= (in coordinate units) or library_id="
        ) from None


def _container(img, library_id: str, scale: float):
    sq = require("squidpy")

    if isinstance(img, sq.im.ImageContainer):
        if scale != 1.0:
            raise ValueError(
                f"scale={scale!r} is for images given as files or arrays; an ImageContainer has its own "
                "scale (ImageContainer(..., scale=))"
            )
        if img.library_ids != [library_id]:
            img = img.copy()
            img.library_ids = library_id
        return img
    if isinstance(img, str | Path):
        if not Path(img).is_file():
            raise FileNotFoundError(f"img={str(img)!r} is not a file")
    elif not isinstance(img, np.ndarray) or img.ndim not in (2, 3):
        raise ValueError(
            f"img must be an image file, an array (height × width [× channels]) or an ImageContainer, "
            f"got {type(img).__name__}"
        )
    return sq.im.ImageContainer(img, library_id=library_id, scale=scale, lazy=False)  # read once, not per spot


def _check_inside(pixels: np.ndarray, shape: tuple[int, int], spatial_key: str, scale_name: str = "scale") -> None:
    height, width = shape[:2]
    outside = (pixels[:, 0] < 0) | (pixels[:, 0] >= width) | (pixels[:, 1] < 0) | (pixels[:, 1] >= height)
    if outside.any():
        raise ValueError(
            f"{int(outside.sum())} spot(s) lie outside the {width} × {height} image (e.g. "
            f"{pixels[outside][0].round(1).tolist()}: obsm[{spatial_key!r}] × {scale_name} as (x, y) pixels); are the "
            f"coordinates for another resolution? set {scale_name}="
        )
