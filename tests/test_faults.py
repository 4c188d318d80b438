"""The faults of real use, met as a user meets them: Ctrl-C and a scheduler's SIGTERM during
training, resuming with changed settings, weights that hold NaN, settings outside their
domain, paths with spaces and Chinese folder names, writes that must survive a power loss."""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest
from mnist_files import write_idx_dir
from omegaconf import OmegaConf

from conftest import EXAMPLE_DIR, compose, one_error_line, run_script, usage_error
from gankit import files, schema, startup
from gankit import networks as models

TOY = [
    "MODEL.hidden_size=32",
    "TRAIN.batch_size=32",
    "EVAL.num_samples=100",
    "log_freq=5",
    "TRAIN.iters_per_epoch=20",
    "seed=3",
]
SCRIPT = os.path.join(EXAMPLE_DIR, "wgangp_toy.py")


def start(*overrides, launcher=False, cwd=None):
    """A training run as a terminal starts it: SIGINT and SIGTERM at their defaults."""
    prefix = (
        [
            "-m",
            "paddle.distributed.launch",
            "--nproc_per_node",
            "2",
            "--log_dir",
            os.path.join(cwd, "launch_logs"),
        ]
        if launcher
        else []
    )
    env = dict(os.environ, PYTHONWARNINGS="ignore", MKL_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, *prefix, SCRIPT, *TOY, *overrides],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for(process, text, timeout=300):
    """Read the run's output until `text` shows (ppsci logs to stdout)."""
    seen, end = [], time.time() + timeout
    while time.time() < end:
        line = process.stdout.readline()
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"{text!r} never came:\n" + "".join(seen)[-3000:])


def weights(run_dir):
    return {
        name: {k: v.numpy() for k, v in paddle.load(str(run_dir / f"{name}.pdparams")).items()}
        for name in ("model_generator", "model_discriminator")
    }


def assert_same_run(a, b, ignore=()):
    """The same weights and epoch logs (but for timings and the keys in `ignore`)."""
    wa, wb = weights(a), weights(b)
    for name in wa:
        for key in wa[name]:
            np.testing.assert_array_equal(wa[name][key], wb[name][key], err_msg=f"{name}.{key}")
    timing = ("seconds", "iters_per_second", *ignore)
    logs = [
        [
            {k: v for k, v in h.items() if k not in timing}
            for h in json.loads((d / "losses.json").read_text())
        ]
        for d in (a, b)
    ]
    assert logs[0] == logs[1]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("whole") / "run"
    result = run_script("wgangp_toy.py", *TOY, "TRAIN.epochs=3", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_keeps_the_work_and_the_run_resumes_exactly(uninterrupted, tmp_path, signum, code):
    run = start("TRAIN.epochs=3", f"hydra.run.dir={tmp_path / 'run'}")
    wait_for(run, "[Train][Iter 25/60]")  # in the middle of epoch 2
    run.send_signal(signum)
    out, err = run.communicate(timeout=300)
    assert run.returncode == code
    assert "Traceback" not in out + err and "FatalError" not in out + err
    stopped = [line for line in out.splitlines() if "Stopped by" in line]
    assert len(stopped) == 1 and "with a checkpoint of where it stands" in stopped[0]
    iteration = int(re.search(r"after generator iteration (\d+) of 60", stopped[0]).group(1))
    assert 25 <= iteration < 40
    resume = re.search(r"(TRAIN\.checkpoint_path=\S+?)(\x1b|$)", stopped[0]).group(1)
    more = run_script(
        "wgangp_toy.py",
        *TOY,
        "TRAIN.epochs=3",
        *shlex.split(resume),
        f"hydra.run.dir={tmp_path / 'resumed'}",
    )
    assert more.returncode == 0, more.stderr[-3000:]
    assert f"after generator iteration {iteration - 20}" in more.stdout  # in epoch 2
    assert_same_run(uninterrupted, tmp_path / "resumed")


def test_a_stop_after_an_epochs_last_iteration_resumes_exactly(tmp_path):
    """A signal during an epoch's last generator iteration stops before that epoch's
    evaluation; the resume finishes the epoch without training an iteration (its time left
    once divided by zero). Epochs of one slow iteration (400 critic steps of 512 units, 2.8 s
    on an idle Zen 4) put the signal there: sent 1 s after epoch 1's line, it misses the
    check that follows that line even when the run is slowed."""
    slow = [
        "TRAIN.iters_per_epoch=1",
        "TRAIN.epochs=3",
        "TRAIN.n_critic=400",
        "MODEL.hidden_size=512",
    ]
    whole = run_script("wgangp_toy.py", *TOY, *slow, f"hydra.run.dir={tmp_path / 'whole'}")
    assert whole.returncode == 0, whole.stderr[-3000:]
    run = start(*slow, f"hydra.run.dir={tmp_path / 'run'}")
    wait_for(run, "[Train][Epoch 1/3]")
    time.sleep(1)  # in iteration 2, epoch 2's only one
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=300)
    assert run.returncode == 130, err[-3000:]
    stopped = [line for line in out.splitlines() if "Stopped by" in line]
    assert (
        len(stopped) == 1 and "after generator iteration 2 of 3, with a checkpoint" in stopped[0]
    ), out[-3000:]
    resume = re.search(r"(TRAIN\.checkpoint_path=\S+?)(\x1b|$)", stopped[0]).group(1)
    more = run_script(
        "wgangp_toy.py", *TOY, *slow, *shlex.split(resume), f"hydra.run.dir={tmp_path / 'resumed'}"
    )
    assert more.returncode == 0, more.stderr[-3000:]
    assert "in epoch 2, after generator iteration 1" in more.stdout
    assert re.search(r"\[Train\]\[Epoch 2/3\].*eta: unknown", more.stdout)
    assert_same_run(tmp_path / "whole", tmp_path / "resumed")


