"""CIFAR-10: loaders and checks, preprocessing, the ResNets, AC-GAN losses, and the script."""

import json
import os
import tarfile

import numpy as np
import paddle
import pytest
from cifar_files import batch, write_tarball
from omegaconf import OmegaConf

import functions
from conftest import EXAMPLE_DIR, one_error_line, run_script, usage_error
from gankit import datasets, files
from gankit import metrics as metric_math
from gankit import networks as models


def test_tarball_is_read_without_hard_coded_sizes(tmp_path):
    data = datasets.load_cifar10(write_tarball(str(tmp_path / "c.tar.gz")), md5=None)
    images, labels = data["train"]
    assert images.shape == (300, 3, 32, 32) and images.dtype == np.uint8
    expected = np.concatenate([batch(100, i)[b"data"] for i in range(3)]).reshape(-1, 3, 32, 32)
    np.testing.assert_array_equal(images, expected)
    np.testing.assert_array_equal(labels, sum((batch(100, i)[b"labels"] for i in range(3)), []))
    assert data["test"][0].shape == (100, 3, 32, 32)


def test_md5_is_checked(tmp_path, capsys):
    path = write_tarball(str(tmp_path / "cifar-10-python.tar.gz"))
    official = OmegaConf.load(os.path.join(EXAMPLE_DIR, "conf", "wgangp_cifar10.yaml")).DATA.md5
    err = usage_error(capsys, datasets.load_cifar10, path, official)  # the config's default
    assert official in err and files.file_digest(path, "md5") in err and "download" in err
    assert datasets.load_cifar10(path, files.file_digest(path, "md5"))["train"][0].shape[0] == 300


def test_extracted_directory(tmp_path):
    with tarfile.open(write_tarball(str(tmp_path / "c.tar.gz"))) as tar:
        tar.extractall(tmp_path, filter="data")
    data = datasets.load_cifar10(str(tmp_path / "cifar-10-batches-py"), None)
    assert data["train"][0].shape == (300, 3, 32, 32)


def test_unset_path_uses_paddles_cache(tmp_path, monkeypatch):
    cache = write_tarball(str(tmp_path / "cifar-10-python.tar.gz"))
    monkeypatch.setattr(datasets, "PADDLE_CIFAR10_CACHE", cache)
    assert datasets.load_cifar10(None, md5=None)["test"][0].shape == (100, 3, 32, 32)


def test_missing_and_corrupt_files(tmp_path, capsys):
    monkey_missing = str(tmp_path / "nope.tar.gz")
    assert "no such file or directory" in usage_error(
        capsys, datasets.load_cifar10, monkey_missing, None
    )
    corrupt = tmp_path / "c.tar.gz"
    corrupt.write_bytes(open(write_tarball(str(tmp_path / "good.tar.gz")), "rb").read()[:3000])
    err = usage_error(capsys, datasets.load_cifar10, str(corrupt), None)
    assert "is not a readable cifar-10-python.tar.gz" in err


def test_wrong_data_set_is_refused(tmp_path, capsys):
    wrong = {b"data": np.zeros((10, 784), np.uint8), b"labels": [0] * 10}  # MNIST-sized rows
    path = write_tarball(str(tmp_path / "c.tar.gz"), extra={"data_batch_1": wrong})
    assert "does not hold CIFAR-10 images" in usage_error(capsys, datasets.load_cifar10, path, None)


def test_preprocessing_is_the_papers_and_samples_map_back_to_bytes():
    paddle.seed(0)
    images = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16).repeat(3, 1)
    x = functions.cifar_real(paddle.to_tensor(images)).numpy()
    base = 2 * (images / 256 - 0.5)
    assert np.all(x >= base - 1e-6) and np.all(x < base + 1 / 128 + 1e-6)
    assert x.min() >= -1 and x.max() < 1
    noise = x - base  # the dequantisation noise: U(0, 1/128), independent per value
    assert 0.8 / 256 < noise.mean() < 1.2 / 256 and len(np.unique(noise.round(9))) > 700
    # generator outputs -> bytes as the paper's Inception Score code: int((y + 1) * 255.99 / 2)
    outputs = (images.astype("float32") + 0.5) / np.float32(255.99 / 2) - 1
    np.testing.assert_array_equal(metric_math.to_uint8(outputs), images.transpose(0, 2, 3, 1))
    edges = np.array([-1.0, 1.0, 0.0], "float32").reshape(1, 3, 1, 1)
    assert metric_math.to_uint8(edges).ravel().tolist() == [0, 255, 127]  # 127.995 -> 127


