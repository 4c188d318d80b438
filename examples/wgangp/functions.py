"""The WGAN-GP examples' data, losses with the gradient penalty, and metrics (Gulrajani et al. 2017).

Data: noise, the paper's toy distributions, MNIST and CIFAR-10 readers. Losses: the
critic's and the generator's, as ppsci.loss.FunctionalLoss functions. Metrics: toy
coverage and W1, the MNIST classifier's scores, Inception Score and FID, the critic's
scores, as ppsci.metric.FunctionalMetric functions.
"""

import gzip
import hashlib
import io
import os
import pickle
import tarfile
import warnings
import zlib
from os import path as osp
from typing import Dict, Optional

import numpy as np
import paddle
import paddle.distributed as dist
import ppsci
from ppsci.utils import logger

from gankit import networks as models
from gankit.errors import UsageError
from gankit.files import NumpyOnlyUnpickler, file_digest
from gankit.parallel import local_rows


# ---------------------------------------------------------------------------
# Data: noise, the paper's toy distributions (gan_toy.py, scaled to about unit
# variance), shuffled passes over a data set
# ---------------------------------------------------------------------------
def draw_noise(n: int, noise_dim: int, rng) -> np.ndarray:
    """Generator noise: n float32 N(0, 1) rows of noise_dim from `rng` (a Generator or a seed)."""
    rng = np.random.default_rng(rng) if isinstance(rng, int) else rng
    return rng.standard_normal((n, noise_dim)).astype("float32")


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
                f"DATA.mode={name!r} is not a toy data set; use one of "
                f"{', '.join(TOY_DATASETS)}."
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
            raise UsageError(f"DATA.fixed_points={len(points)} is fewer than TRAIN.batch_size="
                             f"{batch_size}; give at least one batch of points (or 0: fresh draws).")
        self.points, self.batch_size, self.position = points, batch_size, 0

    def next(self) -> np.ndarray:
        i = self.position % (len(self.points) // self.batch_size)
        self.position += 1
        return self.points[i * self.batch_size:(i + 1) * self.batch_size]

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


# ---------------------------------------------------------------------------
# MNIST: the seed's mnist.pkl.gz, or the four official idx files
# ---------------------------------------------------------------------------
MNIST_PKL_URL = "http://www.iro.umontreal.ca/~lisa/deep/data/mnist/mnist.pkl.gz"
MNIST_IDX_URL = "https://dataset.bj.bcebos.com/mnist/"  # paddle.vision's mirror
MNIST_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
PADDLE_MNIST_CACHE = osp.expanduser("~/.cache/paddle/dataset/mnist")
_MNIST_HELP = (
    f"set DATA.data_path to mnist.pkl.gz ({MNIST_PKL_URL}) or to a directory with the four "
    f"idx files train-images-idx3-ubyte.gz ... ({MNIST_IDX_URL}; paddle.vision.datasets.MNIST "
    f"caches them in {PADDLE_MNIST_CACHE})"
)


def _check_mnist(images: np.ndarray, labels: np.ndarray, source: str):
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise UsageError(f"{source} does not hold MNIST digits (images {images.shape}, "
                         f"{len(labels)} labels); {_MNIST_HELP}.")
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
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise UsageError(f"{path} is truncated ({body.size} of {int(np.prod(shape))} values); "
                         "download it again.")
    return body.reshape(shape)


def _find_idx(directory: str, name: str) -> str:
    for candidate in (name + ".gz", name):
        path = osp.join(directory, candidate)
        if osp.isfile(path):
            return path
    raise UsageError(f"DATA.data_path={directory} has no {name}.gz; {_MNIST_HELP}.")


def load_mnist(data_path: Optional[str]) -> Dict[str, tuple]:
    """{"train", "dev", "test": (images, labels)}: float32 [N, 28, 28] in [0, 1].

    data_path: mnist.pkl.gz (its 50 000 training digits; "dev" is its validation split,
    the paper's held-out digits), or a directory with the official idx files ("dev" is
    the test split, as they have no other); unset, paddle.vision's MNIST cache if present.
    """
    if not data_path:
        if not osp.isdir(PADDLE_MNIST_CACHE):
            raise UsageError(f"DATA.data_path is not set: {_MNIST_HELP}.")
        data_path = PADDLE_MNIST_CACHE
    data_path = osp.expanduser(str(data_path))
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
        raise UsageError(f"DATA.data_path={data_path} is not a readable mnist.pkl.gz ({e}); "
                         f"{_MNIST_HELP}.") from None
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
_CIFAR10_HELP = (f"set DATA.data_path to cifar-10-python.tar.gz (download {CIFAR10_URL}) or to "
                 "its extracted cifar-10-batches-py directory")


def _cifar_batch(raw: bytes, source: str):
    try:
        batch = NumpyOnlyUnpickler.load(io.BytesIO(raw), source)
        images = np.asarray(batch[b"data"] if b"data" in batch else batch["data"], np.uint8)
        labels = np.asarray(batch[b"labels"] if b"labels" in batch else batch["labels"], np.int64)
    except (pickle.UnpicklingError, KeyError, TypeError, ValueError, EOFError) as e:
        raise UsageError(f"{source} is not a CIFAR-10 batch ({e}); {_CIFAR10_HELP}.") from None
    if images.ndim != 2 or images.shape[1] != 3072 or len(images) != len(labels) \
            or labels.min() < 0 or labels.max() > 9:
        raise UsageError(f"{source} does not hold CIFAR-10 images (data {images.shape}); "
                         f"{_CIFAR10_HELP}.")
    return images.reshape(-1, 3, 32, 32), labels


def load_cifar10(data_path: Optional[str], md5: Optional[str]) -> Dict[str, tuple]:
    """{"train": (images, labels), "test": (images, labels)}, uint8 [N, 3, 32, 32].

    data_path: the official cifar-10-python.tar.gz (its MD5 checked against `md5`, the
    config's DATA.md5, unless that is empty), or its extracted cifar-10-batches-py
    directory; unset, paddle.vision's cached tarball if present. Every data_batch_* is used.
    """
    if not data_path:
        if not osp.isfile(PADDLE_CIFAR10_CACHE):
            raise UsageError(f"DATA.data_path is not set: {_CIFAR10_HELP}.")
        data_path = PADDLE_CIFAR10_CACHE
    data_path = osp.expanduser(str(data_path))
    if osp.isdir(data_path):
        names = sorted(n for n in os.listdir(data_path) if n.startswith(("data_batch", "test_batch")))
        members = {n: osp.join(data_path, n) for n in names}
        read = lambda n: open(members[n], "rb").read()  # noqa: E731
    elif osp.isfile(data_path):
        actual = file_digest(data_path, "md5") if md5 else None
        if actual and actual != md5:
            size = osp.getsize(data_path)
            what = f"a partial download ({size} of {CIFAR10_SIZE} bytes)" \
                if size < CIFAR10_SIZE else "a different or damaged file"
            raise UsageError(f"DATA.data_path={data_path} has MD5 {actual}, not "
                             f"{md5}: {what}; download {CIFAR10_URL} again (or set "
                             "DATA.md5=null to skip the check for your own copy).")
        try:
            archive = tarfile.open(data_path, "r:gz")
            members = {osp.basename(m.name): m for m in archive.getmembers() if m.isfile()
                       and osp.basename(m.name).startswith(("data_batch", "test_batch"))}
            read = lambda n: archive.extractfile(members[n]).read()  # noqa: E731
        except (tarfile.TarError, OSError, EOFError) as e:
            raise UsageError(f"DATA.data_path={data_path} is not a readable "
                             f"cifar-10-python.tar.gz ({e}); {_CIFAR10_HELP}.") from None
    else:
        raise UsageError(f"DATA.data_path={data_path}: no such file or directory; {_CIFAR10_HELP}.")
    train = sorted(n for n in members if n.startswith("data_batch"))
    if not train or "test_batch" not in members:
        raise UsageError(f"DATA.data_path={data_path} has no data_batch_* / test_batch files; "
                         f"{_CIFAR10_HELP}.")
    parts = [_cifar_batch(read(n), f"{data_path}:{n}") for n in train]
    return {
        "train": (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])),
        "test": _cifar_batch(read("test_batch"), f"{data_path}:test_batch"),
    }