def test_a_second_ctrl_c_stops_at_once(tmp_path):
    """Each iteration here takes seconds (many critic steps); the second Ctrl-C does not wait.
    The iteration must outlast the 1.5 s between the two: once the first Ctrl-C's checkpoint
    is written, Python's exit restores the default handlers and a second one kills the exit
    (-2). 400 critic steps of 256 units took 0.4 s on a Zen 4, so 2 000 of 512 units."""
    run = start(
        "TRAIN.epochs=1",
        "TRAIN.n_critic=2000",
        "MODEL.hidden_size=512",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    wait_for(run, ": generator iterations 1 to")
    time.sleep(2)
    run.send_signal(signal.SIGINT)
    time.sleep(1.5)
    run.send_signal(signal.SIGINT)
    tic = time.time()
    out, err = run.communicate(timeout=120)
    assert run.returncode == 130 and time.time() - tic < 20
    assert "Stopped by Ctrl-C (SIGINT)." in err and "Traceback" not in out + err
    assert "with a checkpoint of where it stands" not in out


def test_the_launchers_sigterm_keeps_the_work_of_both_processes(tmp_path):
    """paddle.distributed.launch passes a signal on as SIGTERM, three times in 0.4 s; the
    processes agree on the iteration they stop after, and the run resumes on 2 processes."""
    # 10 epochs: the run is still training when the signal arrives, however fast the machine
    run = start(
        "TRAIN.epochs=10",
        "TRAIN.batch_size=64",
        f"hydra.run.dir={tmp_path / 'run'}",
        launcher=True,
        cwd=str(tmp_path),
    )
    wait_for(run, "[Train][Iter 25/200]")
    run.send_signal(signal.SIGTERM)
    _, console = run.communicate(timeout=120)
    # the launcher ends at once and echoes rank 0 no more: rank 0 prints its stop line on
    # the launcher's own console (its standard error)
    assert "Stopped by SIGTERM after" in console and "TRAIN.checkpoint_path=" in console, console
    log = (tmp_path / "launch_logs" / "workerlog.0").read_text()
    stopped = [line for line in log.splitlines() if "Stopped by SIGTERM" in line]
    assert len(stopped) == 1, log[-2000:]
    # the launcher passes the signal on within about a second: mid-epoch, with a checkpoint
    # of where the run stands, or, when it lands on an epoch's end, after that epoch
    where = re.search(
        r"Stopped by SIGTERM after (generator iteration \d+ of \d+, with a "
        r"checkpoint of where it stands|epoch \d+);",
        stopped[0],
    )
    assert where, stopped[0]
    rank1 = (tmp_path / "run" / "train.rank1.log").read_text()
    assert f"Stopped by SIGTERM after {where.group(1)};" in rank1  # the same for both
    env = dict(os.environ, PYTHONWARNINGS="ignore", MKL_NUM_THREADS="1")
    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "paddle.distributed.launch",
            "--nproc_per_node",
            "2",
            "--log_dir",
            str(tmp_path / "logs2"),
            SCRIPT,
            *TOY,
            "TRAIN.epochs=10",
            "TRAIN.batch_size=64",
            f"TRAIN.checkpoint_path={tmp_path / 'run' / 'checkpoints' / 'latest'}",
            f"hydra.run.dir={tmp_path / 'resumed'}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert (tmp_path / "resumed" / "metrics.json").exists()


# ---- resuming with other settings ----


def test_a_resume_names_every_changed_setting(uninterrupted, tmp_path):
    checkpoint = f"TRAIN.checkpoint_path={uninterrupted}/checkpoints/latest"
    line = one_error_line(
        run_script(
            "wgangp_toy.py",
            *TOY,
            "TRAIN.epochs=4",
            checkpoint,
            "TRAIN.batch_size=64",
            "LOSS.lambda_gp=0.2",
            "seed=4",
            f"hydra.run.dir={tmp_path / 'a'}",
        )
    )
    for change in ("TRAIN.batch_size 32 -> 64", "LOSS.lambda_gp 0.1 -> 0.2", "seed 3 -> 4"):
        assert change in line
    assert not (tmp_path / "a").exists()
    allowed = run_script(
        "wgangp_toy.py",
        *TOY,
        "TRAIN.epochs=4",
        checkpoint,
        "LOSS.lambda_gp=0.2",
        "TRAIN.resume_with_changes=true",
        f"hydra.run.dir={tmp_path / 'b'}",
    )
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    assert (
        "Resuming with a changed setting (TRAIN.resume_with_changes): LOSS.lambda_gp 0.1 -> 0.2"
        in allowed.stdout
    )
    fewer = one_error_line(
        run_script(
            "wgangp_toy.py", *TOY, "TRAIN.epochs=2", checkpoint, f"hydra.run.dir={tmp_path / 'c'}"
        )
    )
    assert "TRAIN.epochs=2" in fewer and "finished 3 epochs" in fewer


# ---- weights that cannot give a result ----


def test_weights_with_nan_are_refused_naming_the_tensor(uninterrupted, tmp_path):
    state = paddle.load(str(uninterrupted / "model_generator.pdparams"))
    key = next(k for k in state if k.endswith("weight"))
    broken = state[key].numpy()
    broken[0, 0] = np.nan
    state[key] = paddle.to_tensor(broken)
    path = tmp_path / "nan_generator.pdparams"
    paddle.save(state, str(path))
    for mode, setting in (
        ("eval", "EVAL.pretrained_gen_model_path"),
        ("export", "INFER.pretrained_model_path"),
    ):
        line = one_error_line(
            run_script(
                "wgangp_toy.py",
                f"mode={mode}",
                *TOY[:1],
                f"{setting}={path}",
                f"hydra.run.dir={tmp_path / mode}",
                cwd=tmp_path,
            )
        )
        assert setting in line and key in line and "1 NaN" in line
    assert not (tmp_path / "inference").exists()


def test_a_checkpoint_with_nan_is_refused(uninterrupted, tmp_path, capsys):
    layer = paddle.nn.Linear(2, 2)
    layer.weight.set_value(np.full((2, 2), np.inf, "float32"))
    from gankit import checkpoints

    checkpoints.save_checkpoint(str(tmp_path), 0, [{"epoch": 1}], {"generator": layer}, {})
    err = usage_error(
        capsys,
        checkpoints.load_checkpoint,
        str(tmp_path / "checkpoints" / "latest"),
        {"generator": paddle.nn.Linear(2, 2)},
        {},
    )
    assert "weight with 4 Inf values" in err and "diverged" in err


# ---- settings outside their domain: one schema ----


def literal_settings():
    """(key, allowed values) of every choice in the schema."""
    import typing

    found = []
    for section, field in schema.Settings.model_fields.items():
        model = field.annotation
        fields = model.model_fields.items() if hasattr(model, "model_fields") else [(None, field)]
        for name, sub in fields:
            annotation = sub.annotation
            for candidate in (annotation, *typing.get_args(annotation)):
                if typing.get_origin(candidate) is typing.Literal:
                    found.append(
                        (f"{section}.{name}" if name else section, typing.get_args(candidate))
                    )
    return found


CHOICES = literal_settings()


def test_the_schema_has_every_choice():
    assert {key for key, _ in CHOICES} >= {
        "mode",
        "device",
        "DATA.mode",
        "MODEL.architecture",
        "EVAL.sample_norm",
        "EVAL.inception",
        "INFER.device",
        "INFER.engine",
    }


@pytest.mark.parametrize("key, allowed", CHOICES, ids=[key for key, _ in CHOICES])
def test_a_bad_choice_is_one_line_naming_what_is_allowed(capsys, key, allowed):
    # MNIST has every loss kind (the toy has no dcgan, as the paper's toy script)
    cfg = compose("cifar10" if key.startswith("EVAL") else "mnist" if key == "LOSS.kind" else "toy")
    OmegaConf.update(cfg, key, "foo", force_add=True)
    err = usage_error(capsys, startup.check_config, cfg)
    assert re.match(rf"ERROR: {re.escape(key)}='?foo'?: use ", err)
    assert all(str(a) in err for a in allowed if a)


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("TRAIN.beta1", 1.0, "in [0, 1)"),
        ("TRAIN.beta2", -0.1, "in [0, 1)"),
        ("TRAIN.learning_rate", 0, "> 0"),
        ("TRAIN.critic_learning_rate", -1e-3, "> 0"),
        ("LOSS.lambda_gp", -1, ">= 0"),
        ("download_timeout", 0, "> 0"),
        ("EVAL.pretrained_gen_sha256", "abc", "64 hexadecimal"),
        ("TRAIN.lr_decay", "yes", "true or false"),
        ("TRAIN.eval_freq", 0, "positive integer"),
        ("seed", -1, ">= 0"),
    ],
)
def test_a_value_outside_its_range_is_one_line(capsys, key, value, words):
    cfg = compose("toy")
    OmegaConf.update(cfg, key, value, force_add=True)
    err = usage_error(capsys, startup.check_config, cfg)
    assert err.startswith(f"ERROR: {key}={value!r} must be") and words in err


