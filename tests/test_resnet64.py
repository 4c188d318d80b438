"""gan_64x64.py's GoodGenerator / GoodDiscriminator (gankit/networks/resnet64.py).

The expectations are written out from gan_64x64.py and tflib/ops: the parameters tflib
creates for each layer of the paper's lists, its initialisation (uniform with std
sqrt(4 / (fan_in + fan_out)) for he_init convolutions, sqrt(2 / (fan_in + fan_out))
without, Glorot sqrt(2 / (in + out)) for linears), depth_to_space of four channel copies
and the mean of four strided slices, computed here in numpy.
"""

from math import sqrt

import numpy as np
import paddle
import pytest

import functions
from gankit import networks as models
from gankit.networks import resnet64

NOISE = 128
UP = ((8, 8), (8, 4), (4, 2), (2, 1))  # GoodGenerator's Res1..Res4, in units of dim
DOWN = ((1, 2), (2, 4), (4, 8), (8, 8))  # GoodDiscriminator's Res1..Res4


def batch_norm(name, channels):
    """tflib's fused Batchnorm: offset, scale and the (non-trainable) moving statistics."""
    return {
        f"{name}.{k}": (channels,) for k in ("offset", "scale", "moving_mean", "moving_variance")
    }


def paper_generator(dim, channels):
    """tflib's parameter shapes for GoodGenerator (Filters [k, k, in, out], W [in, out])."""
    shapes = {"Input.W": (NOISE, 4 * 4 * 8 * dim), "Input.b": (4 * 4 * 8 * dim,)}
    for i, (a, b) in enumerate(UP, 1):
        a, b = a * dim, b * dim
        shapes.update(
            {
                f"Res{i}.Shortcut.Filters": (1, 1, a, b),  # UpsampleConv, biases=True
                f"Res{i}.Shortcut.Biases": (b,),
                **batch_norm(f"Res{i}.BN1", a),
                f"Res{i}.Conv1.Filters": (3, 3, a, b),  # UpsampleConv, biases=False
                **batch_norm(f"Res{i}.BN2", b),
                f"Res{i}.Conv2.Filters": (3, 3, b, b),
                f"Res{i}.Conv2.Biases": (b,),
            }
        )
    shapes.update(
        {
            **batch_norm("OutputN", dim),
            "Output.Filters": (3, 3, dim, channels),
            "Output.Biases": (channels,),
        }
    )
    return shapes


def paper_critic(dim, channels, layer_norm=True):
    """tflib's parameter shapes for GoodDiscriminator; its wgan-gp Normalize is Layernorm
    (offset and scale per channel), without it no parameters."""
    shapes = {"Input.Filters": (3, 3, channels, dim), "Input.Biases": (dim,)}
    for i, (a, b) in enumerate(DOWN, 1):
        a, b = a * dim, b * dim
        shapes.update(
            {
                f"Res{i}.Shortcut.Filters": (1, 1, a, b),  # MeanPoolConv
                f"Res{i}.Shortcut.Biases": (b,),
                f"Res{i}.Conv1.Filters": (3, 3, a, a),  # biases=False
                f"Res{i}.Conv2.Filters": (3, 3, a, b),  # ConvMeanPool
                f"Res{i}.Conv2.Biases": (b,),
            }
        )
        if layer_norm:
            for norm in ("BN1", "BN2"):
                shapes.update({f"Res{i}.{norm}.offset": (a,), f"Res{i}.{norm}.scale": (a,)})
    shapes.update({"Output.W": (4 * 4 * 8 * dim, 1), "Output.b": (1,)})
    return shapes


def sizes(shapes):
    return sorted(int(np.prod(s)) for s in shapes)


def trainable(shapes):
    return [s for name, s in shapes.items() if ".moving_" not in name]


def statistics(shapes):
    return [s for name, s in shapes.items() if ".moving_" in name]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("layer_norm", [True, False])
def test_parameter_counts_equal_the_papers(channels, layer_norm):
    generator, critic = models.resnet64_models(channels=channels, layer_norm=layer_norm)
    for net, paper in (
        (generator.net, paper_generator(64, channels)),
        (critic, paper_critic(64, channels, layer_norm)),
    ):
        ours = [p.shape for p in net.parameters() if not p.stop_gradient]
        assert sizes(ours) == sizes(trainable(paper))
        # Paddle keeps batch norms' running statistics as non-trainable parameters too
        running = [p.shape for p in net.parameters() if p.stop_gradient]
        assert sizes(running) == sizes(statistics(paper))


def count(net, running=False):
    """Trainable parameters, or (running=True) batch norms' running statistics."""
    return sum(int(np.prod(p.shape)) for p in net.parameters() if p.stop_gradient == running)


