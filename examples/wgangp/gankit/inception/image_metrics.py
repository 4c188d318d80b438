"""The CIFAR-10 validators' image metrics: Inception Score and FID (and KID) with the
EVAL.inception network, against the training images' statistics, computed once and cached."""

import os
from os import path as osp
from typing import Optional

import numpy as np
from ppsci.utils import logger

from .. import datasets
from ..metrics import (
    feature_statistics,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    numbers,
    to_uint8,
)
from ..published.weights import paddlescience_inception_score
from . import networks
from . import weights as inception_weights


class ImageMetrics:
    """Inception Score (10 splits) and FID against CIFAR-10's training images, with the
    EVAL.inception network; with `paddlescience`, also the Inception Score as PaddleScience
    computed its published 5.2 (paddle.vision's Inception, published.weights), not comparable
    with papers' scores. The samples are kept as uint8 images (to_uint8).

    The networks are loaded first: when none can be (offline, no weights), `available` is
    False and `unavailable()` says why; no samples need to be generated then.
    """

    def __init__(self, cfg, paddlescience: bool = False):
        self.cfg, self.paddlescience = cfg, paddlescience and cfg.EVAL.paddlescience_score
        self.net, self.why_not = self._load(
            lambda: inception_weights.load_inception(
                cfg.EVAL.inception, cfg.EVAL.inception_weights
            ),
            f"EVAL.inception={cfg.EVAL.inception}, "
            f"EVAL.inception_weights={cfg.EVAL.inception_weights}",
            "Inception Score and FID",
        )
        self.paddle_net = self.paddle_why_not = None
        if self.paddlescience:
            self.paddle_net, self.paddle_why_not = self._load(
                lambda: (
                    inception_weights.load_paddle_inception(cfg.EVAL.paddle_inception_weights).net
                ),
                f"EVAL.paddle_inception_weights={cfg.EVAL.paddle_inception_weights}",
                "PaddleScience's Inception Score",
            )
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
        if self.net is None:
            metrics = {"inception_score": None, "fid": None, "not_computed_because": self.why_not}
        else:
            features, probs = networks.features_and_probs(
                self.net, images, self.cfg.EVAL.batch_size
            )
            score, score_std = inception_score(probs, splits=10)
            mu, sigma, kid_features = cifar10_train_statistics(self.cfg, self.net)
            fid = frechet_distance(*feature_statistics(features), mu, sigma)
            metrics = {"inception_score": score, "inception_score_std": score_std, "fid": fid}
            if kid_features is None:
                source = (
                    f"EVAL.fid_stats_path={self.cfg.EVAL.fid_stats_path}"
                    if self.cfg.EVAL.fid_stats_path
                    else "the cached statistics file "
                    "(~/.cache/wgangp, of an earlier version; delete it to recompute)"
                )
                metrics.update(
                    kid=None,
                    kid_not_computed_because=(
                        f"{source} holds FID's statistics only, not the training features KID needs"
                    ),
                )
            else:
                metrics["kid"], metrics["kid_std"] = kernel_inception_distance(
                    features, kid_features
                )
            metrics.update(
                inception=self.cfg.EVAL.inception, inception_weights=self.cfg.EVAL.inception_weights
            )
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
    path = cfg.EVAL.fid_stats_path or osp.expanduser(
        f"~/.cache/wgangp/cifar10_train_{getattr(net, 'protocol', cfg.EVAL.inception)}.npz"
    )
    if osp.isfile(path):
        stats = np.load(path)
        return (
            stats["mu"],
            stats["sigma"],
            stats["kid_features"] if "kid_features" in stats else None,
        )
    logger.info(
        f"Computing CIFAR-10 training-set Inception statistics for FID and KID (cached in {path})"
    )
    images = datasets.load_cifar10(cfg.DATA.data_path, cfg.DATA.md5)["train"][0]
    features, _ = networks.features_and_probs(
        net, images.transpose(0, 2, 3, 1), cfg.EVAL.batch_size
    )
    mu, sigma = feature_statistics(features)
    rows = np.random.default_rng(0).choice(
        len(features), min(KID_REFERENCE_ROWS, len(features)), replace=False
    )
    kid_features = features[np.sort(rows)].astype("float32")
    os.makedirs(osp.dirname(path), exist_ok=True)
    np.savez(path, mu=mu, sigma=sigma, kid_features=kid_features)
    return mu, sigma, kid_features
