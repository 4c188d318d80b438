"""The CIFAR-10 generator's batch norm as the paper's code computes it.

- Training: MODEL.bn_groups equal contiguous groups of a batch, each normalised with its
  own statistics (the paper's two towers); running averages updated once per call from
  the mean of the group means and of the group (biased) variances.
- Sampling: models.batch_statistics normalises each batch with its own statistics and
  leaves the running averages untouched (EVAL.sample_norm=batch, the paper's sampling).
"""

import numpy as np
import paddle
import pytest

from gankit import metrics
from gankit import networks as models

EPS = 1e-5


def numpy_batch_norm(x, weight, bias, groups=1):
    """Each of `groups` contiguous row groups normalised over (rows, H, W); the group
    means and biased variances."""
    parts = x.astype("float64").reshape(groups, -1, *x.shape[1:])
    mean = parts.mean(axis=(1, 3, 4), keepdims=True)
    var = parts.var(axis=(1, 3, 4), keepdims=True)
    y = ((parts - mean) / np.sqrt(var + EPS)).reshape(x.shape)
    return (
        y * weight[None, :, None, None] + bias[None, :, None, None],
        mean.reshape(groups, -1),
        var.reshape(groups, -1),
    )


def random_layer(groups, rng, channels=3):
    layer = models.GroupedBatchNorm2D(channels, groups)
    layer.weight.set_value(rng.uniform(0.5, 2, channels).astype("float32"))
    layer.bias.set_value(rng.standard_normal(channels).astype("float32"))
    layer._mean.set_value(rng.standard_normal(channels).astype("float32"))
    layer._variance.set_value(rng.uniform(0.5, 2, channels).astype("float32"))
    return layer


def state(layer):
    return {k: v.numpy().copy() for k, v in layer.state_dict().items()}


@pytest.mark.parametrize("groups", [2, 4])
def test_group_statistics_and_running_averages_against_numpy(groups):
    rng = np.random.default_rng(groups)
    layer = random_layer(groups, rng)
    x = (3 * rng.standard_normal((8, 3, 4, 5)) + rng.standard_normal((8, 1, 1, 1))).astype(
        "float32"
    )
    before = state(layer)
    y = layer(paddle.to_tensor(x)).numpy()
    expected, means, variances = numpy_batch_norm(x, before["weight"], before["bias"], groups)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    # one update per call, by Paddle's rule, from the mean over the groups
    np.testing.assert_allclose(
        layer._mean.numpy(), 0.9 * before["_mean"] + 0.1 * means.mean(0), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        layer._variance.numpy(), 0.9 * before["_variance"] + 0.1 * variances.mean(0), rtol=1e-5
    )
    # not the whole batch's statistics
    whole, _, _ = numpy_batch_norm(x, before["weight"], before["bias"], 1)
    assert np.abs(y - whole).max() > 1e-2


def test_groups_are_separate_calls_also_in_the_gradients():
    rng = np.random.default_rng(0)
    grouped = random_layer(2, rng)
    single = models.GroupedBatchNorm2D(3, 1)
    single.set_state_dict(grouped.state_dict())
    x = paddle.to_tensor(rng.standard_normal((6, 3, 2, 2)).astype("float32"), stop_gradient=False)
    upstream = paddle.to_tensor(rng.standard_normal((6, 3, 2, 2)).astype("float32"))
    (grouped(x) * upstream).sum().backward()
    x2 = paddle.to_tensor(x.numpy(), stop_gradient=False)
    (paddle.concat([single(x2[:3]), single(x2[3:])]) * upstream).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), x2.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grouped.weight.grad.numpy(), single.weight.grad.numpy(), rtol=1e-4)


def test_one_group_is_paddles_batch_norm():
    rng = np.random.default_rng(1)
    ours, paddles = random_layer(1, rng), paddle.nn.BatchNorm2D(3)
    paddles.set_state_dict(ours.state_dict())
    x = paddle.to_tensor(rng.standard_normal((5, 3, 2, 2)).astype("float32"))
    np.testing.assert_array_equal(ours(x).numpy(), paddles(x).numpy())
    for key, value in state(ours).items():
        np.testing.assert_array_equal(value, paddles.state_dict()[key].numpy(), err_msg=key)
    ours.eval(), paddles.eval()
    np.testing.assert_array_equal(ours(x).numpy(), paddles(x).numpy())


def test_uneven_batch_is_refused():
    with pytest.raises(ValueError, match="A batch of 5 does not split into 2 equal"):
        models.GroupedBatchNorm2D(3, 2)(paddle.rand([5, 3, 2, 2]))


def test_generator_with_two_groups_computes_the_papers_two_towers():
    paddle.seed(0)
    towers = models.CifarGenerator(16, 8, 10, bn_groups=2)
    one = models.CifarGenerator(16, 8, 10, bn_groups=1)
    one.set_state_dict(towers.state_dict())
    noise, labels = paddle.randn([8, 16]), paddle.to_tensor([0, 1, 2, 3, 4, 5, 6, 7])
    both = towers(noise, labels).numpy()
    halves = np.concatenate(
        [one(noise[:4], labels[:4]).numpy(), one(noise[4:], labels[4:]).numpy()]
    )
    np.testing.assert_allclose(both, halves, rtol=1e-4, atol=1e-5)
    norms = [s for s in towers.sublayers() if isinstance(s, models.BATCH_NORMS)]
    assert len(norms) == 7 and all(
        isinstance(s, models.GroupedBatchNorm2D) and s.groups == 2 for s in norms
    )  # 3 blocks x 2 conditional, and the output's


