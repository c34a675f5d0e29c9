"""``nn.histology_features``: H&E tile features learnt through the LMF head, stored as a modality."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from anndata import AnnData
from scipy import sparse

from .._core.log import logger
from .._keys import check_key_added
from .._modalities import read_modality
from ..pp._checks import check_adata, check_int, check_key, check_positive
from ..pp._image import _check_inside
from ._encoders import ConvEncoder
from ._head import LMFHead, LMFNet
from ._tiles import cut_tiles, random_dihedral, spot_pitch
from ._train import check_budget, seeded, train


def histology_features(
    adata: AnnData,
    image: np.ndarray | str | os.PathLike,
    *,
    target: str = "obsm:X_pca",
    n_codes: int | None = 10,
    spatial_key: str = "spatial",
    scale_factor: float = 1.0,
    tile_size: int | None = None,
    tile_pixels: int = 32,
    n_features: int = 32,
    widths: Sequence[int] = (16, 32),
    ortho_weight: float = 1.0,
    augment: bool = True,
    epochs: int = 100,
    batch_size: int = 16,
    lr: float = 1e-3,
    patience: int | None = 20,
    validation_fraction: float = 0.2,
    random_state: int = 0,
    key_added: str = "X_histology",
    progress: bool | None = None,
    copy: bool = False,
) -> AnnData | None:
    r"""Learn per-spot features from H&E tiles, supervised by the spots' expression codes.

    A tile is cut around every spot, a small convolutional encoder ``f`` maps it to
    ``n_features`` numbers, and the LMF head of section 3.1 (:class:`~lmf_omics.nn.LMFHead`)
    predicts the spot's expression codes ``Y`` (e.g. PCA or :func:`lmf_omics.tl.lmf` codes)::

        K = f(tiles) β        loss = MSE(Y, K) + λ · MSE(K, K βᵀβ)

    so ``f(tiles)`` ≈ ``Kβᵀ`` is the image modality in LMF's form ``X ≈ Kβᵀ``. The learnt
    features ``f(tiles)`` are stored in ``obsm[key_added]``, ready as a modality:
    ``tl.lmf(adata, response="X", fixed=f"obsm:{key_added}", ...)`` or ``random=``.

    Parameters
    ----------
    adata
        Spots × genes, with (x, y) pixel coordinates of the spots in ``obsm[spatial_key]``.
    image
        The H&E image (height × width × channels, or height × width; ``uint8`` or float) or
        the path of an image file.
    target
        Modality spec of the codes to predict (``"obsm:X_pca"``, ``"obsm:X_lmf"``, ...).
    n_codes
        Use the first ``n_codes`` columns of ``target`` (codes are ordered by variance); ``None``:
        all. Only these columns are made dense. At most ``n_features``.
    spatial_key, scale_factor
        Spot coordinates ``obsm[spatial_key]``, multiplied by ``scale_factor`` to give pixels of
        ``image`` (e.g. ``tissue_hires_scalef`` for a hires image).
    tile_size
        Tile side in image pixels; ``None``: the spot pitch (median distance to the nearest spot).
    tile_pixels
        Tiles are resized to ``tile_pixels × tile_pixels`` for the encoder.
    n_features, widths
        Encoder: a 3×3 conv → ReLU → 2×2 max-pool block per entry of ``widths``, a last block with
        ``n_features`` channels, then a global average: ``n_features`` features per spot.
    ortho_weight
        ``λ``, the weight of the orthogonality penalty (1 as in the paper).
    augment
        Randomly rotate (by multiples of 90°) and mirror training tiles.
    epochs, batch_size, lr, patience
        Training budget, Adam step size, early-stopping patience (see :func:`lmf_omics.nn.train`).
    validation_fraction
        Share of spots held out to monitor early stopping (0: monitor the training loss).
    random_state
        Seeds the split, weights, batch order and augmentation: identical results on CPU.
    key_added
        ``obsm[key_added]`` receives the features, ``uns[key_added]`` the rest (see below).
    progress
        Show a progress bar over epochs (``None``: when the package logs at info level, e.g. at
        ``scanpy.settings.verbosity = "info"``, and standard error is a terminal).
    copy
        Return a modified copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or a copy of ``adata`` when ``copy=True``, with

    ``obsm[key_added]``
        ``f(tiles)``, spots × ``n_features``.
    ``uns[key_added]``
        ``params``; ``loadings`` (β, ``n_features`` × ``n_codes``); ``orthogonality_error``
        (``‖βᵀβ − I‖_F``); ``target_mean`` and ``target_scale`` (the codes are predicted as
        ``target_mean + target_scale · f(tiles) β``); ``validation_indices``; ``history`` (per-epoch
        ``train_*`` and ``validation_*`` loss terms; as the codes are standardised to unit mean
        variance, ``validation_fit`` approximates the share of their variance left unexplained,
        and ``metric_orthogonality_error``).

    Examples
    --------
    >>> import lmf_omics as lmf
    >>> from lmf_omics import nn as lnn
    >>> adata = lmf.datasets.visium_mouse_brain_49spots()
    >>> image = lmf.datasets.visium_mouse_brain_49spots_image()
    >>> lnn.histology_features(adata, image, target="obsm:X_pca", n_codes=10)
    >>> lmf.tl.lmf(adata, response="X", fixed="obsm:X_histology", n_factors=5)
    """
    check_budget(epochs, batch_size, patience)
    check_key_added(key_added)
    pixels, centres, codes = _read_inputs(adata, image, target, n_codes, spatial_key, scale_factor)
    tile_size = round(spot_pitch(centres)) if tile_size is None else tile_size
    _check_options(len(codes), codes.shape[1], tile_size, tile_pixels, n_features, widths, validation_fraction)

    tiles = _standardise(cut_tiles(pixels, centres, size=tile_size, pixels=tile_pixels))
    mean, scale = codes.mean(0), float(np.sqrt(codes.var(0).mean()))
    targets = torch.from_numpy(((codes - mean) / scale).astype(np.float32))
    held_out = _validation_indices(len(codes), validation_fraction, random_state)
    fitting = np.setdiff1d(np.arange(len(codes)), held_out)
    with seeded(random_state):
        encoder = ConvEncoder(pixels.shape[2], (*widths, n_features), global_pool=True)
        net = LMFNet(encoder, LMFHead(n_features, codes.shape[1], task="regression", ortho_weight=ortho_weight))
    history = train(
        net,
        tiles[fitting],
        targets[fitting],
        validation=(tiles[held_out], targets[held_out]) if len(held_out) else None,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        patience=patience,
        metrics={"orthogonality_error": lambda model: model.head.orthogonality_error()},
        augment=random_dihedral if augment else None,
        random_state=random_state,
        progress=progress,
        desc="histology features",
    )
    with torch.no_grad():
        features = net.features(tiles).double().numpy()

    params = {
        "target": target,
        "n_codes": codes.shape[1],
        "spatial_key": spatial_key,
        "scale_factor": scale_factor,
        "tile_size": tile_size,
        "tile_pixels": tile_pixels,
        "n_features": n_features,
        "widths": np.asarray(widths, dtype=int),
        "ortho_weight": ortho_weight,
        "augment": augment,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "validation_fraction": validation_fraction,
        "random_state": random_state,
        "image": str(image) if isinstance(image, str | os.PathLike) else "array",
    }
    if patience is not None:
        params["patience"] = patience
    uns = {
        "params": params,
        "loadings": net.head.beta.detach().double().numpy(),
        "orthogonality_error": net.head.orthogonality_error(),
        "target_mean": mean.astype(float),
        "target_scale": scale,
        "validation_indices": held_out,
        "history": history.as_dict(),
    }
    result = adata.copy() if copy else adata
    result.obsm[key_added] = features
    result.uns[key_added] = uns
    logger.info(
        "histology features: %d spots, tiles of %d px → %d features; best epoch %d of %d; ‖βᵀβ − I‖ = %.3g; "
        "added obsm[%r]",
        len(features),
        tile_size,
        n_features,
        history.best_epoch,
        history.n_epochs,
        uns["orthogonality_error"],
        key_added,
    )
    return result if copy else None


def _read_inputs(adata, image, target, n_codes, spatial_key, scale_factor):
    """Image, spot centres in image pixels and the target codes (n × n_codes), all checked."""
    check_adata(adata)
    check_key(adata.obsm, spatial_key, "adata.obsm", "spatial_key")
    centres = np.asarray(adata.obsm[spatial_key], dtype=float)
    if centres.ndim != 2 or centres.shape[1] != 2:
        raise ValueError(f"obsm[{spatial_key!r}] must be n × 2 (x, y) pixel coordinates, got shape {centres.shape}")
    if not np.isfinite(centres).all():
        raise ValueError(f"obsm[{spatial_key!r}] has NaN or infinite coordinates; every spot needs its centre")
    check_positive("scale_factor", scale_factor)
    centres = centres * scale_factor
    pixels = _read_image(image)
    _check_inside(centres, pixels.shape[:2], spatial_key, scale_name="scale_factor")
    modality = read_modality(adata, target, role="target")
    n_available = modality.matrix.shape[1]
    n_codes = n_available if n_codes is None else n_codes
    check_int("n_codes", n_codes, high=n_available)
    columns = modality.matrix[:, :n_codes]
    codes = np.asarray(columns.toarray() if sparse.issparse(columns) else columns, dtype=np.float64)
    if not np.isfinite(codes).all():
        raise ValueError(f"target={target!r} has non-finite values")
    if codes.var(0).sum() == 0:
        raise ValueError(f"target={target!r} is constant over the spots; nothing to learn")
    return pixels, centres, codes


def _read_image(image) -> np.ndarray:
    if isinstance(image, str | os.PathLike):
        from PIL import Image

        with Image.open(image) as opened:
            image = np.asarray(opened.convert("RGB"))
    image = np.asarray(image)
    image = image[..., None] if image.ndim == 2 else image
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or min(image.shape[:2]) < 2:
        raise ValueError(f"image must be height × width (× 1, 3 or 4 channels), got shape {image.shape}")
    return image


def _check_options(n_spots, n_codes, tile_size, tile_pixels, n_features, widths, validation_fraction) -> None:
    if n_features < n_codes:
        raise ValueError(
            f"n_features={n_features} < n_codes={n_codes}: β (n_features × n_codes) needs n_features >= n_codes "
            "to have orthonormal columns; raise n_features or lower n_codes"
        )
    if not tile_size >= 2:
        raise ValueError(f"tile_size={tile_size} must be at least 2 image pixels")
    blocks = len(widths) + 1
    if tile_pixels < 2**blocks:
        raise ValueError(f"tile_pixels={tile_pixels} is too small for {blocks} pooling blocks; use >= {2**blocks}")
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction={validation_fraction} must be in [0, 1)")
    if n_spots - round(n_spots * validation_fraction) < 2:
        raise ValueError(f"{n_spots} spots leave too few for training with validation_fraction={validation_fraction}")


def _standardise(tiles: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per channel over all tiles."""
    mean = tiles.mean(dim=(0, 2, 3), keepdim=True)
    std = tiles.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return (tiles - mean) / std


def _validation_indices(n_spots: int, fraction: float, random_state: int) -> np.ndarray:
    n_held = round(n_spots * fraction)
    if fraction > 0:
        n_held = max(n_held, 1)
    return np.sort(np.random.default_rng(random_state).permutation(n_spots)[:n_held])
