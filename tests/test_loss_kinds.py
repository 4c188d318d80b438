"""LOSS.kind, the paper's baselines: weight clipping (wgan) in the toy and MNIST examples and
the standard GAN (dcgan) in MNIST, each with its own settings from the paper's scripts,
through train, resume, eval, export and infer as typed, data parallel, and their losses
and optimizer checked against independent computations."""

import json
import os
import shlex

import numpy as np
import paddle
import pytest
from mnist_files import write_idx_dir
from test_as_typed import MNIST, TOY, printed_run_dir, script, shell
from test_data_parallel import assert_same_as_one_process, assert_trained_replicas_identical, run

import functions
from conftest import compose, usage_error
from gankit import datasets, solvers, trainer
from gankit import networks as models

KINDS = [("wgangp_toy.py", "wgan"), ("wgangp_mnist.py", "wgan"), ("wgangp_mnist.py", "dcgan")]
SETTINGS = {
    "wgangp_toy.py": TOY.replace("TRAIN.epochs=2", "TRAIN.epochs=1"),
    "wgangp_mnist.py": MNIST + " TRAIN.iters_per_epoch=2 TRAIN.epochs=1 "
    "TRAIN.dev_freq=1 TRAIN.dev_samples=32",
}
SIZES = {
    "wgangp_toy.py": "MODEL.hidden_size=32",
    "wgangp_mnist.py": "MODEL.dim=4 MODEL.noise_dim=16 EVAL.classifier_epochs=1 EVAL.batch_size=50",
}


def critic_weights(run_dir):
    state = paddle.load(os.path.join(run_dir, "model_discriminator.pdparams"))
    return {k: v.numpy() for k, v in state.items()}


@pytest.mark.parametrize("name,kind", KINDS)
def test_every_kind_trains_resumes_evaluates_exports_and_infers_as_typed(name, kind, tmp_path):
    data = ""
    if "mnist" in name:
        data = f" DATA.data_path={shlex.quote(write_idx_dir(str(tmp_path / 'mnist')))}"
    settings = f"{SETTINGS[name]}{data} LOSS.kind={kind}"
    out = shell(f"{script(name)} {settings}", tmp_path)
    run_dir = printed_run_dir(out)
    method = {
        "wgan": "Training WGAN (weight clipping at +-0.01) with RMSProp at 5e-05",
        "dcgan": "Training the standard GAN (sigmoid cross-entropy) with Adam at 0.0002, "
        "betas 0.5, 0.999",
    }[kind]
    assert method in out
    assert ("(1 critic step and" in out) == (kind == "dcgan")  # the paper's n_critic
    weights = critic_weights(run_dir)
    if kind == "wgan":  # every critic parameter clipped (batch-norm statistics are no parameters)
        clipped = [k for k in weights if not k.endswith(("_mean", "_variance"))]
        assert max(float(np.abs(weights[k]).max()) for k in clipped) <= np.float32(0.01)
    assert any(k.endswith("_mean") for k in weights) == (kind == "wgan" and "mnist" in name)
    history = json.loads(open(os.path.join(run_dir, "losses.json")).read())
    expected = {"wgan": {"wasserstein"}, "dcgan": {"real_probability", "fake_probability"}}[kind]
    assert expected <= set(history[0]) and "gradient_penalty" not in history[0]
    if "mnist" in name:  # the held-out critic cost, every TRAIN.dev_freq=1 iterations
        assert "dev_critic_loss" in history[0] and "dev_critic_loss" in out
    assert os.path.getsize(os.path.join(run_dir, "losses.png")) > 0

    # the resume command the run printed, with one more epoch
    more = shell(
        f"{script(name)} {settings.replace('TRAIN.epochs=1', 'TRAIN.epochs=2')} "
        f"TRAIN.checkpoint_path={run_dir}/checkpoints/latest",
        tmp_path,
    )
    assert "Resumed from" in more and "[Epoch 2/2]" in more
    # eval, export and infer with the kind's networks (batch norms for MNIST's wgan)
    sizes = f"{SIZES[name]}{data} LOSS.kind={kind} EVAL.num_samples=100"
    shell(
        f"{script(name)} mode=eval {sizes} EVAL.pretrained_gen_model_path="
        f"{run_dir}/model_generator.pdparams",
        tmp_path,
    )
    shell(
        f"{script(name)} mode=export {sizes} INFER.pretrained_model_path="
        f"{run_dir}/model_generator.pdparams",
        tmp_path,
    )
    infer = shell(f"{script(name)} mode=infer {sizes}", tmp_path)
    samples = np.load(os.path.join(printed_run_dir(infer), "samples.npz"))["samples"]
    assert len(samples) == 100 and np.isfinite(samples).all()


