"""TRAIN.minutes as a user types it: a plan after a few timed iterations, the learning-rate
decay spanning the plan, the plan in the log, losses.json and the checkpoint, reproduced by
TRAIN.epochs, kept on resume, shared by the processes of a launched run, and following the
machine when its pace changes (TRAIN.replan)."""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_as_typed import printed_run_dir, shell
from test_faults import assert_same_run, start, wait_for

from conftest import EXAMPLE_DIR, compose, run_script
from gankit.budget import plan_epochs, replan_epochs, rescaled_rate

# the toy at a size whose iterations take tens of milliseconds; 0.4 minutes hold a few epochs
TOY = (
    "MODEL.hidden_size=32 TRAIN.batch_size=32 EVAL.num_samples=100 log_freq=5 "
    "TRAIN.iters_per_epoch=20 TRAIN.lr_decay=true TRAIN.learning_rate=1e-3 seed=3"
)
PLANNED = re.compile(
    r"(\d+) iterations planned \((\d+) epochs of (\d+)\) for TRAIN.minutes=0.4: "
    r"(\S+) s per iteration measured, (\S+) s per epoch's end"
)
REPLANNED = re.compile(
    r"Re-planned after epoch (\d+) at \S+ minutes: the last epochs took \S+ s "
    r"each, so (\d+) epochs of (\d+) fit TRAIN.minutes=0.4 instead of (\d+)"
)


def records(run_dir):
    return json.loads((run_dir / "losses.json").read_text())


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    """The toy trained for TRAIN.minutes=0.4, as typed (no hydra.run.dir), on its first plan
    (the toy's half-second epochs vary enough to re-plan)."""
    cwd = tmp_path_factory.mktemp("planned")
    out = shell(
        f"python {EXAMPLE_DIR}/wgangp_toy.py {TOY} TRAIN.minutes=0.4 TRAIN.replan=false", cwd
    )
    return out, printed_run_dir(out)


def test_a_budget_plans_the_run_and_the_decay_reaches_zero_at_its_end(planned):
    out, run_dir = planned
    found = PLANNED.findall(out)
    assert len(found) == 1, out[-3000:]
    iterations, epochs, length = (int(x) for x in found[0][:3])
    # epochs of at least TRAIN.iters_per_epoch=20, lengthened to fill the budget
    assert iterations == length * epochs and epochs >= 2 and length >= 20
    assert float(found[0][3]) > 0
    assert f"TRAIN.epochs={epochs} TRAIN.iters_per_epoch={length} repeats this length." in out
    assert "Re-planned" not in out
    assert "as many as fit TRAIN.minutes=0.4, planned after 8 timed ones" in out
    log = records(Path(run_dir))
    assert len(log) == epochs
    assert [r["planned_iterations"] for r in log] == [iterations] * epochs
    assert [r["iteration"] for r in log] == [length * (e + 1) for e in range(epochs)]
    # linear decay over the planned steps: one epoch's share of 1e-3 is left before the last
    # epoch's steps, none after it (ppsci's Linear: the rate of the next step)
    assert log[-1]["learning_rate_generator"] == pytest.approx(0.0, abs=1e-12)
    assert log[-2]["learning_rate_generator"] == pytest.approx(1e-3 / epochs, rel=1e-6)
    assert f"[Train][Epoch {epochs}/{epochs}]" in out
    assert "TRAIN.minutes=0.4: training ended" in out


def test_train_epochs_repeats_a_planned_run_exactly(planned, tmp_path):
    """The timed iterations leave nothing behind: TRAIN.epochs=<the plan> trains the same
    weights and losses as the planned run."""
    out, run_dir = planned
    repeat = re.search(r"(TRAIN\.epochs=\d+ TRAIN\.iters_per_epoch=\d+) repeats", out).group(1)
    again = shell(f"python {EXAMPLE_DIR}/wgangp_toy.py {TOY} {repeat}", tmp_path)
    assert "iterations planned" not in again
    assert_same_run(
        Path(run_dir),
        Path(printed_run_dir(again)),
        ignore=("planned_iterations", "planned_epochs", "planned_rate_scale"),
    )


