"""Every command README.md and the docs pages print works as printed: the example commands'
settings exist and pass the start-up checks (placeholders such as <run dir> filled in), the
benchmark scripts start, and the docs' MNIST quality command runs (on small data)."""

import os
import re
import shlex
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from mnist_files import write_idx_dir

from conftest import EXAMPLE_DIR
from gankit import startup

ROOT = os.path.dirname(EXAMPLE_DIR.rstrip("/").rsplit("/", 1)[0])
PAGES = (
    "README.md",
    *(
        f"docs/{lang}/examples/{page}.md"
        for lang in ("en", "zh")
        for page in (
            "wgangp",
            "wgangp/usage",
            "wgangp/faithfulness",
            "wgangp/speed",
            "wgangp/published",
            "wgangp/mnist_recipes",
        )
    ),
)


def printed_commands():
    """(page, command) for every `python ...` line of the pages' shell blocks."""
    found = []
    for page in PAGES:
        text = open(os.path.join(ROOT, page), encoding="utf-8").read()
        for block in re.findall(
            r"```[ \t]*(?:sh|bash|shell|console)\b[^\n]*\n(.*?)```", text, re.S
        ):
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():
                line = line.split("  #")[0].split(" # ")[0].strip()
                for part in line.split("&&"):
                    part = part.strip()
                    if part.startswith(("python", "OMP_NUM_THREADS", "MKL_NUM_THREADS")):
                        found.append((page, part))
    return found


COMMANDS = printed_commands()
EXAMPLE_COMMANDS = [(p, c) for p, c in COMMANDS if re.search(r"wgangp_\w+\.py", c)]


def fill_placeholders(command: str, where: str) -> str:
    command = re.sub(r"<[^>]*>", where, command)  # <run dir>, <path or URL>, ...
    command = re.sub(r"=\.\.\.(?=\s|$)", f"={where}", command)  # DATA.data_path=...
    return re.sub(r"\s\.\.\.(?=\s|$)", "", command)  # "... other settings" elided


def test_the_pages_print_commands():
    assert len(EXAMPLE_COMMANDS) >= 20
    for name in ("wgangp_toy.py", "wgangp_mnist.py", "wgangp_cifar10.py", "wgangp_custom.py"):
        assert any(name in c for _, c in EXAMPLE_COMMANDS), name


@pytest.mark.parametrize(
    "page, command", EXAMPLE_COMMANDS, ids=[f"{p}:{c[:60]}" for p, c in EXAMPLE_COMMANDS]
)
def test_example_commands_compose_and_pass_the_checks(page, command, tmp_path):
    words = shlex.split(fill_placeholders(command, str(tmp_path / "x")))
    index = next(i for i, w in enumerate(words) if re.search(r"wgangp_\w+\.py$", w))
    name, overrides = os.path.basename(words[index])[:-3], words[index + 1 :]
    if overrides[:1] == ["--help"]:
        return
    with initialize_config_dir(config_dir=os.path.join(EXAMPLE_DIR, "conf"), version_base=None):
        cfg = compose(config_name=f"{name}.yaml", overrides=overrides)
    startup.check_config(cfg)  # the one-line checks a run starts with


BENCHMARKS = sorted(
    {re.search(r"benchmarks/\w+\.py", c).group(0) for _, c in COMMANDS if "benchmarks/" in c}
)


@pytest.mark.parametrize("script", BENCHMARKS)
def test_benchmark_scripts_start(script):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, script), "--help"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout


def test_mnist_quality_commands_run_from_a_clone(tmp_path):
    """README's quality benchmark (shortened), then the docs' split, report and independent
    classifier commands on its run, placeholders filled in."""
    data = write_idx_dir(str(tmp_path / "mnist"))
    command = next(c for p, c in COMMANDS if p == "README.md" and "mnist_quality" in c)
    words = [
        sys.executable if w == "python" else w
        for w in shlex.split(fill_placeholders(command, data))
    ]
    small = ["MODEL.dim=4", "MODEL.noise_dim=16", "TRAIN.batch_size=16", "EVAL.classifier_epochs=1"]
    out = tmp_path / "out"
    result = subprocess.run(
        [*words, "--epochs", "1", "--iters-per-epoch", "2", "--out", str(out), *small],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        "| generator iterations |" in result.stdout and "IS ratio generated / real" in result.stdout
    )

    def docs_command(text, **places):
        command = next(c for p, c in COMMANDS if p.startswith("docs/en") and text in c)
        for place, value in places.items():
            command = command.replace(f"<{place}>", value)
        assert "<" not in command, command
        return [sys.executable if w == "python" else w for w in shlex.split(command)]

    split = docs_command(
        "--split",
        **{"directory with the MNIST t10k files": data, "split dir": str(tmp_path / "split")},
    )
    assert subprocess.run(split, cwd=ROOT, capture_output=True).returncode == 0
    assert sorted(os.listdir(tmp_path / "split")) == sorted(os.listdir(data))
    run_dir = str(out / "run")
    report = subprocess.run(
        docs_command("--report", **{"run dir": run_dir}),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0 and "IS ratio generated / real" in report.stdout, report.stderr
    # the run's own curve, where another run of the same day cannot overwrite it
    assert f"score curve: {os.path.join(run_dir, 'score_curve.png')}" in report.stdout
    assert os.path.isfile(os.path.join(run_dir, "score_curve.png"))
    independent = subprocess.run(
        docs_command("independent_classifier", **{"split dir": data, "run dir": run_dir}),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert independent.returncode == 0, independent.stderr[-2000:]
    assert re.search(r"\| generated .* \| \*\*\d\.\d{3}\*\* \| \d+/10 \|", independent.stdout)