def test_parameter_counts_at_dim_64():
    generator, critic = models.resnet64_models()
    assert count(generator) == 8_540_483 and count(generator, running=True) == 4_864
    assert count(critic) == 7_491_841 and count(critic, running=True) == 0
    generator, critic = models.resnet64_models(channels=1, layer_norm=False)
    assert count(generator) == 8_540_483 - 2 * 9 * 64 - 2
    layer_norms = 2 * 2 * (64 + 128 + 256 + 512)  # two a block, a scale and a shift each
    assert count(critic) == 7_491_841 - 2 * 9 * 64 - layer_norms


def he3(a, b):  # 3x3, stride 1, he_init (the resampling is outside the convolution)
    return sqrt(4 / (9 * a + 9 * b))


def expected_stds(dim, channels):
    """Our parameter names -> the paper's std for every weight matrix / filter."""
    table = {"G.fc.weight": sqrt(2 / (NOISE + 4 * 4 * 8 * dim))}
    for i, (a, b) in enumerate(UP):
        a, b = a * dim, b * dim
        table[f"G.blocks.{i}.conv1.weight"] = he3(a, b)
        table[f"G.blocks.{i}.conv2.weight"] = he3(b, b)
        table[f"G.blocks.{i}.shortcut.weight"] = sqrt(2 / (a + b))  # he_init=False
    table["G.out.weight"] = he3(dim, channels)  # Generator.Output: he_init default (True)
    table["D.input.weight"] = sqrt(2 / (9 * channels + 9 * dim))  # he_init=False
    for i, (a, b) in enumerate(DOWN):
        a, b = a * dim, b * dim
        table[f"D.blocks.{i}.conv1.weight"] = he3(a, a)
        table[f"D.blocks.{i}.conv2.weight"] = he3(a, b)
        table[f"D.blocks.{i}.shortcut.weight"] = sqrt(2 / (a + b))
    table["D.score.weight"] = sqrt(2 / (4 * 4 * 8 * dim + 1))
    return table


@pytest.fixture(scope="module")
def rgb_params():
    paddle.seed(64)
    generator, critic = models.resnet64_models()
    named = {f"G.{k}": p for k, p in generator.net.named_parameters()}
    named.update({f"D.{k}": p for k, p in critic.named_parameters()})
    return named


def test_initialisation_follows_tflib(rgb_params):
    table = expected_stds(64, 3)
    weights = {k for k, p in rgb_params.items() if k.endswith(".weight") and p.ndim >= 2}
    assert weights == set(table)
    for key, std in table.items():
        w = rgb_params[key].numpy().astype("float64").ravel()
        n, bound = w.size, std * sqrt(3)
        assert np.abs(w).max() <= bound * (1 + 1e-6), key
        assert np.abs(w).max() >= bound * (1 - min(0.2, 21 / n)), key
        # 6 standard errors of the sample std and mean of n uniform draws
        assert abs(w.std() / std - 1) <= 6 * 0.45 / sqrt(n) + 1e-3, (key, w.std(), std)
        assert abs(w.mean()) <= 6 * std / sqrt(n), key


def test_biases_start_at_zero_and_norms_at_identity(rgb_params):
    for key, p in rgb_params.items():
        if p.stop_gradient:  # batch norms' running statistics
            continue
        values = p.numpy()
        if ".norm" in key or key.startswith("G.norm"):
            assert np.all(values == (1.0 if key.endswith(".weight") else 0.0)), key
        elif key.endswith(".bias"):
            assert not np.any(values), key


def test_first_convolutions_have_no_bias():
    generator, critic = models.resnet64_models(dim_g=4, dim_d=4)
    for block in [*generator.net.blocks, *critic.blocks]:
        assert block.conv1.bias is None
        assert block.conv2.bias is not None and block.shortcut.bias is not None


@pytest.mark.parametrize("channels", [1, 3])
def test_output_shapes(channels):
    paddle.seed(0)
    generator, critic = models.resnet64_models(channels=channels)
    fake = generator({"noise": paddle.randn([2, NOISE])})["fake"]
    assert fake.shape == [2, channels, 64, 64]
    values = fake.numpy()
    assert np.all(np.isfinite(values)) and np.abs(values).max() <= 1.0
    assert critic(fake).shape == [2, 1]


def test_conditional_variant():
    paddle.seed(0)
    generator, critic = models.resnet64_models(dim_g=4, dim_d=4, channels=1, num_classes=5)
    assert generator.input_keys == ("noise", "labels")
    labels = paddle.to_tensor([0, 4])
    fake = generator({"noise": paddle.randn([2, NOISE]), "labels": labels})["fake"]
    assert fake.shape == [2, 1, 64, 64]
    score, logits = critic.forward_with_logits(fake)
    assert score.shape == [2, 1] and logits.shape == [2, 5]