def cifar_real(images: paddle.Tensor) -> paddle.Tensor:
    """uint8 images -> 2 (x / 256 - 0.5) + U(0, 1/128) dequantisation noise, as the paper's
    code feeds real images to its critic; the noise is drawn for the global batch."""
    x = images.astype("float32") * (2 / 256) - 1
    shape = [x.shape[0] * dist.get_world_size()] + list(x.shape[1:])
    return x + local_rows(paddle.uniform(shape, min=0.0, max=1 / 128))


def to_uint8(images) -> np.ndarray:
    """Generator output in [-1, 1], NCHW -> uint8 NHWC images, truncated as the paper's
    Inception Score code does: int((x + 1) * 255.99 / 2)."""
    images = images.numpy() if isinstance(images, paddle.Tensor) else np.asarray(images)
    pixels = ((images + 1) * np.float32(255.99 / 2)).astype(np.int32)
    return np.clip(pixels, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


# ---------------------------------------------------------------------------
# Losses (ppsci.loss.FunctionalLoss functions), generic over key names and lambda
# ---------------------------------------------------------------------------
def gradient_norms(critic, real, fake, alpha=None, create_graph: bool = True):
    """||grad D(x_hat)||_2 of each sample at x_hat = alpha*real + (1-alpha)*fake.

    alpha ~ U(0, 1), one per sample. The per-sample gradient of sum(D(x_hat)) is valid
    because the critic has no batch statistics; create_graph keeps it differentiable.
    """
    if alpha is None:  # drawn for the global batch, like the data (local_rows)
        shape = [real.shape[0] * dist.get_world_size()] + [1] * (real.ndim - 1)
        alpha = local_rows(paddle.rand(shape, dtype=real.dtype))
    x_hat = alpha * real + (1 - alpha) * fake
    x_hat.stop_gradient = False
    (grad,) = paddle.grad(critic(x_hat).sum(), x_hat, create_graph=create_graph)
    # reshape, not flatten: Paddle 3.3 has no double backward for flatten
    return grad.reshape([grad.shape[0], -1]).norm(p=2, axis=1)


def gradient_penalty(critic, real, fake, alpha=None):
    """E[(||grad D(x_hat)||_2 - 1)^2] at the interpolates (paper, Algorithm 1)."""
    return ((gradient_norms(critic, real, fake, alpha) - 1) ** 2).mean()


def clip_weights(layer, clip: Optional[float]) -> None:
    """WGAN's weight clipping: every parameter of `layer` into [-clip, clip] (None: none)."""
    if clip is None:
        return
    with paddle.no_grad():
        for p in layer.parameters():
            p.set_value(paddle.clip(p, -clip, clip))


class TermMeter:
    """Running means of loss terms, kept on the device and read once per epoch."""

    def __init__(self):
        self.sums, self.count = {}, 0

    def add(self, **terms):
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0) + v.detach()
        self.count += 1

    def means(self) -> Dict[str, float]:
        return {k: float(v) / self.count for k, v in self.sums.items()}

    def pop_means(self) -> Dict[str, float]:
        means = self.means()
        self.sums, self.count = {}, 0
        return means


