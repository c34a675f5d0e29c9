"""LMF factors on the tissue: one row per factor, one panel per section, drawn by squidpy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize

from .. import get
from .._checks import check_key, spatial_coordinates
from .._keys import Keys
from .._modalities import MissingKeyError
from .._optional import require
from .._spatialdata import spatial_input
from ._plots import finish, pick_factors

CODES = {"combined": "K + H", "fixed": "fixed code K", "random": "random code H"}
PANEL_INCHES = 3.2


def factors_spatial(
    adata: AnnData,
    key: str = "lmf",
    *,
    factors: Sequence[int] | None = None,
    code: str = "combined",
    library_key: str | None = None,
    spatial_key: str = "spatial",
    img=None,
    spot_diameter: float | None = None,
    cmap: str = "RdBu_r",
    table_key: str | None = None,
    coordinate_system: str | Mapping[str, str] = "global",
    show: bool = False,
    save: str | None = None,
) -> np.ndarray:
    """Factor values on the tissue: one row per factor, one panel per section.

    Drawn with :func:`squidpy.pl.spatial_scatter`. Each factor has one colour scale, symmetric
    around zero and shared by all sections, so sections can be compared panel by panel.

    Parameters
    ----------
    adata
        AnnData with a fit under ``key`` and coordinates in ``obsm[spatial_key]``, or a SpatialData
        whose table ``table_key`` holds the fit: the spots are then drawn at the centroids of the
        instances the table annotates (as in :func:`lmf_omics.pp.spatial_context`), one panel per
        annotated element unless ``library_key`` says otherwise.
    key
        ``key_added`` of the fit.
    factors
        1-based factor numbers (default the first three).
    code
        ``"combined"`` (K + H, ``obsm["X_<key>"]``), ``"fixed"`` (K) or ``"random"`` (H).
    library_key
        ``obs`` column naming each spot's section: one panel per section.
    spatial_key
        ``obsm`` key of the coordinates.
    img
        An H&E image (array or file) to draw under the spots, its pixels in the coordinates'
        units (one section only). Spots are then drawn as circles of ``spot_diameter``.
    spot_diameter
        Spot diameter in coordinate units (with ``img``; default from
        ``uns[spatial_key][<library>]["scalefactors"]["spot_diameter_fullres"]``).
    cmap
        Diverging colour map.
    table_key, coordinate_system
        With a SpatialData: its table and the coordinate system of the centroids (one name, or a
        dict from element to name).
    show, save
        Show the figure; write it to this path.

    Returns
    -------
    Axes as a 2-D array: factors × sections, or one row of factors for a single section.

    Raises
    ------
    ValueError
        If ``code`` or ``factors`` is out of range, ``img`` is given for several sections, or no
        single spot diameter is stored (pass ``spot_diameter``).
    MissingKeyError
        (a ``KeyError``) If there is no fit under ``key``, its codes or the coordinates are absent.

    Examples
    --------
    >>> lmf.pl.factors_spatial(adata, library_key="slice", code="fixed", factors=[1, 2])
    """
    adata, centroids, region_key = spatial_input(adata, table_key, coordinate_system)
    library_key = region_key if library_key is None else library_key
    values = _codes(adata, key, code)
    has_random = Keys(key).random in adata.obsm
    name = CODES[code] if has_random or code != "combined" else "K; no random modality"
    factors = pick_factors(factors, values.shape[1], default=3)
    coords, libraries = _layout(adata, spatial_key, library_key, centroids)
    sections = ["all"] if libraries is None else [str(s) for s in libraries.categories]
    if img is not None and len(sections) > 1:
        raise ValueError(f"img= draws one image; library_key={library_key!r} gives {len(sections)} sections")
    scratch = _scratch(adata, values, factors, coords, library_key, libraries, spatial_key, img, spot_diameter)
    width = PANEL_INCHES * float(np.clip(np.ptp(coords[:, 0]) / max(np.ptp(coords[:, 1]), 1e-12), 0.5, 2.0))
    single = len(sections) == 1
    rows, cols = (1, len(factors)) if single else (len(factors), len(sections))
    fig, axes = plt.subplots(
        rows, cols, figsize=((width + 1.2) * cols, PANEL_INCHES * rows + 0.4), squeeze=False, layout="constrained"
    )
    for index, factor in enumerate(factors):
        panels = axes[:, index] if single else axes[index]
        limit = float(np.abs(values[:, factor - 1]).max()) or 1.0
        norm = Normalize(-limit, limit)
        _draw_row(scratch, fig, panels, factor, sections, library_key, norm, cmap, img is not None)
        fig.colorbar(ScalarMappable(norm, cmap), ax=list(panels), shrink=0.8, label=f"Factor {factor} ({name})")
    finish(fig, show, save)
    return axes


def _draw_row(scratch, fig, axes, factor, sections, library_key, norm, cmap, with_image: bool) -> None:
    sq = require("squidpy")

    column = f"Factor{factor}"
    titles = [f"Factor {factor} · {s}" if library_key else f"Factor {factor}" for s in sections]
    sq.pl.spatial_scatter(
        scratch,
        color=column,
        library_key=library_key,
        library_id=sections if library_key else None,
        shape="circle" if with_image else None,
        img=with_image,
        img_res_key="hires",
        size=None if with_image else _marker_size(scratch, library_key),
        cmap=cmap,
        norm=norm,
        colorbar=False,
        title=titles,
        axis_label="",
        frameon=False,
        fig=fig,
        ax=list(axes) if len(axes) > 1 else axes[0],
    )


def _codes(adata: AnnData, key: str, code: str) -> np.ndarray:
    if code not in CODES:
        raise ValueError(f"code={code!r} is not one of {list(CODES)}")
    get.results(adata, key)
    obsm_key = getattr(Keys(key), code)
    if obsm_key not in adata.obsm:
        raise MissingKeyError(f"code={code!r}: obsm[{obsm_key!r}] is absent (a fit without a random modality has no H)")
    return np.asarray(adata.obsm[obsm_key])


def _layout(adata: AnnData, spatial_key: str, library_key: str | None, centroids=None):
    """The coordinates (x, y) and each spot's section as a categorical (``None`` without ``library_key``)."""
    coords = spatial_coordinates(adata, spatial_key, centroids)
    if library_key is None:
        return coords, None
    check_key(adata.obs, library_key, "adata.obs", "library_key")
    return coords, pd.Categorical(adata.obs[library_key].astype(str))


