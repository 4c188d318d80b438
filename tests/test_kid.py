"""KID against its definition (Binkowski et al. 2018), computed independently with loops."""

import numpy as np
import pytest

from gankit import metrics


def kid_by_definition(x, y):
    """The unbiased MMD^2 estimate with k(a, b) = (a.b / d + 1)^3, pair by pair."""
    m, d = len(x), x.shape[1]

    def k(a, b):
        return (sum(float(p) * float(q) for p, q in zip(a, b)) / d + 1) ** 3

    within_x = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    within_y = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    cross = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (within_x + within_y) / (m * (m - 1)) - 2 * cross / m**2


def test_kid_is_the_unbiased_mmd_of_the_cubic_polynomial_kernel():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 5)).astype("float32")
    y = (rng.standard_normal((12, 5)) * 1.5 + 0.7).astype("float32")
    # one subset of all rows: the estimate of the whole sets (the order does not matter)
    mean, std = metrics.kernel_inception_distance(x, y, subsets=1, subset_size=100)
    assert mean == pytest.approx(kid_by_definition(x, y), rel=1e-9)
    assert std == 0.0


# (sizes of x and y, subsets, subset size): 3 subsets of 8 are computed subset by subset;
# 50 subsets of 8 of 10 and 12 rows read their sums from the whole kernel matrices, the
# per-epoch check's path (1 000 samples), where that costs less
@pytest.mark.parametrize("sizes, subsets, m", [((30, 20), 3, 8), ((10, 12), 50, 8)])
def test_kid_subsets_are_drawn_without_replacement_from_each_set(sizes, subsets, m):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((sizes[0], 3)), rng.standard_normal((sizes[1], 3)) * 0.5 + 1
    mean, std = metrics.kernel_inception_distance(x, y, subsets=subsets, subset_size=m, seed=5)
    choice = np.random.default_rng(5)
    expected = []
    for _ in range(subsets):
        a = x[choice.choice(sizes[0], m, replace=False)]
        b = y[choice.choice(sizes[1], m, replace=False)]
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
        kids.append(metrics.kernel_inception_distance(x, y, subsets=1)[0])
        fids.append(
            metrics.frechet_distance(*metrics.feature_statistics(x), *metrics.feature_statistics(y))
        )
    assert abs(np.mean(kids)) < 3 * np.std(kids) / np.sqrt(len(kids))
    assert np.mean(fids) > 10 * np.std(fids) / np.sqrt(len(fids))
    # and a shifted distribution is told apart
    shifted = [
        metrics.kernel_inception_distance(
            rng.standard_normal((20, 4)), rng.standard_normal((20, 4)) + 1, subsets=1
        )[0]
        for _ in range(20)
    ]
    assert np.mean(shifted) > 10 * np.std(kids)


def test_kid_needs_two_samples_in_each_set():
    with pytest.raises(ValueError, match="at least 2"):
        metrics.kernel_inception_distance(np.ones((1, 3)), np.ones((5, 3)))


def test_a_reference_scored_again_gives_the_same_kid_and_a_changed_one_its_own():
    """The reference's within-subset sums are kept between checks: scoring new samples
    against the same reference matches the definition, and a reference changed in place
    (the same array, other values) is scored afresh."""
    rng = np.random.default_rng(3)
    reference = rng.standard_normal((10, 3))
    for _ in range(2):  # the second call reads the kept sums
        x = rng.standard_normal((10, 3)) + 0.3
        mean, _ = metrics.kernel_inception_distance(x, reference, subsets=1)
        assert mean == pytest.approx(kid_by_definition(x, reference), rel=1e-9)
    reference *= 2.0
    mean, _ = metrics.kernel_inception_distance(x, reference, subsets=1)
    assert mean == pytest.approx(kid_by_definition(x, reference), rel=1e-9)
