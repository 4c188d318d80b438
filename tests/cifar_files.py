"""A small cifar-10-python.tar.gz in the real format (pickled batches in a gzip tarball)."""

import io
import pickle
import tarfile

import numpy as np


def batch(n, seed):
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"synthetic",
        b"labels": rng.integers(0, 10, n).tolist(),
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [b"image.png"] * n,
    }


def write_tarball(path, n_train=300, n_test=100, n_batches=3, extra=None):
    """Like the official file: cifar-10-batches-py/data_batch_1..n, test_batch, meta."""
    members = {f"data_batch_{i + 1}": batch(n_train // n_batches, i) for i in range(n_batches)}
    members["test_batch"] = batch(n_test, 99)
    members["batches.meta"] = {b"label_names": [b"airplane"] * 10}
    members.update(extra or {})
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            raw = content if isinstance(content, bytes) else pickle.dumps(content, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path
