"""Small MNIST-format files for the tests: synthetic 'digits' in both real formats."""

import gzip
import os
import pickle

import numpy as np


def synthetic_digits(n, seed=0):
    """Images [n, 28, 28] in [0, 1] where class k lights a 6x6 block at its own place."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.uniform(0, 0.2, (n, 28, 28)).astype("float32")
    for i, k in enumerate(labels):
        r, c = divmod(int(k), 5)
        images[i, 2 + 12 * r : 8 + 12 * r, 1 + 5 * c : 7 + 5 * c] = 1.0
    return images, labels.astype("int64")


def write_idx(path, array, magic):
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_idx_dir(directory, n_train=300, n_test=100):
    os.makedirs(directory, exist_ok=True)
    for split, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        images, labels = synthetic_digits(n, seed)
        write_idx(
            os.path.join(directory, f"{split}-images-idx3-ubyte.gz"), np.round(images * 255), 0x803
        )
        write_idx(os.path.join(directory, f"{split}-labels-idx1-ubyte.gz"), labels, 0x801)
    return directory


def write_pkl(path, n_train=300, n_test=100):
    """The seed's mnist.pkl.gz layout: (train, valid, test), each (float32 [N, 784], labels)."""
    splits = [synthetic_digits(n, seed) for n, seed in ((n_train, 1), (50, 3), (n_test, 2))]
    data = tuple((x.reshape(len(x), 784), y) for x, y in splits)
    with gzip.open(path, "wb") as f:
        pickle.dump(data, f, protocol=2)
    return path
