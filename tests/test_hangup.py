"""SIGHUP, a dropped terminal: the run keeps its work as on SIGTERM (exit 129), alone and under
paddle.distributed.launch, whose own SIGHUP would otherwise kill it and leave its processes
training on unseen."""

import fcntl
import os
import re
import select
import signal
import subprocess
import sys
import termios
import time

import pytest
from test_faults import SCRIPT, TOY, start, wait_for


def stopped_line(text):
    lines = [line for line in text.splitlines() if "Stopped by SIGHUP" in line]
    assert len(lines) == 1, text[-3000:]
    return lines[0]


@pytest.mark.parametrize(
    "signum, name",
    [
        (signal.SIGHUP, "SIGHUP"),
        (signal.SIGQUIT, "SIGQUIT (Ctrl-\\)"),
        (signal.SIGUSR1, "SIGUSR1"),
        (signal.SIGUSR2, "SIGUSR2"),
        (signal.SIGXCPU, "SIGXCPU"),
    ],
)
def test_every_signal_that_ends_a_job_keeps_the_work_and_names_the_resume(tmp_path, signum, name):
    """SIGHUP; SGE's warnings SIGUSR1/2, a CPU-time limit's SIGXCPU, Ctrl-\\'s SIGQUIT."""
    run = start("TRAIN.epochs=3", f"hydra.run.dir={tmp_path / 'run'}")
    wait_for(run, "[Train][Iter 25/60]")
    run.send_signal(signum)
    out, err = run.communicate(timeout=300)
    assert run.returncode == 128 + signum, err[-3000:]
    assert "Traceback" not in out + err
    lines = [line for line in out.splitlines() if f"Stopped by {name} after" in line]
    assert len(lines) == 1, out[-3000:]
    line = lines[0]
    assert re.search(
        r"after generator iteration \d+ of 60, with a checkpoint of where it "
        r"stands; the run continues with TRAIN\.checkpoint_path=\S+latest",
        line,
    )
    assert (tmp_path / "run" / "checkpoints" / "latest.pdckpt").exists()


def _controlling_terminal():
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_a_dropped_terminal_keeps_the_work(tmp_path):
    """The run in a terminal of its own (a pty, its session's controlling terminal); the
    terminal closes: the kernel sends SIGHUP and every later write to it fails."""
    master, slave = os.openpty()
    env = dict(os.environ, PYTHONWARNINGS="ignore", MKL_NUM_THREADS="1")
    run = subprocess.Popen(
        [sys.executable, SCRIPT, *TOY, "TRAIN.epochs=3", f"hydra.run.dir={tmp_path / 'run'}"],
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        preexec_fn=_controlling_terminal,
    )
    os.close(slave)
    seen, end = b"", time.time() + 300
    try:
        while b"[Train][Iter 25/60]" not in seen:
            assert time.time() < end and run.poll() is None, seen[-3000:]
            if select.select([master], [], [], 1)[0]:
                seen += os.read(master, 65536)
    finally:
        os.close(master)  # the terminal window closes
    assert run.wait(timeout=300) == 129
    log = (tmp_path / "run" / "train.log").read_text()
    assert "Traceback" not in log
    assert "with a checkpoint of where it stands" in stopped_line(log)
    assert (tmp_path / "run" / "checkpoints" / "latest.pdckpt").exists()


def _processes_of(marker):
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except (OSError, ValueError):
            pass
    return found


def test_sighup_to_the_launcher_keeps_the_work_of_both_processes(tmp_path):
    """The launcher dies of SIGHUP at once (a shell's 129); each process hears of it and
    stops after the same iteration, with rank 0's checkpoint of where the run stands."""
    run_dir = tmp_path / "run"
    run = start(
        "TRAIN.epochs=10",
        "TRAIN.batch_size=64",
        f"hydra.run.dir={run_dir}",
        launcher=True,
        cwd=str(tmp_path),
    )
    wait_for(run, "[Train][Iter 25/200]")
    run.send_signal(signal.SIGHUP)
    run.communicate(timeout=120)
    assert run.returncode == -signal.SIGHUP
    end = time.time() + 120
    while _processes_of(str(run_dir)) and time.time() < end:
        time.sleep(1)
    left = _processes_of(str(run_dir))
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "the launcher's processes trained on after it ended"
    log = (tmp_path / "launch_logs" / "workerlog.0").read_text()
    where = re.search(
        r"Stopped by SIGHUP after (generator iteration \d+ of \d+, with a "
        r"checkpoint of where it stands|epoch \d+);",
        stopped_line(log),
    )
    assert where, log[-2000:]
    rank1 = (run_dir / "train.rank1.log").read_text()
    assert f"Stopped by SIGHUP after {where.group(1)};" in rank1
    assert (run_dir / "checkpoints" / "latest.pdckpt").exists()
