"""Tiles: exact crops at (x, y), edge repetition beyond the image, spot pitch, dihedral flips."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lmf_omics.nn._tiles import cut_tiles, random_dihedral, spot_pitch


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)  # height 40, width 60


def test_tile_is_the_crop_around_x_y_scaled_to_unit_range(image):
    tiles = cut_tiles(image, np.array([[30.0, 20.0], [10.4, 9.6]]), size=8, pixels=8)
    assert tiles.shape == (2, 3, 8, 8) and tiles.dtype == torch.float32
    expected = image[16:24, 26:34].transpose(2, 0, 1) / 255  # rows from y, columns from x
    np.testing.assert_allclose(tiles[0].numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(tiles[1].numpy(), image[6:14, 6:14].transpose(2, 0, 1) / 255, atol=1e-6)


def test_beyond_the_edge_repeats_edge_pixels(image):
    tile = cut_tiles(image, np.array([[0.0, 39.0]]), size=4, pixels=4)[0].numpy()  # bottom-left corner
    reference = np.pad(image, ((2, 2), (2, 2), (0, 0)), mode="edge")[39:43, 0:4].transpose(2, 0, 1) / 255
    np.testing.assert_allclose(tile, reference, atol=1e-6)


def test_resizing_averages_and_keeps_float_images_as_they_are():
    image = np.zeros((32, 32), dtype=np.float32)
    image[:, 16:] = 2.0  # left half 0, right half 2; grey image gets one channel
    tile = cut_tiles(image, np.array([[16.0, 16.0]]), size=32, pixels=2)[0].numpy()
    np.testing.assert_allclose(tile, [[[0.0, 2.0], [0.0, 2.0]]], atol=1e-6)


def test_spot_pitch_of_a_hexagonal_grid():
    rows, cols = np.meshgrid(np.arange(6), np.arange(6), indexing="ij")
    x = 100.0 * cols + 50.0 * (rows % 2)
    y = 100.0 * np.sqrt(3) / 2 * rows
    np.testing.assert_allclose(spot_pitch(np.column_stack([x.ravel(), y.ravel()])), 100.0, rtol=1e-9)


def test_random_dihedral_moves_pixels_only_and_is_seeded():
    batch = torch.arange(2 * 16 * 9, dtype=torch.float32).reshape(16, 2, 3, 3)
    out = random_dihedral(batch, torch.Generator().manual_seed(0))
    again = random_dihedral(batch, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    allowed = [torch.rot90(batch, k, dims=(2, 3)) for k in range(4)]
    allowed += [a.flip(3) for a in allowed]
    for i in range(len(batch)):
        assert any(torch.equal(out[i], a[i]) for a in allowed)
    assert sum(not torch.equal(out[i], batch[i]) for i in range(len(batch))) > 8
