"""Small data sets in the formats a user brings to wgangp_custom.py, written as their tools
write them: PNG folders (one sub-folder per class), .npy, .npz, .h5 (nested groups) and
MATLAB .mat files, of Gaussian random fields or coloured blobs."""

import os

import h5py
import numpy as np
import scipy.io
from PIL import Image


def fields(n: int, size: int, channels: int = 1, seed: int = 0, slope: float = -3.0):
    """n x channels x size x size Gaussian random fields with power spectrum k^slope."""
    rng = np.random.default_rng(seed)
    k = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None, :]) * size
    amplitude = np.where(k > 0, k, 1.0) ** (slope / 2)
    amplitude[0, 0] = 0.0
    noise = rng.standard_normal((n, channels, size, size))
    return np.real(np.fft.ifft2(np.fft.fft2(noise) * amplitude)).astype(np.float32)


def image_folder(root: str, per_class: int = 12, size=(48, 40), seed: int = 0) -> str:
    """Two classes of RGB PNGs (reddish and bluish blobs), width x height `size`."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(("red", "blue")):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (size[1], size[0], 3), dtype=np.uint8)
            pixels[..., 0 if c == 0 else 2] += 150
            Image.fromarray(pixels).save(os.path.join(root, name, f"{i:03d}.png"))
    return root


def npy(path: str, n: int = 24, size: int = 32) -> str:
    np.save(path, fields(n, size)[:, 0] * 2.0 + 5.0)  # N x H x W, in "kelvin" around 5
    return path


def npz(path: str, n: int = 24, size: int = 64) -> str:
    """Two arrays; the fields (two channels) under "u", their mean under "mean"."""
    u = fields(n, size, channels=2, seed=1)
    np.savez(path, u=u, mean=u.mean(axis=(2, 3)))
    return path


def h5(path: str, n: int = 24, size: int = 48) -> str:
    """A nested dataset "fields/u", N x 1 x size x size."""
    with h5py.File(path, "w") as f:
        f.create_dataset("fields/u", data=fields(n, size, seed=2))
    return path


def mat(path: str, n: int = 24, size: int = 32) -> str:
    """MATLAB v5 file with an int16 variable "T", N x H x W."""
    scipy.io.savemat(path, {"T": (fields(n, size, seed=3)[:, 0] * 300).astype(np.int16)})
    return path
