"""wgangp_mnist.py as a user runs it: train -> eval -> export -> infer, and bad input."""

import json

import numpy as np
import pytest
from mnist_files import write_idx_dir, write_pkl

from conftest import one_error_line, run_script

TINY = [
    "MODEL.dim=4",
    "MODEL.noise_dim=16",
    "TRAIN.batch_size=16",
    "EVAL.classifier_epochs=1",
    "EVAL.num_samples=100",
    "EVAL.batch_size=50",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_idx_dir(str(tmp_path_factory.mktemp("mnist")))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    run_dir = tmp_path_factory.mktemp("train")
    result = run_script(
        "wgangp_mnist.py",
        *TINY,
        "TRAIN.epochs=2",
        "TRAIN.iters_per_epoch=2",
        "TRAIN.metric_samples=60",
        f"DATA.data_path={data_dir}",
        f"hydra.run.dir={run_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_train_outputs(trained):
    for name in [
        "model_generator.pdparams",
        "model_discriminator.pdparams",
        "losses.png",
        "mnist_classifier.pdparams",
        "plots/epoch_0001.png",
        "plots/epoch_0002.png",
        "samples.png",
    ]:
        assert (trained / name).stat().st_size > 0, name
    history = json.loads((trained / "losses.json").read_text())
    assert [h["iteration"] for h in history] == [2, 4]
    assert all(1 <= h["inception_score"] <= 10 and h["frechet_distance"] >= 0 for h in history)
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["num_samples"] == 100
    for part in ("generated", "real_test_digits"):
        assert 1 <= metrics[part]["inception_score"] <= 10
        assert sum(metrics[part]["class_histogram"]) == 100
    samples = np.load(trained / "samples.npz")["samples"]
    assert samples.shape == (100, 784) and 0 <= samples.min() and samples.max() <= 1


def test_eval_export_infer_round_trip(trained, data_dir, tmp_path):
    weights = trained / "model_generator.pdparams"
    ev = run_script(
        "wgangp_mnist.py",
        "mode=eval",
        *TINY,
        f"DATA.data_path={data_dir}",
        f"EVAL.pretrained_gen_model_path={weights}",
        f"hydra.run.dir={tmp_path / 'eval'}",
    )
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert "Training the metric's MNIST classifier" not in ev.stdout + ev.stderr  # reused
    samples = np.load(tmp_path / "eval" / "samples.npz")["samples"]
    np.testing.assert_array_equal(samples, np.load(trained / "samples.npz")["samples"])
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == json.loads(
        (trained / "metrics.json").read_text()
    )

    prefix = tmp_path / "export" / "generator"
    ex = run_script(
        "wgangp_mnist.py",
        "mode=export",
        *TINY,
        f"INFER.pretrained_model_path={weights}",
        f"INFER.export_path={prefix}",
        f"hydra.run.dir={tmp_path / 'export_run'}",
    )
    assert ex.returncode == 0, ex.stderr[-3000:]

    inf = run_script(
        "wgangp_mnist.py",
        "mode=infer",
        *TINY,
        f"DATA.data_path={data_dir}",
        f"EVAL.classifier_path={trained / 'mnist_classifier.pdparams'}",
        f"INFER.export_path={prefix}",
        f"hydra.run.dir={tmp_path / 'infer'}",
    )
    assert inf.returncode == 0, inf.stderr[-3000:]
    inferred = np.load(tmp_path / "infer" / "samples.npz")["samples"]
    np.testing.assert_allclose(inferred, samples, rtol=1e-4, atol=1e-5)


def test_the_seed_format_trains_too(tmp_path):
    path = write_pkl(str(tmp_path / "mnist.pkl.gz"))
    result = run_script(
        "wgangp_mnist.py",
        *TINY,
        "TRAIN.epochs=1",
        "TRAIN.iters_per_epoch=1",
        "TRAIN.eval_during_train=false",
        f"DATA.data_path={path}",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "metrics.json").exists()


def test_missing_data_is_one_clear_line(tmp_path):
    line = one_error_line(
        run_script(
            "wgangp_mnist.py",
            f"DATA.data_path={tmp_path}/nope.pkl.gz",
            f"hydra.run.dir={tmp_path / 'run'}",
        )
    )
    assert "DATA.data_path=" in line and "mnist.pkl.gz" in line


def test_weights_of_the_toy_example_are_refused(trained, tmp_path, data_dir):
    toy = run_script(
        "wgangp_toy.py",
        "TRAIN.epochs=1",
        "TRAIN.iters_per_epoch=1",
        "EVAL.num_samples=50",
        "MODEL.hidden_size=8",
        f"hydra.run.dir={tmp_path / 'toy'}",
    )
    assert toy.returncode == 0, toy.stderr[-2000:]
    line = one_error_line(
        run_script(
            "wgangp_mnist.py",
            "mode=eval",
            *TINY,
            f"DATA.data_path={data_dir}",
            f"EVAL.pretrained_gen_model_path={tmp_path / 'toy' / 'model_generator.pdparams'}",
            f"hydra.run.dir={tmp_path / 'eval'}",
        )
    )
    assert "EVAL.pretrained_gen_model_path" in line and (
        "holds the weights of the toy example's generator, not of the MNIST example's "
        "generator; give it to examples/wgangp/wgangp_toy.py." in line
    ), line
