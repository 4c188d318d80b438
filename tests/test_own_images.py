"""FID and KID of generated RGB images against a user's own images (gankit.inception.own_images),
with a stand-in feature network: FID against scipy's matrix square root, the real features
cached by content, and the reason when no network loads."""

import numpy as np
import paddle
import scipy.linalg
from omegaconf import OmegaConf

from gankit.inception import own_images


class MeanColours(paddle.nn.Layer):
    """Features: each image's mean and spread per colour (6 numbers); logits: none useful."""

    def forward(self, x):
        features = paddle.concat([x.mean(axis=[2, 3]), x.std(axis=[2, 3])], axis=1)
        return features, paddle.zeros([x.shape[0], 2])


def cfg(tmp_path):
    return OmegaConf.create(
        {"EVAL": {"batch_size": 16, "inception": "tf2015", "inception_weights": None}}
    )


def frechet(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return float(
        ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    )


def test_fid_against_scipy_and_cached_real_features(tmp_path, monkeypatch):
    monkeypatch.setattr(own_images.inception_weights, "load_inception", lambda *a: MeanColours())
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (60, 8, 8, 3), dtype=np.uint8)
    reads = []
    metric = own_images.InceptionDistances(
        cfg(tmp_path), lambda: reads.append(1) or real, "key", str(tmp_path)
    )
    fake = rng.uniform(-1, 0.5, (40, 3, 8, 8)).astype("float32")  # darker than the real ones
    numbers = metric({"fake": fake})
    real_features = MeanColours()(paddle.to_tensor(real.transpose(0, 3, 1, 2) / 255.0))[0].numpy()
    pixels = own_images.to_uint8(fake).transpose(0, 3, 1, 2) / 255.0
    fake_features = MeanColours()(paddle.to_tensor(pixels.astype("float32")))[0].numpy()
    np.testing.assert_allclose(numbers["fid"], frechet(fake_features, real_features), rtol=1e-3)
    assert numbers["kid"] > 0
    # a second metric over the same data reads the cached features, not the images
    again = own_images.InceptionDistances(
        cfg(tmp_path), lambda: reads.append(1) or real, "key", str(tmp_path)
    )
    assert again({"fake": fake})["fid"] == numbers["fid"] and len(reads) == 1


def test_without_a_network_the_results_say_why(tmp_path, monkeypatch):
    def unavailable(*args):
        raise ValueError("no weights here")

    monkeypatch.setattr(own_images.inception_weights, "load_inception", unavailable)
    metric = own_images.InceptionDistances(cfg(tmp_path), lambda: None, "key", str(tmp_path))
    assert not metric.available
    assert metric({"fake": np.zeros((4, 3, 8, 8), "float32")}) == {}
    assert (
        metric.results["fid"] is None
        and "no weights here" in metric.results["not_computed_because"]
    )


def test_only_rgb_data_get_inception_distances(tmp_path, monkeypatch):
    monkeypatch.setattr(own_images.inception_weights, "load_inception", lambda *a: MeanColours())

    class Grey:
        shape = (10, 1, 8, 8)

    assert own_images.maybe(cfg(tmp_path), Grey(), "key", str(tmp_path)) is None