def test_batch_norm_weights_without_wgan_are_refused_with_the_setting_to_give(tmp_path, capsys):
    """Weights of MNIST's LOSS.kind=wgan networks (batch norms) evaluated with the default
    kind: one line that names LOSS.kind=wgan."""
    generator, _ = models.mnist_models(16, 4, batch_norm=True)
    path = str(tmp_path / "bn_generator.pdparams")
    paddle.save(generator.state_dict(), path)
    data = write_idx_dir(str(tmp_path / "mnist"))
    result = shell_error(
        f"{script('wgangp_mnist.py')} mode=eval MODEL.dim=4 MODEL.noise_dim=16 "
        f"DATA.data_path={data} EVAL.pretrained_gen_model_path={path}",
        tmp_path,
    )
    assert "LOSS.kind=wgan" in result and "Traceback" not in result


def shell_error(command, cwd):
    import subprocess
    import sys

    line = command.replace("python ", f"{shlex.quote(sys.executable)} ", 1)
    result = subprocess.run(
        line,
        shell=True,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    assert result.returncode != 0
    return result.stdout + result.stderr


@pytest.mark.parametrize("name,kind", [("wgangp_toy.py", "wgan"), ("wgangp_mnist.py", "dcgan")])
def test_two_processes_equal_one_process_for_each_kind(name, kind, tmp_path_factory):
    """Clipping after every step, RMSProp and the standard GAN's losses under data
    parallelism: two processes compute what one computes on the global batch."""
    # the toy's clipped critic is tiny at 32 units: the generator moves visibly in 2
    # iterations only at a larger rate than the paper's 5e-5
    overrides = (
        [
            "MODEL.hidden_size=32",
            "TRAIN.batch_size=64",
            "EVAL.num_samples=100",
            "TRAIN.learning_rate=1e-3",
        ]
        if "toy" in name
        else [
            "MODEL.dim=4",
            "MODEL.noise_dim=16",
            "TRAIN.batch_size=16",
            "TRAIN.eval_during_train=false",
            "EVAL.classifier_epochs=1",
            "EVAL.num_samples=100",
            "EVAL.batch_size=50",
            "TRAIN.dev_freq=0",
            f"DATA.data_path={write_idx_dir(str(tmp_path_factory.mktemp('d')))}",
        ]
    )
    outs = {}
    for processes in (2, 1):
        outs[processes] = tmp_path_factory.mktemp(f"{kind}{processes}")
        result = run(
            name,
            outs[processes],
            *overrides,
            f"LOSS.kind={kind}",
            "TRAIN.epochs=1",
            "TRAIN.iters_per_epoch=2",
            processes=processes,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert_trained_replicas_identical(outs[2])
    assert_same_as_one_process(outs[2], outs[1], atol=1e-5)


def test_mnist_wgan_with_batch_norms_resumes_bit_for_bit(tmp_path):
    """RMSProp's state, the batch norms' running statistics and the clipping: a run
    stopped after epoch 1 and resumed ends exactly like the whole run."""
    data = write_idx_dir(str(tmp_path / "mnist"))
    common = (
        f"{MNIST} TRAIN.iters_per_epoch=2 DATA.data_path={data} LOSS.kind=wgan TRAIN.dev_freq=0"
    )
    whole = printed_run_dir(shell(f"{script('wgangp_mnist.py')} {common} TRAIN.epochs=2", tmp_path))
    first = printed_run_dir(shell(f"{script('wgangp_mnist.py')} {common} TRAIN.epochs=1", tmp_path))
    resumed = printed_run_dir(
        shell(
            f"{script('wgangp_mnist.py')} {common} TRAIN.epochs=2 "
            f"TRAIN.checkpoint_path={first}/checkpoints/latest",
            tmp_path,
        )
    )
    for file in ("model_generator.pdparams", "model_discriminator.pdparams"):
        a, b = paddle.load(os.path.join(whole, file)), paddle.load(os.path.join(resumed, file))
        assert a.keys() == b.keys() and any(k.endswith("_mean") for k in a)
        for key in a:
            np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), err_msg=f"{file} {key}")


