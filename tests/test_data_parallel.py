"""Data-parallel training: two CPU processes under paddle.distributed.launch (gloo).

Both processes must hold the same generator and critic after training, different from
the initial ones, and equal (to float rounding) to what one process computes on the
same global batch; a 2-process run resumes exactly; settings that cannot work under
the launcher are refused in one line.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest
from cifar_files import write_tarball
from mnist_files import write_idx_dir

from conftest import EXAMPLE_DIR, compose
from gankit import parallel, startup

REPLICAS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "replicas.py")
TOY = ["MODEL.hidden_size=32", "TRAIN.batch_size=64", "EVAL.num_samples=100"]
MNIST = [
    "MODEL.dim=4",
    "MODEL.noise_dim=16",
    "TRAIN.batch_size=16",
    "TRAIN.eval_during_train=false",
    "EVAL.classifier_epochs=1",
    "EVAL.num_samples=100",
    "EVAL.batch_size=50",
]
CIFAR = [
    "MODEL.dim_g=8",
    "MODEL.dim_d=8",
    "MODEL.noise_dim=16",
    "TRAIN.batch_size=8",
    "TRAIN.generator_batch_size=16",
    "EVAL.num_samples=20",
    "EVAL.batch_size=10",
    "DATA.md5=null",
]


def run(script, out, *overrides, processes=2):
    """Train with `processes` CPU processes; returns the run and the launcher's log dir."""
    launcher = (
        [
            "-m",
            "paddle.distributed.launch",
            "--nproc_per_node",
            str(processes),
            "--log_dir",
            str(out / "launch_logs"),
        ]
        if processes > 1
        else []
    )
    env = dict(os.environ, PYTHONWARNINGS="ignore", MKL_NUM_THREADS="1")  # 2 cores, 2 processes
    return subprocess.run(
        [
            sys.executable,
            *launcher,
            REPLICAS,
            str(out / "replicas"),
            os.path.join(EXAMPLE_DIR, script),
            *overrides,
            f"hydra.run.dir={out / 'run'}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def replica(out, rank, stage, name):
    state = paddle.load(str(out / "replicas" / f"rank{rank}_{stage}_{name}.pdparams"))
    return {k: v.numpy() for k, v in state.items()}


def assert_trained_replicas_identical(out):
    for name in ("generator", "critic"):
        final0, final1 = replica(out, 0, "final", name), replica(out, 1, "final", name)
        assert final0.keys() == final1.keys()
        for key in final0:
            np.testing.assert_array_equal(final0[key], final1[key], err_msg=f"{name}.{key}")
        initial = replica(out, 0, "initial", name)
        moved = max(float(np.abs(final0[k] - initial[k]).max()) for k in final0)
        assert moved > 1e-5, f"the {name} did not train"


def assert_rank_0_alone_wrote_files(out):
    """Rank 1 wrote no file (the processes share the run directory), rank 0 its results."""
    assert not (out / "replicas" / "rank1_wrote.txt").exists(), (
        out / "replicas" / "rank1_wrote.txt"
    ).read_text()
    wrote = (out / "replicas" / "rank0_wrote.txt").read_text().split()
    assert str(out / "run" / "metrics.json") in wrote


def assert_same_as_one_process(two, one, atol):
    for name in ("generator", "critic"):
        a, b = replica(two, 0, "final", name), replica(one, 0, "final", name)
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=0, atol=atol, err_msg=f"{name}.{key}")


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory):
    """One generator iteration (5 critic steps, 1 generator step) on 2 and on 1 process."""
    runs = {}
    for processes in (2, 1):
        out = tmp_path_factory.mktemp(f"toy{processes}")
        result = run(
            "wgangp_toy.py",
            out,
            *TOY,
            "TRAIN.epochs=1",
            "TRAIN.iters_per_epoch=1",
            processes=processes,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        runs[processes] = out
    return runs


def test_toy_processes_hold_identical_trained_weights(toy_runs):
    assert_trained_replicas_identical(toy_runs[2])


def test_toy_processes_train_on_disjoint_halves_of_the_global_batch(toy_runs):
    halves = [np.load(toy_runs[2] / "replicas" / f"rank{r}_batch.npz") for r in (0, 1)]
    whole = np.load(toy_runs[1] / "replicas" / "rank0_batch.npz")
    for key in ("real", "noise"):
        assert len(halves[0][key]) == len(halves[1][key]) == 32
        np.testing.assert_array_equal(np.concatenate([h[key] for h in halves]), whole[key])


def test_toy_two_process_step_equals_one_process_step_on_the_global_batch(toy_runs):
    assert_same_as_one_process(toy_runs[2], toy_runs[1], atol=1e-6)
    # the logged losses are those of the global batch too
    two, one = (json.loads((toy_runs[n] / "run" / "losses.json").read_text())[0] for n in (2, 1))
    for key in ("critic_loss", "generator_loss", "wasserstein", "gradient_penalty"):
        assert two[key] == pytest.approx(one[key], rel=1e-5), key


def test_only_rank_0_writes_results_and_other_ranks_log_to_their_own_file(toy_runs):
    assert_rank_0_alone_wrote_files(toy_runs[2])
    run_dir = toy_runs[2] / "run"
    assert {
        "model_generator.pdparams",
        "metrics.json",
        "samples.npz",
        "train.log",
        "checkpoints",
        ".hydra",
    } <= set(os.listdir(run_dir))
    assert not [n for n in os.listdir(run_dir) if "rank" in n and n != "train.rank1.log"]
    rank1_log = (run_dir / "train.rank1.log").read_text()
    assert "[Train][Epoch 1/1][Iter 1] critic_loss" in rank1_log
    assert "[Train][Epoch 1/1]" in (run_dir / "train.log").read_text()


def test_mnist_two_processes_equal_one_process(tmp_path_factory):
    """Convolutions and the gradient penalty's double backward under data parallelism."""
    data = write_idx_dir(str(tmp_path_factory.mktemp("mnist_data")))
    outs = {}
    for processes in (2, 1):
        outs[processes] = tmp_path_factory.mktemp(f"mnist{processes}")
        result = run(
            "wgangp_mnist.py",
            outs[processes],
            *MNIST,
            "TRAIN.epochs=1",
            "TRAIN.iters_per_epoch=2",
            f"DATA.data_path={data}",
            processes=processes,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert_trained_replicas_identical(outs[2])
    assert_rank_0_alone_wrote_files(outs[2])
    assert_same_as_one_process(outs[2], outs[1], atol=1e-5)


def test_mnist_every_process_builds_the_metric_classifier(tmp_path):
    """With per-epoch metrics, every process trains the metric's classifier before training:
    gloo (CPU data parallelism) drops a process that waits 30 s in a collective, as the
    others did while rank 0 alone trained it (about 2 minutes with the defaults)."""
    data = write_idx_dir(str(tmp_path / "data"))
    result = run(
        "wgangp_mnist.py",
        tmp_path,
        *MNIST,
        "TRAIN.eval_during_train=true",
        "TRAIN.metric_samples=20",
        "TRAIN.epochs=1",
        "TRAIN.iters_per_epoch=1",
        f"DATA.data_path={data}",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "replicas" / "rank0_trained_classifier").exists()
    assert (tmp_path / "replicas" / "rank1_trained_classifier").exists()
    history = json.loads((tmp_path / "run" / "losses.json").read_text())
    assert history[0]["inception_score"] > 0  # rank 0 scored the epoch
    written = sorted(n for n in os.listdir(tmp_path / "run") if n.endswith(".pdparams"))
    assert written == [
        "mnist_classifier.pdparams",
        "model_discriminator.pdparams",
        "model_generator.pdparams",
    ]  # rank 0 alone caches the classifier


def test_cifar10_processes_hold_identical_weights_and_batch_norm_statistics(tmp_path):
    # the generator's batch norm normalises each process's rows, so no 1-process equality
    data = write_tarball(str(tmp_path / "cifar-10-python.tar.gz"))
    result = run(
        "wgangp_cifar10.py",
        tmp_path,
        *CIFAR,
        "TRAIN.epochs=1",
        "TRAIN.iters_per_epoch=1",
        f"DATA.data_path={data}",
        f"EVAL.inception_weights={tmp_path}/none.pdparams",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert_trained_replicas_identical(tmp_path)
    assert_rank_0_alone_wrote_files(tmp_path)  # samples.png too: two writers once collided
    buffers = [k for k in replica(tmp_path, 0, "final", "generator") if k.endswith("_mean")]
    assert buffers  # the running statistics were compared too


def test_two_process_run_resumes_exactly_and_on_one_process(tmp_path):
    whole, first, resumed = tmp_path / "whole", tmp_path / "first", tmp_path / "resumed"
    checkpoint = f"TRAIN.checkpoint_path={first}/run/checkpoints/latest"
    for out, overrides in (
        (whole, ["TRAIN.epochs=2"]),
        (first, ["TRAIN.epochs=1"]),
        (resumed, ["TRAIN.epochs=2", checkpoint]),
    ):
        result = run("wgangp_toy.py", out, *TOY, "TRAIN.iters_per_epoch=2", *overrides)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Resumed from" in (resumed / "run" / "train.rank1.log").read_text()
    assert_trained_replicas_identical(resumed)
    for name in ("generator", "critic"):
        a, b = replica(whole, 0, "final", name), replica(resumed, 1, "final", name)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}.{key}")

    # the random state is the same in every process: one process can continue the run
    alone = tmp_path / "alone"
    result = run(
        "wgangp_toy.py",
        alone,
        *TOY,
        "TRAIN.iters_per_epoch=2",
        "TRAIN.epochs=2",
        checkpoint,
        processes=1,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_as_one_process(whole, alone, atol=1e-5)


def test_batch_that_does_not_divide_over_the_processes_is_refused(tmp_path):
    result = run("wgangp_toy.py", tmp_path, *TOY[:1], "TRAIN.batch_size=63")
    assert result.returncode == 2
    assert "Traceback" not in (tmp_path / "launch_logs" / "workerlog.0").read_text()
    assert (
        "ERROR: TRAIN.batch_size=63 is the global batch and must divide evenly over the 2 processes"
    ) in result.stdout + result.stderr


def test_modes_other_than_train_are_refused_under_the_launcher(tmp_path):
    result = run("wgangp_toy.py", tmp_path, "mode=eval")
    assert result.returncode == 2
    assert "ERROR: mode=eval runs in one process" in result.stdout + result.stderr


RANK_ERRORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rank_errors.py")


def launch_rank_errors(tmp_path, ranks, delay, *late):
    command = [
        sys.executable,
        "-m",
        "paddle.distributed.launch",
        "--nproc_per_node",
        "2",
        "--log_dir",
        str(tmp_path / "launch_logs"),
        RANK_ERRORS,
        ranks,
        str(delay),
        *late,
    ]
    tic = time.monotonic()
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    return result, time.monotonic() - tic


def test_a_bad_setting_exits_2_whichever_process_meets_it_first(tmp_path):
    # rank 1 meets it seconds before rank 0: the launcher, which reports the status of the
    # first failed process in rank order, stops rank 0, which ends with rank 1's status
    result, seconds = launch_rank_errors(tmp_path, "0,1", delay=4)
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
    assert "ERROR: TRAIN.example=1: rank 1 cannot use this." in result.stdout + result.stderr
    assert seconds < 60  # no waiting for rank 0's own error


def test_a_bad_setting_in_one_process_alone_ends_the_run(tmp_path):
    result, seconds = launch_rank_errors(tmp_path, "1", delay=0)
    assert result.returncode != 0
    assert "ERROR: TRAIN.example=1: rank 1 cannot use this." in result.stdout + result.stderr
    assert result.returncode == 2
    assert seconds < 60  # not the 120 s rank 0 would go on for


def test_a_bad_setting_exits_2_also_while_rank_0_has_paddles_signal_handler(tmp_path):
    # rank 1 fails while rank 0 is still starting (import paddle installs Paddle's handler,
    # which the launcher's SIGTERM would end with 143): rank 1 waits for rank 0 to listen
    result, seconds = launch_rank_errors(tmp_path, "1", 4, "late")
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
    assert "ERROR: TRAIN.example=1: rank 1 cannot use this." in result.stdout + result.stderr
    assert seconds < 60


def test_local_rows_partition_the_global_batch(monkeypatch):
    batch = {"real": np.arange(12).reshape(6, 2), "noise": paddle.arange(6)}
    monkeypatch.setattr(parallel.dist, "get_world_size", lambda: 3)
    pieces = []
    for rank in range(3):
        monkeypatch.setattr(parallel.dist, "get_rank", lambda rank=rank: rank)
        pieces.append(parallel.local_rows(batch))
    np.testing.assert_array_equal(np.concatenate([p["real"] for p in pieces]), batch["real"])
    np.testing.assert_array_equal(
        np.concatenate([p["noise"].numpy() for p in pieces]), np.arange(6)
    )
    assert [len(p["real"]) for p in pieces] == [2, 2, 2]


def test_batch_divisibility_is_checked_before_training(monkeypatch, capsys):
    monkeypatch.setattr(parallel.dist, "get_world_size", lambda: 4)
    cfg = compose(
        "cifar10", "TRAIN.batch_size=64", "TRAIN.generator_batch_size=30", "MODEL.bn_groups=4"
    )
    with pytest.raises(SystemExit) as info:
        startup.check_config(cfg)
    assert info.value.code == 2
    assert "TRAIN.generator_batch_size=30 is the global batch" in capsys.readouterr().err


def test_cifar10_per_epoch_metrics_are_refused_on_cpu_processes(monkeypatch, capsys):
    """The Inception metrics take minutes on a CPU; gloo drops the waiting processes
    after 30 s, so the run would die after its first epoch."""
    monkeypatch.setattr(parallel.dist, "get_world_size", lambda: 2)
    cfg = compose("cifar10", "device=cpu", "EVAL.inception=tf2015", "TRAIN.eval_during_train=true")
    with pytest.raises(SystemExit) as info:
        startup.check_config(cfg)
    assert info.value.code == 2
    assert "TRAIN.eval_during_train=true: on CPU processes" in capsys.readouterr().err
    cfg.TRAIN.eval_during_train = False
    startup.check_config(cfg)  # accepted
    cfg.TRAIN.eval_during_train, cfg.device = True, "gpu"
    monkeypatch.setattr(paddle, "is_compiled_with_cuda", lambda: True)
    startup.check_config(cfg)  # NCCL waits 30 minutes