class CriticLoss:
    """Critic loss E[D(fake)] - E[D(real)] + lambda * gradient penalty
    [+ acgan_scale * cross-entropy of the critic's class head on real images (AC-GAN)];
    lambda_gp None: no penalty (WGAN, whose weight clipping bounds the critic instead).

    Reads output_dict[real_key], [fake_key] (and [label_key] for AC-GAN); real and fake
    are constants here, so the critic step never backpropagates into the generator. The
    meter keeps the Wasserstein estimate, the penalty and the gradient norms' mean and
    spread at the interpolates (how closely the penalty holds them at 1) and, AC-GAN, the
    class head's accuracy on real and on generated images.
    """

    def __init__(self, critic, lambda_gp: Optional[float], real_key: str = "real",
                 fake_key: str = "fake", acgan_scale: float = 0.0, label_key: str = "labels"):
        self.critic, self.lambda_gp = critic, lambda_gp
        self.real_key, self.fake_key = real_key, fake_key
        self.acgan_scale, self.label_key = acgan_scale, label_key
        self.create_graph = True  # False: a penalty to measure, not to train with
        self.meter = TermMeter()

    def __call__(self, output_dict, label_dict=None, weight_dict=None):
        real = output_dict[self.real_key].detach()
        fake = output_dict[self.fake_key].detach()
        # separate forwards: Paddle's double backward fails on slices of one output
        if self.acgan_scale:
            (score_real, logits), (score_fake, logits_fake) = (
                self.critic.forward_with_logits(x) for x in (real, fake))
        else:
            score_real, score_fake = self.critic(real), self.critic(fake)
        wasserstein = score_real.mean() - score_fake.mean()
        terms = {"critic_wasserstein": -wasserstein}
        measured = {"wasserstein": wasserstein}
        if self.lambda_gp is not None:
            norms = gradient_norms(self.critic, real, fake, create_graph=self.create_graph)
            penalty = ((norms - 1) ** 2).mean()
            terms["critic_penalty"] = self.lambda_gp * penalty
            measured.update(gradient_penalty=penalty, grad_norm_mean=norms.mean(),
                            grad_norm_std=norms.std())
        if self.acgan_scale:
            labels = output_dict[self.label_key]
            acgan = paddle.nn.functional.cross_entropy(logits, labels.reshape([-1, 1]))
            terms["critic_acgan"] = self.acgan_scale * acgan
            measured["acgan_accuracy_real"] = (logits.argmax(1) == labels).astype("float32").mean()
            measured["acgan_accuracy_fake"] = \
                (logits_fake.argmax(1) == labels).astype("float32").mean()
        self.meter.add(**measured)
        return terms


class GeneratorLoss:
    """Generator loss -E[D(G(z))] [+ acgan_scale * cross-entropy of the critic's class head
    on the generated images and the labels they were drawn for (AC-GAN)]."""

    def __init__(self, critic, fake_key: str = "fake", acgan_scale: float = 0.0,
                 label_key: str = "labels"):
        self.critic, self.fake_key = critic, fake_key
        self.acgan_scale, self.label_key = acgan_scale, label_key

    def __call__(self, output_dict, label_dict=None, weight_dict=None):
        fake = output_dict[self.fake_key]
        if not self.acgan_scale:
            return {"generator": -self.critic(fake).mean()}
        score, logits = self.critic.forward_with_logits(fake)
        labels = output_dict[self.label_key].reshape([-1, 1])
        acgan = paddle.nn.functional.cross_entropy(logits, labels)
        return {"generator": -score.mean(), "generator_acgan": self.acgan_scale * acgan}


def _bce(logits, target: float):
    """Sigmoid cross-entropy of logits against a constant target (TF's
    sigmoid_cross_entropy_with_logits, as gan_mnist.py uses it)."""
    return paddle.nn.functional.binary_cross_entropy_with_logits(
        logits, paddle.full_like(logits, target))


