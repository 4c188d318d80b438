"""Faults a user's trial found, met as the user met them: a setting's name mistyped, an
integer where a number is meant, a signal in the seconds of start-up or in the final
evaluation, a resume with nothing left to train, a run directory given as a checkpoint,
another example's export given to infer, an export that cannot be read, an empty HOME."""

import os
import signal
import subprocess
import sys
import time

import pytest
from test_faults import SCRIPT, TOY, start

from conftest import EXAMPLE_DIR, one_error_line, run_script


def toy(*overrides, cwd=None):
    return run_script("wgangp_toy.py", *TOY, *overrides, cwd=cwd)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A short toy run's directory, and its export."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    result = toy("TRAIN.epochs=1", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    export = run_dir / "export" / "toy"
    result = toy(
        "mode=export",
        f"INFER.pretrained_model_path={run_dir / 'model_generator.pdparams'}",
        f"INFER.export_path={export}",
        f"hydra.run.dir={run_dir / 'export_run'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, export


@pytest.mark.parametrize(
    "typed, meant",
    [
        ("TRAIN.epoch=3", "TRAIN.epochs"),
        ("EVAL.num_sample=5", "EVAL.num_samples"),
        ("epochs=3", "TRAIN.epochs"),  # the right name in no section
        ("+TRAIN.epoch=3", "TRAIN.epochs"),  # Hydra's own advice: it was silently ignored
    ],
)
def test_a_mistyped_setting_is_one_line_naming_the_one_meant(tmp_path, typed, meant):
    line = one_error_line(toy(typed, cwd=tmp_path))
    assert line.startswith(f"ERROR: {typed}: no such setting"), line
    assert f"(did you mean {meant}?)" in line, line
    assert line.endswith("python wgangp_toy.py --help lists the settings."), line
    assert not (tmp_path / "outputs_wgangp_toy").exists()


def test_other_command_lines_hydra_cannot_take_are_one_line(tmp_path):
    for typed in ("TRAIN=5", "TRAIN=foo", "~TRAIN"):
        line = one_error_line(toy(typed, cwd=tmp_path))
        assert "--help lists the settings" in line, line


def test_integers_where_numbers_are_meant_train(tmp_path):
    # Paddle's Adam refused an integer beta or rate with a TypeError
    result = toy("TRAIN.epochs=1", "TRAIN.beta1=0", "TRAIN.lr_decay_power=1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "betas 0, 0.9" in result.stdout


@pytest.mark.parametrize(
    "setting, allowed",
    [
        ("TRAIN.batch_size=1", "an integer >= 2"),
        ("TRAIN.learning_rate=inf", "a finite number"),
        ("EVAL.num_samples=200000", "give at most 10000"),
    ],
)
def test_values_no_run_can_use_are_refused_before_it_starts(tmp_path, setting, allowed):
    line = one_error_line(toy(setting, cwd=tmp_path))
    assert line.startswith(f"ERROR: {setting}") and allowed in line, line


def test_the_handler_replaces_paddles_as_soon_as_paddle_is_imported():
    probe = (
        f"import sys, signal; sys.path.insert(0, {EXAMPLE_DIR!r}); import gankit.environment; "
        "print(signal.getsignal(signal.SIGTERM).__module__, signal.getsignal(signal.SIGINT).__module__)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["gankit.signals", "gankit.signals"], out.stderr[-2000:]


def test_ctrl_c_while_paddle_is_imported_is_a_stop(tmp_path):
    run = start("TRAIN.epochs=1", cwd=str(tmp_path))
    time.sleep(0.8)  # inside `import paddle`, which takes seconds
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=300)
    assert run.returncode == 130, err[-3000:]
    assert "Stopped by Ctrl-C (SIGINT)." in err and "unexpected" not in err, err[-3000:]


def test_sigterm_in_start_up_is_one_line_and_leaves_no_run_directory(tmp_path):
    run = start("TRAIN.epochs=1", cwd=str(tmp_path))
    for line in run.stdout:
        if "CPU math:" in line:  # the run directory's second line: its files being set up
            run.send_signal(signal.SIGTERM)
            break
    out, err = run.communicate(timeout=300)
    assert run.returncode == 143, err[-3000:]
    assert "Stopped by SIGTERM" in err and "FatalError" not in out + err, err[-3000:]
    left = list(tmp_path.glob("outputs_wgangp_toy/*/*/*_train"))
    if "stopping after this generator iteration" in err:  # a loaded machine: training began
        assert (left[0] / "checkpoints" / "latest.pdckpt").is_file()
    else:  # a stop in start-up leaves nothing behind
        assert not left, "a run directory was left"


def test_a_stop_in_the_final_evaluation_says_where_the_weights_are(tmp_path):
    run = start("TRAIN.epochs=1", "EVAL.num_samples=6000", cwd=str(tmp_path))  # W1 takes a while
    for line in run.stdout:
        if "Training done after epoch 1" in line:
            run.send_signal(signal.SIGTERM)
            break
    out, err = run.communicate(timeout=300)
    assert run.returncode == 143, err[-3000:]
    (run_dir,) = tmp_path.glob("outputs_wgangp_toy/*/*/*_train")
    weights = run_dir / "model_generator.pdparams"
    assert weights.is_file()
    assert (
        "Stopped by SIGTERM. Training had finished, and its weights are saved; the metrics "
        f"come from mode=eval EVAL.pretrained_gen_model_path={weights}." in err
    ), err[-3000:]


def test_a_resume_with_nothing_left_saves_what_its_closing_line_names(finished, tmp_path):
    run_dir, _ = finished
    result = toy(
        "TRAIN.epochs=1",
        f"TRAIN.checkpoint_path={run_dir / 'checkpoints' / 'latest'}",
        f"hydra.run.dir={tmp_path / 'again'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing left to train: the checkpoint has done all 20 generator iterations" in (
        result.stdout
    )
    assert (
        f"continues with TRAIN.checkpoint_path={tmp_path / 'again' / 'checkpoints' / 'latest'}"
        in (result.stdout)
    )
    assert (tmp_path / "again" / "checkpoints" / "latest.pdckpt").is_file()
    assert (tmp_path / "again" / "model_generator.pdparams").is_file()


def test_a_run_directory_given_as_the_checkpoint_names_the_checkpoint_in_it(finished, tmp_path):
    run_dir, _ = finished
    line = one_error_line(toy("TRAIN.epochs=2", f"TRAIN.checkpoint_path={run_dir}", cwd=tmp_path))
    assert line == (
        f"ERROR: TRAIN.checkpoint_path={run_dir} is a folder, not a checkpoint; give "
        f"TRAIN.checkpoint_path={run_dir / 'checkpoints' / 'latest'}."
    ), line


def test_another_examples_export_given_to_infer_is_named(finished, tmp_path):
    _, export = finished
    line = one_error_line(
        run_script(
            "wgangp_cifar10.py",
            "mode=infer",
            "MODEL.noise_dim=2",
            "MODEL.conditional=false",
            f"INFER.export_path={export}",
            cwd=tmp_path,
        )
    )
    assert line == (
        f"ERROR: {export}.json makes samples of shape [2], not the CIFAR-10 example's "
        "[3, 32, 32]: it was exported from another example; give INFER.export_path of this "
        "example's export."
    ), line
    line = one_error_line(
        run_script("wgangp_cifar10.py", "mode=infer", f"INFER.export_path={export}", cwd=tmp_path)
    )
    assert f"ERROR: {export}.json does not take this example's inputs (noise, labels)" in line


def test_an_export_that_cannot_be_read_is_one_line(finished, tmp_path):
    _, export = finished
    broken = tmp_path / "broken"
    (tmp_path / "broken.json").write_text("")
    (tmp_path / "broken.pdiparams").write_bytes(export.with_suffix(".pdiparams").read_bytes())
    line = one_error_line(toy("mode=infer", f"INFER.export_path={broken}", cwd=tmp_path))
    assert line.startswith(f"ERROR: INFER.export_path={broken}: the exported model cannot be read")
    assert line.endswith("export it again with mode=export."), line


def test_an_empty_home_falls_back_with_one_warning(tmp_path):
    env = dict(os.environ, HOME="", TMPDIR=str(tmp_path), PYTHONWARNINGS="ignore")
    result = subprocess.run(
        [sys.executable, SCRIPT, "--help"], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WARNING: HOME= (empty) cannot hold the caches" in result.stderr, result.stderr
