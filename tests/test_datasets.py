"""Shared dataset loaders: the Visium crop and its H&E image line up; absent files name the fix."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from lmf_omics import datasets


def test_visium_spots_lie_inside_their_image():
    adata = datasets.visium_mouse_brain_49spots()
    image = plt.imread(datasets.visium_mouse_brain_49spots_image())
    assert adata.shape == (49, 1999)
    assert image.shape == (1717, 950, 3) and image.dtype == np.uint8
    x, y = adata.obsm["spatial"].T
    assert (0 <= x).all() and (x < image.shape[1]).all() and (0 <= y).all() and (y < image.shape[0]).all()


def test_missing_shared_file_names_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=datasets.ENV_VAR):
        datasets.visium_mouse_brain_49spots_image()


def test_a_damaged_shared_file_is_named(monkeypatch, tmp_path):
    """A truncated shared file gives the package's clear error, not a raw h5py one."""
    (tmp_path / "eccite_pbmc_500.h5ad").write_bytes(b"not an hdf5 file")
    monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path))
    with pytest.raises(
        ValueError,
        match=r"cannot read shared dataset '.*eccite_pbmc_500.h5ad' as an .h5ad file .*"
        r"is it truncated or not an AnnData file\?",
    ):
        datasets.eccite_pbmc_500()