def _scratch(adata, values, factors, coords, library_key, libraries, spatial_key, img, spot_diameter) -> AnnData:
    """A minimal AnnData for squidpy: factor columns, sections, coordinates and the image."""
    obs = pd.DataFrame({f"Factor{f}": values[:, f - 1] for f in factors}, index=adata.obs_names)
    if libraries is not None:
        obs[library_key] = libraries
    scratch = AnnData(obs=obs, obsm={"spatial": coords})
    if img is not None:
        image = plt.imread(img) if isinstance(img, str | Path) else np.asarray(img)
        diameter = spot_diameter or _stored_diameter(adata, spatial_key)
        scratch.uns["spatial"] = {
            "image": {
                "images": {"hires": image},
                "scalefactors": {"tissue_hires_scalef": 1.0, "spot_diameter_fullres": diameter},
            }
        }
    return scratch


def _stored_diameter(adata: AnnData, spatial_key: str) -> float:
    libraries = adata.uns.get(spatial_key, {})
    try:
        (library,) = libraries.values()
        return float(library["scalefactors"]["spot_diameter_fullres"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValueError(f"no single spot diameter in uns[{spatial_key!r}]; pass spot_diameter=") from None


def _marker_size(scratch: AnnData, library_key: str | None) -> float:
    """Marker area (points²) so that the spots of the largest section about tile a panel."""
    per_section = scratch.obs[library_key].value_counts().max() if library_key else scratch.n_obs
    return float((0.55 * PANEL_INCHES * 72 / np.sqrt(per_section)) ** 2)
