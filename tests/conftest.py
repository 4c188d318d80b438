"""Make the example's modules importable as the scripts import them."""

import os
import sys

EXAMPLE_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "wgangp"
)
sys.path.insert(0, EXAMPLE_DIR)


def run_script(name, *overrides, cwd=None):
    """Run examples/wgangp/<name> as a user does, with Hydra overrides."""
    import subprocess

    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, os.path.join(EXAMPLE_DIR, name), *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def one_error_line(result):
    """The single 'ERROR: ...' line of a failed run; no traceback allowed."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, result.stderr[-3000:]
    return errors[0]


def usage_error(capsys, fn, *args):
    """Call fn(*args), expecting exit status 2 and one 'ERROR: ...' line; returns the line."""
    import pytest

    with pytest.raises(SystemExit) as info:
        fn(*args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, err
    return errors[0]


def compose(example: str, *overrides: str):
    """The settings of examples/wgangp/conf/wgangp_<example>.yaml with Hydra `overrides`,
    as a run sees them (struct mode off, so a test may add keys)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=os.path.join(EXAMPLE_DIR, "conf"), version_base=None):
        cfg = hydra_compose(config_name=f"wgangp_{example}.yaml", overrides=list(overrides))
    OmegaConf.set_struct(cfg, False)
    return cfg
