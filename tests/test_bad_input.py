"""Bad settings and files: one line naming the setting and what to do, never a traceback,
and never a lost, overwritten or half-written run directory."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from cifar_files import batch, write_tarball
from omegaconf import OmegaConf

from conftest import EXAMPLE_DIR, compose, one_error_line, run_script, usage_error
from gankit import datasets, startup


def config(**settings):
    """An example's settings (the first whose config has the key) with `settings` set."""
    keys = [key.replace("__", ".") for key in settings]
    for example in ("toy", "mnist", "cifar10"):
        cfg = compose(example)
        if OmegaConf.select(cfg, keys[0]) is not None or example == "cifar10":
            break
    for key, value in zip(keys, settings.values()):
        OmegaConf.update(cfg, key, value, force_add=True)
    return cfg


@pytest.mark.parametrize(
    "key, value",
    [
        ("MODEL.noise_dim", 0),
        ("MODEL.hidden_size", -1),
        ("MODEL.num_layers", 0),
        ("MODEL.dim", 0),
        ("MODEL.dim_g", -8),
        ("EVAL.num_samples", 0),
        ("EVAL.classifier_epochs", 0),
        ("log_freq", 0),
        ("TRAIN.metric_samples", -1),
        ("TRAIN.n_critic", 1.5),
        ("TRAIN.learning_rate", -1e-4),
        ("LOSS.lambda_gp", "ten"),
    ],
)
def test_numeric_settings_are_checked(capsys, key, value):
    err = usage_error(capsys, startup.check_config, config(**{key.replace(".", "__"): value}))
    assert err.startswith(f"ERROR: {key}={value!r} must be")


@pytest.mark.parametrize(
    "key, value",
    [
        ("use_amp", True),
        ("to_static", True),
        ("TRAIN.update_freq", 2),
        ("TRAIN.ema.use_ema", True),
        ("TRAIN.swa.use_swa", True),
        ("INFER.engine", "tensorrt"),
        ("INFER.precision", "fp16"),
        ("EVAL.compute_metric_by_batch", True),
        ("TRAIN.pretrained_model_path", "w.pdparams"),
    ],
)
def test_unsupported_ppsci_switches_are_refused(capsys, key, value):
    err = usage_error(capsys, startup.check_config, config(**{key.replace(".", "__"): value}))
    assert err.startswith(f"ERROR: {key}={value}:") and "not" in err


def test_unsupported_switch_from_the_command_line(tmp_path):
    line = one_error_line(run_script("wgangp_toy.py", "TRAIN.update_freq=4", cwd=tmp_path))
    assert "TRAIN.update_freq=4" in line and "TRAIN.batch_size" in line
    assert not (tmp_path / "outputs_wgangp_toy").exists()


def test_eval_pretrained_model_path_is_the_generators(capsys):
    cfg = config(EVAL__pretrained_model_path="g.pdparams", EVAL__pretrained_gen_model_path=None)
    startup.resolve_generator_alias(cfg)
    assert cfg.EVAL.pretrained_gen_model_path == "g.pdparams"
    cfg = config(EVAL__pretrained_model_path="g.pdparams", EVAL__pretrained_gen_model_path="h")
    err = usage_error(capsys, startup.resolve_generator_alias, cfg)
    assert "EVAL.pretrained_gen_model_path" in err and "disagree" in err


def test_two_runs_into_one_directory_never_mix(tmp_path):
    """Started at once: one refuses with one line, the other finishes intact."""
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        os.path.join(EXAMPLE_DIR, "wgangp_toy.py"),
        "TRAIN.epochs=1",
        "TRAIN.iters_per_epoch=2",
        "MODEL.hidden_size=16",
        "EVAL.num_samples=100",
        f"hydra.run.dir={run_dir}",
    ]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    runs = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [(run.wait(timeout=600), *run.communicate()) for run in runs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], [r[2][-2000:] for r in results]
    refused = next(err for code, _, err in results if code == 2)
    assert "Traceback" not in refused
    assert [line for line in refused.splitlines() if line.startswith("ERROR:")][0].count(
        str(run_dir)
    ) == 1
    assert (run_dir / "metrics.json").exists() and (run_dir / "model_generator.pdparams").exists()
    assert (run_dir / "train.log").read_text().count("Run directory:") == 1


def test_bad_data_path_leaves_no_run_directory(tmp_path):
    line = one_error_line(
        run_script("wgangp_mnist.py", f"DATA.data_path={tmp_path}/nowhere", cwd=tmp_path)
    )
    assert "DATA.data_path" in line
    assert not (tmp_path / "outputs_wgangp_mnist").exists()


def test_cifar_labels_saved_as_numpy_integers_load(tmp_path):
    resaved = batch(20, 5)
    resaved[b"labels"] = [np.int64(label) for label in resaved[b"labels"]]  # a re-saved copy
    path = write_tarball(str(tmp_path / "c.tar.gz"), extra={"data_batch_1": resaved})
    images, labels = datasets.load_cifar10(path, None)["train"]
    assert labels.dtype == np.int64 and labels[:20].tolist() == batch(20, 5)[b"labels"]
    pickle.loads(pickle.dumps(resaved))  # (the member really holds numpy scalars)
