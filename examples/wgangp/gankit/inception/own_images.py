"""FID and KID of generated RGB images against a user's own images, with the EVAL.inception
network: the real images' Inception features are computed once and cached by their content.
For grey images and fields an ImageNet network means little: the field metrics cover them."""

import hashlib
import os
from os import path as osp
from typing import Callable, Optional

import numpy as np
from ppsci.utils import logger

from ..files import save_npz
from ..metrics import (
    feature_statistics,
    frechet_distance,
    kernel_inception_distance,
    numbers,
    to_uint8,
)
from ..parallel import is_main_process
from . import networks
from . import weights as inception_weights

KID_REFERENCE_ROWS = 10_000  # real images whose features KID compares with, as CIFAR-10's


class InceptionDistances:
    """The validator's metric: FID and KID (with its std) of the generated images ("fake",
    in [-1, 1], 3 channels) against the real images that `real()` returns (uint8 NHWC,
    called only when their features are not cached under `key` in `cache_dir`).
    `available` is False, and the results say why, when no network loads."""

    def __init__(self, cfg, real: Callable[[], np.ndarray], key: str, cache_dir: str):
        self.batch_size, self.real, self.results = cfg.EVAL.batch_size, real, None
        self.settings = f"EVAL.inception={cfg.EVAL.inception}, EVAL.inception_weights="
        self.settings += str(cfg.EVAL.inception_weights)
        try:
            self.net = inception_weights.load_inception(
                cfg.EVAL.inception, cfg.EVAL.inception_weights
            )
            self.why_not = None
        except ValueError as e:
            logger.warning(f"FID and KID not computed: {self.settings}: {e}")
            self.net, self.why_not = None, f"{self.settings}: {e}"
        protocol = getattr(self.net, "protocol", cfg.EVAL.inception)
        name = hashlib.sha256(f"{key} {protocol}".encode()).hexdigest()[:32]
        self.path = osp.join(cache_dir, f"inception-{name}.npz")

    @property
    def available(self) -> bool:
        return self.net is not None

    def reference(self):
        """(mean, covariance, KID's rows of features) of the real images, cached."""
        if osp.isfile(self.path):
            with np.load(self.path, allow_pickle=False) as saved:
                return saved["mu"], saved["sigma"], saved["kid_features"]
        logger.info(f"Inception features of the real images (cached in {self.path}) ...")
        features, _ = networks.features_and_probs(self.net, self.real(), self.batch_size)
        rows = np.random.default_rng(0).choice(
            len(features), min(KID_REFERENCE_ROWS, len(features)), replace=False
        )
        mu, sigma = feature_statistics(features)
        kid_features = features[np.sort(rows)].astype("float32")
        if not is_main_process():  # each process computes the same; the first saves them
            return mu, sigma, kid_features
        os.makedirs(osp.dirname(self.path), exist_ok=True)
        save_npz(self.path, mu=mu, sigma=sigma, kid_features=kid_features)  # atomically
        return mu, sigma, kid_features

    def __call__(self, output_dict, label_dict=None) -> dict:
        if self.net is None:
            self.results = {"fid": None, "kid": None, "not_computed_because": self.why_not}
            return {}
        mu, sigma, kid_features = self.reference()
        fake = to_uint8(output_dict["fake"])
        features, _ = networks.features_and_probs(self.net, fake, self.batch_size)
        kid, kid_std = kernel_inception_distance(features, kid_features)
        fid = frechet_distance(*feature_statistics(features), mu, sigma)
        self.results = {"fid": fid, "kid": kid, "kid_std": kid_std, "inception": self.settings}
        return numbers(self.results)


def real_images(samples, chunk: int = 1024) -> Callable[[], np.ndarray]:
    """The images of `samples` (own_data.Samples in the data's units, 0..255) as uint8 NHWC,
    read when called, `chunk` at a time."""

    def read() -> np.ndarray:
        parts = [
            np.rint(samples[np.arange(i, min(i + chunk, len(samples)))]).astype(np.uint8)
            for i in range(0, len(samples), chunk)
        ]
        return np.concatenate(parts).transpose(0, 2, 3, 1)

    return read


def maybe(cfg, samples, key: str, cache_dir: str) -> Optional[InceptionDistances]:
    """InceptionDistances for RGB data (None for other channel counts)."""
    if samples.shape[1] != 3:
        return None
    return InceptionDistances(cfg, real_images(samples), key, cache_dir)