class DCGANCriticLoss:
    """The standard GAN's discriminator loss, gan_mnist.py's MODE='dcgan':
    (CE(D(fake), 0) + CE(D(real), 1)) / 2 with the sigmoid cross-entropy of the logit D(x).
    The meter keeps the mean probabilities D gives real and generated samples."""

    def __init__(self, critic, real_key: str = "real", fake_key: str = "fake"):
        self.critic, self.real_key, self.fake_key = critic, real_key, fake_key
        self.meter = TermMeter()

    def __call__(self, output_dict, label_dict=None, weight_dict=None):
        real = output_dict[self.real_key].detach()
        fake = output_dict[self.fake_key].detach()
        logit_real, logit_fake = self.critic(real), self.critic(fake)
        self.meter.add(real_probability=paddle.nn.functional.sigmoid(logit_real).mean(),
                       fake_probability=paddle.nn.functional.sigmoid(logit_fake).mean())
        return {"discriminator": (_bce(logit_fake, 0.0) + _bce(logit_real, 1.0)) / 2}


class DCGANGeneratorLoss:
    """The non-saturating generator loss CE(D(G(z)), 1) of gan_mnist.py's MODE='dcgan'."""

    def __init__(self, critic, fake_key: str = "fake"):
        self.critic, self.fake_key = critic, fake_key

    def __call__(self, output_dict, label_dict=None, weight_dict=None):
        return {"generator": _bce(self.critic(output_dict[self.fake_key]), 1.0)}


def losses(loss_cfg, critic, acgan_scale: float = 0.0, acgan_scale_g: float = 0.0):
    """(critic loss, generator loss) of LOSS.kind: "wgan-gp" (the penalty), "wgan" (the
    Wasserstein losses without it; the script clips the weights) or "dcgan" (the standard
    GAN), as ppsci.loss.FunctionalLosses."""
    kind = loss_cfg.get("kind", "wgan-gp")
    if kind == "dcgan":
        pair = DCGANCriticLoss(critic), DCGANGeneratorLoss(critic)
    else:
        penalty = loss_cfg.lambda_gp if kind == "wgan-gp" else None
        pair = (CriticLoss(critic, penalty, acgan_scale=acgan_scale),
                GeneratorLoss(critic, acgan_scale=acgan_scale_g))
    return tuple(ppsci.loss.FunctionalLoss(loss) for loss in pair)


class HeldOutCriticCost:
    """The critic's loss on held-out real data against generated samples, the paper's
    dev_cost (its gap to the training loss is the sign of an overfitting critic), as a
    FunctionalMetric: `critic_loss` (a CriticLoss or DCGANCriticLoss of its own, so that the
    training's running means stay apart) in full batches of `batch_size` of the validator's
    label "real" (through `prepare`, as the critic's step feeds them) and output "fake" (and
    "labels"), averaged over the batches as the paper does, and the Wasserstein estimate
    on them. Batch norms in the critic use each batch's statistics, as in training."""

    def __init__(self, critic_loss, batch_size: int, prepare=None):
        self.loss, self.batch_size = critic_loss, batch_size
        if hasattr(critic_loss, "create_graph"):  # the penalty is measured, not trained on
            critic_loss.create_graph = False
        self.prepare = prepare or (lambda real: real)
        self.results = None

    def __call__(self, output_dict, label_dict):
        real = label_dict["real"]
        real = paddle.to_tensor(real) if isinstance(real, np.ndarray) else real
        n, size = len(real), self.batch_size
        costs = []
        with models.batch_statistics(self.loss.critic):
            for i in range(0, max(n - n % size, 1), size):
                batch = {k: v[i:i + size] for k, v in output_dict.items()}
                terms = self.loss({**batch, "real": self.prepare(real[i:i + size])})
                costs.append(float(sum(terms.values())))
        measured = self.loss.meter.pop_means()
        self.results = {"critic_loss": float(np.mean(costs)),
                        **{k: measured[k] for k in ("wasserstein",) if k in measured}}
        return self.results


def no_loss(output_dict, label_dict=None, weight_dict=None):
    """The validators' loss: none (evaluation scores the samples with metrics)."""
    return {}


# ---------------------------------------------------------------------------
# Sampling and metrics
# ---------------------------------------------------------------------------
@paddle.no_grad()
def generate(generator, inputs: Dict[str, np.ndarray], batch_size: int,
             norm: str = "running") -> np.ndarray:
    """Run the generator on numpy `inputs` ({"noise": ...}, maybe "labels") in batches;
    norm="batch": batch norms use each batch's own statistics (models.batch_statistics)."""
    generator.eval()
    n, out = len(inputs["noise"]), []
    with models.sampling(generator, norm):
        for i in range(0, n, batch_size):
            batch = {k: paddle.to_tensor(v[i:i + batch_size]) for k, v in inputs.items()}
            out.append(generator(batch)["fake"].numpy())
    generator.train()
    return np.concatenate(out)


