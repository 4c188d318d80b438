"""The toy data recipes: mode centres, scale and shapes (the paper's gan_toy.py)."""

import numpy as np
import pytest

from gankit import datasets, ppsci_adapter


def test_8gaussians_centres_scale_and_shape():
    dist = datasets.ToyDistribution("8gaussians")
    radii = np.linalg.norm(dist.centers, axis=1)
    np.testing.assert_allclose(radii, 2 / 1.414)
    angles = np.sort(np.degrees(np.arctan2(dist.centers[:, 1], dist.centers[:, 0])) % 360)
    np.testing.assert_allclose(angles, np.arange(0, 360, 45), atol=1e-9)
    assert dist.sigma == pytest.approx(0.02 / 1.414)
    x = dist.sample(8000, np.random.default_rng(0))
    assert x.shape == (8000, 2) and x.dtype == np.float32
    offsets = x[:, None, :] - dist.centers[None]
    nearest = np.linalg.norm(offsets, axis=2).argmin(1)
    residual = x - dist.centers[nearest]
    assert residual.std() == pytest.approx(dist.sigma, rel=0.05)
    np.testing.assert_allclose(np.bincount(nearest) / 8000, 1 / 8, atol=0.02)


def test_25gaussians_is_a_5x5_grid():
    dist = datasets.ToyDistribution("25gaussians")
    assert dist.centers.shape == (25, 2)
    grid = np.arange(-2, 3) * 2 / 2.828
    assert sorted(set(np.round(dist.centers[:, 0], 9))) == pytest.approx(grid)
    assert sorted(set(np.round(dist.centers[:, 1], 9))) == pytest.approx(grid)
    assert dist.sigma == pytest.approx(0.05 / 2.828)
    x = dist.sample(5000, np.random.default_rng(1))
    nearest = np.linalg.norm(x[:, None] - dist.centers[None], axis=2).min(1)
    assert nearest.max() < 6 * dist.sigma


def test_swissroll_follows_the_roll():
    dist = datasets.ToyDistribution("swissroll")
    x = dist.sample(5000, np.random.default_rng(2))
    assert x.shape == (5000, 2) and x.dtype == np.float32
    # unscaled, the roll's radius is its angle t in [1.5 pi, 4.5 pi], noise 0.25
    radius = np.linalg.norm(x * 7.5, axis=1)
    assert radius.min() > 1.5 * np.pi - 1.5 and radius.max() < 4.5 * np.pi + 1.5
    spine = dist.curve(20000)
    distance = np.min(np.linalg.norm(x[:500, None] - spine[None], axis=2), axis=1)
    # 2-D Gaussian noise: mean distance to the spine about sigma * sqrt(pi/2) or less
    assert distance.mean() < 1.3 * dist.sigma * np.sqrt(np.pi / 2)


def test_unknown_data_set_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        datasets.ToyDistribution("9gaussians")
    assert exit_info.value.code == 2
    assert "DATA.mode='9gaussians'" in capsys.readouterr().err


def test_stream_constraint_gives_a_fresh_batch_per_step():
    import ppsci

    rng = np.random.default_rng(0)
    constraint = ppsci_adapter.StreamConstraint(
        lambda: {"real": rng.standard_normal((4, 2)).astype("float32")},
        ppsci.loss.FunctionalLoss(lambda out, *_: {}),
        name="c",
    )
    first, _, _ = next(constraint.data_iter)
    second, _, _ = next(constraint.data_iter)
    assert first["real"].shape == [4, 2]
    assert not np.allclose(first["real"].numpy(), second["real"].numpy())
