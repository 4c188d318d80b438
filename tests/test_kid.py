"""KID against its definition (Binkowski et al. 2018), computed independently with loops."""

import functions
import numpy as np
import pytest


def kid_by_definition(x, y):
    """The unbiased MMD^2 estimate with k(a, b) = (a.b / d + 1)^3, pair by pair."""
    m, d = len(x), x.shape[1]

    def k(a, b):
        return (sum(float(p) * float(q) for p, q in zip(a, b)) / d + 1) ** 3

    within_x = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    within_y = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    cross = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (within_x + within_y) / (m * (m - 1)) - 2 * cross / m ** 2


def test_kid_is_the_unbiased_mmd_of_the_cubic_polynomial_kernel():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 5)).astype("float32")
    y = (rng.standard_normal((12, 5)) * 1.5 + 0.7).astype("float32")
    # one subset of all rows: the estimate of the whole sets (the order does not matter)
    mean, std = functions.kernel_inception_distance(x, y, subsets=1, subset_size=100)
    assert mean == pytest.approx(kid_by_definition(x, y), rel=1e-9)
    assert std == 0.0


def test_kid_subsets_are_drawn_without_replacement_from_each_set():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((30, 3)), rng.standard_normal((20, 3)) + 1
    mean, std = functions.kernel_inception_distance(x, y, subsets=3, subset_size=8, seed=5)
    choice = np.random.default_rng(5)
    expected = []
    for _ in range(3):
        a, b = x[choice.choice(30, 8, replace=False)], y[choice.choice(20, 8, replace=False)]
        expected.append(kid_by_definition(a, b))
    assert mean == pytest.approx(np.mean(expected), rel=1e-9)
    assert std == pytest.approx(np.std(expected), rel=1e-7)


def test_kid_from_whole_kernel_matrices_is_the_subsets_estimate():
    """Many subsets of small sets: the sums are read from the whole kernel matrices (the
    per-epoch check's path), and equal the definition subset by subset."""
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((10, 3)), rng.standard_normal((12, 3)) * 0.5 + 0.3
    mean, std = functions.kernel_inception_distance(x, y, subsets=50, subset_size=8, seed=7)
    choice = np.random.default_rng(7)
    expected = []
    for _ in range(50):
        a, b = x[choice.choice(10, 8, replace=False)], y[choice.choice(12, 8, replace=False)]
        expected.append(kid_by_definition(a, b))
    assert mean == pytest.approx(np.mean(expected), rel=1e-9)
    assert std == pytest.approx(np.std(expected), rel=1e-7)


def test_kid_is_unbiased_where_the_frechet_distance_is_not():
    """Two samples of one distribution: KID's mean over many small sets is 0 within its
    standard error; the Frechet distance of the same sets is clearly positive."""
    rng = np.random.default_rng(2)
    kids, fids = [], []
    for _ in range(200):
        x, y = rng.standard_normal((20, 4)), rng.standard_normal((20, 4))
        kids.append(functions.kernel_inception_distance(x, y, subsets=1)[0])
        fids.append(functions.frechet_distance(*functions.feature_statistics(x),
                                               *functions.feature_statistics(y)))
    assert abs(np.mean(kids)) < 3 * np.std(kids) / np.sqrt(len(kids))
    assert np.mean(fids) > 10 * np.std(fids) / np.sqrt(len(fids))
    # and a shifted distribution is told apart
    shifted = [functions.kernel_inception_distance(rng.standard_normal((20, 4)),
                                                   rng.standard_normal((20, 4)) + 1,
                                                   subsets=1)[0] for _ in range(20)]
    assert np.mean(shifted) > 10 * np.std(kids)


def test_kid_needs_two_samples_in_each_set():
    with pytest.raises(ValueError, match="at least 2"):
        functions.kernel_inception_distance(np.ones((1, 3)), np.ones((5, 3)))
