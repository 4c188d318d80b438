"""The classifier-based MNIST metric on constructed inputs, with a classifier trained here."""

import numpy as np
import pytest
from mnist_files import synthetic_digits

import functions
from gankit import classifier as digit_classifier
from gankit import metrics


@pytest.fixture(scope="module")
def classifier():
    data = {"train": synthetic_digits(2000, 1), "test": synthetic_digits(300, 2)}
    net, accuracy = digit_classifier.train_digit_classifier(data, epochs=3, seed=0)
    assert accuracy > 0.97  # the synthetic classes are easy
    return net


def reference(classifier, images):
    features, _ = digit_classifier.classify(classifier, images)
    return metrics.feature_statistics(features)


def test_one_class_only_scores_one_and_covers_one_class(classifier):
    images, labels = synthetic_digits(3000, 4)
    ones = images[labels == 3][:, None]
    m = digit_classifier.digit_metrics(classifier, ones, reference(classifier, images[:, None]))
    assert m["inception_score"] == pytest.approx(1.0, abs=0.05)
    assert m["classes_covered"] == 1 and m["class_histogram"][3] == len(ones)


def test_balanced_correctly_classified_set_scores_near_ten(classifier):
    images, labels = synthetic_digits(1000, 5)
    # 50 of each class, interleaved so that each of the 10 splits holds 5 of each
    per_class = [images[labels == k][:50] for k in range(10)]
    balanced = np.stack(per_class, 1).reshape(500, 1, 28, 28)
    m = digit_classifier.digit_metrics(classifier, balanced, reference(classifier, images[:, None]))
    assert m["classes_covered"] == 10 and m["class_histogram"] == [50] * 10
    # uniform marginal: IS = 10 exp(-E[H(p(y|x))]), near 10 for a confident classifier
    _, probs = digit_classifier.classify(classifier, balanced)
    entropy = -np.sum(probs * np.log(probs), axis=1).mean()
    assert m["inception_score"] == pytest.approx(10 * np.exp(-entropy), rel=0.01)
    assert m["inception_score"] > 9.0


def test_frechet_distance_of_a_set_to_itself_is_zero(classifier):
    images = synthetic_digits(400, 6)[0][:, None]
    m = digit_classifier.digit_metrics(classifier, images, reference(classifier, images))
    assert m["frechet_distance"] == pytest.approx(0.0, abs=1e-6)


def test_memorising_the_training_digits_gains_nothing_against_held_out_digits(classifier):
    """A 'generator' that returns training digits is at distance 0 from the training set, but
    against the held-out digits it scores exactly the real floor (training vs held-out)."""
    data = {"train": synthetic_digits(600, 7), "test": synthetic_digits(600, 8)}
    references = digit_classifier.digit_references(classifier, data, 300)
    real = {split: data[split][0][:, None] for split in ("test", "train")}
    metric = functions.DigitMetrics(classifier, references, real)
    metric({"fake": data["train"][0][:300, None]})  # the first 300 training digits, memorised
    generated, floor = metric.results["generated"], metric.results["real_training_digits"]
    assert generated["frechet_distance_to_training"] == pytest.approx(0.0, abs=1e-6)
    assert generated["frechet_distance"] == pytest.approx(floor["frechet_distance"], rel=1e-9)
    assert generated["kid"] == pytest.approx(floor["kid"], rel=1e-9)
    assert floor["frechet_distance"] > 1e-3  # two draws differ
    # the distance to held-out digits, recomputed from the classifier's features
    held_out, _ = digit_classifier.classify(classifier, data["test"][0][:300, None])
    fake, _ = digit_classifier.classify(classifier, data["train"][0][:300, None])
    expected = metrics.frechet_distance(
        *metrics.feature_statistics(fake), *metrics.feature_statistics(held_out)
    )
    assert generated["frechet_distance"] == pytest.approx(expected, rel=1e-9)
    # the held-out digits' own row is the Inception Score's ceiling, with no distance
    assert "frechet_distance" not in metric.results["real_test_digits"]
    assert metric.results["real_test_digits"]["inception_score"] > 1


def test_the_metric_classifier_is_the_same_whatever_the_runs_seed(tmp_path):
    """EVAL.classifier_seed, not the run's seed, trains the classifier: runs with other seeds
    are scored by one classifier, so their numbers compare; another classifier_seed gives
    another classifier (so the check can fail)."""
    from omegaconf import OmegaConf

    data = {"train": synthetic_digits(600, 9), "test": synthetic_digits(100, 10)}

    def classifier_weights(seed, classifier_seed):
        out = tmp_path / f"run_{seed}_{classifier_seed}"
        out.mkdir()
        cfg = OmegaConf.create(
            {
                "seed": seed,
                "output_dir": str(out),
                "EVAL": {
                    "classifier_path": None,
                    "pretrained_gen_model_path": None,
                    "classifier_epochs": 1,
                    "classifier_seed": classifier_seed,
                },
            }
        )
        net, _ = digit_classifier.mnist_classifier(cfg, data)
        assert (out / "mnist_classifier.pdparams").is_file()  # cached in the run directory
        return {k: v.numpy() for k, v in net.state_dict().items()}

    seed_1, seed_2 = classifier_weights(1, 42), classifier_weights(2, 42)
    assert all(np.array_equal(seed_1[k], seed_2[k]) for k in seed_1)
    other = classifier_weights(1, 43)
    assert not all(np.array_equal(seed_1[k], other[k]) for k in seed_1)
