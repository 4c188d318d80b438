"""Toy metrics on constructed inputs, and W1 against brute force."""

import itertools

import numpy as np
import pytest

from gankit import datasets, metrics


def test_samples_of_the_distribution_cover_all_modes():
    dist = datasets.ToyDistribution("8gaussians")
    m = metrics.toy_metrics(
        dist.sample(2000, np.random.default_rng(0)), dist, np.random.default_rng(1)
    )
    assert m["modes_covered"] == 8 and m["modes_total"] == 8
    # within 3 sigma of a 2-D Gaussian's centre: 1 - exp(-9/2)
    assert m["high_quality_fraction"] == pytest.approx(1 - np.exp(-4.5), abs=0.01)
    assert m["w1"] < 2 * m["w1_real_floor"]


def test_one_mode_only():
    dist = datasets.ToyDistribution("25gaussians")
    rng = np.random.default_rng(2)
    samples = dist.centers[7] + 0.5 * dist.sigma * rng.standard_normal((1000, 2))
    m = metrics.toy_metrics(samples, dist, rng)
    assert m["modes_covered"] == 1
    assert m["mode_counts"][7] == 1000
    assert m["high_quality_fraction"] == 1.0
    assert m["w1"] > 10 * m["w1_real_floor"]


def test_scattered_points_are_not_high_quality():
    dist = datasets.ToyDistribution("8gaussians")
    samples = np.random.default_rng(3).uniform(-3, 3, (4000, 2))
    m = metrics.toy_metrics(samples, dist)
    # 8 discs of radius 3 sigma in a 6 x 6 square
    expected = 8 * np.pi * (3 * dist.sigma) ** 2 / 36
    assert m["high_quality_fraction"] == pytest.approx(expected, abs=0.003)
    assert m["modes_covered"] == 0
    assert "w1" not in m  # W1 only when an rng is given


def test_swissroll_quality_is_measured_against_its_spine():
    dist = datasets.ToyDistribution("swissroll")
    good = metrics.toy_metrics(dist.sample(1000, np.random.default_rng(4)), dist)
    bad = metrics.toy_metrics(np.random.default_rng(5).uniform(-2, 2, (1000, 2)), dist)
    assert good["high_quality_fraction"] > 0.95 > 0.5 > bad["high_quality_fraction"]
    assert "modes_covered" not in good


def test_w1_of_a_shift_is_the_shift_length():
    a = np.random.default_rng(6).standard_normal((300, 2))
    assert metrics.wasserstein1(a, a + [0.3, -0.4]) == pytest.approx(0.5, rel=1e-9)


def test_w1_matches_brute_force_on_small_sets():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((6, 2)), rng.standard_normal((6, 2))
    brute = min(
        np.mean(np.linalg.norm(a - b[list(p)], axis=1)) for p in itertools.permutations(range(6))
    )
    assert metrics.wasserstein1(a, b) == pytest.approx(brute, rel=1e-12)


def one_hot(labels, classes=10):
    return np.eye(classes)[labels]


def test_inception_score_of_one_class_is_one():
    mean, std = metrics.inception_score(one_hot(np.zeros(1000, int)), splits=10)
    assert mean == pytest.approx(1.0) and std == pytest.approx(0.0)


def test_inception_score_of_confident_balanced_predictions_is_the_class_count():
    probs = one_hot(np.arange(1000) % 10)
    mean, _ = metrics.inception_score(probs, splits=10)
    assert mean == pytest.approx(10.0)


def test_inception_score_against_a_direct_computation():
    rng = np.random.default_rng(8)
    logits = rng.standard_normal((600, 7)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    expected = []
    for part in np.split(probs, 3):
        py = part.mean(0)
        expected.append(np.exp(np.mean([np.sum(p * np.log(p / py)) for p in part])))
    mean, std = metrics.inception_score(probs, splits=3)
    assert mean == pytest.approx(np.mean(expected), rel=1e-10)
    assert std == pytest.approx(np.std(expected), rel=1e-8)


def test_frechet_distance_of_a_set_to_itself_is_zero():
    features = np.random.default_rng(9).standard_normal((500, 16))
    stats = metrics.feature_statistics(features)
    assert metrics.frechet_distance(*stats, *stats) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_against_closed_forms():
    # commuting (diagonal) covariances: ||mu1-mu2||^2 + sum (sqrt(a) - sqrt(b))^2
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    d = metrics.frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert d == pytest.approx(5.0 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2), rel=1e-10)


def test_frechet_distance_against_scipy_on_random_features():
    from scipy import linalg

    rng = np.random.default_rng(10)
    f1, f2 = rng.standard_normal((200, 8)), rng.standard_normal((300, 8)) @ rng.random((8, 8))
    mu1, s1 = f1.mean(0), np.cov(f1, rowvar=False)
    mu2, s2 = f2.mean(0), np.cov(f2, rowvar=False)
    # the same quantity through S1^(1/2) S2 S1^(1/2), a symmetric form of the cross term
    r1 = linalg.sqrtm(s1).real
    cross = np.trace(linalg.sqrtm(r1 @ s2 @ r1).real)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * cross
    stats1, stats2 = metrics.feature_statistics(f1), metrics.feature_statistics(f2)
    assert metrics.frechet_distance(*stats1, *stats2) == pytest.approx(expected, rel=1e-8)