# --- the settings each kind brings, and bad ones ---------------------------------------
def test_each_kind_defaults_to_the_paper_scripts_settings():
    cfg = compose("mnist", "LOSS.kind=wgan")
    assert (
        cfg.TRAIN.optimizer,
        cfg.TRAIN.learning_rate,
        cfg.TRAIN.n_critic,
        cfg.MODEL.batch_norm,
    ) == ("rmsprop", 5e-5, 5, True)
    cfg = compose("mnist", "LOSS.kind=dcgan")
    assert (
        cfg.TRAIN.optimizer,
        cfg.TRAIN.learning_rate,
        cfg.TRAIN.beta1,
        cfg.TRAIN.beta2,
        cfg.TRAIN.n_critic,
        cfg.MODEL.batch_norm,
    ) == ("adam", 2e-4, 0.5, 0.999, 1, False)
    cfg = compose("toy", "LOSS.kind=wgan", "TRAIN.learning_rate=1e-3")  # an override wins
    assert (cfg.TRAIN.optimizer, cfg.TRAIN.learning_rate, cfg.TRAIN.n_critic) == (
        "rmsprop",
        1e-3,
        5,
    )
    cfg = compose("toy")
    assert (
        cfg.LOSS.kind,
        cfg.TRAIN.optimizer,
        cfg.TRAIN.learning_rate,
        cfg.TRAIN.beta1,
        cfg.TRAIN.beta2,
    ) == ("wgan-gp", "adam", 1e-4, 0.5, 0.9)


@pytest.mark.parametrize(
    "example,override,message",
    [
        ("toy", "LOSS.kind=dcgan", "LOSS.kind='dcgan': use wgan-gp, wgan"),
        ("mnist", "LOSS.kind=wgangp", "LOSS.kind='wgangp': use wgan-gp, wgan, dcgan"),
        ("toy", "TRAIN.optimizer=sgd", "TRAIN.optimizer='sgd': use adam or rmsprop."),
        ("mnist", "LOSS.clip=-1", "LOSS.clip=-1 must be a number > 0."),
        ("toy", "TRAIN.beta1=null", "TRAIN.beta1 is null, and Adam"),
    ],
)
def test_bad_kind_settings_get_one_line(example, override, message, capsys):
    from gankit import startup

    line = usage_error(capsys, startup.check_config, compose(example, override))
    assert message in line


# --- the losses, clipping and optimizer against independent computations -------------------
def test_weight_clipping_clamps_every_parameter():
    net = models.MnistCritic(4, batch_norm=True)
    trainer.clip_weights(net, 0.01)
    for name, p in net.named_parameters():
        assert float(p.abs().max()) <= np.float32(0.01), name
    before = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    trainer.clip_weights(net, None)  # no clipping for the other kinds
    assert all(np.array_equal(before[k], v.numpy()) for k, v in net.state_dict().items())