@paddle.no_grad()
def critic_scores(critic, real, fake, batch_size: int, real_labels=None, fake_labels=None) -> dict:
    """The critic's mean score of real and generated samples (arrays or tensors) and their
    difference, its estimate of the Wasserstein distance; with labels (AC-GAN), its class
    head's accuracy."""
    def run(x, labels):
        scores, hits = [], []
        for i in range(0, len(x), batch_size):
            batch = paddle.to_tensor(x[i:i + batch_size])
            if labels is None:
                scores.append(critic(batch).numpy())
                continue
            score, logits = critic.forward_with_logits(batch)
            scores.append(score.numpy())
            hits.append(logits.numpy().argmax(1) == np.asarray(labels[i:i + batch_size]))
        return float(np.concatenate(scores).mean()), \
            (float(np.concatenate(hits).mean()) if hits else None)

    critic.eval()
    real_score, real_accuracy = run(real, real_labels)
    fake_score, fake_accuracy = run(fake, fake_labels)
    scores = {"mean_score_real": real_score, "mean_score_generated": fake_score,
              "wasserstein_estimate": real_score - fake_score}
    if real_labels is not None:
        scores.update(acgan_accuracy_real=real_accuracy, acgan_accuracy_generated=fake_accuracy)
    return scores


def wasserstein1(a: np.ndarray, b: np.ndarray) -> float:
    """Exact W1 between two equal-size point sets (optimal assignment)."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    cost = cdist(a, b)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def toy_metrics(samples: np.ndarray, toy: ToyDistribution,
                rng: Optional[np.random.Generator] = None) -> dict:
    """Mode coverage, high-quality fraction and exact W1 of N toy samples.

    A sample is high quality within 3 sigma of a mode centre (of the roll's spine for the
    swiss roll); a mode is covered when at least 10 % of its fair share N/K of the
    samples land there. W1 (with `rng`) is measured against N fresh real samples;
    `w1_real_floor`, W1 between two real draws of size N, is what a perfect generator
    would score.
    """
    from scipy.spatial import cKDTree

    n = len(samples)
    anchors = toy.centers if toy.centers is not None else toy.curve()
    distance, nearest = cKDTree(anchors).query(samples)
    good = distance <= 3 * toy.sigma
    metrics = {"num_samples": n, "high_quality_fraction": float(good.mean())}
    if toy.centers is not None:
        counts = np.bincount(nearest[good], minlength=len(anchors))
        metrics["modes_covered"] = int((counts >= 0.1 * n / len(anchors)).sum())
        metrics["modes_total"] = len(anchors)
        metrics["mode_counts"] = counts.tolist()
    if rng is None:
        return metrics
    real, reference = toy.sample(n, rng), toy.sample(n, rng)
    metrics["w1"] = wasserstein1(samples, real)
    metrics["w1_real_floor"] = wasserstein1(reference, real)
    return metrics


def inception_score(probs: np.ndarray, splits: int = 10):
    """exp(E_x KL(p(y|x) || p(y))) per split of the class probabilities, as (mean, std).

    The protocol of Salimans et al. (2016): p(y) is the mean over each of `splits`
    consecutive parts of the N samples.
    """
    from scipy.special import xlogy

    n = len(probs)
    scores = []
    for i in range(splits):
        part = probs[i * n // splits:(i + 1) * n // splits].astype("float64")
        marginal = part.mean(0, keepdims=True)
        kl = (xlogy(part, part) - xlogy(part, marginal)).sum(1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def feature_statistics(features: np.ndarray):
    """Mean and covariance of feature rows, for the Frechet distance."""
    features = features.astype("float64")
    return features.mean(0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians (FID's form)."""
    from scipy import linalg

    with warnings.catch_warnings():  # singular products (e.g. one class only) are handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():  # near-singular product: regularise, as is usual
        offset = np.eye(len(sigma1)) * 1e-6
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _cubic_kernel(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """k(p_i, q_j) = (p_i.q_j / d + 1)^3 for every pair (in place: it is the time KID takes)."""
    k = p @ q.T
    k /= p.shape[1]
    k += 1
    return k * k * k


def _kernel_sums(p: np.ndarray, q: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """For each subset s: the sum of k(p_i, q_j) over i in rows[s], j in cols[s] (index
    arrays [S, m]). Where it costs less (the per-epoch check's 1 000 samples: up to 25x),
    the whole kernel matrix is computed once, in row blocks, and each subset's sum read
    from it through 0/1 selection matrices (2 S operations an entry besides the kernel's
    2 d); else each subset's block is computed (S m^2 entries of 2 d operations)."""
    subsets, m = rows.shape
    if len(p) * len(q) * (p.shape[1] + subsets) > subsets * m * m * p.shape[1]:
        return np.array([_cubic_kernel(p[r], q[c]).sum() for r, c in zip(rows, cols)])
    pick_rows, pick_cols = (np.zeros((subsets, n)) for n in (len(p), len(q)))
    np.put_along_axis(pick_rows, rows, 1.0, axis=1)
    np.put_along_axis(pick_cols, cols, 1.0, axis=1)
    sums, step = np.zeros(subsets), max(1, 2 ** 22 // len(q))  # 32 MiB blocks
    for start in range(0, len(p), step):
        block = _cubic_kernel(p[start:start + step], q)
        sums += ((pick_rows[:, start:start + step] @ block) * pick_cols).sum(1)
    return sums


# the reference set's within-subset sums, which every per-epoch check would otherwise
# recompute for the same reference and subsets: {digest of (features, subsets): sums}
_REFERENCE_SUMS: Dict[str, np.ndarray] = {}


def _within_sums(features: np.ndarray, indices: np.ndarray, remember: bool = False):
    """For each subset of `indices` [S, m]: the sum of k(f_i, f_j) over its pairs i != j;
    with `remember`, kept for the next call with the same features and subsets."""
    if remember:
        key = hashlib.sha1(features.tobytes() + indices.tobytes()
                           + repr((features.shape, indices.shape)).encode()).hexdigest()
        if key not in _REFERENCE_SUMS:
            if len(_REFERENCE_SUMS) >= 4:  # a run scores against two references
                _REFERENCE_SUMS.clear()
            _REFERENCE_SUMS[key] = _within_sums(features, indices)
        return _REFERENCE_SUMS[key]
    diagonal = (np.einsum("ij,ij->i", features, features) / features.shape[1] + 1) ** 3
    return _kernel_sums(features, features, indices, indices) - diagonal[indices].sum(1)


def kernel_inception_distance(features_a: np.ndarray, features_b: np.ndarray,
                              subsets: int = 100, subset_size: int = 1000, seed: int = 0):
    """KID (Binkowski et al. 2018): the unbiased estimate of the squared MMD between two
    feature sets with the kernel k(x, y) = (x.y / d + 1)^3, averaged over `subsets` random
    subsets of min(subset_size, both sizes) rows of each (drawn without replacement);
    returns (mean, standard deviation over the subsets). Unbiased: about 0 for two samples
    of one distribution, whatever their size, where FID is biased upwards at small sizes."""
    a, b = features_a.astype("float64"), features_b.astype("float64")
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples in each set, not {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    drawn = [(rng.choice(len(a), m, replace=False), rng.choice(len(b), m, replace=False))
             for _ in range(subsets)]
    x, y = (np.stack(indices) for indices in zip(*drawn))

    estimates = (_within_sums(a, x) + _within_sums(b, y, remember=True)) / (m * (m - 1)) \
        - 2 * _kernel_sums(a, b, x, y) / m ** 2
    return float(np.mean(estimates)), float(np.std(estimates))


@paddle.no_grad()
def classify(classifier, images: np.ndarray, batch_size: int = 500):
    """(penultimate features, class probabilities) of images [N, 1, 28, 28] in [0, 1]."""
    classifier.eval()
    features, probs = [], []
    for i in range(0, len(images), batch_size):
        f, logits = classifier(paddle.to_tensor(images[i:i + batch_size]))
        features.append(f.numpy())
        probs.append(paddle.nn.functional.softmax(logits).numpy())
    return np.concatenate(features), np.concatenate(probs)


def train_digit_classifier(data: Dict[str, tuple], epochs: int, seed: int):
    """Train models.MnistClassifier on the training split; returns (net, test accuracy)."""
    paddle.seed(seed)
    net = models.MnistClassifier()
    optimizer = paddle.optimizer.Adam(1e-3, parameters=net.parameters())
    images, labels = data["train"]
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        order = rng.permutation(len(images))
        for i in range(0, len(order) - 127, 128):
            index = np.sort(order[i:i + 128])
            _, logits = net(paddle.to_tensor(images[index][:, None]))
            loss = paddle.nn.functional.cross_entropy(logits, paddle.to_tensor(labels[index]))
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
        logger.info(f"Metric classifier: epoch {epoch + 1}/{epochs} done")
    return net, digit_accuracy(net, data["test"])


def mnist_classifier(cfg, data: Dict[str, tuple]):
    """(classifier, test accuracy) of the metric: EVAL.classifier_path if set, else the one
    cached in this run directory or beside the evaluated generator's weights, else trained
    (EVAL.classifier_epochs, with EVAL.classifier_seed) and cached in the run directory."""
    from gankit.files import load_weights, save_weights
    from gankit.parallel import is_main_process

    path = cfg.EVAL.classifier_path
    if not path:
        here = osp.join(cfg.output_dir, "mnist_classifier.pdparams")
        weights = str(cfg.EVAL.pretrained_gen_model_path or "")
        beside = osp.join(osp.dirname(weights), "mnist_classifier.pdparams")
        path = here if osp.isfile(here) or not osp.isfile(beside) else beside
    if osp.isfile(path) or cfg.EVAL.classifier_path:
        classifier = models.MnistClassifier()
        load_weights(classifier, path, "EVAL.classifier_path")
    else:
        logger.info(f"Training the metric's MNIST classifier ({cfg.EVAL.classifier_epochs} "
                    f"epochs on {len(data['train'][0])} digits; cached as {path}) ...")
        classifier, _ = train_digit_classifier(data, cfg.EVAL.classifier_epochs,
                                               cfg.EVAL.classifier_seed)
        if is_main_process():
            save_weights(classifier, path)
    accuracy = digit_accuracy(classifier, data["test"])
    logger.info(f"Metric classifier {path}: test accuracy {accuracy:.4f}")
    return classifier, accuracy


def digit_reference(classifier, images: np.ndarray, which: str = "training"):
    """(mean, covariance, features) of the classifier's features of real digits [N, 28, 28]:
    the Frechet distance's and KID's reference."""
    features, _ = classify(classifier, images[:, None])
    logger.info(f"Metric reference: classifier features of {len(images)} {which} digits")
    return (*feature_statistics(features), features)


def digit_references(classifier, data: dict, count: int) -> dict:
    """The distances' references: `count` held-out digits (the test split), which no
    network trained on, so a generator that memorises the training digits gains nothing;
    and as many training digits, for the distance to training and the real floor."""
    return {which: digit_reference(classifier, data[split][0][:count], which)
            for which, split in (("held-out", "test"), ("training", "train"))}


def digit_accuracy(net, split: tuple) -> float:
    images, labels = split
    _, probs = classify(net, images[:, None])
    return float((probs.argmax(1) == labels).mean())


def digit_metrics(classifier, images: np.ndarray, reference_stats, to_training=None) -> dict:
    """Classifier-based Inception Score (at most 10), class histogram, and Frechet distance
    of the classifier's penultimate features to `reference_stats` (mean, covariance[,
    features]); with the reference's features, KID too (kernel_inception_distance). With
    `to_training` (the training digits' reference), the same distances to it, named so."""
    features, probs = classify(classifier, images)
    score, score_std = inception_score(probs, splits=10)
    histogram = np.bincount(probs.argmax(1), minlength=10)
    metrics = {
        "inception_score": score,
        "inception_score_std": score_std,
        "classes_covered": int((histogram >= 0.1 * len(images) / 10).sum()),
        "class_histogram": histogram.tolist(),
    }
    for suffix, reference in (("", reference_stats), ("_to_training", to_training)):
        if reference is None:
            continue
        mu, sigma, *reference_features = reference
        metrics[f"frechet_distance{suffix}"] = frechet_distance(*feature_statistics(features),
                                                                mu, sigma)
        if reference_features:
            metrics[f"kid{suffix}"], metrics[f"kid{suffix}_std"] = kernel_inception_distance(
                features, reference_features[0])
    return metrics


# ---------------------------------------------------------------------------
# The validators' metrics (ppsci.metric.FunctionalMetric functions). ppsci's evaluation
# gathers every batch's output and calls each metric once with the whole set; each keeps
# the samples and its full results (lists, names) for the run's files and returns its
# numbers to ppsci's log.
# ---------------------------------------------------------------------------
def as_numpy(x) -> np.ndarray:
    return x.numpy() if isinstance(x, paddle.Tensor) else np.asarray(x)


def numbers(results: dict) -> dict:
    """The plain numbers of a results dict (what ppsci logs)."""
    return {k: v for k, v in results.items()
            if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)}


class ToyMetrics:
    """toy_metrics of the generated points; W1 too with `rng` (slow: an assignment problem)."""

    def __init__(self, toy: ToyDistribution, rng: Optional[np.random.Generator] = None):
        self.toy, self.rng = toy, rng
        self.samples = self.results = None

    def __call__(self, output_dict, label_dict=None):
        self.samples = as_numpy(output_dict["fake"])
        self.results = toy_metrics(self.samples, self.toy, self.rng)
        return numbers(self.results)


class DigitMetrics:
    """The MNIST classifier's metrics of generated digits (digit_metrics), their distances
    to the held-out digits of `references` (digit_references) and, labelled, to the
    training digits; with `real_digits`, also of as many real digits: held-out ones
    ("real_test_digits", the Inception Score's ceiling) and training ones against the
    held-out ("real_training_digits", the distances' real floor)."""

    def __init__(self, classifier, references: dict, real_digits: Optional[dict] = None):
        self.classifier, self.references, self.real_digits = classifier, references, real_digits
        self.samples = self.results = None

    def __call__(self, output_dict, label_dict=None):
        self.samples = as_numpy(output_dict["fake"])
        held_out, training = self.references["held-out"], self.references["training"]
        generated = digit_metrics(self.classifier, self.samples, held_out, training)
        self.results = {"generated": generated}
        if self.real_digits is not None:
            count = len(self.samples)
            test = digit_metrics(self.classifier, self.real_digits["test"][:count], None)
            self.results["real_test_digits"] = test
            self.results["real_training_digits"] = digit_metrics(
                self.classifier, self.real_digits["train"][:count], held_out)
        return numbers(generated)


class CriticScores:
    """critic_scores of the generated samples against the real ones the validator carries
    as its label "real" (CIFAR-10: uint8, preprocessed as in training); with `labels`
    (AC-GAN), also the class head's accuracy on the labels of both."""

    def __init__(self, critic, batch_size: int, acgan: bool = False):
        self.critic, self.batch_size, self.acgan = critic, batch_size, acgan
        self.results = None

    def __call__(self, output_dict, label_dict):
        real, fake = (paddle.to_tensor(x) if isinstance(x, np.ndarray) else x
                      for x in (label_dict["real"], output_dict["fake"]))
        if real.dtype == paddle.uint8:
            real = cifar_real(real)
        labels = (as_numpy(label_dict["real_labels"]), as_numpy(output_dict["labels"])) \
            if self.acgan else ()
        self.results = critic_scores(self.critic, real, fake, self.batch_size, *labels)
        return numbers(self.results)


class ImageMetrics:
    """Inception Score (10 splits) and FID against CIFAR-10's training images, with the
    EVAL.inception network; with `paddlescience`, also the Inception Score as PaddleScience
    computed its published 5.2 (paddle.vision's Inception, published.weights), not comparable
    with papers' scores. The samples are kept as uint8 images (to_uint8).

    The networks are loaded first: when none can be (offline, no weights), `available` is
    False and `unavailable()` says why; no samples need to be generated then.
    """

    def __init__(self, cfg, paddlescience: bool = False):
        from gankit.inception import weights as inception_weights

        self.cfg, self.paddlescience = cfg, paddlescience and cfg.EVAL.paddlescience_score
        self.net, self.why_not = self._load(
            lambda: inception_weights.load_inception(cfg.EVAL.inception,
                                                     cfg.EVAL.inception_weights),
            f"EVAL.inception={cfg.EVAL.inception}, "
            f"EVAL.inception_weights={cfg.EVAL.inception_weights}", "Inception Score and FID")
        self.paddle_net = self.paddle_why_not = None
        if self.paddlescience:
            self.paddle_net, self.paddle_why_not = self._load(
                lambda: inception_weights.load_paddle_inception(
                    cfg.EVAL.paddle_inception_weights).net,
                f"EVAL.paddle_inception_weights={cfg.EVAL.paddle_inception_weights}",
                "PaddleScience's Inception Score")
        self.samples = self.results = None

    @staticmethod
    def _load(load, settings: str, what: str):
        try:
            return load(), None
        except ValueError as e:
            logger.warning(f"{what} not computed: {settings}: {e}")
            return None, f"{settings}: {e}"

    @property
    def available(self) -> bool:
        return self.net is not None or self.paddle_net is not None

    def __call__(self, output_dict, label_dict=None):
        self.samples = to_uint8(output_dict["fake"])
        self.results = self.scores(self.samples)
        return numbers(self.results)

    def unavailable(self) -> dict:
        """The results when no network could be loaded."""
        return self.scores(None)

    def scores(self, images: Optional[np.ndarray]) -> dict:
        from gankit.inception import networks
        from gankit.published.weights import paddlescience_inception_score

        if self.net is None:
            metrics = {"inception_score": None, "fid": None, "not_computed_because": self.why_not}
        else:
            features, probs = networks.features_and_probs(self.net, images,
                                                          self.cfg.EVAL.batch_size)
            score, score_std = inception_score(probs, splits=10)
            mu, sigma, kid_features = cifar10_train_statistics(self.cfg, self.net)
            fid = frechet_distance(*feature_statistics(features), mu, sigma)
            metrics = {"inception_score": score, "inception_score_std": score_std, "fid": fid}
            if kid_features is None:
                source = (f"EVAL.fid_stats_path={self.cfg.EVAL.fid_stats_path}"
                          if self.cfg.EVAL.fid_stats_path else "the cached statistics file "
                          "(~/.cache/wgangp, of an earlier version; delete it to recompute)")
                metrics.update(kid=None, kid_not_computed_because=(
                    f"{source} holds FID's statistics only, not the training features KID needs"))
            else:
                metrics["kid"], metrics["kid_std"] = kernel_inception_distance(features,
                                                                               kid_features)
            metrics.update(inception=self.cfg.EVAL.inception,
                           inception_weights=self.cfg.EVAL.inception_weights)
        if self.paddlescience and self.paddle_net is None:
            metrics["paddlescience_inception_score"] = None
            metrics["paddlescience_not_computed_because"] = self.paddle_why_not
        elif self.paddlescience:
            score, score_std = paddlescience_inception_score(self.paddle_net, images)
            metrics["paddlescience_inception_score"] = score
            metrics["paddlescience_inception_score_std"] = score_std
        return metrics


KID_REFERENCE_ROWS = 10_000  # training images whose features KID compares with


def cifar10_train_statistics(cfg, net):
    """Inception feature mean and covariance of the training images, and the features of
    KID_REFERENCE_ROWS of them drawn at random (None when the file has none: FID
    statistics from elsewhere), computed once and cached (EVAL.fid_stats_path)."""
    from gankit.inception import networks

    path = cfg.EVAL.fid_stats_path or osp.expanduser(
        f"~/.cache/wgangp/cifar10_train_{getattr(net, 'protocol', cfg.EVAL.inception)}.npz")
    if osp.isfile(path):
        stats = np.load(path)
        return stats["mu"], stats["sigma"], stats["kid_features"] if "kid_features" in stats \
            else None
    logger.info(f"Computing CIFAR-10 training-set Inception statistics for FID and KID "
                f"(cached in {path})")
    images = load_cifar10(cfg.DATA.data_path, cfg.DATA.md5)["train"][0]
    features, _ = networks.features_and_probs(net, images.transpose(0, 2, 3, 1),
                                              cfg.EVAL.batch_size)
    mu, sigma = feature_statistics(features)
    rows = np.random.default_rng(0).choice(len(features), min(KID_REFERENCE_ROWS, len(features)),
                                           replace=False)
    kid_features = features[np.sort(rows)].astype("float32")
    os.makedirs(osp.dirname(path), exist_ok=True)
    np.savez(path, mu=mu, sigma=sigma, kid_features=kid_features)
    return mu, sigma, kid_features
