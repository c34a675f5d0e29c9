"""Image tiles around spots: cut at pixel coordinates, resized, and randomly flipped for training."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch.nn import functional as F

CHUNK = 256  # tiles resized at a time: the full-size tiles of a chunk are the only large copy


def spot_pitch(coordinates: np.ndarray) -> float:
    """Median distance from each spot to its nearest neighbour (the grid spacing), in pixels."""
    distances, _ = cKDTree(coordinates).query(coordinates, k=2)
    return float(np.median(distances[:, 1]))


def cut_tiles(image: np.ndarray, centres: np.ndarray, *, size: int, pixels: int) -> torch.Tensor:
    """Square tiles of ``size`` image pixels centred on ``centres`` (n × 2, x then y).

    As ``pixels × pixels`` float tensors (n, channels, pixels, pixels); each output pixel is the mean of
    the image pixels it covers.

    ``uint8`` images are scaled to [0, 1]. Parts of a tile beyond the image edge repeat the edge
    pixels; only the tiles are copied, never the whole image.
    """
    image = image[..., None] if image.ndim == 2 else image
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    out = []
    for start in range(0, len(centres), CHUNK):
        tiles = np.stack([_tile(image, x, y, size) for x, y in centres[start : start + CHUNK]])
        batch = torch.from_numpy(tiles.astype(np.float32) / scale).permute(0, 3, 1, 2)
        out.append(F.adaptive_avg_pool2d(batch, pixels))
    return torch.cat(out)


def _tile(image: np.ndarray, x: float, y: float, size: int) -> np.ndarray:
    top, left = round(y) - size // 2, round(x) - size // 2
    height, width = image.shape[:2]
    rows, cols = slice(max(top, 0), min(top + size, height)), slice(max(left, 0), min(left + size, width))
    pad = ((rows.start - top, top + size - rows.stop), (cols.start - left, left + size - cols.stop), (0, 0))
    return np.pad(image[rows, cols], pad, mode="edge")


def random_dihedral(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each tile rotated by a random multiple of 90° and randomly mirrored (H&E has no orientation)."""
    choice = torch.randint(0, 8, (len(batch),), generator=generator)
    out = batch.clone()
    for transform in range(8):
        chosen = choice == transform
        if chosen.any():
            tiles = torch.rot90(batch[chosen], transform % 4, dims=(2, 3))
            out[chosen] = tiles.flip(3) if transform >= 4 else tiles
    return out
