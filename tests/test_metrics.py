"""Toy metrics on constructed inputs, and W1 against brute force."""

import itertools

import functions
import numpy as np
import pytest


def test_samples_of_the_distribution_cover_all_modes():
    dist = functions.ToyDistribution("8gaussians")
    m = functions.toy_metrics(dist.sample(2000, np.random.default_rng(0)), dist,
                              np.random.default_rng(1))
    assert m["modes_covered"] == 8 and m["modes_total"] == 8
    # within 3 sigma of a 2-D Gaussian's centre: 1 - exp(-9/2)
    assert m["high_quality_fraction"] == pytest.approx(1 - np.exp(-4.5), abs=0.01)
    assert m["w1"] < 2 * m["w1_real_floor"]


def test_one_mode_only():
    dist = functions.ToyDistribution("25gaussians")
    rng = np.random.default_rng(2)
    samples = dist.centers[7] + 0.5 * dist.sigma * rng.standard_normal((1000, 2))
    m = functions.toy_metrics(samples, dist, rng)
    assert m["modes_covered"] == 1
    assert m["mode_counts"][7] == 1000
    assert m["high_quality_fraction"] == 1.0
    assert m["w1"] > 10 * m["w1_real_floor"]


def test_scattered_points_are_not_high_quality():
    dist = functions.ToyDistribution("8gaussians")
    samples = np.random.default_rng(3).uniform(-3, 3, (4000, 2))
    m = functions.toy_metrics(samples, dist)
    # 8 discs of radius 3 sigma in a 6 x 6 square
    expected = 8 * np.pi * (3 * dist.sigma) ** 2 / 36
    assert m["high_quality_fraction"] == pytest.approx(expected, abs=0.003)
    assert m["modes_covered"] == 0
    assert "w1" not in m  # W1 only when an rng is given


def test_swissroll_quality_is_measured_against_its_spine():
    dist = functions.ToyDistribution("swissroll")
    good = functions.toy_metrics(dist.sample(1000, np.random.default_rng(4)), dist)
    bad = functions.toy_metrics(np.random.default_rng(5).uniform(-2, 2, (1000, 2)), dist)
    assert good["high_quality_fraction"] > 0.95 > 0.5 > bad["high_quality_fraction"]
    assert "modes_covered" not in good


def test_w1_of_a_shift_is_the_shift_length():
    a = np.random.default_rng(6).standard_normal((300, 2))
    assert functions.wasserstein1(a, a + [0.3, -0.4]) == pytest.approx(0.5, rel=1e-9)


def test_w1_matches_brute_force_on_small_sets():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((6, 2)), rng.standard_normal((6, 2))
    brute = min(np.mean(np.linalg.norm(a - b[list(p)], axis=1))
                for p in itertools.permutations(range(6)))
    assert functions.wasserstein1(a, b) == pytest.approx(brute, rel=1e-12)
