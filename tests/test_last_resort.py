"""The last resort: an exception nobody expected ends a script in one line naming what failed
and the file holding its full traceback (in the run directory when there is one), exit 1.
The faults are put into a run through sitecustomize, which Python imports at start-up: a
plot that cannot be drawn, ppsci's start-up failing, a package that cannot be imported."""

import os
import re
import subprocess
import sys
import textwrap

from test_faults import TOY

from conftest import EXAMPLE_DIR


def run_with(tmp_path, fault, *overrides):
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(textwrap.dedent(fault))
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=str(inject), TMPDIR=str(tmp_path))
    return subprocess.run(
        [
            sys.executable,
            os.path.join(EXAMPLE_DIR, "wgangp_toy.py"),
            *TOY,
            "TRAIN.epochs=1",
            "TRAIN.iters_per_epoch=2",
            *overrides,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def one_line(result):
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert "Done" not in result.stdout
    return errors[0]


def test_a_failure_during_training_saves_its_traceback_in_the_run_directory(tmp_path):
    run_dir = tmp_path / "run"
    line = one_line(
        run_with(
            tmp_path,
            """
        import matplotlib.figure

        def savefig(*args, **kwargs):
            raise RuntimeError("injected fault: no plot")

        matplotlib.figure.Figure.savefig = savefig
        """,
            f"hydra.run.dir={run_dir}",
        )
    )
    assert re.fullmatch(
        r"ERROR: unexpected RuntimeError: injected fault: no plot \(in gankit/\w+\.py:\d+, "
        r"in sitecustomize\.py:\d+\); the full traceback is in (\S+); please report it with "
        r"that file\.",
        line,
    ), line
    saved = run_dir / "traceback.txt"
    assert f"the full traceback is in {saved};" in line
    text = saved.read_text()
    assert "Traceback (most recent call last)" in text and "injected fault: no plot" in text
    assert "wgangp_toy.py" in text.splitlines()[0]  # the command that failed


def test_a_failure_in_the_start_up_is_one_line_too(tmp_path):
    run_dir = tmp_path / "run"
    line = one_line(
        run_with(
            tmp_path,
            """
        from ppsci.utils import callbacks

        def on_job_start(self, config, **kwargs):
            raise KeyError("injected")

        callbacks.InitCallback.on_job_start = on_job_start
        """,
            f"hydra.run.dir={run_dir}",
        )
    )
    assert line.startswith("ERROR: unexpected KeyError: 'injected' (in gankit/startup.py:"), line
    assert f"the full traceback is in {run_dir / 'traceback.txt'};" in line


def test_a_package_that_cannot_be_imported_is_one_line(tmp_path):
    line = one_line(
        run_with(
            tmp_path,
            """
        import sys

        sys.modules["hydra"] = None
        """,
            f"hydra.run.dir={tmp_path / 'run'}",
        )
    )
    found = re.fullmatch(
        r"ERROR: unexpected ModuleNotFoundError: import of hydra halted; None "
        r"in sys.modules \(in wgangp_toy\.py:\d+\); a package is missing or "
        r"broken: pip install -r requirements\.txt; the full traceback is in "
        r"(\S+); please report it with that file\.",
        line,
    )
    assert found, line
    assert os.path.dirname(found.group(1)) == str(tmp_path)  # no run directory yet
    assert "ModuleNotFoundError" in open(found.group(1)).read()


def test_a_console_whose_reader_ends_is_one_warning_and_the_run_goes_on(tmp_path):
    """`python wgangp_toy.py ... | head -2`: head ends, each later log line met a broken pipe
    and logging printed a traceback for every one (46 in a short run)."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    run = subprocess.Popen(
        [
            sys.executable,
            os.path.join(EXAMPLE_DIR, "wgangp_toy.py"),
            *TOY,
            "TRAIN.epochs=2",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run.stdout.readline()
    run.stdout.close()  # the reader ends
    err = run.stderr.read()
    assert run.wait(timeout=600) == 0, err[-3000:]
    assert "Traceback" not in err and "Logging error" not in err, err[-3000:]
    warnings = [line for line in err.splitlines() if line.startswith("WARNING:")]
    assert warnings == [
        "WARNING: standard output is gone (Broken pipe: its reader ended); the "
        "run goes on, and its log file (train.log in the run directory) keeps "
        "every line."
    ], err[-3000:]
    assert (tmp_path / "run" / "metrics.json").exists()
    assert "Done; the results are in" in (tmp_path / "run" / "train.log").read_text()
