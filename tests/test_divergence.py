"""A run that explodes without NaN: its losses or gradient norms leave any sane range
(divergence_bound). It stopped only on NaN, and TRAIN.learning_rate=1e3 ended with "Done",
exit 0 and garbage weights."""

import os
import pickle
import re
import subprocess
import sys

from test_faults import SCRIPT, TOY

from conftest import run_script


def error_line(result):
    assert result.returncode == 3, result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    assert "Done" not in result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, result.stderr[-3000:]
    return errors[0]


def test_a_learning_rate_that_explodes_without_nan_stops_at_once(tmp_path):
    result = run_script(
        "wgangp_toy.py",
        *TOY,
        "TRAIN.epochs=2",
        "TRAIN.learning_rate=1e3",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    line = error_line(result)
    assert re.match(
        r"ERROR: training diverged: the critic loss is [0-9.]+e\+\d\d at generator "
        r"iteration 1, beyond the bound of \+-1e\+06 \(divergence_bound\); no epoch "
        r"had finished, so no weights were kept\. Lower TRAIN\.learning_rate or check the "
        r"data; divergence_bound=null \(or a larger bound\) trains on regardless\.$",
        line,
    ), line
    assert not (tmp_path / "run" / "model_generator.pdparams").exists()


def test_a_user_who_knows_better_trains_on(tmp_path):
    result = run_script(
        "wgangp_toy.py",
        *TOY,
        "TRAIN.epochs=1",
        "TRAIN.iters_per_epoch=2",
        "TRAIN.learning_rate=1e3",
        "divergence_bound=null",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "metrics.json").exists()


def test_a_run_that_diverges_later_keeps_its_last_sound_checkpoint(tmp_path):
    """An unconstrained critic (no penalty) at a high rate: its gradient norms grow tenfold an
    epoch (a penalty it would have of 3e3, 4e4, 4e5, 2e6 in epochs 1 to 4 on a Zen 4) while its
    losses stay in the hundreds; the epoch whose mean leaves the bound writes no checkpoint."""
    run_dir = tmp_path / "run"
    result = run_script(
        "wgangp_toy.py",
        *TOY,
        "TRAIN.epochs=10",
        "LOSS.lambda_gp=0",
        "TRAIN.learning_rate=1e-2",
        f"hydra.run.dir={run_dir}",
    )
    line = error_line(result)
    found = re.search(
        r"training diverged: the epoch's mean (\w+) is [0-9.e+]+ at generator "
        r"iteration (\d+), beyond the bound of \+-1e\+06 \(divergence_bound\); the "
        r"last sound checkpoint, after epoch (\d+), is kept \(TRAIN\.checkpoint_path="
        r"(\S+)latest; its weights are in ",
        line,
    )
    assert found, line
    quantity, iteration, epoch = found.group(1), int(found.group(2)), int(found.group(3))
    assert quantity in ("gradient_penalty", "grad_norm_mean") and epoch >= 1
    assert iteration == (epoch + 1) * 20
    with open(run_dir / "checkpoints" / "latest.pdckpt", "rb") as f:
        state = pickle.load(f)
    assert state["epoch"] == epoch and state["partial"] is None
    assert all(abs(record["gradient_penalty"]) <= 1e6 for record in state["history"])
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "losses.json").exists()


def test_under_the_launcher_both_processes_stop_together(tmp_path):
    """Each process has the loss of its own rows; they agree, so neither waits on the other."""
    env = dict(os.environ, PYTHONWARNINGS="ignore", MKL_NUM_THREADS="1")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "paddle.distributed.launch",
            "--nproc_per_node",
            "2",
            "--log_dir",
            str(tmp_path / "logs"),
            SCRIPT,
            *TOY,
            "TRAIN.epochs=2",
            "TRAIN.learning_rate=1e3",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 3, result.stdout[-3000:]
    for log in ("workerlog.0", "workerlog.1"):
        text = (tmp_path / "logs" / log).read_text()
        assert "Traceback" not in text, text[-3000:]
        errors = [line for line in text.splitlines() if line.startswith("ERROR:")]
        assert (
            len(errors) == 1
            and "training diverged" in errors[0]
            and "at generator iteration 1," in errors[0]
        ), text[-3000:]


def test_a_process_whose_own_loss_is_sound_stops_with_the_one_whose_is_not(monkeypatch, capsys):
    """The agreement itself: this process's losses are sound, another's critic loss is not."""
    import types

    import pytest
    from omegaconf import OmegaConf

    from gankit import divergence, parallel, ppsci_adapter

    monkeypatch.setattr(parallel, "max_over_processes_of", lambda values: [3e9, values[1]])
    monkeypatch.setattr(ppsci_adapter, "largest_loss", lambda solver: 0.5)
    solver = types.SimpleNamespace()
    run = types.SimpleNamespace(
        cfg=OmegaConf.create({"divergence_bound": 1e6, "output_dir": "x", "TRAIN": {}}),
        critic_solver=solver,
        generator_solver=solver,
        history=[],
    )
    with pytest.raises(SystemExit) as stop:
        divergence.check_losses(run, 7)
    assert stop.value.code == 3
    assert (
        "training diverged: the critic loss of another process, in magnitude, is 3e+09 at "
        "generator iteration 7, beyond the bound of +-1e+06" in capsys.readouterr().err
    )