def test_an_interrupted_planned_run_resumes_with_its_plan(tmp_path):
    """Ctrl-C in the second epoch; the same command with the printed checkpoint path keeps the
    plan (no new timing) and trains to its end. On its first plan: the toy's half-second epochs
    vary enough on a busy machine to re-plan, which changes the logged length."""
    run = start(
        *shlex.split(TOY),
        "TRAIN.minutes=0.4",
        "TRAIN.replan=false",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    seen = wait_for(run, "iterations planned")
    iterations, epochs, length = (int(x) for x in PLANNED.findall(seen)[0][:3])
    # the first progress line (every log_freq=5 iterations) of the second epoch
    wait_for(run, f"[Train][Iter {(length // 5 + 1) * 5}/{iterations}]")
    run.send_signal(signal.SIGINT)
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 130, stderr[-2000:]
    line = next(line for line in stdout.splitlines() if "Stopped by" in line)
    resume = re.search(r"(TRAIN\.checkpoint_path=\S+?)(\x1b|$)", line).group(1)
    more = run_script(
        "wgangp_toy.py",
        *shlex.split(TOY),
        "TRAIN.minutes=0.4",
        "TRAIN.replan=false",
        *shlex.split(resume),
        f"hydra.run.dir={tmp_path / 'resumed'}",
    )
    assert more.returncode == 0, more.stderr[-3000:]
    assert (
        f"{iterations} generator iterations planned for TRAIN.minutes=0.4 when the run "
        "started (from the checkpoint)" in more.stdout
    )
    assert "s per iteration measured" not in more.stdout
    log = records(tmp_path / "resumed")
    assert len(log) == epochs and log[-1]["iteration"] == iterations
    assert {r["planned_iterations"] for r in log} == {iterations}
    assert [r["iteration"] for r in log] == [length * (e + 1) for e in range(epochs)]


def test_both_processes_of_a_launched_run_train_one_plan(tmp_path):
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
            os.path.join(EXAMPLE_DIR, "wgangp_toy.py"),
            *shlex.split(TOY),
            "TRAIN.batch_size=64",
            "TRAIN.minutes=0.4",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    rank0 = (tmp_path / "logs" / "workerlog.0").read_text()
    assert result.returncode == 0, rank0[-3000:]
    rank1 = (tmp_path / "run" / "train.rank1.log").read_text()
    plans = [PLANNED.findall(log) + REPLANNED.findall(log) for log in (rank0, rank1)]
    assert len(PLANNED.findall(rank0)) == 1 and plans[0] == plans[1], (plans, rank1[-2000:])
    log = records(tmp_path / "run")
    assert len(log) == log[-1]["planned_epochs"]


def test_a_machine_that_slows_down_gets_a_shorter_plan(tmp_path):
    """The run is stopped (SIGSTOP) for a quarter of its budget in its third epoch, as a
    machine that slows down: the plan loses the epochs that no longer fit and the learning
    rates, continuous, still decay to 0 at the new end (the critic's, its own, with them),
    unless the last re-plan found no time for one more epoch and ended training there."""
    run = start(
        *shlex.split(TOY),
        "TRAIN.minutes=0.4",
        "log_freq=1000",
        "TRAIN.critic_learning_rate=2e-3",
        cwd=str(tmp_path),
    )
    seen = wait_for(run, "iterations planned")
    length = int(PLANNED.findall(seen)[0][2])
    seen += wait_for(run, "[Train][Epoch 2/")
    run.send_signal(signal.SIGSTOP)
    time.sleep(6)
    run.send_signal(signal.SIGCONT)
    stdout, stderr = run.communicate(timeout=300)
    out = seen + stdout
    assert run.returncode == 0, stderr[-3000:]
    replans = [tuple(int(x) for x in found) for found in REPLANNED.findall(out)]
    assert replans, out[-3000:]
    first_after = next(r for r in replans if r[0] >= 3)
    # 6 s at about half a second an epoch (a second on a slow machine): several epochs, far
    # more than the half epoch tolerated
    assert first_after[3] - first_after[1] >= 3 and first_after[2] == length, replans
    final = replans[-1][1]
    log = records(Path(printed_run_dir(out)))
    assert len(log) == final == log[-1]["planned_epochs"]
    assert "TRAIN.epochs cannot repeat a re-planned run" in out
    rates = [r["learning_rate_generator"] for r in log]
    last_epoch, epochs, length, before = replans[-1]
    if epochs == last_epoch:  # "training ends with this epoch": the decay stops where it is
        assert epochs == len(log) and f"fit TRAIN.minutes=0.4 instead of {before} (" in out
        assert rates[-1] == pytest.approx(
            rate_where_the_decay_stopped(log[-1], before, length), rel=1e-9
        )
    else:
        assert rates[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a > b for a, b in zip(rates, rates[1:])), rates
    # the critic's own rate (TRAIN.critic_learning_rate) keeps its ratio through the re-plans
    for record in log[:-1]:
        assert record["learning_rate_critic"] == pytest.approx(
            2 * record["learning_rate_generator"], rel=1e-9
        )


def rate_where_the_decay_stopped(record, epochs_planned, length):
    """The rate of a run at 1e-3 whose last re-plan ended training at `record`'s iteration:
    its decay, planned over epochs_planned epochs of `length`, had come this far."""
    return (
        1e-3 * record["planned_rate_scale"] * (1 - record["iteration"] / (epochs_planned * length))
    )


def test_a_run_whose_time_runs_out_ends_with_the_epoch_it_is_in(tmp_path):
    """Stopped (SIGSTOP) past its whole budget, as a laptop put to sleep: the re-plan after
    the epoch it was in ends training there, with the rate where the decay had come to,
    and the final evaluation still follows."""
    run = start(*shlex.split(TOY), "TRAIN.minutes=0.4", "log_freq=1000", cwd=str(tmp_path))
    seen = wait_for(run, "[Train][Epoch 3/")
    run.send_signal(signal.SIGSTOP)
    time.sleep(30)  # the budget is 24 s
    run.send_signal(signal.SIGCONT)
    stdout, stderr = run.communicate(timeout=300)
    out = seen + stdout
    assert run.returncode == 0, stderr[-3000:]
    last_epoch, epochs, length, before = [int(x) for x in REPLANNED.findall(out)[-1]]
    assert epochs == last_epoch >= 3 and before > epochs, out[-3000:]
    assert "training ends with this epoch" in out
    log = records(Path(printed_run_dir(out)))
    assert len(log) == epochs and f"[Train][Epoch {epochs}/{epochs}]" in out
    rate = rate_where_the_decay_stopped(log[-1], before, length)
    assert log[-1]["learning_rate_generator"] == pytest.approx(rate, rel=1e-9) and rate > 0
    assert "TRAIN.minutes=0.4: training ended" in out and "Done; the results are in" in out


def test_a_replan_keeps_the_learning_rate_continuous():
    """rescaled_rate against paddle's PolynomialDecay stepped through: the rate after the
    change is the rate before it, and the new schedule ends at 0."""
    import paddle

    total, done, new_total = 400, 150, 300
    old = paddle.optimizer.lr.PolynomialDecay(1e-3, total, end_lr=0.0, power=1.0)
    for _ in range(done):
        old.step()
    scale = rescaled_rate(1.0, total, done, new_total)
    new = paddle.optimizer.lr.PolynomialDecay(1e-3 * scale, new_total, end_lr=0.0, power=1.0)
    for _ in range(done):
        new.step()
    assert new() == pytest.approx(old(), rel=1e-12)
    for _ in range(new_total - done):
        new.step()
    assert new() == pytest.approx(0.0, abs=1e-15)
    # chained changes compose: 400 -> 300 after 150, -> 350 after 200, as one closed form
    twice = rescaled_rate(scale, new_total, 200, 350)
    assert 1e-3 * twice * (1 - 200 / 350) == pytest.approx(1e-3 * scale * (1 - 200 / 300))


def test_lr_decay_power_and_the_critics_rate_shape_the_decays(tmp_path):
    """TRAIN.lr_decay_power=2 TRAIN.critic_learning_rate=3e-3: after i of N generator
    iterations the records hold the rate of the next step, 1e-3 (1 - i/N)^2 for the
    generator and 3e-3 (1 - i/N)^2 for the critic over its n_critic steps each."""
    result = run_script(
        "wgangp_toy.py",
        *shlex.split(TOY),
        "TRAIN.epochs=4",
        "TRAIN.lr_decay_power=2",
        "TRAIN.n_critic=3",
        "TRAIN.critic_learning_rate=3e-3",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        "Adam at 0.003 (critic) and 0.001 (generator), betas 0.5, 0.9, decaying to 0 as "
        "(1 - i/N)^2" in result.stdout + result.stderr
    )
    log = records(tmp_path)
    for record, done in zip(log, (0.25, 0.5, 0.75, 1.0)):
        assert record["learning_rate_generator"] == pytest.approx(1e-3 * (1 - done) ** 2, abs=1e-15)
        assert record["learning_rate_critic"] == pytest.approx(3e-3 * (1 - done) ** 2, abs=1e-15)


@pytest.mark.parametrize("power", [1.0, 2.0, 0.5])
def test_a_replan_keeps_a_polynomial_decay_continuous(power):
    """TRAIN.lr_decay_power: the same continuity for (1 - step/total)^power, against
    paddle's PolynomialDecay with that power."""
    import paddle

    total, done, new_total = 400, 150, 260
    old = paddle.optimizer.lr.PolynomialDecay(1e-3, total, end_lr=0.0, power=power)
    for _ in range(done):
        old.step()
    scale = rescaled_rate(1.0, total, done, new_total, power)
    new = paddle.optimizer.lr.PolynomialDecay(1e-3 * scale, new_total, end_lr=0.0, power=power)
    for _ in range(done):
        new.step()
    assert new() == pytest.approx(old(), rel=1e-12)
    for _ in range(new_total - done - 1):
        new.step()
    last = new()
    assert 0 < last == pytest.approx(1e-3 * scale * (1 / new_total) ** power, rel=1e-9)
    new.step()
    assert new() == pytest.approx(0.0, abs=1e-15)


def test_replan_bounds():
    """The plan stays while the run would end from one epoch early to half an epoch late,
    or within a tenth of the epochs left if that is wider, and otherwise takes as many
    epochs as fit."""
    # 5 left of 20; 100 s an epoch: the fixed band
    assert replan_epochs(20, 15, 500.0, 100.0) == 20  # on time
    assert replan_epochs(20, 15, 460.0, 100.0) == 20  # 0.4 epochs late: tolerated
    assert replan_epochs(20, 15, 440.0, 100.0) == 19  # 0.6 late: one fewer
    assert replan_epochs(20, 15, 590.0, 100.0) == 20  # 0.9 early: tolerated
    assert replan_epochs(20, 15, 610.0, 100.0) == 21  # 1.1 early: one more
    assert replan_epochs(20, 15, -30.0, 100.0) == 15  # out of time: this epoch is the last
    # 30 left of 40: a tenth of them, 3 epochs, either way
    assert replan_epochs(40, 10, 2720.0, 100.0) == 40  # 2.8 late: tolerated
    assert replan_epochs(40, 10, 2680.0, 100.0) == 36  # 3.2 late: as many as fit
    assert replan_epochs(40, 10, 3290.0, 100.0) == 40  # 2.9 early: tolerated
    assert replan_epochs(40, 10, 3310.0, 100.0) == 43  # 3.1 early
    assert replan_epochs(40, 10, 1500.0, 100.0) == 25
    # the old fixed band, for comparison (benchmarks/replan_replay.py)
    assert replan_epochs(40, 10, 2940.0, 100.0, relative=0.0) == 39


def test_a_checkpoint_without_a_plan_is_not_resumed_by_a_budget(tmp_path):
    first = run_script(
        "wgangp_toy.py", *shlex.split(TOY), "TRAIN.epochs=1", f"hydra.run.dir={tmp_path / 'run'}"
    )
    assert first.returncode == 0, first.stderr[-2000:]
    again = run_script(
        "wgangp_toy.py",
        *shlex.split(TOY),
        "TRAIN.minutes=0.4",
        "TRAIN.resume_with_changes=true",
        f"TRAIN.checkpoint_path={tmp_path / 'run' / 'checkpoints' / 'latest'}",
        f"hydra.run.dir={tmp_path / 'again'}",
    )
    assert again.returncode == 2
    errors = [line for line in again.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "TRAIN.minutes=0.4 plans a new run" in errors[0]
    assert "resume it with TRAIN.epochs and TRAIN.minutes=null" in errors[0]


def test_the_plan_counts_every_part_of_the_run():
    """Closed form: whole epochs of the time left (budget - spent - final - 2 %) at
    TRAIN.iters_per_epoch, then lengthened alike to fill it; the final evaluation is the
    epoch's end with the check scaled from TRAIN.metric_samples to EVAL.num_samples."""
    cfg = compose(
        "mnist",
        "TRAIN.minutes=60",
        "TRAIN.iters_per_epoch=100",
        "TRAIN.dev_freq=50",
        "TRAIN.metric_samples=1000",
        "EVAL.num_samples=10000",
    )
    plan = plan_epochs(cfg, per_iteration=2.0, dev=10.0, epoch_end=3.0, check=1.0, elapsed=100.0)
    final = 3.0 + 1.0 * (10000 / 1000 - 1)  # the files as at an epoch's end, the check x 10
    assert plan["reserved"] == pytest.approx(final + 0.02 * 3600)
    left = 3600 - 100 - final - 72
    per_iteration = 2.0 + 10.0 / 50
    assert plan["epochs"] == int(left // (100 * per_iteration + 3.0)) == 15
    assert plan["iters_per_epoch"] == int((left - 15 * 3.0) // (15 * per_iteration)) == 102
    # what the plan trains fits, and one more iteration an epoch would not
    assert 15 * (102 * per_iteration + 3.0) <= left < 15 * (103 * per_iteration + 3.0)
    assert not plan["short"]
    unchecked = plan_epochs(cfg, 2.0, 10.0, 3.0, check=0.0, elapsed=100.0)
    assert unchecked["reserved"] == pytest.approx(3.0 + 72)
    tiny = plan_epochs(cfg, 2.0, 10.0, 3.0, check=1.0, elapsed=3590.0)
    assert tiny["epochs"] == 1 and tiny["iters_per_epoch"] == 100 and tiny["short"]


def test_a_budget_must_be_positive(capsys):
    from conftest import usage_error
    from gankit import startup

    line = usage_error(capsys, startup.check_config, compose("toy", "TRAIN.minutes=0"))
    assert "TRAIN.minutes" in line


def test_the_final_evaluation_kept_is_the_one_training_ends_with():
    """CIFAR-10 and own data end training with TRAIN.final_eval_samples, not EVAL.num_samples
    (mode=eval's): the time kept for it scales the epoch's check to those."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(
        {
            "TRAIN": {"minutes": 60, "metric_samples": 200, "iters_per_epoch": 50},
            "EVAL": {"num_samples": 10000},
        }
    )
    without = plan_epochs(cfg, 1.0, 0.0, 10.0, 6.0, 30.0)["reserved"]
    assert without == pytest.approx(10.0 + 6.0 * (10000 / 200 - 1) + 0.02 * 3600)
    cfg.TRAIN.final_eval_samples = 400
    kept = plan_epochs(cfg, 1.0, 0.0, 10.0, 6.0, 30.0)["reserved"]
    assert kept == pytest.approx(10.0 + 6.0 * (400 / 200 - 1) + 0.02 * 3600)
