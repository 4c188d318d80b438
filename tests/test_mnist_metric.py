"""The classifier-based MNIST metric on constructed inputs, with a classifier trained here."""

import functions
import numpy as np
import pytest

from mnist_files import synthetic_digits


@pytest.fixture(scope="module")
def classifier():
    data = {"train": synthetic_digits(2000, 1), "test": synthetic_digits(300, 2)}
    net, accuracy = functions.train_digit_classifier(data, epochs=3, seed=0)
    assert accuracy > 0.97  # the synthetic classes are easy
    return net


def reference(classifier, images):
    features, _ = functions.classify(classifier, images)
    return functions.feature_statistics(features)


def test_one_class_only_scores_one_and_covers_one_class(classifier):
    images, labels = synthetic_digits(3000, 4)
    ones = images[labels == 3][:, None]
    m = functions.digit_metrics(classifier, ones, reference(classifier, images[:, None]))
    assert m["inception_score"] == pytest.approx(1.0, abs=0.05)
    assert m["classes_covered"] == 1 and m["class_histogram"][3] == len(ones)


def test_balanced_correctly_classified_set_scores_near_ten(classifier):
    images, labels = synthetic_digits(1000, 5)
    # 50 of each class, interleaved so that each of the 10 splits holds 5 of each
    per_class = [images[labels == k][:50] for k in range(10)]
    balanced = np.stack(per_class, 1).reshape(500, 1, 28, 28)
    m = functions.digit_metrics(classifier, balanced, reference(classifier, images[:, None]))
    assert m["classes_covered"] == 10 and m["class_histogram"] == [50] * 10
    # uniform marginal: IS = 10 exp(-E[H(p(y|x))]), near 10 for a confident classifier
    _, probs = functions.classify(classifier, balanced)
    entropy = -np.sum(probs * np.log(probs), axis=1).mean()
    assert m["inception_score"] == pytest.approx(10 * np.exp(-entropy), rel=0.01)
    assert m["inception_score"] > 9.0


def test_frechet_distance_of_a_set_to_itself_is_zero(classifier):
    images = synthetic_digits(400, 6)[0][:, None]
    m = functions.digit_metrics(classifier, images, reference(classifier, images))
    assert m["frechet_distance"] == pytest.approx(0.0, abs=1e-6)
