"""The examples as a user types them in a shell: no hydra.run.dir, the run directory taken
from the printed log line and pasted unquoted into eval, export, infer and resume."""

import importlib.metadata
import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
from cifar_files import write_tarball
from mnist_files import write_idx_dir

from conftest import EXAMPLE_DIR
from gankit import cpu

TOY = (
    "TRAIN.epochs=2 TRAIN.iters_per_epoch=3 TRAIN.batch_size=32 MODEL.hidden_size=32 "
    "EVAL.num_samples=200 log_freq=2"
)
MNIST = (
    "MODEL.dim=4 MODEL.noise_dim=16 TRAIN.batch_size=16 EVAL.classifier_epochs=1 "
    "EVAL.num_samples=100 EVAL.batch_size=50 TRAIN.eval_during_train=false"
)
CIFAR = (
    "MODEL.dim_g=8 MODEL.dim_d=8 MODEL.noise_dim=16 TRAIN.batch_size=8 "
    "TRAIN.generator_batch_size=16 EVAL.num_samples=40 EVAL.batch_size=20 DATA.md5=null "
    "TRAIN.n_critic=2"
)


def shell(command: str, cwd):
    """Run one command line through the shell, as typed (the script by its path)."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    line = command.replace("python ", f"{shlex.quote(sys.executable)} ", 1)
    result = subprocess.run(
        line, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def printed_run_dir(output: str) -> str:
    """The directory of the first log line ('Run directory: ...'), checked against the last."""
    lines = [line for line in output.splitlines() if "ppsci" in line]
    first = re.search(r"Run directory: (\S+?)(\x1b|$)", lines[0])
    assert first, lines[0]
    assert "the results are in" in lines[-1], lines[-1]
    return first.group(1)


def script(name):
    return f"python {EXAMPLE_DIR}/{name}"


def test_toy_round_trip_as_typed(tmp_path):
    out = shell(f"{script('wgangp_toy.py')} {TOY}", tmp_path)
    run_dir = printed_run_dir(out)
    assert run_dir.startswith(str(tmp_path / "outputs_wgangp_toy" / "8gaussians"))
    assert "=" not in run_dir  # no overrides in the name: it pastes into any command
    assert f"the results are in {run_dir}" in out
    # progress lines: after iteration 1 and every log_freq=2, before the first epoch's line
    lines = [line for line in out.splitlines() if "[Train]" in line]
    first_epoch = next(i for i, line in enumerate(lines) if "[Epoch 1/2]" in line)
    progress = [line for line in lines[:first_epoch] if re.search(r"\[Iter \d+/6\]", line)]
    assert [re.search(r"\[Iter (\d+)/6\]", line).group(1) for line in progress] == ["1", "2"]
    assert all(re.search(r"eta: \d+:\d\d:\d\d", line) for line in progress)
    # ppsci's training step lines for the first steps are not shown (its eval lines are)
    assert not [line for line in out.splitlines() if "[Train]" in line and "batch_cost" in line]
    assert out.count("Using paddlepaddle") == 1

    weights = f"{run_dir}/model_generator.pdparams"
    eval_out = shell(
        f"{script('wgangp_toy.py')} mode=eval MODEL.hidden_size=32 "
        f"EVAL.num_samples=200 EVAL.pretrained_gen_model_path={weights} "
        f"EVAL.pretrained_dis_model_path={run_dir}/model_discriminator.pdparams",
        tmp_path,
    )
    assert os.path.isfile(os.path.join(printed_run_dir(eval_out), "metrics.json"))
    export_out = shell(
        f"{script('wgangp_toy.py')} mode=export MODEL.hidden_size=32 "
        f"INFER.pretrained_model_path={weights}",
        tmp_path,
    )
    assert (tmp_path / "inference" / "wgangp_toy.pdiparams").exists()
    last = [line for line in export_out.splitlines() if "ppsci" in line][-1]
    assert f"{tmp_path}/inference/wgangp_toy.json" in last
    infer_out = shell(f"{script('wgangp_toy.py')} mode=infer EVAL.num_samples=200", tmp_path)
    assert os.path.isfile(os.path.join(printed_run_dir(infer_out), "samples.npz"))

    # the resume command the run printed, with more epochs
    # ppsci's validator after every epoch (TRAIN.eval_during_train, the toy's default)
    assert "[Eval][Epoch 1][Avg]" in out and "[Eval][Epoch 2][Avg]" in out
    history = json.loads(open(os.path.join(run_dir, "losses.json")).read())
    assert [set(h) >= {"high_quality_fraction", "modes_covered"} for h in history] == [True, True]

    resume = re.search(r"TRAIN\.checkpoint_path=(\S+?)(\x1b|$)", out, re.M).group(1)
    assert resume == f"{run_dir}/checkpoints/latest"
    more = shell(
        f"{script('wgangp_toy.py')} {TOY.replace('epochs=2', 'epochs=3')} "
        f"TRAIN.checkpoint_path={resume}",
        tmp_path,
    )
    assert "Resumed from" in more and "[Epoch 3/3]" in more and "[Epoch 1/3]" not in more


def test_eval_during_train_is_ppscis_switch_as_typed(tmp_path):
    """TRAIN.eval_during_train and TRAIN.eval_freq choose the epochs the validator runs after."""
    out = shell(
        f"{script('wgangp_toy.py')} {TOY.replace('epochs=2', 'epochs=4')} TRAIN.eval_freq=2",
        tmp_path,
    )
    assert [e for e in range(1, 5) if f"[Eval][Epoch {e}][Avg]" in out] == [2, 4]
    history = json.loads(open(os.path.join(printed_run_dir(out), "losses.json")).read())
    assert ["modes_covered" in h for h in history] == [False, True, False, True]
    off = shell(f"{script('wgangp_toy.py')} {TOY} TRAIN.eval_during_train=false", tmp_path)
    assert "[Eval][Epoch" not in off and "[Eval][Avg]" in off  # the final evaluation only


def test_onnx_export_and_inference_as_typed(tmp_path):
    """mode=export INFER.onnx=true writes <export_path>.onnx beside the Paddle model, and
    mode=infer INFER.engine=onnx samples it as the Paddle model does; the export installs
    nothing into the environment (paddle2onnx lets polygraphy pip-install what it misses)."""
    out = shell(f"{script('wgangp_toy.py')} {TOY} TRAIN.epochs=1", tmp_path)
    weights = f"{printed_run_dir(out)}/model_generator.pdparams"
    installed = installed_packages()
    shell(
        f"{script('wgangp_toy.py')} mode=export MODEL.hidden_size=32 "
        f"INFER.pretrained_model_path={weights} INFER.onnx=true",
        tmp_path,
    )
    assert (tmp_path / "inference" / "wgangp_toy.onnx").stat().st_size > 0
    assert installed_packages() == installed
    samples = {}
    for engine in ("native", "onnx"):
        out = shell(
            f"{script('wgangp_toy.py')} mode=infer EVAL.num_samples=200 INFER.engine={engine}",
            tmp_path,
        )
        samples[engine] = np.load(os.path.join(printed_run_dir(out), "samples.npz"))["samples"]
    np.testing.assert_allclose(samples["onnx"], samples["native"], rtol=0, atol=1e-5)


def installed_packages():
    return sorted((d.metadata["Name"], d.version) for d in importlib.metadata.distributions())


def test_onnx_export_without_graphsurgeon_is_refused_before_it_installs(tmp_path):
    """Without onnx_graphsurgeon, paddle2onnx would pip-install its newest release (and NumPy 2
    with it); the export stops first with one line saying what to install."""
    toy = os.path.join(EXAMPLE_DIR, "wgangp_toy.py")
    hide = (
        f"import runpy, sys; sys.path.insert(0, {EXAMPLE_DIR!r}); "
        "sys.modules['onnx_graphsurgeon'] = None; "
        f"sys.argv = [{toy!r}, 'mode=export', 'INFER.onnx=true']; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", hide],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "onnx_graphsurgeon==0.5.8" in errors[0], result.stderr[-3000:]
    assert not (tmp_path / "inference").exists()


def test_mnist_round_trip_as_typed(tmp_path):
    quoted = shlex.quote(write_idx_dir(str(tmp_path / "mnist")))
    out = shell(
        f"{script('wgangp_mnist.py')} {MNIST} TRAIN.epochs=1 TRAIN.iters_per_epoch=2 "
        f"DATA.data_path={quoted}",
        tmp_path,
    )
    run_dir = printed_run_dir(out)
    assert run_dir.startswith(str(tmp_path / "outputs_wgangp_mnist"))
    assert "Training the metric's MNIST classifier" in out and "Metric classifier: epoch 1/1" in out
    shell(
        f"{script('wgangp_mnist.py')} mode=eval {MNIST} DATA.data_path={quoted} "
        f"EVAL.pretrained_gen_model_path={run_dir}/model_generator.pdparams",
        tmp_path,
    )
    more = shell(
        f"{script('wgangp_mnist.py')} {MNIST} TRAIN.epochs=2 TRAIN.iters_per_epoch=2 "
        f"DATA.data_path={quoted} TRAIN.checkpoint_path={run_dir}/checkpoints/latest",
        tmp_path,
    )
    assert "Resumed from" in more and "[Epoch 2/2]" in more


def test_mnist_quick_start_as_typed(tmp_path):
    """README's MNIST quick start, under paddle.distributed.launch as printed (smaller
    networks and fewer iterations): the run directory printed by rank 0 holds the results."""
    readme = open(os.path.join(EXAMPLE_DIR, "..", "..", "README.md"), encoding="utf-8").read()
    command = next(
        line
        for line in readme.splitlines()
        if line.startswith("python -m paddle.distributed.launch")
        and "wgangp_mnist.py" in line
        and "TRAIN.lr_decay=true" in line
    )
    data = shlex.quote(write_idx_dir(str(tmp_path / "mnist")))
    command = command.replace("examples/wgangp/", f"{EXAMPLE_DIR}/")
    command = command.replace("DATA.data_path=/path/to/mnist.pkl.gz", f"DATA.data_path={data}")
    # its hour becomes one minute (start-up counted), planned as the hour is
    command = re.sub(r"TRAIN\.minutes=\d+", "TRAIN.minutes=1", command)
    command = re.sub(r"TRAIN\.iters_per_epoch=\d+", "TRAIN.iters_per_epoch=2", command)
    command = re.sub(r" TRAIN\.batch_size=\d+", "", command)  # the small settings' batch
    small = MNIST.replace("TRAIN.eval_during_train=false", "TRAIN.metric_samples=20")
    out = shell(f"{command} {small}", tmp_path)
    run_dir = printed_run_dir(out)
    assert run_dir.startswith(str(tmp_path / "outputs_wgangp_mnist"))
    assert "Data parallel on 2 processes" in out
    assert re.search(r"\d+ iterations planned \(\d+ epochs of \d+\) for TRAIN.minutes=1: ", out)
    # the cores are shared by the two processes (unless the environment sets the threads)
    yours = cpu.users_threads()
    threads = yours[1] if yours else max(1, min(len(os.sched_getaffinity(0)) // 2, 8))
    assert re.search(rf"CPU math: .*\b{threads} math threads? \(", out)
    assert {"metrics.json", "model_generator.pdparams", "train.rank1.log"} <= set(
        os.listdir(run_dir)
    )
    assert (tmp_path / "log" / "workerlog.1").exists()  # the launcher's per-process logs


def test_cifar10_round_trip_as_typed(tmp_path):
    tarball = write_tarball(str(tmp_path / "cifar-10-python.tar.gz"))
    out = shell(
        f"{script('wgangp_cifar10.py')} {CIFAR} TRAIN.epochs=1 TRAIN.iters_per_epoch=1 "
        f"DATA.data_path={tarball}",
        tmp_path,
    )
    run_dir = printed_run_dir(out)
    assert run_dir.startswith(str(tmp_path / "outputs_wgangp_cifar10"))
    shell(
        f"{script('wgangp_cifar10.py')} mode=eval {CIFAR} "
        f"EVAL.pretrained_gen_model_path={run_dir}/model_generator.pdparams",
        tmp_path,
    )
    shell(
        f"{script('wgangp_cifar10.py')} mode=export {CIFAR} "
        f"INFER.pretrained_model_path={run_dir}/model_generator.pdparams",
        tmp_path,
    )
    more = shell(
        f"{script('wgangp_cifar10.py')} {CIFAR} TRAIN.epochs=2 TRAIN.iters_per_epoch=1 "
        f"DATA.data_path={tarball} TRAIN.checkpoint_path={run_dir}/checkpoints/latest",
        tmp_path,
    )
    assert "Resumed from" in more and "[Epoch 2/2]" in more


@pytest.mark.parametrize(
    "name", ["wgangp_toy.py", "wgangp_mnist.py", "wgangp_cifar10.py", "wgangp_custom.py"]
)
def test_help_describes_the_modes(name, tmp_path):
    out = shell(f"{script(name)} --help", tmp_path)
    for word in ("train", "eval", "export", "infer", "TRAIN.epochs", "log_freq"):
        assert word in out, word
    assert not (tmp_path / "outputs_wgangp_toy").exists()