def test_standard_gan_losses_are_the_sigmoid_cross_entropies():
    critic = paddle.nn.Linear(3, 1)
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    w, b = critic.weight.numpy().astype("float64"), critic.bias.numpy().astype("float64")
    logit_real, logit_fake = (real @ w + b).ravel(), (fake @ w + b).ravel()

    def softplus(x):
        return np.log1p(np.exp(x))

    # CE(sigmoid(l), 1) = softplus(-l); CE(sigmoid(l), 0) = softplus(l)
    d_expected = (softplus(logit_fake).mean() + softplus(-logit_real).mean()) / 2
    g_expected = softplus(-logit_fake).mean()
    tensors = {"real": paddle.to_tensor(real, "float32"), "fake": paddle.to_tensor(fake, "float32")}
    d = functions.DCGANCriticLoss(critic)(tensors)["discriminator"]
    g = functions.DCGANGeneratorLoss(critic)(tensors)["generator"]
    assert float(d) == pytest.approx(d_expected, rel=1e-5)
    assert float(g) == pytest.approx(g_expected, rel=1e-5)


def test_rmsprop_step_is_tensorflows_rule_from_a_zero_mean_square():
    """TRAIN.optimizer=rmsprop: ms = 0.9 ms + 0.1 g^2, w -= lr g / sqrt(ms + 1e-10) (TF's
    decay and epsilon; Paddle starts ms at 0 where TF 1 started it at 1, see the docs)."""
    from omegaconf import OmegaConf

    layer = paddle.nn.Linear(2, 1)
    w0 = layer.weight.numpy().astype("float64")
    train = OmegaConf.create(
        {"optimizer": "rmsprop", "learning_rate": 5e-5, "epochs": 1, "iters_per_epoch": 1}
    )
    opt = solvers.optimizer(train, "critic")(layer)
    x = np.array([[1.0, -2.0], [0.5, 3.0]], "float32")
    ms, w = np.zeros_like(w0), w0.copy()
    for _ in range(2):
        loss = layer(paddle.to_tensor(x)).sum()
        loss.backward()
        g = layer.weight.grad.numpy().astype("float64")
        opt.step()
        opt.clear_grad()
        ms = 0.9 * ms + 0.1 * g**2
        w = w - 5e-5 * g / np.sqrt(ms + 1e-10)
    np.testing.assert_allclose(layer.weight.numpy(), w, rtol=1e-5)


def test_held_out_cost_of_a_linear_critic_is_its_closed_form():
    """For D(x) = w.x + b the gradient is w everywhere: the penalty is (|w| - 1)^2 and the
    held-out cost is mean D(fake) - mean D(real) + lambda (|w| - 1)^2, batch by batch."""
    critic = paddle.nn.Linear(3, 1)
    loss = functions.losses(compose("toy").LOSS, critic)[0]
    metric = functions.HeldOutCriticCost(loss, batch_size=4)
    rng = np.random.default_rng(1)
    real, fake = rng.standard_normal((8, 3)), rng.standard_normal((8, 3)) + 2
    results = metric({"fake": paddle.to_tensor(fake, "float32")}, {"real": real.astype("float32")})
    w = critic.weight.numpy().ravel().astype("float64")
    wasserstein = (real @ w).mean() - (fake @ w).mean()
    expected = -wasserstein + 0.1 * (np.linalg.norm(w) - 1) ** 2
    assert results["critic_loss"] == pytest.approx(expected, rel=1e-5)
    assert results["wasserstein"] == pytest.approx(wasserstein, rel=1e-5)  # b cancels


def test_25gaussians_trains_on_the_papers_fixed_set():
    toy = datasets.ToyDistribution("25gaussians")
    points = toy.fixed_set(100_000, np.random.default_rng(0))
    nearest = np.argmin(((points[:, None] - toy.centers[None]) ** 2).sum(-1), 1)
    assert np.array_equal(np.bincount(nearest, minlength=25), [4000] * 25)  # as gan_toy.py
    assert datasets.toy_training_points(compose("toy", "DATA.mode=25gaussians").DATA) == 100_000
    assert datasets.toy_training_points(compose("toy").DATA) == 0  # 8gaussians: fresh draws
    stream = datasets.FixedPoints(points, 256)
    first_pass = [stream.next() for _ in range(390)]  # 100 000 // 256 full batches
    assert np.array_equal(stream.next(), first_pass[0])  # the same order every pass
    state = stream.state_dict()
    again = datasets.FixedPoints(points, 256)
    again.set_state_dict(state)
    assert np.array_equal(again.next(), stream.next())
