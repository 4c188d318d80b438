"""wgangp_toy.py as a user runs it: train -> eval -> export -> infer, and bad input."""

import json

import numpy as np
import pytest

from conftest import EXAMPLE_DIR, one_error_line, run_script

SHORT = [
    "TRAIN.epochs=2",
    "TRAIN.iters_per_epoch=3",
    "TRAIN.batch_size=32",
    "EVAL.num_samples=300",
    "MODEL.hidden_size=32",
]


def run(*overrides, cwd=None):
    return run_script("wgangp_toy.py", *overrides, cwd=cwd)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("train")
    result = run(*SHORT, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_train_writes_weights_plots_losses_and_metrics(trained):
    for name in [
        "model_generator.pdparams",
        "model_discriminator.pdparams",
        "losses.png",
        "samples.png",
        "plots/epoch_0001.png",
        "plots/epoch_0002.png",
        "train.log",
    ]:
        assert (trained / name).stat().st_size > 0, name
    history = json.loads((trained / "losses.json").read_text())
    assert [h["iteration"] for h in history] == [3, 6]
    assert all(
        np.isfinite(h[k])
        for h in history
        for k in ["critic_loss", "generator_loss", "wasserstein", "gradient_penalty"]
    )
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["num_samples"] == 300 and metrics["modes_total"] == 8
    assert np.load(trained / "samples.npz")["samples"].shape == (300, 2)
    log = (trained / "train.log").read_text()
    assert "[Train][Epoch 2/2][Iter 6]" in log and "gradient_penalty" in log


def test_eval_export_infer_round_trip(trained, tmp_path):
    weights = trained / "model_generator.pdparams"
    ev = run(
        "mode=eval",
        "EVAL.num_samples=300",
        "MODEL.hidden_size=32",
        f"EVAL.pretrained_gen_model_path={weights}",
        f"EVAL.pretrained_dis_model_path={trained / 'model_discriminator.pdparams'}",
        f"hydra.run.dir={tmp_path / 'eval'}",
    )
    assert ev.returncode == 0, ev.stderr[-3000:]
    # the same weights and noise seed as the end of training: the same samples
    samples = np.load(tmp_path / "eval" / "samples.npz")["samples"]
    np.testing.assert_array_equal(samples, np.load(trained / "samples.npz")["samples"])
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == json.loads(
        (trained / "metrics.json").read_text()
    )

    prefix = tmp_path / "export" / "generator"
    ex = run(
        "mode=export",
        "MODEL.hidden_size=32",
        f"INFER.pretrained_model_path={weights}",
        f"INFER.export_path={prefix}",
        f"hydra.run.dir={tmp_path / 'export_run'}",
    )
    assert ex.returncode == 0, ex.stderr[-3000:]
    assert (tmp_path / "export" / "generator.pdiparams").exists()

    inf = run(
        "mode=infer",
        "EVAL.num_samples=300",
        f"INFER.export_path={prefix}",
        f"hydra.run.dir={tmp_path / 'infer'}",
    )
    assert inf.returncode == 0, inf.stderr[-3000:]
    inferred = np.load(tmp_path / "infer" / "samples.npz")["samples"]
    np.testing.assert_allclose(inferred, samples, rtol=1e-4, atol=1e-5)
    assert (tmp_path / "infer" / "samples.png").exists()


def test_runs_from_the_example_directory_too(tmp_path):
    result = run("mode=eval", f"hydra.run.dir={tmp_path}", cwd=EXAMPLE_DIR)
    # no weights given: a one-line usage error, proving the config was found
    assert "EVAL.pretrained_gen_model_path is not set" in one_error_line(result)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["DATA.mode=9gaussians"],
            "DATA.mode='9gaussians': use 8gaussians, 25gaussians or swissroll.",
        ),
        (["mode=tune"], "mode='tune': use train, eval, export or infer."),
        (["TRAIN.n_critic=0"], "TRAIN.n_critic=0 must be a positive integer"),
        (["TRAIN.batch_size=-4"], "TRAIN.batch_size=-4 must be an integer >= 2"),
        (["TRAIN.epochs=0"], "TRAIN.epochs=0 must be a positive integer"),
        (["TRAIN.iters_per_epoch=0"], "TRAIN.iters_per_epoch=0 must be a positive integer"),
        (
            ["mode=eval", "EVAL.pretrained_gen_model_path=/nonexistent/gen.pdparams"],
            "EVAL.pretrained_gen_model_path: no such file: /nonexistent/gen.pdparams",
        ),
        (
            ["mode=infer", "INFER.export_path=/nonexistent/gen"],
            "INFER.pdmodel_path: no such file: /nonexistent/gen.json",
        ),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, overrides, message):
    assert message in one_error_line(run(*overrides, f"hydra.run.dir={tmp_path}"))


@pytest.mark.parametrize(
    "rate, advice",
    [
        ("TRAIN.learning_rate=1e30", "Lower TRAIN.learning_rate or check the data."),
        (
            "TRAIN.critic_learning_rate=1e30",
            "Lower TRAIN.learning_rate or TRAIN.critic_learning_rate or check the data.",
        ),
    ],
)
def test_nan_loss_stops_the_run_with_one_line(tmp_path, rate, advice):
    # an absurd learning rate: the critic's weights, then its loss, overflow in iteration 1
    result = run(*SHORT, rate, f"hydra.run.dir={tmp_path}")
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "diverged" in errors[0] and "iteration 1;" in errors[0]
    assert errors[0].endswith(advice)
    assert not (tmp_path / "model_generator.pdparams").exists()  # nothing bad was saved


def test_run_dir_that_is_not_writable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    line = one_error_line(run(*SHORT, f"hydra.run.dir={blocker}/run"))
    assert "is not a writable directory" in line and "hydra.run.dir=" in line


def test_an_earlier_run_is_never_overwritten(trained):
    before = (trained / "model_generator.pdparams").read_bytes()
    line = one_error_line(run(*SHORT, f"hydra.run.dir={trained}"))
    assert "already holds an earlier run" in line
    assert (trained / "model_generator.pdparams").read_bytes() == before
