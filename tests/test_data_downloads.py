"""MNIST and CIFAR-10 fetch themselves: with DATA.data_path unset and paddle's cache empty, the
official files are downloaded into ~/.cache/paddle/dataset (a local HTTP server stands in for
the official one; DATA.url and DATA.md5 point at it and its small files), hash-checked before
they are kept; offline or refused, one line naming the URL and what to do."""

import os
import socket
import subprocess
import sys

import pytest
from cifar_files import write_tarball
from http_server import serve
from mnist_files import write_idx_dir

from conftest import EXAMPLE_DIR, one_error_line, usage_error
from gankit import datasets, files

MNIST_TINY = [
    "MODEL.dim=4",
    "MODEL.noise_dim=16",
    "TRAIN.batch_size=16",
    "TRAIN.epochs=1",
    "TRAIN.iters_per_epoch=1",
    "TRAIN.eval_during_train=false",
    "EVAL.classifier_epochs=1",
    "EVAL.num_samples=100",
    "EVAL.batch_size=50",
]
CIFAR_TINY = [
    "MODEL.dim_g=8",
    "MODEL.dim_d=8",
    "MODEL.noise_dim=16",
    "TRAIN.batch_size=8",
    "TRAIN.generator_batch_size=16",
    "TRAIN.epochs=1",
    "TRAIN.iters_per_epoch=1",
    "EVAL.num_samples=40",
    "EVAL.batch_size=20",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """/mnist/: the four idx files; /cifar/: cifar-10-python.tar.gz (small, real formats)."""
    root = tmp_path_factory.mktemp("served")
    write_idx_dir(str(root / "mnist"))
    os.makedirs(root / "cifar")
    write_tarball(str(root / "cifar" / "cifar-10-python.tar.gz"))
    with serve(root) as url:
        yield url, root


def mnist_md5(root):
    """DATA.md5 of the served idx files, as the config's (the file names without .gz)."""
    folder = root / "mnist"
    return {n[: -len(".gz")]: files.file_digest(str(folder / n), "md5") for n in os.listdir(folder)}


def closed_port_url():
    with socket.socket() as s:  # a port nobody listens on: an offline machine
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def run(script, *overrides, home):
    """The script as typed, DATA.data_path unset, with HOME (and so every cache) in `home`."""
    env = dict(os.environ, HOME=str(home), PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, os.path.join(EXAMPLE_DIR, script), *overrides],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_mnist_script_downloads_into_paddles_cache_and_trains(server, tmp_path):
    url, root = server
    md5 = [f"DATA.md5.{name}={digest}" for name, digest in mnist_md5(root).items()]
    result = run(
        "wgangp_mnist.py",
        *MNIST_TINY,
        f"DATA.url={url}/mnist/",
        *md5,
        f"hydra.run.dir={tmp_path / 'run'}",
        home=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    cache = tmp_path / ".cache" / "paddle" / "dataset" / "mnist"
    assert sorted(os.listdir(cache)) == sorted(os.listdir(root / "mnist"))
    assert f"MNIST's idx files are in {cache}" in result.stdout + result.stderr
    assert (tmp_path / "run" / "metrics.json").exists()


def test_mnist_script_offline_is_one_line(tmp_path):
    url = closed_port_url()
    line = one_error_line(
        run(
            "wgangp_mnist.py",
            *MNIST_TINY,
            f"DATA.url={url}/mnist/",
            f"hydra.run.dir={tmp_path / 'run'}",
            home=tmp_path,
        )
    )
    assert line.startswith("ERROR: DATA.data_path is not set and the download of ")
    assert f"{url}/mnist/train-images-idx3-ubyte.gz" in line and "could not be reached" in line
    assert "set DATA.data_path to mnist.pkl.gz" in line


def test_mnist_download_with_the_wrong_md5_is_refused_and_not_kept(
    server, tmp_path, monkeypatch, capsys
):
    """The served files are not the official ones: the config's MD5s refuse them."""
    url, _ = server
    cache = tmp_path / "mnist"
    monkeypatch.setattr(datasets, "PADDLE_MNIST_CACHE", str(cache))
    monkeypatch.setattr(datasets, "_settings", {"url": f"{url}/mnist/"})  # official MD5s
    line = usage_error(capsys, datasets.load_mnist, None)
    assert f"{url}/mnist/train-images-idx3-ubyte.gz" in line, line
    assert f"its MD5 is not the expected {datasets.MNIST_MD5['train-images-idx3-ubyte']}" in line
    assert not [n for n in os.listdir(cache) if n.endswith(".gz")]


def test_mnist_files_already_cached_are_not_fetched_again(server, tmp_path, monkeypatch):
    url, root = server
    cache = write_idx_dir(str(tmp_path / "mnist"))
    os.remove(os.path.join(cache, "t10k-labels-idx1-ubyte.gz"))
    monkeypatch.setattr(datasets, "PADDLE_MNIST_CACHE", cache)
    monkeypatch.setattr(datasets, "_settings", {"url": f"{url}/mnist/", "md5": mnist_md5(root)})
    assert datasets.load_mnist(None)["test"][0].shape == (100, 28, 28)
    monkeypatch.setattr(datasets, "_settings", {"url": closed_port_url()})  # offline now
    assert datasets.load_mnist(None)["train"][0].shape == (300, 28, 28)


def test_cifar10_downloads_into_paddles_cache_then_reads_it_offline(server, tmp_path, monkeypatch):
    url, root = server
    cache = tmp_path / "cifar" / "cifar-10-python.tar.gz"
    md5 = files.file_digest(str(root / "cifar" / "cifar-10-python.tar.gz"), "md5")
    monkeypatch.setattr(datasets, "PADDLE_CIFAR10_CACHE", str(cache))
    monkeypatch.setattr(datasets, "_settings", {"url": f"{url}/cifar/cifar-10-python.tar.gz"})
    assert datasets.load_cifar10(None, md5)["train"][0].shape == (300, 3, 32, 32)
    assert files.file_digest(str(cache), "md5") == md5
    monkeypatch.setattr(datasets, "_settings", {"url": closed_port_url()})
    assert datasets.load_cifar10(None, md5)["test"][0].shape == (100, 3, 32, 32)


def test_cifar10_download_with_the_wrong_md5_is_refused_and_not_kept(
    server, tmp_path, monkeypatch, capsys
):
    url, _ = server
    cache = tmp_path / "cifar" / "cifar-10-python.tar.gz"
    monkeypatch.setattr(datasets, "PADDLE_CIFAR10_CACHE", str(cache))
    monkeypatch.setattr(datasets, "_settings", {"url": f"{url}/cifar/cifar-10-python.tar.gz"})
    official = "c58f30108f718f92721af3b95e74349a"
    line = usage_error(capsys, datasets.load_cifar10, None, official)
    assert f"{url}/cifar/cifar-10-python.tar.gz" in line and official in line, line
    assert not cache.exists()


def test_cifar10_offline_is_one_line(tmp_path, monkeypatch, capsys):
    url = closed_port_url() + "/cifar-10-python.tar.gz"
    monkeypatch.setattr(datasets, "PADDLE_CIFAR10_CACHE", str(tmp_path / "c.tar.gz"))
    monkeypatch.setattr(datasets, "_settings", {"url": url})
    line = usage_error(capsys, datasets.load_cifar10, None, None)
    assert "DATA.data_path is not set" in line and url in line and "could not be reached" in line
    assert "set DATA.data_path to cifar-10-python.tar.gz" in line


def test_cifar10_script_downloads_and_trains(server, tmp_path):
    url, root = server
    md5 = files.file_digest(str(root / "cifar" / "cifar-10-python.tar.gz"), "md5")
    result = run(
        "wgangp_cifar10.py",
        *CIFAR_TINY,
        f"DATA.url={url}/cifar/cifar-10-python.tar.gz",
        f"DATA.md5={md5}",
        f"EVAL.inception_weights={tmp_path}/none.pdparams",
        f"hydra.run.dir={tmp_path / 'run'}",
        home=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    cache = tmp_path / ".cache" / "paddle" / "dataset" / "cifar" / "cifar-10-python.tar.gz"
    assert files.file_digest(str(cache), "md5") == md5
    assert f"CIFAR-10 is in {cache}" in result.stdout + result.stderr
    assert (tmp_path / "run" / "model_generator.pdparams").exists()
