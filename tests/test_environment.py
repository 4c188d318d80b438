"""A home folder that cannot hold a cache: HOME naming a file (or a folder under one). `import
paddle` itself stopped with a 20-line traceback; the scripts now check first."""

import os
import subprocess
import sys

import pytest
from test_faults import TOY

from conftest import EXAMPLE_DIR


def run(tmp_path, env, *args):
    env = dict(os.environ, PYTHONWARNINGS="ignore", **env)
    return subprocess.run(
        [sys.executable, *args],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_a_home_that_is_a_file_falls_back_with_one_warning(tmp_path):
    home = tmp_path / "home"
    home.write_text("not a folder")
    result = run(
        tmp_path,
        {"HOME": str(home), "TMPDIR": str(tmp_path)},
        os.path.join(EXAMPLE_DIR, "wgangp_toy.py"),
        *TOY,
        "TRAIN.epochs=1",
        "TRAIN.iters_per_epoch=2",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING:")]
    assert warnings == [
        f"WARNING: HOME={home} (Not a directory) cannot hold the caches; this "
        f"run uses {tmp_path / 'wgangp-home-'}{os.getuid()} instead, which the "
        "system may clean: set HOME to a folder you can write in."
    ], result.stderr
    assert (tmp_path / "run" / "model_generator.pdparams").exists()
    assert (tmp_path / f"wgangp-home-{os.getuid()}" / ".cache" / "paddle").is_dir()


@pytest.mark.parametrize(
    "script", ["wgangp_toy.py", "wgangp_mnist.py", "wgangp_cifar10.py", "wgangp_custom.py"]
)
def test_every_script_checks_home_and_the_cache_variables(tmp_path, script):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run(
        tmp_path,
        {"HOME": str(blocker), "MPLCONFIGDIR": str(blocker / "mpl"), "TMPDIR": str(tmp_path)},
        os.path.join(EXAMPLE_DIR, script),
        "--help",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert (
        f"WARNING: HOME={blocker} (Not a directory), MPLCONFIGDIR={blocker / 'mpl'} (Not a "
        "directory) cannot hold" in result.stderr
    )


def read_only_folder():
    """A folder no one can write in, even root (these tests run as root on CI): a read-only
    file system such as /sys or /proc in a container."""
    for folder in ("/sys", "/proc"):
        probe = os.path.join(folder, "wgangp-write-probe")
        try:
            os.mkdir(probe)
        except OSError:
            return folder
        os.rmdir(probe)
    return None


def test_a_home_that_cannot_be_written_falls_back_with_one_warning(tmp_path):
    home = read_only_folder()
    if home is None:
        pytest.skip("no read-only folder on this machine")
    result = run(
        tmp_path,
        {"HOME": home, "TMPDIR": str(tmp_path)},
        os.path.join(EXAMPLE_DIR, "wgangp_toy.py"),
        *TOY,
        "TRAIN.epochs=1",
        "TRAIN.iters_per_epoch=2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING:")]
    assert len(warnings) == 1 and warnings[0].startswith(f"WARNING: HOME={home} ("), warnings
    assert f"this run uses {tmp_path / 'wgangp-home-'}{os.getuid()} instead" in warnings[0]
    assert (tmp_path / f"wgangp-home-{os.getuid()}" / ".cache" / "paddle").is_dir()
    assert list(tmp_path.glob("outputs_wgangp_toy/*/*/*_train/model_generator.pdparams"))


def test_no_usable_folder_at_all_is_one_line_naming_the_variable(tmp_path):
    """HOME a file and the temporary folder unusable too (root can write in any folder, so
    the temporary folder is a file here)."""
    home = tmp_path / "home"
    home.write_text("")
    code = (
        f"import sys, tempfile; tempfile.tempdir = {str(home)!r}; "
        f"sys.path.insert(0, {EXAMPLE_DIR!r}); import gankit.environment"
    )
    result = run(tmp_path, {"HOME": str(home)}, "-c", code)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"ERROR: HOME={home} (Not a directory) cannot hold the caches"
    ), lines
    assert "set HOME to a folder you can write in (or TMPDIR)" in lines[0]


def test_a_current_folder_that_is_gone_is_one_line(tmp_path):
    """The shell's folder deleted under it (Hydra's log file then failed in a traceback, and
    the traceback's own hook with it)."""
    gone = tmp_path / "gone"
    gone.mkdir()
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    result = subprocess.run(
        [sys.executable, os.path.join(EXAMPLE_DIR, "wgangp_toy.py"), *TOY, "TRAIN.epochs=1"],
        cwd=str(gone),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: os.rmdir(gone),
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [
        "ERROR: the current folder cannot be used (No such file or directory: it was deleted or "
        "moved away while the shell was in it); cd to an existing folder and start again."
    ]
