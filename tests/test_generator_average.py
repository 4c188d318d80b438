"""TRAIN.ema_decay: the generator's moving average against its closed form, kept exactly
across a resume, saved, and evaluated at the end beside the generator (the same numbers as
mode=eval of the saved file)."""

import json

import numpy as np
import paddle
import pytest
from mnist_files import write_idx_dir
from test_mnist_script import TINY

from conftest import run_script
from gankit.average import GeneratorAverage


def test_the_average_starts_past_its_fraction_and_follows_the_closed_form():
    layer = paddle.nn.Linear(3, 2)
    average = GeneratorAverage(layer, decay=0.8, start=0.5)
    rng = np.random.default_rng(0)
    weights = []
    for iteration in range(1, 11):  # 10 iterations planned: starts at iteration 6
        w = rng.normal(size=(3, 2)).astype("float32")
        layer.weight.set_value(w)
        weights.append(w)
        average.update(iteration, 10)
        assert average.started == (iteration >= 6)
        if iteration == 7:  # a checkpoint's round trip mid-way
            state = {k: v.numpy() for k, v in average.state_dict().items()}
            average = GeneratorAverage(layer, decay=0.8, start=0.5)
            average.set_state_dict(state)
    # a copy of iteration 6's weights, then 0.2 of the way to each later one's
    expected = weights[5].astype("float64")
    for w in weights[6:]:
        expected = 0.8 * expected + 0.2 * w
    with average.applied():
        np.testing.assert_allclose(layer.weight.numpy(), expected, rtol=1e-5)
    np.testing.assert_array_equal(layer.weight.numpy(), weights[-1])  # its own weights back
    assert GeneratorAverage(layer, 0.8, 0.5).state_dict() == {}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_idx_dir(str(tmp_path_factory.mktemp("mnist")))


def train(data_dir, run_dir, *overrides):
    result = run_script(
        "wgangp_mnist.py",
        *TINY,
        "TRAIN.iters_per_epoch=3",
        "TRAIN.metric_samples=60",
        "TRAIN.ema_decay=0.7",
        "TRAIN.ema_start=0",
        "TRAIN.dev_freq=0",
        f"DATA.data_path={data_dir}",
        f"hydra.run.dir={run_dir}",
        *overrides,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_the_average_is_saved_resumed_exactly_and_evaluated(data_dir, tmp_path):
    whole = train(data_dir, tmp_path / "whole", "TRAIN.epochs=2")
    assert "moving average (TRAIN.ema_decay=0.7) starts at generator iteration 1" in whole.stdout
    train(data_dir, tmp_path / "half", "TRAIN.epochs=1")
    train(
        data_dir,
        tmp_path / "resumed",
        "TRAIN.epochs=2",
        f"TRAIN.checkpoint_path={tmp_path / 'half' / 'checkpoints' / 'latest'}",
    )
    for name in ("model_generator_ema", "model_generator"):
        saved = [
            paddle.load(str(tmp_path / run / f"{name}.pdparams")) for run in ("whole", "resumed")
        ]
        for key in saved[0]:
            np.testing.assert_array_equal(saved[0][key].numpy(), saved[1][key].numpy(), key)
    raw = paddle.load(str(tmp_path / "whole" / "model_generator.pdparams"))
    ema = paddle.load(str(tmp_path / "whole" / "model_generator_ema.pdparams"))
    assert any(not np.array_equal(raw[k].numpy(), ema[k].numpy()) for k in raw)

    metrics = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert metrics["generated_ema"] != metrics["generated"]
    assert (tmp_path / "whole" / "samples_ema.png").stat().st_size > 0
    assert np.load(tmp_path / "whole" / "samples_ema.npz")["samples"].shape == (100, 784)
    evaluated = run_script(
        "wgangp_mnist.py",
        "mode=eval",
        *TINY,
        f"DATA.data_path={data_dir}",
        f"EVAL.classifier_path={tmp_path / 'whole' / 'mnist_classifier.pdparams'}",
        f"EVAL.pretrained_gen_model_path={tmp_path / 'whole' / 'model_generator_ema.pdparams'}",
        f"hydra.run.dir={tmp_path / 'eval'}",
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    again = json.loads((tmp_path / "eval" / "metrics.json").read_text())["generated"]
    assert again.pop("class_histogram") == metrics["generated_ema"].pop("class_histogram")
    assert again == pytest.approx(metrics["generated_ema"], rel=1e-6)
