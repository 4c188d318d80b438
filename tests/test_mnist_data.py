"""MNIST loaders: both formats, paddle's cache layout, and clear errors."""

import gzip
import os
import pickle
import socket

import numpy as np
from mnist_files import synthetic_digits, write_idx, write_idx_dir, write_pkl

from conftest import usage_error
from gankit import datasets


def test_idx_directory(tmp_path):
    data = datasets.load_mnist(write_idx_dir(str(tmp_path)))
    images, labels = data["train"]
    assert images.shape == (300, 28, 28) and images.dtype == np.float32
    assert 0 <= images.min() and images.max() == 1.0
    expected, expected_labels = synthetic_digits(300, 1)
    np.testing.assert_allclose(images, np.round(expected * 255) / 255, atol=1e-7)
    np.testing.assert_array_equal(labels, expected_labels)
    assert data["test"][0].shape == (100, 28, 28)


def test_uncompressed_idx_files_work_too(tmp_path):
    write_idx_dir(str(tmp_path))
    for name in os.listdir(tmp_path):
        with gzip.open(tmp_path / name) as f:
            (tmp_path / name[:-3]).write_bytes(f.read())
        os.remove(tmp_path / name)
    assert datasets.load_mnist(str(tmp_path))["train"][0].shape == (300, 28, 28)


def test_pkl_gz(tmp_path):
    data = datasets.load_mnist(write_pkl(str(tmp_path / "mnist.pkl.gz")))
    expected, labels = synthetic_digits(300, 1)
    np.testing.assert_array_equal(data["train"][0], expected)
    np.testing.assert_array_equal(data["train"][1], labels)
    assert data["test"][0].shape == (100, 28, 28)


def test_unset_path_uses_paddles_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "PADDLE_MNIST_CACHE", write_idx_dir(str(tmp_path / "cache")))
    assert datasets.load_mnist(None)["train"][0].shape == (300, 28, 28)


def test_unset_path_without_cache_offline_says_where_to_download(tmp_path, monkeypatch, capsys):
    """The files it lacks are downloaded (test_data_downloads.py); offline, one line."""
    monkeypatch.setattr(datasets, "PADDLE_MNIST_CACHE", str(tmp_path / "none"))
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/"
    monkeypatch.setattr(datasets, "_settings", {"url": url})
    err = usage_error(capsys, datasets.load_mnist, None)
    assert "DATA.data_path is not set" in err and "mnist.pkl.gz" in err and "idx" in err
    assert url in err and "could not be reached" in err


def test_missing_path(tmp_path, capsys):
    err = usage_error(capsys, datasets.load_mnist, str(tmp_path / "nope.pkl.gz"))
    assert "no such file or directory" in err


def test_directory_without_idx_files(tmp_path, capsys):
    err = usage_error(capsys, datasets.load_mnist, str(tmp_path))
    assert "has no train-images-idx3-ubyte.gz" in err


def test_truncated_idx_file(tmp_path, capsys):
    write_idx_dir(str(tmp_path))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(path) as f:
        raw = f.read()
    with gzip.open(path, "wb") as f:
        f.write(raw[:5000])
    err = usage_error(capsys, datasets.load_mnist, str(tmp_path))
    assert "truncated" in err and "train-images-idx3-ubyte.gz" in err


def test_corrupt_gzip(tmp_path, capsys):
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(open(write_pkl(str(tmp_path / "good.pkl.gz")), "rb").read()[:2000])
    err = usage_error(capsys, datasets.load_mnist, str(path))
    assert "is not a readable mnist.pkl.gz" in err


def test_wrong_data_set_is_refused(tmp_path, capsys):
    # CIFAR-like 32x32 images in idx files
    write_idx_dir(str(tmp_path))
    write_idx(str(tmp_path / "train-images-idx3-ubyte.gz"), np.zeros((300, 32, 32)), 0x803)
    err = usage_error(capsys, datasets.load_mnist, str(tmp_path))
    assert "does not hold MNIST digits" in err


def test_pickle_with_code_is_refused_without_running_it(tmp_path, capsys):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump((Evil(), None, None), f, protocol=2)
    err = usage_error(capsys, datasets.load_mnist, str(path))
    assert "system" in err and not marker.exists()
