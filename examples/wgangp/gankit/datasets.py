"""The data sets: the paper's 2-D toy distributions, and MNIST's and CIFAR-10's official files
read with their integrity checked (a bad file stops in one line that names it)."""

import gzip
import io
import os
import pickle
import tarfile
import zlib
from os import path as osp
from typing import Dict, Optional

import numpy as np
from ppsci.utils import logger

from . import download
from .errors import UsageError
from .files import NumpyOnlyUnpickler, file_digest

TOY_DATASETS = ("8gaussians", "25gaussians", "swissroll")


class ToyDistribution:
    """One of the paper's 2-D toy distributions.

    `centers` and `sigma` are in the scaled units of the samples (None for the roll);
    `sample(n, rng)` draws a fresh float32 batch [n, 2].
    """

    def __init__(self, name: str):
        if name == "8gaussians":
            angles = np.arange(8) * np.pi / 4
            self.scale = 1.414
            self.centers = 2.0 * np.stack([np.cos(angles), np.sin(angles)], 1) / self.scale
            self.sigma = 0.02 / self.scale
        elif name == "25gaussians":
            grid = np.arange(-2, 3) * 2.0
            self.scale = 2.828
            self.centers = np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2) / self.scale
            self.sigma = 0.05 / self.scale
        elif name == "swissroll":
            self.scale = 7.5
            self.centers = None
            self.sigma = 0.25 / self.scale  # per-axis noise around the roll
        else:
            raise UsageError(
                f"DATA.mode={name!r} is not a toy data set; use one of {', '.join(TOY_DATASETS)}."
            )
        self.name = name

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.centers is not None:
            points = self.centers[rng.integers(0, len(self.centers), n)]
            return (points + self.sigma * rng.standard_normal((n, 2))).astype("float32")
        # scikit-learn's make_swiss_roll (x and z columns) with noise 0.25, / 7.5
        t = 1.5 * np.pi * (1 + 2 * rng.random(n))
        roll = np.stack([t * np.cos(t), t * np.sin(t)], 1) + 0.25 * rng.standard_normal((n, 2))
        return (roll / self.scale).astype("float32")

    def fixed_set(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n points drawn once, in random order; with centres, n // len(centres) around each
        (gan_toy.py's 25gaussians: 4000 around each of 25, then shuffled)."""
        if self.centers is None:
            return self.sample(n, rng)
        points = self.centers[np.arange(n - n % len(self.centers)) % len(self.centers)]
        points = points + self.sigma * rng.standard_normal(points.shape)
        return rng.permutation(points).astype("float32")

    def curve(self, n: int = 4000) -> np.ndarray:
        """Noiseless swiss-roll spine, in scaled units (for its quality metric)."""
        t = np.linspace(1.5 * np.pi, 4.5 * np.pi, n)
        return np.stack([t * np.cos(t), t * np.sin(t)], 1) / self.scale


class FixedPoints:
    """A fixed training set read in global batches in the same order every pass, the last
    incomplete batch left out: gan_toy.py's 25gaussians. Its position is checkpointed."""

    def __init__(self, points: np.ndarray, batch_size: int):
        if len(points) < batch_size:
            raise UsageError(
                f"DATA.fixed_points={len(points)} is fewer than TRAIN.batch_size="
                f"{batch_size}; give at least one batch of points (or 0: fresh draws)."
            )
        self.points, self.batch_size, self.position = points, batch_size, 0

    def next(self) -> np.ndarray:
        i = self.position % (len(self.points) // self.batch_size)
        self.position += 1
        return self.points[i * self.batch_size : (i + 1) * self.batch_size]

    def state_dict(self) -> dict:
        return {"position": self.position}

    def set_state_dict(self, state: dict) -> None:
        self.position = int(state["position"])


def toy_training_points(data_cfg) -> int:
    """DATA.fixed_points, where null is the paper's: 100 000 for 25gaussians, else 0 (a fresh
    batch each step)."""
    n = data_cfg.get("fixed_points")
    if n is None:
        return 100_000 if data_cfg.mode == "25gaussians" else 0
    return n


# Where an unset DATA.data_path downloads from: the run's DATA.url and DATA.md5 (startup
# calls use_settings), else the official URL and hashes
_settings = {}


def use_settings(data_cfg) -> None:
    """Take DATA.url and DATA.md5 of this run for the downloads of an unset DATA.data_path."""
    _settings.clear()
    _settings.update({k: data_cfg[k] for k in ("url", "md5") if k in data_cfg})


def _fetch(url: str, md5: Optional[str], into: str, help_text: str) -> None:
    """Download `url` to `into` (paddle's cache), its MD5 checked before it is kept; offline
    or refused, one line with the reason and `help_text`."""
    try:
        download.download(url, f"md5:{md5}" if md5 else None, osp.basename(into), into=into)
    except download.DownloadError as e:
        raise UsageError(
            f"DATA.data_path is not set and the download of {url} failed ({e.reason}); "
            f"{help_text}, or check DATA.url and DATA.md5."
        ) from None


# ---------------------------------------------------------------------------
# MNIST: the seed's mnist.pkl.gz, or the four official idx files
# ---------------------------------------------------------------------------
MNIST_PKL_URL = "http://www.iro.umontreal.ca/~lisa/deep/data/mnist/mnist.pkl.gz"
MNIST_IDX_URL = "https://dataset.bj.bcebos.com/mnist/"  # paddle.vision's mirror
MNIST_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_MD5 = {  # of the official .gz files (paddle.vision.datasets.MNIST's and torchvision's)
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
PADDLE_MNIST_CACHE = osp.expanduser("~/.cache/paddle/dataset/mnist")
_MNIST_HELP = (
    f"set DATA.data_path to mnist.pkl.gz ({MNIST_PKL_URL}) or to a directory with the four "
    f"idx files train-images-idx3-ubyte.gz ... ({MNIST_IDX_URL}; paddle.vision.datasets.MNIST "
    f"caches them in {PADDLE_MNIST_CACHE})"
)


def _check_mnist(images: np.ndarray, labels: np.ndarray, source: str):
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise UsageError(
            f"{source} does not hold MNIST digits (images {images.shape}, "
            f"{len(labels)} labels); {_MNIST_HELP}."
        )
    if labels.min() < 0 or labels.max() > 9:
        raise UsageError(f"{source} has labels outside 0-9: not MNIST; {_MNIST_HELP}.")
    return images, labels.astype("int64")


def _read_idx(path: str, magic: int) -> np.ndarray:
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise UsageError(f"{path} is corrupt or truncated ({e}); download it again.") from None
    ndim = magic & 0xFF
    if len(data) < 4 + 4 * ndim or int.from_bytes(data[:4], "big") != magic:
        raise UsageError(f"{path} is not an idx file of the expected kind; {_MNIST_HELP}.")
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise UsageError(
            f"{path} is truncated ({body.size} of {int(np.prod(shape))} values); download it again."
        )
    return body.reshape(shape)


def _find_idx(directory: str, name: str) -> str:
    for candidate in (name + ".gz", name):
        path = osp.join(directory, candidate)
        if osp.isfile(path):
            return path
    raise UsageError(f"DATA.data_path={directory} has no {name}.gz; {_MNIST_HELP}.")


def _cached_mnist() -> str:
    """paddle.vision's MNIST cache, the idx files it lacks downloaded first (DATA.url, each
    checked against its DATA.md5)."""
    cache = PADDLE_MNIST_CACHE
    names = [name for pair in MNIST_IDX_FILES.values() for name in pair]
    missing = [n for n in names if not any(osp.isfile(osp.join(cache, n + e)) for e in (".gz", ""))]
    if missing:
        url = str(_settings.get("url") or MNIST_IDX_URL)
        md5 = _settings.get("md5", MNIST_MD5) or {}
        if isinstance(md5, str):
            raise UsageError(
                f"DATA.md5={md5}: MNIST has four files; give each its own, "
                "DATA.md5.train-images-idx3-ubyte=... (or DATA.md5=null: no check)."
            )
        logger.info(f"DATA.data_path is not set: downloading MNIST's idx files into {cache}")
        for name in missing:
            _fetch(
                f"{url.rstrip('/')}/{name}.gz",
                md5.get(name),
                osp.join(cache, name + ".gz"),
                _MNIST_HELP,
            )
        logger.info(f"MNIST's idx files are in {cache}; later runs read them from there")
    return cache


def load_mnist(data_path: Optional[str]) -> Dict[str, tuple]:
    """{"train", "dev", "test": (images, labels)}: float32 [N, 28, 28] in [0, 1].

    data_path: mnist.pkl.gz (its 50 000 training digits; "dev" is its validation split,
    the paper's held-out digits), or a directory with the official idx files ("dev" is
    the test split, as they have no other); unset, paddle.vision's MNIST cache, where the
    files it lacks are downloaded first.
    """
    data_path = osp.expanduser(str(data_path)) if data_path else _cached_mnist()
    if osp.isdir(data_path):
        splits = {}
        for split, (image_name, label_name) in MNIST_IDX_FILES.items():
            image_path = _find_idx(data_path, image_name)
            images = _read_idx(image_path, 0x803)
            labels = _read_idx(_find_idx(data_path, label_name), 0x801)
            images, labels = _check_mnist(images, labels, image_path)
            splits[split] = ((images / np.float32(255)).astype("float32"), labels)
        return {**splits, "dev": splits["test"]}
    if not osp.isfile(data_path):
        raise UsageError(f"DATA.data_path={data_path}: no such file or directory; {_MNIST_HELP}.")
    try:
        with gzip.open(data_path, "rb") as f:
            train, valid, test = NumpyOnlyUnpickler.load(f, data_path)
    except (OSError, EOFError, zlib.error, pickle.UnpicklingError, ValueError, TypeError) as e:
        raise UsageError(
            f"DATA.data_path={data_path} is not a readable mnist.pkl.gz ({e}); {_MNIST_HELP}."
        ) from None
    return {
        split: _check_mnist(np.asarray(x, "float32").reshape(-1, 28, 28), np.asarray(y), data_path)
        for split, (x, y) in (("train", train), ("dev", valid), ("test", test))
    }


# ---------------------------------------------------------------------------
# CIFAR-10: the official python tarball, its extracted directory, or paddle's cache
# ---------------------------------------------------------------------------
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_SIZE = 170_498_071
PADDLE_CIFAR10_CACHE = osp.expanduser("~/.cache/paddle/dataset/cifar/cifar-10-python.tar.gz")
_CIFAR10_HELP = (
    f"set DATA.data_path to cifar-10-python.tar.gz (download {CIFAR10_URL}) or to "
    "its extracted cifar-10-batches-py directory"
)


def _cifar_batch(raw: bytes, source: str):
    try:
        batch = NumpyOnlyUnpickler.load(io.BytesIO(raw), source)
        images = np.asarray(batch[b"data"] if b"data" in batch else batch["data"], np.uint8)
        labels = np.asarray(batch[b"labels"] if b"labels" in batch else batch["labels"], np.int64)
    except (pickle.UnpicklingError, KeyError, TypeError, ValueError, EOFError) as e:
        raise UsageError(f"{source} is not a CIFAR-10 batch ({e}); {_CIFAR10_HELP}.") from None
    if (
        images.ndim != 2
        or images.shape[1] != 3072
        or len(images) != len(labels)
        or labels.min() < 0
        or labels.max() > 9
    ):
        raise UsageError(
            f"{source} does not hold CIFAR-10 images (data {images.shape}); {_CIFAR10_HELP}."
        )
    return images.reshape(-1, 3, 32, 32), labels


def _check_cifar10_md5(data_path: str, md5: Optional[str]) -> None:
    """UsageError when the tarball's MD5 is not `md5` (DATA.md5; empty: no check)."""
    actual = file_digest(data_path, "md5") if md5 else None
    if actual and actual != md5:
        size = osp.getsize(data_path)
        what = (
            f"a partial download ({size} of {CIFAR10_SIZE} bytes)"
            if size < CIFAR10_SIZE
            else "a different or damaged file"
        )
        raise UsageError(
            f"DATA.data_path={data_path} has MD5 {actual}, not "
            f"{md5}: {what}; download {CIFAR10_URL} again (or set "
            "DATA.md5=null to skip the check for your own copy)."
        )


def load_cifar10(data_path: Optional[str], md5: Optional[str]) -> Dict[str, tuple]:
    """{"train": (images, labels), "test": (images, labels)}, uint8 [N, 3, 32, 32].

    data_path: the official cifar-10-python.tar.gz (its MD5 checked against `md5`, the
    config's DATA.md5, unless that is empty), or its extracted cifar-10-batches-py
    directory; unset, paddle.vision's cached tarball, downloaded there first if missing
    (DATA.url). Every data_batch_* is used.
    """
    if not data_path:
        data_path = PADDLE_CIFAR10_CACHE
        if not osp.isfile(data_path):
            url = str(_settings.get("url") or CIFAR10_URL)
            logger.info(f"DATA.data_path is not set: downloading {url} into {data_path}")
            _fetch(url, md5, data_path, _CIFAR10_HELP)
            logger.info(f"CIFAR-10 is in {data_path}; later runs read it from there")
    data_path = osp.expanduser(str(data_path))
    if osp.isdir(data_path):
        names = sorted(
            n for n in os.listdir(data_path) if n.startswith(("data_batch", "test_batch"))
        )
        members = {n: osp.join(data_path, n) for n in names}
        read = lambda n: open(members[n], "rb").read()  # noqa: E731
    elif osp.isfile(data_path):
        _check_cifar10_md5(data_path, md5)
        try:
            archive = tarfile.open(data_path, "r:gz")
            members = {
                osp.basename(m.name): m
                for m in archive.getmembers()
                if m.isfile() and osp.basename(m.name).startswith(("data_batch", "test_batch"))
            }
            read = lambda n: archive.extractfile(members[n]).read()  # noqa: E731
        except (tarfile.TarError, OSError, EOFError) as e:
            raise UsageError(
                f"DATA.data_path={data_path} is not a readable "
                f"cifar-10-python.tar.gz ({e}); {_CIFAR10_HELP}."
            ) from None
    else:
        raise UsageError(f"DATA.data_path={data_path}: no such file or directory; {_CIFAR10_HELP}.")
    train = sorted(n for n in members if n.startswith("data_batch"))
    if not train or "test_batch" not in members:
        raise UsageError(
            f"DATA.data_path={data_path} has no data_batch_* / test_batch files; {_CIFAR10_HELP}."
        )
    parts = [_cifar_batch(read(n), f"{data_path}:{n}") for n in train]
    return {
        "train": (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])),
        "test": _cifar_batch(read("test_batch"), f"{data_path}:test_batch"),
    }
