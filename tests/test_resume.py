"""Checkpoints: a run killed with SIGKILL and resumed ends bit for bit where an
uninterrupted run ends (CPU), and bad checkpoints are refused clearly."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import EXAMPLE_DIR, one_error_line, run_script
from gankit import checkpoints, files
from gankit.errors import UsageError

RUN = [
    "TRAIN.epochs=6",
    "TRAIN.iters_per_epoch=25",
    "TRAIN.batch_size=64",
    "MODEL.hidden_size=64",
    "EVAL.num_samples=200",
    "TRAIN.save_freq=2",
]


def saved_weights(run_dir):
    out = {}
    for name in ("model_generator.pdparams", "model_discriminator.pdparams"):
        for key, value in files.read_pdparams(str(run_dir / name)).items():
            out[f"{name}:{key}"] = value
    return out


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("whole")
    result = run_script("wgangp_toy.py", *RUN, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_every_epoch_writes_latest_and_numbered_checkpoints(uninterrupted):
    names = sorted(os.listdir(uninterrupted / "checkpoints"))
    assert names == ["epoch_2.pdckpt", "epoch_4.pdckpt", "epoch_6.pdckpt", "latest.pdckpt"]


def test_killed_and_resumed_run_ends_bit_for_bit_like_the_whole_run(uninterrupted, tmp_path):
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [
            sys.executable,
            os.path.join(EXAMPLE_DIR, "wgangp_toy.py"),
            *RUN,
            f"hydra.run.dir={killed}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "epoch_2.pdckpt").exists() and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert not (killed / "checkpoints" / "epoch_6.pdckpt").exists()  # it really stopped early

    resumed = tmp_path / "resumed"
    result = run_script(
        "wgangp_toy.py",
        *RUN,
        f"TRAIN.checkpoint_path={killed}/checkpoints/latest",
        f"hydra.run.dir={resumed}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resumed from" in (resumed / "train.log").read_text()
    whole, again = saved_weights(uninterrupted), saved_weights(resumed)
    assert whole.keys() == again.keys()
    for key in whole:
        np.testing.assert_array_equal(again[key], whole[key], err_msg=key)
    # the epoch log carries on too: the same losses, epoch by epoch (timings aside)
    timing = ("seconds", "iters_per_second")
    log = [json.loads((d / "losses.json").read_text()) for d in (uninterrupted, resumed)]
    assert [{k: v for k, v in h.items() if k not in timing} for h in log[1]] == [
        {k: v for k, v in h.items() if k not in timing} for h in log[0]
    ]


def test_checkpoint_of_another_model_is_refused(uninterrupted, tmp_path):
    line = one_error_line(
        run_script(
            "wgangp_toy.py",
            *RUN[:-2],
            "MODEL.hidden_size=32",
            "EVAL.num_samples=200",
            f"TRAIN.checkpoint_path={uninterrupted}/checkpoints/latest",
            f"hydra.run.dir={tmp_path}",
        )
    )
    # the checkpoint's settings name the difference before its weights are read
    assert "TRAIN.checkpoint_path=" in line and "MODEL.hidden_size 64 -> 32" in line
    assert "TRAIN.resume_with_changes=true" in line
    # with TRAIN.resume_with_changes, the weights themselves do not fit: refused too
    line = one_error_line(
        run_script(
            "wgangp_toy.py",
            *RUN[:-2],
            "MODEL.hidden_size=32",
            "EVAL.num_samples=200",
            "TRAIN.resume_with_changes=true",
            f"TRAIN.checkpoint_path={uninterrupted}/checkpoints/latest",
            f"hydra.run.dir={tmp_path}",
        )
    )
    assert "TRAIN.checkpoint_path=" in line and "does not fit this model" in line


def test_a_checkpoint_from_before_a_setting_existed_resumes_at_its_earlier_value(capsys):
    """A setting added later (checkpoints.ADDED) and absent from an older checkpoint's
    settings counts as the value that computes what the older version did."""
    now = {
        "seed": 1,
        "TRAIN.lr_decay_power": 1.0,
        "TRAIN.ema_start": 0.25,
        "TRAIN.critic_learning_rate": None,
    }
    older = {"seed": 1}
    checkpoints.check_settings("old/latest", older, now, with_changes=False)  # no change
    with pytest.raises(UsageError):
        checkpoints.check_settings(
            "old/latest", older, {**now, "TRAIN.lr_decay_power": 2.0}, with_changes=False
        )
    assert "TRAIN.lr_decay_power 1.0 -> 2.0" in capsys.readouterr().err
    # a script without the setting (the toy has no ema_start) gains nothing from the rule
    checkpoints.check_settings("old/latest", older, {"seed": 1}, with_changes=False)
    with pytest.raises(UsageError):
        checkpoints.check_settings("old/latest", older, {**now, "seed": 2}, with_changes=False)
    error = capsys.readouterr().err
    assert "seed 1 -> 2" in error and "TRAIN.lr_decay_power" not in error


def test_missing_checkpoint(tmp_path):
    line = one_error_line(
        run_script(
            "wgangp_toy.py",
            *RUN,
            f"TRAIN.checkpoint_path={tmp_path}/nope",
            f"hydra.run.dir={tmp_path / 'run'}",
        )
    )
    assert "no such checkpoint" in line and "checkpoints/latest" in line


def test_a_kill_while_saving_never_breaks_the_latest_checkpoint(tmp_path, monkeypatch):
    import pickle

    import paddle

    layer = paddle.nn.Linear(2, 2)
    checkpoints.save_checkpoint(str(tmp_path), 0, [{"epoch": 1}], {"generator": layer}, {})

    def dies_halfway(obj, f, protocol=None):
        f.write(b"\x80\x04partial")
        raise KeyboardInterrupt  # stands in for the process being killed mid-write

    monkeypatch.setattr(pickle, "dump", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.save_checkpoint(
            str(tmp_path), 0, [{"epoch": 1}, {"epoch": 2}], {"generator": layer}, {}
        )
    monkeypatch.undo()
    history, partial = checkpoints.load_checkpoint(
        str(tmp_path / "checkpoints" / "latest"), {"generator": layer}, {}
    )
    assert history == [{"epoch": 1}] and partial is None  # the previous checkpoint, intact


def test_divergence_after_a_checkpoint_keeps_it(uninterrupted, tmp_path):
    before = (uninterrupted / "checkpoints" / "latest.pdckpt").read_bytes()
    # an absurd learning rate (a NaN one is refused by the settings' schema) diverges at once
    result = run_script(
        "wgangp_toy.py",
        *RUN[:-1],
        "TRAIN.epochs=7",
        "TRAIN.learning_rate=1e30",
        "TRAIN.resume_with_changes=true",
        f"TRAIN.checkpoint_path={uninterrupted}/checkpoints/latest",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 3
    assert "iteration 151;" in result.stderr  # the first of epoch 7
    assert (uninterrupted / "checkpoints" / "latest.pdckpt").read_bytes() == before
    assert not (tmp_path / "checkpoints").exists()