@pytest.mark.parametrize("channels,layer_norm", [(1, True), (3, True), (3, False)])
def test_gradient_penalty_double_backward(channels, layer_norm):
    paddle.seed(1)
    critic = resnet64.ResNet64Critic(dim=4, channels=channels, layer_norm=layer_norm)
    real = paddle.rand([2, channels, 64, 64]) * 2 - 1
    fake = paddle.rand([2, channels, 64, 64]) * 2 - 1
    penalty, norms = functions.gradient_penalty(critic, real, fake)
    assert norms.shape == [2] and np.isfinite(float(penalty))
    penalty.backward()
    # the penalty reaches every weight; the input gradient of a ReLU network does not
    # depend on some biases (zero gradient, None in Paddle), the last ones at least
    for name, p in critic.named_parameters():
        if p.ndim >= 2:
            assert p.grad is not None and np.any(p.grad.numpy()), name
        if p.grad is not None:
            assert np.all(np.isfinite(p.grad.numpy())), name
    critic.clear_gradients()
    # the whole WGAN-GP critic loss reaches every parameter
    penalty = functions.gradient_penalty(critic, real, fake)[0]
    loss = critic(fake).mean() - critic(real).mean() + 10 * penalty
    loss.backward()
    for name, p in critic.named_parameters():
        assert p.grad is not None and np.all(np.isfinite(p.grad.numpy())), name


# ---------------------------------------------------------------------------
# Resampling against numpy: depth_to_space (TensorFlow's, NHWC) of four channel copies,
# and the mean of four strided slices; the convolutions as cross-correlations.
# ---------------------------------------------------------------------------
def np_depth_to_space(x, block=2):
    """TensorFlow's depth_to_space on NHWC: out[n, h*b + i, w*b + j, c] = x[n, h, w, (i*b + j)*C + c]."""
    n, h, w, depth = x.shape
    c = depth // block**2
    y = x.reshape(n, h, w, block, block, c).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(n, h * block, w * block, c)


def np_upsample(x):
    """gan_64x64.py's UpsampleConv before its convolution (NCHW in and out)."""
    tiled = np.concatenate([x, x, x, x], axis=1).transpose(0, 2, 3, 1)
    return np_depth_to_space(tiled).transpose(0, 3, 1, 2)


def np_mean_pool(x):
    return (x[:, :, ::2, ::2] + x[:, :, 1::2, ::2] + x[:, :, ::2, 1::2] + x[:, :, 1::2, 1::2]) / 4


def np_conv(x, weight, bias):
    """'SAME' stride-1 convolution, weight [out, in, k, k]."""
    k = weight.shape[-1]
    h, w = x.shape[2:]
    padded = np.pad(x, ((0, 0), (0, 0), (k // 2, k // 2), (k // 2, k // 2)))
    out = sum(
        np.einsum("nchw,oc->nohw", padded[:, :, i : i + h, j : j + w], weight[:, :, i, j])
        for i in range(k)
        for j in range(k)
    )
    return out + (0 if bias is None else bias[None, :, None, None])


def test_depth_to_space_reference():
    x = np.arange(8.0).reshape(1, 1, 1, 8)  # 2 output channels
    out = np_depth_to_space(x)
    assert out[0, :, :, 0].tolist() == [[0, 2], [4, 6]]
    assert out[0, :, :, 1].tolist() == [[1, 3], [5, 7]]


def tiny_input(shape=(2, 3, 4, 6)):
    return np.random.default_rng(0).standard_normal(shape).astype("float32")


def test_upsample_and_mean_pool_equal_numpy():
    x = tiny_input()
    up = resnet64._upsample(paddle.to_tensor(x)).numpy()
    np.testing.assert_array_equal(up, np_upsample(x))
    pooled = resnet64._mean_pool(paddle.to_tensor(x)).numpy()
    np.testing.assert_allclose(pooled, np_mean_pool(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("kernel", [1, 3])
@pytest.mark.parametrize(
    "cls,reference",
    [
        (resnet64.UpsampleConv, lambda conv, x: conv(np_upsample(x))),
        (resnet64.ConvMeanPool, lambda conv, x: np_mean_pool(conv(x))),
        (resnet64.MeanPoolConv, lambda conv, x: conv(np_mean_pool(x))),
    ],
)
def test_resampling_convolutions_equal_numpy(cls, reference, kernel):
    paddle.seed(2)
    layer = resnet64.tflib_conv(3, 5, kernel, cls=cls)
    layer.bias.set_value(paddle.to_tensor(np.linspace(-1, 1, 5).astype("float32")))
    x = tiny_input()
    w, b = layer.weight.numpy(), layer.bias.numpy()
    expected = reference(lambda v: np_conv(v, w, b), x)
    np.testing.assert_allclose(layer(paddle.to_tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_residual_block_without_resampling():
    same = resnet64.ResidualBlock(4, 4)
    wider = resnet64.ResidualBlock(4, 6)
    assert same.shortcut is None and wider.shortcut.weight.shape == [6, 4, 1, 1]
    x = paddle.to_tensor(tiny_input((2, 4, 4, 4)))
    assert same(x).shape == [2, 4, 4, 4] and wider(x).shape == [2, 6, 4, 4]
    with pytest.raises(ValueError, match="resample"):
        resnet64.ResidualBlock(4, 4, "sideways")