@pytest.mark.parametrize("conditional, layer_norm", [(True, False), (False, True)])
def test_resnets_shapes_and_penalty(conditional, layer_norm):
    generator, critic = models.cifar_models(16, 8, 8, conditional, layer_norm)
    inputs = {"noise": paddle.randn([4, 16])}
    if conditional:
        inputs["labels"] = paddle.to_tensor([0, 3, 5, 9])
    fake = generator(inputs)["fake"]
    assert fake.shape == [4, 3, 32, 32] and float(fake.abs().max()) <= 1
    assert critic(fake).shape == [4, 1]
    if conditional:
        assert critic.forward_with_logits(fake)[1].shape == [4, 10]
    gp, _ = functions.gradient_penalty(critic, paddle.randn([4, 3, 32, 32]), fake.detach())
    gp.backward()  # reaches every weight of the score path (biases of a ReLU net need not)
    assert all(
        p.grad is not None
        for name, p in critic.named_parameters()
        if name.endswith("weight") and not name.startswith("classes.")
    )


def test_critic_has_no_batch_statistics():
    # per-sample penalty needs samples to be independent: a sample's score ignores the others
    _, critic = models.cifar_models(16, 8, 8, True, True)
    x = paddle.randn([6, 3, 32, 32])
    np.testing.assert_allclose(critic(x)[:2].numpy(), critic(x[:2]).numpy(), rtol=1e-5, atol=1e-6)


class LinearAcganCritic(paddle.nn.Layer):
    """score = w.x, logits = V x on flattened inputs: closed forms for the AC-GAN terms."""

    def __init__(self, dim):
        super().__init__()
        self.w = paddle.nn.Linear(dim, 1)
        self.v = paddle.nn.Linear(dim, 10)

    def forward(self, x):
        return self.w(x)

    def forward_with_logits(self, x):
        return self.w(x), self.v(x)


def log_softmax(z):
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def test_acgan_terms_against_numpy():
    paddle.seed(0)
    critic = LinearAcganCritic(6)
    rng = np.random.default_rng(0)
    real, fake = (
        rng.standard_normal((8, 6)).astype("float32"),
        rng.standard_normal((8, 6)).astype("float32"),
    )
    labels = rng.integers(0, 10, 8)
    out = {
        "real": paddle.to_tensor(real),
        "fake": paddle.to_tensor(fake),
        "labels": paddle.to_tensor(labels),
    }
    v, b = critic.v.weight.numpy(), critic.v.bias.numpy()
    ce_real = -log_softmax(real @ v + b)[np.arange(8), labels].mean()
    terms = functions.CriticLoss(critic, 10.0, acgan_scale=1.0)(out)
    assert float(terms["critic_acgan"]) == pytest.approx(ce_real, rel=1e-5)
    ce_fake = -log_softmax(fake @ v + b)[np.arange(8), labels].mean()
    g_terms = functions.GeneratorLoss(critic, acgan_scale=0.1)(
        {"fake": out["fake"], "labels": out["labels"]}
    )
    assert float(g_terms["generator_acgan"]) == pytest.approx(0.1 * ce_fake, rel=1e-5)
    w, bw = critic.w.weight.numpy()[:, 0], critic.w.bias.numpy()[0]
    assert float(g_terms["generator"]) == pytest.approx(-(fake @ w + bw).mean(), rel=1e-5)


