"""What the WGAN-GP examples share: CPU set-up, data, losses, training wiring,
weights loading, metrics and plots (Gulrajani et al. 2017, arXiv:1704.00028)."""

import os


def _use_fast_cpu_math():
    """Pick Paddle's fast CPU configuration, never overriding the user's own settings.

    Paddle's bundled MKL runs a slow generic code path on AMD processors unless
    MKL_DEBUG_CPU_TYPE names the instruction set (5: AVX2); this must be set before
    paddle is imported. Returns the number of threads to use once paddle
    is loaded (None: keep Paddle's default of 1).
    """
    if "MKL_DEBUG_CPU_TYPE" in os.environ:
        return None
    try:
        with open("/proc/cpuinfo") as f:
            cpuinfo = f.read()
    except OSError:
        return None
    if "AuthenticAMD" not in cpuinfo:
        return None
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    # 5 (AVX2) only: 6 (AVX-512) was no faster for training here, and Paddle's inference
    # engine died of SIGILL with it on an AVX-512 EPYC
    if not {"avx2", "fma"} <= flags:
        return None
    os.environ["MKL_DEBUG_CPU_TYPE"] = "5"
    if "OMP_NUM_THREADS" in os.environ:
        return None
    # With the fast path, 2 threads beat 1 on a 2-core EPYC (benchmarks/speed.py);
    # without it, more threads were 3x slower. Capped: the toy layers are small. The
    # cores are shared by the processes paddle.distributed.launch starts on this node.
    processes = int(os.environ.get("PADDLE_LOCAL_SIZE", 1))
    return max(1, min(len(os.sched_getaffinity(0)) // processes, 8))


_CPU_THREADS = _use_fast_cpu_math()

import contextlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402
from os import path as osp  # noqa: E402
from typing import Callable, Dict, Optional  # noqa: E402

import numpy as np  # noqa: E402
import paddle  # noqa: E402
import paddle.distributed as dist  # noqa: E402
import ppsci  # noqa: E402
from ppsci.utils import callbacks as ppsci_callbacks  # noqa: E402
from ppsci.utils import logger  # noqa: E402

if _CPU_THREADS:
    paddle.base.core.set_num_threads(_CPU_THREADS)

MODES = ("train", "eval", "export", "infer")


# ---------------------------------------------------------------------------
# Errors users can act on: one line, no traceback.
# ---------------------------------------------------------------------------
class UsageError(SystemExit):
    """A problem with a setting or a file, reported as one line (exit status 2 by default)."""

    def __init__(self, message: str, code: int = 2):
        print(f"ERROR: {message}", file=sys.stderr)
        super().__init__(code)


def check_config(cfg) -> None:
    """Check the settings every example shares, before anything runs."""
    if cfg.mode not in MODES:
        raise UsageError(f"mode={cfg.mode!r} is not a mode; use one of {', '.join(MODES)}.")
    positive = ["TRAIN.epochs", "TRAIN.iters_per_epoch", "TRAIN.n_critic",
                "TRAIN.batch_size", "TRAIN.generator_batch_size", "EVAL.num_samples",
                "EVAL.batch_size", "INFER.batch_size"]
    for key in positive:
        section, name = key.split(".")
        value = cfg.get(section, {}).get(name)
        if value is not None and (not isinstance(value, int) or value <= 0):
            raise UsageError(f"{key}={value!r} must be a positive integer.")
    processes = dist.get_world_size()
    for key in ("TRAIN.batch_size", "TRAIN.generator_batch_size"):
        value = cfg.get("TRAIN", {}).get(key.split(".")[1])
        if value is not None and value % processes:
            raise UsageError(f"{key}={value} is the global batch and must divide evenly over "
                             f"the {processes} processes; give a multiple of {processes}.")
    if cfg.get("device") == "gpu" and not paddle.is_compiled_with_cuda():
        raise UsageError(
            "device=gpu, but this PaddlePaddle build has no CUDA: install paddlepaddle-gpu "
            "(see README) or use device=cpu."
        )


_RUN_OUTPUTS = ("model_generator.pdparams", "model_discriminator.pdparams", "checkpoints",
                "metrics.json", "samples.npz", "losses.json")


def check_run_dir(run_dir: str) -> None:
    """The run directory must be writable and must not hold an earlier run's results."""
    try:
        os.makedirs(run_dir, exist_ok=True)
        probe = osp.join(run_dir, ".write_test")
        open(probe, "w").close()
        os.remove(probe)
    except OSError as e:
        raise UsageError(f"hydra.run.dir={run_dir} is not a writable directory ({e.strerror}); "
                         "give another with hydra.run.dir=...") from None
    earlier = [name for name in _RUN_OUTPUTS if osp.exists(osp.join(run_dir, name))]
    if earlier:
        raise UsageError(f"hydra.run.dir={run_dir} already holds an earlier run ({earlier[0]}); "
                         "give a new directory (a run resumes from TRAIN.checkpoint_path).")


class InitCallback(ppsci_callbacks.InitCallback):
    """ppsci's start-up (config schema, seed, logger, device) after our one-line checks."""

    def on_run_start(self, config, **kwargs) -> None:
        if dist.get_world_size() > 1:
            join_processes(config)
        if is_main_process():
            check_run_dir(str(config.hydra.run.dir))  # before Hydra creates and writes to it

    def on_job_start(self, config, **kwargs) -> None:
        check_config(config)
        super().on_job_start(config, **kwargs)
        if not is_main_process():
            log_to_own_file(config)


# ---------------------------------------------------------------------------
# Data parallelism (python -m paddle.distributed.launch ... script.py): every process
# draws the same global batch and computes its own rows; the gradients of both
# networks are averaged; rank 0 alone writes results.
# ---------------------------------------------------------------------------
def is_main_process() -> bool:
    """True in the process that writes results: rank 0, the only one without a launcher."""
    return dist.get_rank() == 0


def join_processes(config) -> None:
    """Start the process group and make every process use rank 0's run directory
    (each resolved its own ${now:...}, which can differ by a second)."""
    from omegaconf import open_dict, read_write

    if config.mode != "train":
        raise UsageError(f"mode={config.mode} runs in one process; start it without "
                         "paddle.distributed.launch.")
    dist.init_parallel_env()
    run_dir = [str(config.hydra.run.dir)]
    dist.broadcast_object_list(run_dir, src=0)
    with read_write(config.hydra), open_dict(config.hydra):
        config.hydra.run.dir = run_dir[0]
        if not is_main_process():
            config.hydra.output_subdir = None  # rank 0 saves the config


def log_to_own_file(config) -> None:
    """Ranks > 0: ppsci logs only their errors, to the console; log everything to
    <run dir>/<mode>.rank<N>.log instead."""
    log = logging.getLogger("ppsci")
    path = osp.join(config.output_dir, f"{config.mode}.rank{dist.get_rank()}.log")
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(name)s %(levelname)s: %(message)s",
                                           datefmt="%Y/%m/%d %H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def log_every_rank(message: str) -> None:
    """Log on every process (ppsci's logger.info logs on rank 0 only): rank 0 to its
    console and <mode>.log, the others to <mode>.rank<N>.log and their console."""
    logging.getLogger("ppsci").info(message)


def local_rows(batch):
    """This process's rows of a global batch (an array or tensor, or a dict of them).

    Every process draws the same global batch from identically seeded generators and
    keeps its own contiguous share, so N processes compute what one process computes on
    that batch, each on different data and noise, and all random states stay equal (a
    checkpoint holds them for every process).
    """
    if isinstance(batch, dict):
        return {key: local_rows(value) for key, value in batch.items()}
    processes = dist.get_world_size()
    if processes == 1:
        return batch
    rows = batch.shape[0] // processes  # check_config: batch sizes divide evenly
    return batch[dist.get_rank() * rows:(dist.get_rank() + 1) * rows]


def mean_over_processes(values: Dict[str, float]) -> Dict[str, float]:
    """Average the per-process values of a dict of numbers (identity on one process)."""
    processes = dist.get_world_size()
    if processes == 1:
        return values
    total = paddle.to_tensor(list(values.values()), dtype="float64")
    dist.all_reduce(total)
    return dict(zip(values, (total.numpy() / processes).tolist()))


def average_statistics(*layers: paddle.nn.Layer) -> None:
    """Average the state that is not learned by gradients (batch-norm running statistics,
    gathered on each process's rows) over processes, so all processes hold one model."""
    if dist.get_world_size() == 1:
        return
    with paddle.no_grad():
        for layer in layers:
            for tensor in layer.state_dict().values():
                if paddle.is_floating_point(tensor) and not getattr(tensor, "trainable", False):
                    dist.all_reduce(tensor)
                    tensor.scale_(1 / dist.get_world_size())


# ---------------------------------------------------------------------------
# Toy data (the paper's gan_toy.py recipes, scaled to about unit variance).
# ---------------------------------------------------------------------------
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

    def curve(self, n: int = 4000) -> np.ndarray:
        """Noiseless swiss-roll spine, in scaled units (for its quality metric)."""
        t = np.linspace(1.5 * np.pi, 4.5 * np.pi, n)
        return np.stack([t * np.cos(t), t * np.sin(t)], 1) / self.scale


class StreamConstraint(ppsci.constraint.SupervisedConstraint):
    """SupervisedConstraint fed by sample_fn(): a fresh batch every step (ppsci's
    ContinuousNamedArrayDataset), of which this process takes its rows (local_rows).

    ppsci builds no loader for a stream when several processes run, as it cannot shard
    one; this stream shards itself, so it is its own loader, as ppsci makes it on one
    process.
    """

    def __init__(self, sample_fn: Callable[[], Dict[str, np.ndarray]], loss,
                 output_expr: Optional[Dict[str, Callable]] = None, name: str = "Sup"):
        dataset = ppsci.data.dataset.ContinuousNamedArrayDataset(
            lambda: local_rows(sample_fn()), lambda _: {})
        self.input_keys, self.output_expr = dataset.input_keys, output_expr or {}
        self.output_keys = tuple(self.output_expr)
        self.data_loader, self.data_iter = dataset, iter(dataset)
        self.loss, self.name = loss, name


class ShuffledBatches:
    """Callable returning the next batch of a pass over `arrays`, reshuffled every pass.

    The last incomplete batch of a pass is dropped, so every batch has batch_size rows.
    Its position is part of training checkpoints (state_dict / set_state_dict).
    """

    def __init__(self, arrays: Dict[str, np.ndarray], batch_size: int, rng: np.random.Generator):
        self.arrays, self.batch_size, self.rng = arrays, batch_size, rng
        self.n = len(next(iter(arrays.values())))
        if batch_size > self.n:
            raise UsageError(f"TRAIN.batch_size={batch_size} is larger than the data set ({self.n}).")
        self.order, self.position = rng.permutation(self.n), 0

    def __call__(self) -> Dict[str, np.ndarray]:
        if self.position + self.batch_size > self.n:
            self.order, self.position = self.rng.permutation(self.n), 0
        index = np.sort(self.order[self.position:self.position + self.batch_size])  # faster gather
        self.position += self.batch_size
        return {key: value[index] for key, value in self.arrays.items()}

    def state_dict(self) -> dict:
        return {"order": self.order, "position": self.position}

    def set_state_dict(self, state: dict) -> None:
        self.order, self.position = np.asarray(state["order"]), int(state["position"])


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


class NumpyOnlyUnpickler:
    """Unpickles numpy arrays and plain containers; refuses every other global."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 pickles bytes
    }

    @classmethod
    def load(cls, file, source: str):
        import pickle

        allowed = cls.ALLOWED

        class Unpickler(pickle.Unpickler):
            def find_class(self, module, name):
                if (module, name) not in allowed:
                    raise pickle.UnpicklingError(f"{source} refers to {module}.{name}")
                import importlib

                if module.startswith("numpy.core") and np.lib.NumpyVersion(np.__version__) >= "2.0.0":
                    module = module.replace("numpy.core", "numpy._core", 1)  # moved in numpy 2
                return getattr(importlib.import_module(module), name)

        return Unpickler(file, encoding="latin1").load()


def _check_mnist(images: np.ndarray, labels: np.ndarray, source: str):
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise UsageError(f"{source} does not hold MNIST digits (images {images.shape}, "
                         f"{len(labels)} labels); {_MNIST_HELP}.")
    if labels.min() < 0 or labels.max() > 9:
        raise UsageError(f"{source} has labels outside 0-9: not MNIST; {_MNIST_HELP}.")
    return images, labels.astype("int64")


def _read_idx(path: str, magic: int) -> np.ndarray:
    import gzip

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
    """{"train": (images, labels), "test": (images, labels)}: float32 [N, 28, 28] in [0, 1].

    data_path: mnist.pkl.gz (its 50 000 training digits; "test" is its test split), or
    a directory with the official idx files; unset, paddle.vision's MNIST cache if present.
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
        return splits
    if not osp.isfile(data_path):
        raise UsageError(f"DATA.data_path={data_path}: no such file or directory; {_MNIST_HELP}.")
    import gzip
    import pickle
    import zlib

    try:
        with gzip.open(data_path, "rb") as f:
            train, _valid, test = NumpyOnlyUnpickler.load(f, data_path)
    except (OSError, EOFError, zlib.error, pickle.UnpicklingError, ValueError, TypeError) as e:
        raise UsageError(f"DATA.data_path={data_path} is not a readable mnist.pkl.gz ({e}); "
                         f"{_MNIST_HELP}.") from None
    return {
        split: _check_mnist(np.asarray(x, "float32").reshape(-1, 28, 28), np.asarray(y), data_path)
        for split, (x, y) in (("train", train), ("test", test))
    }


# ---------------------------------------------------------------------------
# CIFAR-10: the official python tarball, its extracted directory, or paddle's cache
# ---------------------------------------------------------------------------
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_SIZE = 170_498_071
PADDLE_CIFAR10_CACHE = osp.expanduser("~/.cache/paddle/dataset/cifar/cifar-10-python.tar.gz")
_CIFAR10_HELP = (f"set DATA.data_path to cifar-10-python.tar.gz (download {CIFAR10_URL}) or to "
                 "its extracted cifar-10-batches-py directory")


def file_digest(path: str, algorithm: str) -> str:
    """Hex digest ("md5", "sha256", ...) of a file, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cifar_batch(raw: bytes, source: str):
    import io
    import pickle

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


def load_cifar10(data_path: Optional[str], md5: Optional[str] = CIFAR10_MD5) -> Dict[str, tuple]:
    """{"train": (images, labels), "test": (images, labels)}, uint8 [N, 3, 32, 32].

    data_path: the official cifar-10-python.tar.gz (its MD5 checked against `md5`
    unless that is empty), or its extracted cifar-10-batches-py directory; unset,
    paddle.vision's cached tarball if present. Every data_batch_* is used.
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
                if md5 == CIFAR10_MD5 and size < CIFAR10_SIZE else "a different or damaged file"
            raise UsageError(f"DATA.data_path={data_path} has MD5 {actual}, not "
                             f"{md5}: {what}; download {CIFAR10_URL} again (or set "
                             "DATA.md5=null to skip the check for your own copy).")
        import tarfile

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


def cifar_preprocess(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 -> 2 (x / 256 - 0.5) + U(0, 1/128) dequantisation noise, as the paper's code."""
    x = images.astype("float32") * np.float32(2 / 256) - np.float32(1)
    return x + rng.uniform(0, 1 / 128, x.shape).astype("float32")


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Generator output in [-1, 1], NCHW -> uint8 NHWC images, as the paper's code saves them."""
    return np.clip(np.rint((images + 1) * 127.5), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


# ---------------------------------------------------------------------------
# Losses (ppsci.loss.FunctionalLoss functions), generic over key names and lambda.
# ---------------------------------------------------------------------------
def gradient_penalty(critic, real, fake, alpha=None):
    """E[(||grad D(x_hat)||_2 - 1)^2] at x_hat = alpha*real + (1-alpha)*fake (paper, Alg. 1).

    alpha ~ U(0, 1), one per sample. The per-sample gradient of sum(D(x_hat)) is valid
    because the critic has no batch statistics.
    """
    if alpha is None:  # drawn for the global batch, like the data (local_rows)
        shape = [real.shape[0] * dist.get_world_size()] + [1] * (real.ndim - 1)
        alpha = local_rows(paddle.rand(shape, dtype=real.dtype))
    x_hat = alpha * real + (1 - alpha) * fake
    x_hat.stop_gradient = False
    (grad,) = paddle.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    # reshape, not flatten: Paddle 3.3 has no double backward for flatten
    norm = grad.reshape([grad.shape[0], -1]).norm(p=2, axis=1)
    return ((norm - 1) ** 2).mean()


class TermMeter:
    """Running means of loss terms, kept on the device and read once per epoch."""

    def __init__(self):
        self.sums, self.count = {}, 0

    def add(self, **terms):
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0) + v.detach()
        self.count += 1

    def pop_means(self) -> Dict[str, float]:
        means = {k: float(v) / self.count for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        return means


class CriticLoss:
    """Critic loss E[D(fake)] - E[D(real)] + lambda * gradient penalty
    [+ acgan_scale * cross-entropy of the critic's class head on real images (AC-GAN)].

    Reads output_dict[real_key], [fake_key] (and [label_key] for AC-GAN); real and fake
    are constants here, so the critic step never backpropagates into the generator.
    """

    def __init__(self, critic, lambda_gp: float, real_key: str = "real", fake_key: str = "fake",
                 acgan_scale: float = 0.0, label_key: str = "labels"):
        self.critic, self.lambda_gp = critic, lambda_gp
        self.real_key, self.fake_key = real_key, fake_key
        self.acgan_scale, self.label_key = acgan_scale, label_key
        self.meter = TermMeter()

    def __call__(self, output_dict, label_dict=None, weight_dict=None):
        real = output_dict[self.real_key].detach()
        fake = output_dict[self.fake_key].detach()
        # separate forwards: Paddle's double backward fails on slices of one output
        if self.acgan_scale:
            score_real, logits = self.critic.forward_with_logits(real)
        else:
            score_real = self.critic(real)
        wasserstein = score_real.mean() - self.critic(fake).mean()
        penalty = gradient_penalty(self.critic, real, fake)
        terms = {"critic_wasserstein": -wasserstein, "critic_penalty": self.lambda_gp * penalty}
        measured = {"wasserstein": wasserstein, "gradient_penalty": penalty}
        if self.acgan_scale:
            labels = output_dict[self.label_key]
            acgan = paddle.nn.functional.cross_entropy(logits, labels.reshape([-1, 1]))
            terms["critic_acgan"] = self.acgan_scale * acgan
            measured["acgan_accuracy_real"] = (logits.argmax(1) == labels).astype("float32").mean()
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


def wgan_gp_constraints(critic, lambda_gp: float, critic_batch: Callable[[], dict],
                        generator_batch: Callable[[], dict], acgan_scales=(0.0, 0.0)):
    """The critic's and the generator's SupervisedConstraint.

    critic_batch() and generator_batch() return a global batch; each process trains on
    its rows. In both, the Solver's model runs the generator, mapping "noise" (and "labels"
    when conditional) to "fake"; critic_batch() also gives "real", which output_expr
    hands to the loss beside "fake". acgan_scales (critic, generator) > 0 add the
    AC-GAN terms.
    """
    passed = ["real"] + (["labels"] if acgan_scales[0] else [])
    critic_constraint = StreamConstraint(
        critic_batch,
        ppsci.loss.FunctionalLoss(CriticLoss(critic, lambda_gp, acgan_scale=acgan_scales[0])),
        output_expr={key: (lambda out, key=key: out[key]) for key in passed},
        name="critic",
    )
    generator_constraint = StreamConstraint(
        generator_batch,
        ppsci.loss.FunctionalLoss(GeneratorLoss(critic, acgan_scale=acgan_scales[1])),
        output_expr={"labels": lambda out: out["labels"]} if acgan_scales[1] else None,
        name="generator",
    )
    return critic_constraint, generator_constraint


def adam_optimizers(train_cfg, critic, generator):
    """Adam for the critic and the generator (TRAIN.learning_rate, beta1, beta2); with
    TRAIN.lr_decay, the rate decays linearly to 0 over the run (per critic / generator step)."""
    def adam(layer, steps_per_epoch):
        lr = train_cfg.learning_rate
        if train_cfg.get("lr_decay", False):
            lr = ppsci.optimizer.lr_scheduler.Linear(train_cfg.epochs, steps_per_epoch, lr)()
        return ppsci.optimizer.Adam(lr, train_cfg.beta1, train_cfg.beta2)(layer)

    iters = train_cfg.iters_per_epoch
    return adam(critic, iters * train_cfg.n_critic), adam(generator, iters)


@contextlib.contextmanager
def frozen(layer: paddle.nn.Layer):
    """No parameter gradients for `layer` inside the block (input gradients still flow)."""
    params = [p for p in layer.parameters() if not p.stop_gradient]
    for p in params:
        p.stop_gradient = True
    try:
        yield
    finally:
        for p in params:
            p.stop_gradient = False


# ---------------------------------------------------------------------------
# Training wiring: two Solvers, one per player, stepped alternately.
# ---------------------------------------------------------------------------
class GeneratorAndCritic(ppsci.arch.Arch):
    """The Solvers' model: the generator's forward, holding the critic as well.

    With several processes, ppsci wraps its model in DataParallel and averages the
    gradients of the model's parameters only; holding the critic here makes it average
    the critic's too (each step, only the unfrozen network has gradients).
    """

    def __init__(self, generator: paddle.nn.Layer, critic: paddle.nn.Layer):
        super().__init__()
        self.generator, self.critic = generator, critic
        self.input_keys, self.output_keys = generator.input_keys, generator.output_keys

    def forward(self, inputs):
        return self.generator(inputs)


_NO_ITER_LOG = sys.maxsize  # ppsci's per-step log; we log per epoch instead
_LOGGED = ("epoch", "iteration", "critic_loss", "generator_loss", "wasserstein",
           "gradient_penalty", "iters_per_second", "seconds", "learning_rate_critic",
           "learning_rate_generator", "modes_total")


def train_wgan_gp(cfg, generator, critic, critic_constraint, generator_constraint,
                  critic_optimizer, generator_optimizer, data_state: Dict[str, object],
                  on_epoch_end: Optional[Callable[[int], Optional[dict]]] = None) -> list:
    """Run cfg.TRAIN.epochs x cfg.TRAIN.iters_per_epoch generator iterations.

    Each generator iteration is n_critic critic steps then one generator step, each a
    ppsci train_epoch_func call on its own Solver. Both Solvers' model computes the
    generator (noise -> samples); the critic is part of both losses. Solver.train() is
    not used because it writes a checkpoint on every call.

    data_state names what else a checkpoint must hold to continue exactly (the numpy
    Generator and data streams the constraints draw from). Every epoch writes the
    weights and checkpoints/latest.pdckpt; TRAIN.checkpoint_path resumes from one.
    on_epoch_end(epoch) may return metrics to log with the epoch. Returns the epoch log.

    Under paddle.distributed.launch every process runs this; rank 0 alone writes
    files and calls on_epoch_end.
    """
    both = GeneratorAndCritic(generator, critic)

    def solver(constraint, optimizer, steps):
        return ppsci.solver.Solver(
            both, {constraint.name: constraint}, cfg.output_dir, optimizer,
            epochs=cfg.TRAIN.epochs, iters_per_epoch=steps, seed=cfg.seed, device=cfg.device,
        )

    critic_solver = solver(critic_constraint, critic_optimizer, cfg.TRAIN.n_critic)
    generator_solver = solver(generator_constraint, generator_optimizer, 1)
    for s in (critic_solver, generator_solver):
        s.max_steps = -1  # read by ppsci's step logger, which we keep quiet
    if dist.get_world_size() > 1:
        logger.info(f"Data parallel on {dist.get_world_size()} processes: each computes its "
                    f"share of every global batch (TRAIN.batch_size={cfg.TRAIN.batch_size}) and "
                    "the learning rate is unchanged, so ppsci's advice above to scale it does "
                    "not apply.")

    parts = {"generator": generator, "critic": critic, "critic_optimizer": critic_optimizer,
             "generator_optimizer": generator_optimizer, **data_state}
    history = load_checkpoint(cfg.TRAIN.checkpoint_path, parts) if cfg.TRAIN.checkpoint_path else []
    start = time.perf_counter() - (history[-1]["seconds"] if history else 0)
    iters = cfg.TRAIN.iters_per_epoch
    for epoch in range(len(history) + 1, cfg.TRAIN.epochs + 1):
        paddle.seed(cfg.seed + epoch)  # the penalty's random interpolates, reproducible on resume
        tic = time.perf_counter()
        for i in range(iters):
            with frozen(generator):  # the critic step treats generated samples as constants
                critic_solver.train_epoch_func(critic_solver, epoch, _NO_ITER_LOG)
            with frozen(critic):  # the generator step leaves no gradients in the critic
                generator_solver.train_epoch_func(generator_solver, epoch, _NO_ITER_LOG)
            _stop_if_diverged(cfg, critic_solver, generator_solver, (epoch - 1) * iters + i + 1)
        seconds = time.perf_counter() - tic
        record = {
            "epoch": epoch,
            "iteration": epoch * iters,
            **mean_over_processes({
                "critic_loss": critic_solver.train_output_info["loss"].avg,
                "generator_loss": generator_solver.train_output_info["loss"].avg,
                **critic_constraint.loss.loss_expr.meter.pop_means(),
            }),
            "iters_per_second": iters / seconds,
            "seconds": time.perf_counter() - start,
            "learning_rate_critic": critic_optimizer.get_lr(),
            "learning_rate_generator": generator_optimizer.get_lr(),
        }
        for s in (critic_solver, generator_solver):
            s.train_output_info.clear()
        average_statistics(generator, critic)
        if is_main_process():
            save_weights(generator, osp.join(cfg.output_dir, "model_generator.pdparams"))
            save_weights(critic, osp.join(cfg.output_dir, "model_discriminator.pdparams"))
            if on_epoch_end is not None:
                record.update(on_epoch_end(epoch) or {})
            save_checkpoint(cfg, history + [record], parts)
        history.append(record)
        extra = "".join(f", {k}: {v:.4g}" for k, v in record.items() if k not in _LOGGED)
        eta = seconds * (cfg.TRAIN.epochs - epoch)
        log_every_rank(
            f"[Train][Epoch {epoch}/{cfg.TRAIN.epochs}][Iter {record['iteration']}] "
            f"critic_loss: {record['critic_loss']:.5f}, "
            f"generator_loss: {record['generator_loss']:.5f}, "
            f"wasserstein: {record['wasserstein']:.5f}, "
            f"gradient_penalty: {record['gradient_penalty']:.5f}{extra}, "
            f"{iters / seconds:.2f} it/s, eta: {eta / 60:.1f} min"
        )
    if is_main_process():
        plot_losses(history, osp.join(cfg.output_dir, "losses.png"))
        save_json(history, osp.join(cfg.output_dir, "losses.json"))
    return history


# ---------------------------------------------------------------------------
# Checkpoints: everything needed to continue a run exactly, in one pickle of arrays
# ---------------------------------------------------------------------------
def _to_numpy(obj):
    if isinstance(obj, paddle.Tensor):
        return obj.numpy()
    if isinstance(obj, dict):
        return {k: _to_numpy(v) for k, v in obj.items()}
    return obj


def _state_of(part) -> dict:
    if isinstance(part, np.random.Generator):
        return part.bit_generator.state
    return _to_numpy(part.state_dict())


def _restore(part, state, name: str, path: str) -> None:
    if isinstance(part, np.random.Generator):
        part.bit_generator.state = state
    elif isinstance(part, paddle.nn.Layer):
        expected = part.state_dict()
        if set(state) != set(expected) or any(
                list(np.shape(state[k])) != list(v.shape) for k, v in expected.items()):
            raise UsageError(f"TRAIN.checkpoint_path={path}: its {name} does not fit this model; "
                             "resume with the settings the run was started with.")
        part.set_state_dict(state)
    else:
        part.set_state_dict(state)


def checkpoint_file(path: str) -> str:
    """ppsci's convention: <run dir>/checkpoints/latest names latest.pdckpt."""
    return path if str(path).endswith(".pdckpt") else f"{path}.pdckpt"


def save_checkpoint(cfg, history: list, parts: dict) -> None:
    """checkpoints/latest.pdckpt (and epoch_N.pdckpt every TRAIN.save_freq epochs), atomically."""
    import pickle

    directory = osp.join(cfg.output_dir, "checkpoints")
    os.makedirs(directory, exist_ok=True)
    state = {"epoch": len(history), "history": history,
             **{name: _state_of(part) for name, part in parts.items()}}
    names = ["latest"]
    if cfg.TRAIN.get("save_freq", 0) and len(history) % cfg.TRAIN.save_freq == 0:
        names.append(f"epoch_{len(history)}")
    for name in names:
        path = osp.join(directory, f"{name}.pdckpt")
        with open(f"{path}.tmp", "wb") as f:
            pickle.dump(state, f, protocol=4)
        os.replace(f"{path}.tmp", path)  # a kill while saving never breaks the last one


def load_checkpoint(path: str, parts: dict) -> list:
    """Restore `parts` from a checkpoint (numpy-only unpickler); returns its epoch log."""
    import pickle

    file = checkpoint_file(path)
    if not osp.isfile(file):
        raise UsageError(f"TRAIN.checkpoint_path={path}: no such checkpoint ({file}); give "
                         "<run dir>/checkpoints/latest of an earlier run.")
    try:
        with open(file, "rb") as f:
            state = NumpyOnlyUnpickler.load(f, file)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise UsageError(f"TRAIN.checkpoint_path={path}: {file} is not a readable checkpoint "
                         f"({e}).") from None
    missing = [name for name in parts if name not in state]
    if missing:
        raise UsageError(f"TRAIN.checkpoint_path={path}: {file} lacks {missing}; it was "
                         "written by another example or version.")
    for name, part in parts.items():
        _restore(part, state[name], name, path)
    log_every_rank(f"Resumed from {file} after epoch {state['epoch']}")
    return list(state["history"])


def _stop_if_diverged(cfg, critic_solver, generator_solver, iteration: int) -> None:
    """Stop at the first NaN or Inf loss; the weights of the last finished epoch stay."""
    for name, solver in (("critic", critic_solver), ("generator", generator_solver)):
        loss = solver.train_output_info["loss"].val  # ppsci already read it to the host
        if not np.isfinite(loss):
            raise UsageError(f"training diverged: the {name} loss is {loss} at generator "
                             f"iteration {iteration}; the weights of the last finished epoch "
                             f"are kept in {cfg.output_dir}. Lower TRAIN.learning_rate or "
                             "check the data.", code=3)


# ---------------------------------------------------------------------------
# Weights and files
# ---------------------------------------------------------------------------
def save_weights(layer: paddle.nn.Layer, path: str) -> None:
    """Write layer's weights atomically: a killed save never leaves a broken file."""
    tmp = f"{path}.tmp"
    paddle.save(layer.state_dict(), tmp)
    os.replace(tmp, path)


def save_json(obj, path: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


def read_pdparams(path: str, setting: str) -> dict:
    """A .pdparams file's {name: array}, read by an unpickler that builds numpy arrays and
    plain containers only: a crafted pickle cannot run code here (paddle.load could)."""
    import pickle

    try:
        with open(path, "rb") as f:
            state = NumpyOnlyUnpickler.load(f, path)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, OSError) as e:
        raise UsageError(f"{setting}: {path} is not a readable .pdparams file of arrays ({e}); "
                         "nothing from it was run.") from None
    if not isinstance(state, dict):
        raise UsageError(f"{setting}: {path} does not hold a dict of weights.")
    return {k: v for k, v in state.items() if isinstance(v, np.ndarray)}


def fetch_weights(source: str, setting: str, sha256: Optional[str] = None) -> str:
    """Local path of a weights file given by path or http(s) URL (ppsci's download cache).

    With `sha256`, a file that does not match is refused before it is read; a download
    that does not match or is no weights file (an HTML error page, a partial file) is
    removed from the cache, so the next attempt downloads again.
    """
    url = urllib.parse.urlparse(str(source)).scheme in ("http", "https")
    path = str(source)
    if url:
        try:
            path = ppsci.utils.download.get_weights_path_from_url(path)
        except Exception as e:  # network errors come in many types
            raise UsageError(f"{setting}: could not download {source}: {e}") from None
    if not osp.isfile(path):
        raise UsageError(f"{setting}: no such file: {path}")
    if sha256:
        actual = file_digest(path, "sha256")
        if actual != str(sha256).lower():
            if url:
                os.remove(path)
            removed = " and removed it from the download cache" if url else ""
            raise UsageError(f"{setting}: {source} has SHA-256 {actual}, not the expected "
                             f"{sha256}; refused it{removed}.")
    return path


def load_weights(layer: paddle.nn.Layer, source: Optional[str], setting: str,
                 sha256: Optional[str] = None) -> None:
    """Load a .pdparams path or http(s) URL named by `setting` into `layer`, strictly:
    every name and shape must match (paddle's own loading only warns)."""
    if not source:
        raise UsageError(f"{setting} is not set; give a .pdparams path or URL.")
    path = fetch_weights(source, setting, sha256)
    try:
        state = read_pdparams(path, setting)
    except UsageError:
        if path != str(source):  # a downloaded page or broken file: never keep it cached
            os.remove(path)
        raise
    expected = layer.state_dict()
    if set(state) != set(expected):
        missing = sorted(set(expected) - set(state))[:3]
        raise UsageError(
            f"{setting}: {path} holds weights of another model "
            f"(missing e.g. {missing}); check the example and settings it was trained with."
        )
    for k, v in expected.items():
        if list(state[k].shape) != list(v.shape):
            raise UsageError(
                f"{setting}: {path} does not fit this model: {k} has shape "
                f"{list(state[k].shape)}, expected {list(v.shape)}."
            )
    layer.set_state_dict(state)
    logger.info(f"Loaded {setting} from {source}")


def export_generator(generator, input_spec: dict, export_path: str) -> None:
    """Save the generator as a Paddle inference model (export_path + .json/.pdiparams)."""
    os.makedirs(osp.dirname(export_path) or ".", exist_ok=True)
    generator.eval()
    static = paddle.jit.to_static(generator, input_spec=[input_spec], full_graph=True)
    paddle.jit.save(static, export_path)
    logger.info(f"Exported the generator to {export_path}.json / .pdiparams")


def predict_exported(cfg, inputs: Dict[str, np.ndarray]) -> np.ndarray:
    """Run the exported generator with paddle.inference, in INFER.batch_size batches."""
    from paddle import inference

    for setting in ("pdmodel_path", "pdiparams_path"):
        if not osp.isfile(str(cfg.INFER[setting])):
            raise UsageError(
                f"INFER.{setting}: no such file: {cfg.INFER[setting]}; run mode=export "
                "first or point INFER.export_path at an exported model."
            )
    config = inference.Config(cfg.INFER.pdmodel_path, cfg.INFER.pdiparams_path)
    if cfg.INFER.device == "gpu":
        config.enable_use_gpu(cfg.INFER.gpu_mem, cfg.INFER.gpu_id)
    else:
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(cfg.INFER.num_cpu_threads)
    # no enable_memory_optim(): Paddle 3.3's CPU build fails in memory_optimize_pass
    config.disable_glog_info()
    predictor = inference.create_predictor(config)
    n, size = len(next(iter(inputs.values()))), cfg.INFER.batch_size
    outputs = []
    for start in range(0, n, size):
        for name, array in inputs.items():
            predictor.get_input_handle(name).copy_from_cpu(array[start:start + size])
        predictor.run()
        outputs.append(predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu())
    logger.info(f"Generated {n} samples with the inference model {cfg.INFER.pdmodel_path}")
    return np.concatenate(outputs)


# ---------------------------------------------------------------------------
# Sampling and metrics
# ---------------------------------------------------------------------------
@paddle.no_grad()
def generate(generator, inputs: Dict[str, np.ndarray], batch_size: int,
             norm: str = "running") -> np.ndarray:
    """Run the generator on numpy `inputs` ({"noise": ...}, maybe "labels") in batches;
    norm="batch": batch norms use each batch's own statistics (models.batch_statistics)."""
    from models import batch_statistics

    generator.eval()
    n, out = len(inputs["noise"]), []
    with batch_statistics(generator) if norm == "batch" else contextlib.nullcontext():
        for i in range(0, n, batch_size):
            batch = {k: paddle.to_tensor(v[i:i + batch_size]) for k, v in inputs.items()}
            out.append(generator(batch)["fake"].numpy())
    generator.train()
    return np.concatenate(out)


def wasserstein1(a: np.ndarray, b: np.ndarray) -> float:
    """Exact W1 between two equal-size point sets (optimal assignment)."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    cost = cdist(a, b)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def toy_metrics(samples: np.ndarray, dist: ToyDistribution,
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
    anchors = dist.centers if dist.centers is not None else dist.curve()
    distance, nearest = cKDTree(anchors).query(samples)
    good = distance <= 3 * dist.sigma
    metrics = {"num_samples": n, "high_quality_fraction": float(good.mean())}
    if dist.centers is not None:
        counts = np.bincount(nearest[good], minlength=len(anchors))
        metrics["modes_covered"] = int((counts >= 0.1 * n / len(anchors)).sum())
        metrics["modes_total"] = len(anchors)
        metrics["mode_counts"] = counts.tolist()
    if rng is None:
        return metrics
    real, reference = dist.sample(n, rng), dist.sample(n, rng)
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
    import warnings

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
    import models

    paddle.seed(seed)
    net = models.MnistClassifier()
    optimizer = paddle.optimizer.Adam(1e-3, parameters=net.parameters())
    images, labels = data["train"]
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(images))
        for i in range(0, len(order) - 127, 128):
            index = np.sort(order[i:i + 128])
            _, logits = net(paddle.to_tensor(images[index][:, None]))
            loss = paddle.nn.functional.cross_entropy(logits, paddle.to_tensor(labels[index]))
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
    return net, digit_accuracy(net, data["test"])


def digit_accuracy(net, split: tuple) -> float:
    images, labels = split
    _, probs = classify(net, images[:, None])
    return float((probs.argmax(1) == labels).mean())


def digit_metrics(classifier, images: np.ndarray, reference_stats) -> dict:
    """Classifier-based Inception Score (at most 10), class histogram and Frechet distance
    of the classifier's penultimate features to `reference_stats` (mean, covariance)."""
    features, probs = classify(classifier, images)
    score, score_std = inception_score(probs, splits=10)
    histogram = np.bincount(probs.argmax(1), minlength=10)
    return {
        "inception_score": score,
        "inception_score_std": score_std,
        "frechet_distance": frechet_distance(*feature_statistics(features), *reference_stats),
        "classes_covered": int((histogram >= 0.1 * len(images) / 10).sum()),
        "class_histogram": histogram.tolist(),
    }


# ---------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_toy(path: str, real: np.ndarray, fake: np.ndarray, critic=None,
             title: str = "", extent: float = 3.0) -> None:
    """Real (orange) and generated (green) points over the critic's contour map."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    if critic is not None:
        grid = np.linspace(-extent, extent, 128, dtype="float32")
        xx, yy = np.meshgrid(grid, grid)
        with paddle.no_grad():
            points = paddle.to_tensor(np.stack([xx.ravel(), yy.ravel()], 1))
            scores = critic(points).numpy().reshape(xx.shape)
        ax.contour(xx, yy, scores, levels=20, cmap="viridis", linewidths=0.8)
    ax.scatter(real[:, 0], real[:, 1], s=4, c="orange", marker="+", label="real")
    ax.scatter(fake[:, 0], fake[:, 1], s=4, c="green", marker="+", label="generated")
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(osp.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_losses(history: list, path: str) -> None:
    """Per-epoch critic and generator losses, Wasserstein estimate and penalty."""
    if not history:
        return
    plt = _pyplot()
    it = [h["iteration"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    axes[0].plot(it, [h["critic_loss"] for h in history], label="critic loss")
    axes[0].plot(it, [h["generator_loss"] for h in history], label="generator loss")
    axes[1].plot(it, [h["wasserstein"] for h in history], color="C2")
    axes[2].plot(it, [h["gradient_penalty"] for h in history], color="C3")
    axes[0].legend(fontsize=8)
    for ax, title in zip(axes, ["losses", "Wasserstein estimate E[D(x)]-E[D(G(z))]",
                                "gradient penalty E[(|grad|-1)^2]"]):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("generator iteration")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_image_grid(images: np.ndarray, path: str, nrow: int) -> None:
    """Save images [N, C, H, W] in [0, 1] as one PNG grid of nrow columns."""
    plt = _pyplot()
    n, c, h, w = images.shape
    rows = -(-n // nrow)
    grid = np.ones((rows * (h + 2) + 2, nrow * (w + 2) + 2, c), "float32")
    for i, image in enumerate(np.clip(images, 0, 1)):
        r, col = divmod(i, nrow)
        grid[2 + r * (h + 2):2 + r * (h + 2) + h, 2 + col * (w + 2):2 + col * (w + 2) + w] = \
            image.transpose(1, 2, 0)
    os.makedirs(osp.dirname(path) or ".", exist_ok=True)
    plt.imsave(path, grid[..., 0] if c == 1 else grid, cmap="gray" if c == 1 else None)
