"""Dataset loaders: the Visium crop and its H&E image line up; absent files name the fix; downloads are checked."""

import functools
import hashlib
import http.server
import socket
import threading

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


# ---- the download path, against a local HTTP server serving the shared datasets ----


@pytest.fixture
def data_server(shared_data):
    """An HTTP server on 127.0.0.1 serving ../shared/data, stopped after the test (requests time out at 10 s)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(shared_data))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.timeout = 10
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def empty_cache(monkeypatch, tmp_path):
    """No $LMF_OMICS_DATA, and an empty cache directory."""
    monkeypatch.delenv(datasets.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "lmf_omics" / "data"


def test_download_fills_the_cache_and_checks_the_checksum(data_server, empty_cache, monkeypatch, shared_data):
    monkeypatch.setenv(datasets.URL_ENV_VAR, data_server)
    assert datasets.cache_dir() == empty_cache
    path = datasets.visium_mouse_brain_49spots_image()
    assert path == empty_cache / "visium_mouse_brain_49spots_hne.jpg"
    assert path.read_bytes() == (shared_data / path.name).read_bytes()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == datasets.REGISTRY[path.name].removeprefix("sha256:")
    adata = datasets.visium_mouse_brain_49spots()
    assert adata.shape == (49, 1999)
    monkeypatch.setenv(datasets.URL_ENV_VAR, "http://127.0.0.1:9/")  # nothing listens there
    assert datasets.visium_mouse_brain_49spots_image() == path  # the cached copy, no download


def test_every_dataset_matches_its_registered_checksum(shared_data):
    assert set(datasets.REGISTRY) == {p.name for p in shared_data.iterdir() if p.suffix in (".h5ad", ".jpg")}
    for name, checksum in datasets.REGISTRY.items():
        assert hashlib.sha256((shared_data / name).read_bytes()).hexdigest() == checksum.removeprefix("sha256:")


def test_a_download_with_the_wrong_checksum_is_an_error_and_not_kept(data_server, empty_cache, monkeypatch):
    monkeypatch.setenv(datasets.URL_ENV_VAR, data_server)
    name = "visium_mouse_brain_49spots_hne.jpg"
    monkeypatch.setitem(datasets.REGISTRY, name, "sha256:" + "0" * 64)
    with pytest.raises(datasets.DatasetDownloadError, match=rf"{name} from {data_server}{name} does not match"):
        datasets.visium_mouse_brain_49spots_image()
    assert not (empty_cache / name).exists()


def test_offline_the_error_names_the_url_and_the_variables(empty_cache, monkeypatch):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/"
    monkeypatch.setenv(datasets.URL_ENV_VAR, url)
    message = rf"could not download eccite_pbmc_500.h5ad from {url}eccite_pbmc_500.h5ad .*{datasets.ENV_VAR}"
    with pytest.raises(datasets.DatasetDownloadError, match=message):
        datasets.eccite_pbmc_500()
    assert not empty_cache.exists() or not any(empty_cache.iterdir())


def test_an_unknown_dataset_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"name='pbmc.h5ad' is not a dataset .*eccite_pbmc_500.h5ad"):
        datasets.shared_path("pbmc.h5ad")