def test_a_typo_in_a_choice_stops_before_anything_is_written(tmp_path):
    line = one_error_line(
        run_script(
            "wgangp_cifar10.py",
            "mode=eval",
            "EVAL.inception=foo",
            "EVAL.pretrained_gen_model_path=x.pdparams",
            cwd=tmp_path,
        )
    )
    assert line == "ERROR: EVAL.inception='foo': use tf2015 or paddle."
    assert os.listdir(tmp_path) == []


# ---- paths as users have them ----


def shell(command, cwd):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    line = command.replace("python ", f"{shlex.quote(sys.executable)} ", 1)
    result = subprocess.run(
        line, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.parametrize("folder", ["运行/第一次", "my runs/first try"])
def test_paths_with_chinese_names_and_spaces_as_typed(tmp_path, folder):
    run_dir = tmp_path / folder
    small = " ".join(TOY + ["TRAIN.epochs=1", "TRAIN.iters_per_epoch=3"])
    out = shell(
        f"python {shlex.quote(SCRIPT)} {small} {shlex.quote(f'hydra.run.dir={run_dir}')}", tmp_path
    )
    printed = re.search(r"Run directory: (.+?)(\x1b|$)", out, re.M).group(1)
    assert shlex.split(printed) == [str(run_dir)]  # pastes as one word
    resume = re.search(r"continues with (.+?)(\x1b|$)", out, re.M).group(1)
    again = shell(
        f"python {shlex.quote(SCRIPT)} {small.replace('epochs=1', 'epochs=2')} {resume} "
        f"{shlex.quote(f'hydra.run.dir={run_dir}2')}",
        tmp_path,
    )
    assert "Resumed from" in again
    data = write_idx_dir(str(tmp_path / "数据" / "mnist"))
    mnist = shell(
        f"python {shlex.quote(os.path.join(EXAMPLE_DIR, 'wgangp_mnist.py'))} "
        "MODEL.dim=4 MODEL.noise_dim=16 TRAIN.batch_size=16 EVAL.classifier_epochs=1 "
        "EVAL.num_samples=50 EVAL.batch_size=50 TRAIN.eval_during_train=false "
        f"TRAIN.epochs=1 TRAIN.iters_per_epoch=2 DATA.data_path={data}",
        tmp_path,
    )
    assert "Done; the results are in" in mnist


def test_a_setting_hydra_cannot_read_is_one_line_saying_how_to_quote(tmp_path):
    line = one_error_line(run_script("wgangp_toy.py", "+wandb_config.project=实验", cwd=tmp_path))
    assert "+wandb_config.project=实验" in line and "'实验'" in line


# ---- writes that survive a power loss ----


def test_results_are_flushed_to_disk_before_and_after_the_rename(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(
        os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd))
    )
    generator, _ = models.toy_models(2, 8, 2)
    files.save_weights(generator, str(tmp_path / "g.pdparams"))
    files.save_json({"a": 1}, str(tmp_path / "m.json"))
    files.save_npz(str(tmp_path / "s.npz"), samples=np.zeros(3))
    for name in ("g.pdparams", "m.json", "s.npz"):
        assert synced.index(str(tmp_path / f"{name}.tmp")) < len(synced)
    assert synced.count(str(tmp_path)) == 3  # the folder, after each rename
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_a_full_disk_is_one_line_and_the_previous_file_stays(tmp_path, capsys):
    import errno

    files.save_json({"epoch": 1}, str(tmp_path / "losses.json"))

    def full(tmp):
        with open(tmp, "w") as f:
            f.write("{")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    err = usage_error(capsys, files.write_atomically, str(tmp_path / "losses.json"), full)
    assert "losses.json" in err and "No space left on device" in err
    assert json.loads((tmp_path / "losses.json").read_text()) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["losses.json"]
