"""benchmarks/inception_real.py's plumbing, on a tiny fake CIFAR-10 tarball and a small
random stand-in for the Inception network (the real run needs the data and weights)."""

import importlib.util
import json
import os

import paddle
import pytest
from cifar_files import write_tarball

from gankit import datasets, metrics
from gankit.inception import weights as inception_weights

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_benchmark():
    spec = importlib.util.spec_from_file_location(
        "inception_real", os.path.join(ROOT, "benchmarks", "inception_real.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class StandIn(paddle.nn.Layer):
    """(features, logits) of 4x4-pooled pixels through a random linear map."""

    protocol = "stand-in"

    def __init__(self):
        super().__init__()
        paddle.seed(0)
        self.fc = paddle.nn.Linear(48, 10)

    def forward(self, images):
        features = paddle.nn.functional.avg_pool2d(images, 8).reshape([images.shape[0], -1])
        return features, 20 * self.fc(features)


@pytest.fixture
def standin(monkeypatch):
    net, calls = StandIn(), []

    def load(*args):
        calls.append(args)
        return net

    monkeypatch.setattr(inception_weights, "load_inception", load)
    return net, calls


def test_scores_the_training_images_beside_the_papers_row(tmp_path, standin, capsys):
    net, calls = standin
    tarball = write_tarball(str(tmp_path / "cifar-10-python.tar.gz"))
    out = tmp_path / "result.json"
    result = load_benchmark().main(
        ["--data", tarball, "--md5", "none", "--batch-size", "64", "--json", str(out)]
    )
    assert calls == [("tf2015", None, "tf_graph")]  # the default protocol, default weights
    images = datasets.load_cifar10(tarball, None)["train"][0]
    with paddle.no_grad():
        _, logits = net(paddle.to_tensor(images.astype("float32") / 255))
    probs = paddle.nn.functional.softmax(logits, axis=1).numpy()
    expected = metrics.inception_score(probs, splits=10)
    assert result["num_images"] == 300 and result["splits"] == 10
    assert (result["inception_score"], result["inception_score_std"]) == pytest.approx(
        expected, rel=1e-5
    )
    assert 1 < result["inception_score"] < 10
    printed = capsys.readouterr().out
    assert "11.24 ± 0.12" in printed and f"{expected[0]:.2f} ± {expected[1]:.2f}" in printed
    assert "CIFAR-10 train, 300 | tf2015 (stand-in) | 10" in printed
    assert json.loads(out.read_text())["paper_real_data"] == [11.24, 0.12]


def test_limit_and_other_network(tmp_path, standin, capsys):
    tarball = write_tarball(str(tmp_path / "c.tar.gz"))
    result = load_benchmark().main(
        [
            "--data",
            tarball,
            "--md5",
            "none",
            "--limit",
            "100",
            "--splits",
            "5",
            "--inception",
            "paddle",
        ]
    )
    assert result["num_images"] == 100 and standin[1] == [("paddle", None)]
    assert "not the papers' protocol" in capsys.readouterr().out


def test_missing_weights_is_one_error_line(tmp_path, monkeypatch, capsys):
    def offline(*args):
        raise ValueError("The tf2015 Inception's weights could not be downloaded")

    monkeypatch.setattr(inception_weights, "load_inception", offline)
    tarball = write_tarball(str(tmp_path / "c.tar.gz"))
    with pytest.raises(SystemExit) as info:
        load_benchmark().main(["--data", tarball, "--md5", "none"])
    assert info.value.code == 2
    assert (
        "ERROR: --inception tf2015: The tf2015 Inception's weights could not be downloaded"
        in capsys.readouterr().err
    )
