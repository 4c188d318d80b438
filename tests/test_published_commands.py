"""PaddleScience's published WGAN-GP weights evaluate with the commands of its documentation
page, served here by a local HTTP server on 127.0.0.1 (the real files cannot be fetched on
our build machines); files in the published layout are built by published_files.py."""

import functools
import http.server
import json
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest
from cifar_files import write_tarball
from mnist_files import write_idx_dir
from published_files import write_published_file

from conftest import EXAMPLE_DIR, one_error_line
from gankit import networks as models
from gankit.published import weights as published_weights

SEED_PAGE = os.path.join(
    os.path.dirname(EXAMPLE_DIR.rstrip("/").rsplit("/", 2)[0]), "shared", "seed", "wgangp.md"
)
PUBLISHED_URL = "https://paddle-org.bj.bcebos.com/paddlescience/models/wgangp/"
# the commands of PaddleScience's page (../shared/seed/wgangp.md), as it writes them
SEED_COMMANDS = {
    "cifar10": "python wgangp_cifar10.py mode=eval EVAL.pretrained_gen_model_path="
    + PUBLISHED_URL
    + "model_generator_cifar10.pdparams",
    "mnist": "python wgangp_mnist.py mode=eval EVAL.pretrained_gen_model_path="
    + PUBLISHED_URL
    + "model_generator_mnist.pdparams",
    "toy": "python wgangp_toy.py mode=eval EVAL.pretrained_gen_model_path="
    + PUBLISHED_URL
    + "model_generator_toy_8gaussians.pdparams",
}
FILES = {"cifar10": "cifar10", "mnist": "mnist", "toy": "toy_8gaussians"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A local HTTP server holding published-layout files of all six networks."""
    root = tmp_path_factory.mktemp("published")
    for example, name in FILES.items():
        write_published_file(
            str(root / f"model_generator_{name}.pdparams"), example, "generator", 1
        )
        write_published_file(
            str(root / f"model_discriminator_{name}.pdparams"), example, "critic", 2
        )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", root
    httpd.shutdown()


def home_with_caches(tmp_path):
    """A HOME whose caches hold what the commands read by default: paddle.vision's MNIST
    files, and a wrong pytorch-fid file, so the tf2015 score is refused offline at once."""
    home = tmp_path / "home"
    write_idx_dir(str(home / ".cache" / "paddle" / "dataset" / "mnist"))
    weights = home / ".paddlesci" / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    (weights / "pt_inception-2015-12-05-6726825d.pth").write_bytes(b"not the weights")
    return home


def run_command(command: str, cwd, home, *extra):
    """A command of the page, run from examples/wgangp with the published URL served locally."""
    words = command.split()[1:]
    env = dict(os.environ, HOME=str(home), PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, *words, *extra],
        cwd=EXAMPLE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


# a clone made outside this workspace has no ../shared beside it: the test says so and skips
@pytest.mark.skipif(
    not os.path.isfile(SEED_PAGE),
    reason="needs PaddleScience's page ../shared/seed/wgangp.md beside the checkout",
)
def test_the_commands_are_the_seed_pages():
    page = open(SEED_PAGE, encoding="utf-8").read()
    for command in SEED_COMMANDS.values():
        assert command in page


@pytest.mark.parametrize("example", ["toy", "mnist", "cifar10"])
def test_seed_command_evaluates_published_weights(example, server, tmp_path):
    url, _ = server
    command = SEED_COMMANDS[example].replace(PUBLISHED_URL, url)
    run_dir = tmp_path / "run"
    result = run_command(command, tmp_path, home_with_caches(tmp_path), f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "PaddleScience's published network" in result.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["architecture"] == "paddlescience"
    samples = np.load(run_dir / "samples.npz")["samples"]
    assert np.isfinite(samples.astype("float64")).all()
    if example == "toy":
        assert samples.shape == (2000, 2) and "w1" in metrics
    elif example == "mnist":
        assert samples.shape == (10000, 784) and 0 <= samples.min() and samples.max() <= 1
        assert 1 <= metrics["generated"]["inception_score"] <= 10
    else:  # no Inception weights offline: the grid only, and why
        assert samples.shape == (100, 32, 32, 3) and metrics["sample_norm"] == "running"
        assert "6726825d" in metrics["not_computed_because"]
        assert metrics["paddlescience_inception_score"] is None
        assert "paddle_inception_weights" in metrics["paddlescience_not_computed_because"]


def test_published_critics_and_export_infer(server, tmp_path):
    url, _ = server
    home = home_with_caches(tmp_path)
    toy = run_command(
        SEED_COMMANDS["toy"].replace(PUBLISHED_URL, url),
        tmp_path,
        home,
        f"EVAL.pretrained_dis_model_path={url}model_discriminator_toy_8gaussians.pdparams",
        "EVAL.num_samples=300",
        f"hydra.run.dir={tmp_path / 'toy'}",
    )
    assert toy.returncode == 0, toy.stderr[-3000:]
    assert (tmp_path / "toy" / "samples.png").stat().st_size > 0  # with the critic's contours

    mnist = run_command(
        SEED_COMMANDS["mnist"].replace(PUBLISHED_URL, url),
        tmp_path,
        home,
        f"EVAL.pretrained_dis_model_path={url}model_discriminator_mnist.pdparams",
        "EVAL.num_samples=100",
        f"hydra.run.dir={tmp_path / 'mnist'}",
    )
    assert mnist.returncode == 0, mnist.stderr[-3000:]
    critic = json.loads((tmp_path / "mnist" / "metrics.json").read_text())["critic"]
    assert critic["wasserstein_estimate"] == pytest.approx(
        critic["mean_score_real"] - critic["mean_score_generated"]
    )

    tarball = write_tarball(str(tmp_path / "cifar-10-python.tar.gz"))
    cifar = run_command(
        SEED_COMMANDS["cifar10"].replace(PUBLISHED_URL, url),
        tmp_path,
        home,
        f"EVAL.pretrained_dis_model_path={url}model_discriminator_cifar10.pdparams",
        f"DATA.data_path={tarball}",
        "DATA.md5=null",
        "EVAL.paddlescience_score=false",
        f"hydra.run.dir={tmp_path / 'cifar'}",
    )
    assert cifar.returncode == 0, cifar.stderr[-3000:]
    critic = json.loads((tmp_path / "cifar" / "metrics.json").read_text())["critic"]
    assert 0 <= critic["acgan_accuracy_real"] <= 1 and 0 <= critic["acgan_accuracy_generated"] <= 1

    prefix = tmp_path / "export" / "toy"
    export = run_command(
        f"python wgangp_toy.py mode=export INFER.pretrained_model_path="
        f"{url}model_generator_toy_8gaussians.pdparams INFER.export_path={prefix}",
        tmp_path,
        home,
        f"hydra.run.dir={tmp_path / 'export_run'}",
    )
    assert export.returncode == 0, export.stderr[-3000:]
    infer = run_command(
        f"python wgangp_toy.py mode=infer INFER.export_path={prefix} EVAL.num_samples=300",
        tmp_path,
        home,
        f"hydra.run.dir={tmp_path / 'infer'}",
    )
    assert infer.returncode == 0, infer.stderr[-3000:]
    inferred = np.load(tmp_path / "infer" / "samples.npz")["samples"]
    evaluated = np.load(tmp_path / "toy" / "samples.npz")["samples"]
    np.testing.assert_allclose(inferred, evaluated, atol=1e-4)  # same noise, same network


def test_training_never_resumes_from_published_weights(server, tmp_path):
    _, root = server
    result = run_command(
        f"python wgangp_toy.py TRAIN.checkpoint_path={root}/"
        "model_generator_toy_8gaussians.pdparams",
        tmp_path,
        home_with_caches(tmp_path),
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    line = one_error_line(result)
    assert "TRAIN.checkpoint_path" in line and "for mode=eval or export" in line
    line = one_error_line(
        run_command(
            "python wgangp_toy.py MODEL.architecture=paddlescience",
            tmp_path,
            home_with_caches(tmp_path),
        )
    )
    assert "training uses the paper's networks" in line


def load(capsys, path, architecture="auto"):
    generator, _ = models.toy_models(2, 512, 3)
    with pytest.raises(SystemExit) as info:
        published_weights.load(
            "toy",
            "generator",
            generator,
            str(path),
            "EVAL.pretrained_gen_model_path",
            architecture=architecture,
        )
    assert info.value.code == 2
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("ERROR:")][0]


def test_a_missing_key_or_changed_shape_is_refused_by_name(server, tmp_path, capsys):
    import pickle

    _, root = server
    state = pickle.load(open(root / "model_generator_toy_8gaussians.pdparams", "rb"))
    missing = dict(state)
    del missing["generator.reluLayer2.linear.bias"]
    pickle.dump(missing, open(tmp_path / "missing.pdparams", "wb"), protocol=4)
    assert "generator.reluLayer2.linear.bias missing" in load(capsys, tmp_path / "missing.pdparams")
    reshaped = dict(state)
    reshaped["generator.linear.weight"] = np.zeros([512, 3], "float32")
    pickle.dump(reshaped, open(tmp_path / "reshaped.pdparams", "wb"), protocol=4)
    line = load(capsys, tmp_path / "reshaped.pdparams")
    assert re.search(r"generator\.linear\.weight has shape \[512, 3\], expected \[512, 2\]", line)
    # a forced architecture that the file does not have
    line = load(capsys, root / "model_generator_toy_8gaussians.pdparams", "paper")
    assert line.endswith(
        "holds the weights of PaddleScience's toy generator, not of the toy example's generator "
        "(MODEL.architecture=auto loads the paper's or PaddleScience's)."
    ), line