def test_local_bn_groups():
    assert models.local_bn_groups(2, 1, (64, 128)) == 2
    assert models.local_bn_groups(2, 2, (64, 128)) == 1
    assert models.local_bn_groups(8, 4) == 2
    with pytest.raises(
        ValueError,
        match=r"bn_groups=2 cannot be shared by 4 processes.*"
        r"multiple of 4 \(e.g. 4",
    ):
        models.local_bn_groups(2, 4)
    with pytest.raises(ValueError, match="cannot be shared by 2 processes"):
        models.local_bn_groups(3, 2)
    with pytest.raises(ValueError, match="does not split a batch of 50 into equal groups"):
        models.local_bn_groups(4, 1, (64, 50))
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="must be a positive integer"):
            models.local_bn_groups(bad, 1)


# ---- sampling with batch statistics ----


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("kind", ["grouped", "paddle"])
def test_batch_statistics_normalises_each_batch_and_keeps_the_running_averages(kind, training):
    rng = np.random.default_rng(2)
    layer = random_layer(2, rng)
    if kind == "paddle":
        plain = paddle.nn.BatchNorm2D(3)
        plain.set_state_dict(layer.state_dict())
        layer = plain
    net = paddle.nn.Sequential(paddle.nn.Identity(), layer)
    net.train() if training else net.eval()
    before = state(layer)
    x = (2 * rng.standard_normal((6, 3, 3, 3)) + 1).astype("float32")
    with models.batch_statistics(net):
        for batch in (x, x[:4]):  # each call: its whole batch, one group
            y = net(paddle.to_tensor(batch)).numpy()
            expected, _, _ = numpy_batch_norm(batch, before["weight"], before["bias"], 1)
            np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
        if kind == "grouped":  # untouched all along, not only restored
            np.testing.assert_array_equal(layer._mean.numpy(), before["_mean"])
    for key, value in state(layer).items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)
    assert layer.training == training
    if not training:  # running averages again
        ref = paddle.nn.BatchNorm2D(3)
        ref.set_state_dict(layer.state_dict())
        ref.eval()
        np.testing.assert_allclose(
            net(paddle.to_tensor(x)).numpy(), ref(paddle.to_tensor(x)).numpy(), rtol=1e-5, atol=1e-6
        )


def test_batch_statistics_restores_after_an_error():
    rng = np.random.default_rng(3)
    grouped, plain = random_layer(2, rng), paddle.nn.BatchNorm2D(3)
    net = paddle.nn.Sequential(grouped, plain)
    net.eval()
    before = [state(grouped), state(plain)]
    with pytest.raises(RuntimeError):
        with models.batch_statistics(net):
            net(paddle.rand([4, 3, 2, 2]))
            raise RuntimeError("inside")
    assert not grouped.batch_statistics_only and not plain.training and not grouped.training
    for layer, saved in zip((grouped, plain), before):
        for key, value in state(layer).items():
            np.testing.assert_array_equal(value, saved[key], err_msg=key)


def test_generate_with_batch_norm_mode():
    paddle.seed(1)
    generator, _ = models.cifar_models(16, 8, 8, conditional=True, layer_norm=False, bn_groups=2)
    rng = np.random.default_rng(0)
    for _ in range(3):  # move the running averages away from their start
        generator({"noise": paddle.randn([8, 16]), "labels": paddle.randint(0, 10, [8])})
    before = state(generator)
    inputs = {
        "noise": rng.standard_normal((12, 16)).astype("float32"),
        "labels": rng.integers(0, 10, 12),
    }
    batch = metrics.generate(generator, inputs, 6, norm="batch")
    running = metrics.generate(generator, inputs, 6, norm="running")
    for key, value in state(generator).items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)
    assert generator.training  # generate leaves the generator in training mode, as before
    # batch mode: each batch of 6 through the network normalised by its own statistics,
    # i.e. a copy with one group in training mode
    whole = models.cifar_models(16, 8, 8, conditional=True, layer_norm=False, bn_groups=1)[0]
    whole.set_state_dict(generator.state_dict())
    with paddle.no_grad():
        expected = np.concatenate(
            [
                whole({k: paddle.to_tensor(v[i : i + 6]) for k, v in inputs.items()})[
                    "fake"
                ].numpy()
                for i in (0, 6)
            ]
        )
    np.testing.assert_allclose(batch, expected, rtol=1e-4, atol=1e-5)
    assert np.abs(batch - running).max() > 1e-3


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "MODEL.bn_groups=3",
            "MODEL.bn_groups: bn_groups=3 does not split a batch of 64 into equal groups",
        ),
        ("EVAL.sample_norm=median", "EVAL.sample_norm='median': use batch or running"),
    ],
)
def test_bad_settings_are_one_line(tmp_path, override, message):
    from conftest import one_error_line, run_script

    line = one_error_line(
        run_script(
            "wgangp_cifar10.py",
            "mode=export",
            override,
            f"INFER.pretrained_model_path={tmp_path}/none.pdparams",
            f"hydra.run.dir={tmp_path / 'run'}",
        )
    )
    assert message in line