TINY = [
    "MODEL.dim_g=8",
    "MODEL.dim_d=8",
    "MODEL.noise_dim=16",
    "TRAIN.batch_size=8",
    "TRAIN.generator_batch_size=16",
    "EVAL.num_samples=40",
    "EVAL.batch_size=20",
    "DATA.md5=null",
]


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    return write_tarball(str(tmp_path_factory.mktemp("cifar") / "cifar-10-python.tar.gz"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tarball):
    run_dir = tmp_path_factory.mktemp("train")
    result = run_script(
        "wgangp_cifar10.py",
        *TINY,
        "TRAIN.epochs=2",
        "TRAIN.iters_per_epoch=2",
        f"DATA.data_path={tarball}",
        f"EVAL.inception_weights={run_dir}/none.pdparams",
        f"hydra.run.dir={run_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_train_outputs_and_offline_metrics(trained):
    for name in [
        "model_generator.pdparams",
        "model_discriminator.pdparams",
        "losses.png",
        "plots/epoch_0002.png",
        "samples.png",
    ]:
        assert (trained / name).stat().st_size > 0, name
    history = json.loads((trained / "losses.json").read_text())
    assert [h["iteration"] for h in history] == [2, 4]
    assert all(0 <= h["acgan_accuracy_real"] <= 1 for h in history)
    # no Inception weights: no samples are generated for the metrics (EVAL.num_samples=40),
    # samples.npz holds the 10x10 grid, one row per class
    saved = np.load(trained / "samples.npz")
    assert saved["samples"].shape == (100, 32, 32, 3) and saved["samples"].dtype == np.uint8
    np.testing.assert_array_equal(saved["labels"], np.repeat(np.arange(10), 10))
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["num_samples"] == 100
    assert metrics["inception_score"] is None and metrics["fid"] is None
    assert "EVAL.inception_weights" in metrics["not_computed_because"]
    assert "Inception Score and FID not computed" in (trained / "train.log").read_text()


def test_learning_rate_decays_linearly_to_zero(tarball, tmp_path):
    result = run_script(
        "wgangp_cifar10.py",
        *TINY,
        "TRAIN.epochs=2",
        "TRAIN.iters_per_epoch=2",
        "MODEL.conditional=false",
        f"DATA.data_path={tarball}",
        f"EVAL.inception_weights={tmp_path}/none.pdparams",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    history = json.loads((tmp_path / "losses.json").read_text())
    assert "acgan_accuracy_real" not in history[0]
    lrs = [(h["learning_rate_generator"], h["learning_rate_critic"]) for h in history]
    assert lrs[0] == pytest.approx((2e-4 * 0.5, 2e-4 * 0.5))  # after 2 of 4 iterations
    assert lrs[1] == pytest.approx((0.0, 0.0))


def test_eval_export_infer_round_trip(trained, tarball, tmp_path):
    weights = trained / "model_generator.pdparams"
    common = [f"EVAL.inception_weights={tmp_path}/none.pdparams"]
    ev = run_script(
        "wgangp_cifar10.py",
        "mode=eval",
        *TINY,
        *common,
        f"EVAL.pretrained_gen_model_path={weights}",
        f"hydra.run.dir={tmp_path / 'eval'}",
    )
    assert ev.returncode == 0, ev.stderr[-3000:]
    samples = np.load(tmp_path / "eval" / "samples.npz")["samples"]
    np.testing.assert_array_equal(samples, np.load(trained / "samples.npz")["samples"])
    prefix = tmp_path / "export" / "generator"
    ex = run_script(
        "wgangp_cifar10.py",
        "mode=export",
        *TINY,
        f"INFER.pretrained_model_path={weights}",
        f"INFER.export_path={prefix}",
        f"hydra.run.dir={tmp_path / 'export_run'}",
    )
    assert ex.returncode == 0, ex.stderr[-3000:]
    inf = run_script(
        "wgangp_cifar10.py",
        "mode=infer",
        *TINY,
        *common,
        f"INFER.export_path={prefix}",
        f"hydra.run.dir={tmp_path / 'infer'}",
    )
    assert inf.returncode == 0, inf.stderr[-3000:]
    inferred = np.load(tmp_path / "infer" / "samples.npz")["samples"].astype(int)
    # the exported model normalises with the running averages: compare with eval's
    # EVAL.sample_norm=running samples (the default, batch, uses each batch's statistics)
    running = run_script(
        "wgangp_cifar10.py",
        "mode=eval",
        *TINY,
        *common,
        "EVAL.sample_norm=running",
        f"EVAL.pretrained_gen_model_path={weights}",
        f"hydra.run.dir={tmp_path / 'eval_running'}",
    )
    assert running.returncode == 0, running.stderr[-3000:]
    samples_running = np.load(tmp_path / "eval_running" / "samples.npz")["samples"].astype(int)
    assert np.abs(samples_running - samples.astype(int)).max() > 1
    # batch norm in inference mode: the same images up to rounding of a few pixels
    assert np.abs(inferred - samples_running).max() <= 1
    assert (tmp_path / "infer" / "samples.png").exists()


def test_unconditional_weights_do_not_fit_the_conditional_model(tarball, tmp_path):
    run_dir = tmp_path / "uncond"
    result = run_script(
        "wgangp_cifar10.py",
        *TINY,
        "TRAIN.epochs=1",
        "TRAIN.iters_per_epoch=1",
        "MODEL.conditional=false",
        f"DATA.data_path={tarball}",
        f"EVAL.inception_weights={tmp_path}/none.pdparams",
        f"hydra.run.dir={run_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = one_error_line(
        run_script(
            "wgangp_cifar10.py",
            "mode=eval",
            *TINY,
            f"EVAL.pretrained_gen_model_path={run_dir / 'model_generator.pdparams'}",
            f"hydra.run.dir={tmp_path / 'eval'}",
        )
    )
    assert "EVAL.pretrained_gen_model_path" in line and "another model" in line


def test_missing_data_is_one_clear_line(tmp_path):
    line = one_error_line(
        run_script(
            "wgangp_cifar10.py",
            f"DATA.data_path={tmp_path}/none.tar.gz",
            f"hydra.run.dir={tmp_path / 'run'}",
        )
    )
    assert "cifar-10-python.tar.gz" in line and "https://www.cs.toronto.edu" in line
