"""A small convolutional encoder ``f`` for image tiles and digits."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ConvEncoder(nn.Module):
    """Blocks of ``3×3 conv → ReLU → 2×2 max-pool``, then flattened or globally averaged.

    Parameters
    ----------
    in_channels
        Image channels (1 for grey, 3 for RGB).
    widths
        Output channels of each block; each block halves height and width.
    global_pool
        Average each channel over the remaining pixels (``widths[-1]`` features, any input
        size) instead of flattening (``widths[-1] · h · w`` features).

    Raises
    ------
    ValueError
        If ``widths`` is empty or has a width below 1.
    """

    def __init__(self, in_channels: int = 3, widths: Sequence[int] = (16, 32), *, global_pool: bool = False):
        super().__init__()
        if not widths or min(widths) < 1:
            raise ValueError(f"widths={tuple(widths)} must be a non-empty sequence of positive channel counts")
        layers: list[nn.Module] = []
        for width in widths:
            layers += [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            in_channels = width
        layers.append(nn.AdaptiveAvgPool2d(1) if global_pool else nn.Identity())
        layers.append(nn.Flatten())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features of a batch of images.

        Parameters
        ----------
        x
            Images, ``(batch, channels, height, width)``.

        Returns
        -------
        ``(batch, n_features)`` features.
        """
        return self.layers(x)

    def n_features(self, image_shape: Sequence[int]) -> int:
        """Feature count for inputs of shape ``(channels, height, width)``.

        Parameters
        ----------
        image_shape
            ``(channels, height, width)`` of one input.

        Returns
        -------
        The length of each output row (the ``in_features`` of an :class:`LMFHead` after it).
        """
        with torch.no_grad():
            return int(self(torch.zeros(1, *image_shape)).shape[1])
