"""PaddleScience's published networks (published/networks.py) against the specification
(seed_architectures.md): key layouts, the weights file format, and every forward pass
against an independent float64 NumPy computation of the specification's equations."""

import io
import pickle

import numpy as np
import paddle
import pytest
from published_files import EXTRA, published_layout, write_published_file

from gankit import files
from gankit import networks as models
from gankit.published import networks
from gankit.published import weights as published_weights

EXAMPLES = [
    ("toy", "generator"),
    ("toy", "critic"),
    ("mnist", "generator"),
    ("mnist", "critic"),
    ("cifar10", "generator"),
    ("cifar10", "critic"),
]
# the spec's headings: entries; trainable values, non-trainable BN statistics, buffer values
SPEC_COUNTS = {
    ("toy", "generator"): (8, 527874, 0, 0),
    ("toy", "critic"): (8, 527361, 0, 0),
    ("mnist", "generator"): (8, 1554177, 0, 0),
    ("mnist", "critic"): (8, 1030145, 0, 0),
    ("cifar10", "generator"): (50, 1218307, 256, 1536),
    ("cifar10", "critic"): (52, 1088151, 0, 12),
}


# ---------------------------------------------------------------------------
# NumPy reference of the specification (float64, no paddle)
# ---------------------------------------------------------------------------
def relu(x):
    return np.maximum(x, 0.0)


def same_pads(length, k, s):
    """§1.2: Paddle's "same" padding from the input length: (before, after)."""
    out = -(-length // s)
    total = max((out - 1) * s + k - length, 0)
    return total // 2, total - total // 2


def conv2d(x, w, b, stride=1):
    """Cross-correlation with "same" padding, weight [out, in, kh, kw]."""
    n, _, h, wd = x.shape
    k = w.shape[2]
    (top, bottom), (left, right) = same_pads(h, k, stride), same_pads(wd, k, stride)
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    ho, wo = -(-h // stride), -(-wd // stride)
    y = np.zeros((n, w.shape[0], ho, wo))
    for a in range(k):
        for c in range(k):
            patch = xp[
                :, :, a : a + stride * (ho - 1) + 1 : stride, c : c + stride * (wo - 1) + 1 : stride
            ]
            y += np.einsum("nchw,oc->nohw", patch, w[:, :, a, c])
    return y + b[None, :, None, None]


def conv_transpose(x, w, b, delta, out_len, s=2):
    """Full transposed convolution (weight [in, out, kh, kw]), then Y[y] = F[y + delta]."""
    n, _, h, wd = x.shape
    k = w.shape[2]
    full = np.zeros((n, w.shape[1], (h - 1) * s + k, (wd - 1) * s + k))
    for a in range(k):
        for c in range(k):
            full[:, :, a : a + s * (h - 1) + 1 : s, c : c + s * (wd - 1) + 1 : s] += np.einsum(
                "nchw,co->nohw", x, w[:, :, a, c]
            )
    return full[:, :, delta : delta + out_len, delta : delta + out_len] + b[None, :, None, None]


def avg_pool(x):
    return 0.25 * (
        x[:, :, 0::2, 0::2] + x[:, :, 0::2, 1::2] + x[:, :, 1::2, 0::2] + x[:, :, 1::2, 1::2]
    )


def upsample(x):
    """§2.2 (a): U[n, c, 2h + i, 2w + j] = x[n, (4c + 2i + j) mod C, h, w]."""
    n, ch, h, w = x.shape
    u = np.empty((n, ch, 2 * h, 2 * w))
    for c in range(ch):
        for i in (0, 1):
            for j in (0, 1):
                u[:, c, i::2, j::2] = x[:, (4 * c + 2 * i + j) % ch]
    return u


def cond_batch_norm(x, labels, p, key, training, stats):
    """§2.2 (d); training moves the buffers (recorded in `stats`)."""
    if training:
        mu = x.mean(axis=(0, 2, 3))
        var = ((x - mu[None, :, None, None]) ** 2).sum(axis=(0, 2, 3)) / (x.size / x.shape[1] - 1)
        stats[key + ".mean"] = 0.9 * p[key + ".mean"] + 0.1 * mu
        stats[key + ".var"] = 0.9 * p[key + ".var"] + 0.1 * var
    else:
        mu, var = p[key + ".mean"], p[key + ".var"]
    y = (x - mu[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
    return (
        y * p[key + ".scale"][labels][:, :, None, None]
        + p[key + ".offset"][labels][:, :, None, None]
    )


def batch_norm(x, p, key, training, stats):
    """§2.2 (e): Paddle BatchNorm, biased batch variance, running stats moved by 0.1."""
    if training:
        mu = x.mean(axis=(0, 2, 3))
        var = x.var(axis=(0, 2, 3))
        stats[key + "._mean"] = 0.9 * p[key + "._mean"] + 0.1 * mu
        stats[key + "._variance"] = 0.9 * p[key + "._variance"] + 0.1 * var
    else:
        mu, var = p[key + "._mean"], p[key + "._variance"]
    y = (x - mu[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
    return y * p[key + ".weight"][None, :, None, None] + p[key + ".bias"][None, :, None, None]


def layer_norm(x, p, key, training, stats):
    """§2.2 (f): scalar scale/offset; per-sample unbiased statistics or scalar buffers."""
    if training:
        flat = x.reshape(len(x), -1)
        mu = flat.mean(axis=1)
        var = ((flat - mu[:, None]) ** 2).sum(axis=1) / (flat.shape[1] - 1)
        stats[key + ".mean"] = 0.9 * p[key + ".mean"] + 0.1 * mu.mean()
        stats[key + ".var"] = 0.9 * p[key + ".var"] + 0.1 * var.mean()
        mu, var = mu[:, None, None, None], var[:, None, None, None]
    else:
        mu, var = p[key + ".mean"], p[key + ".var"]
    return (x - mu) / np.sqrt(var + 1e-5) * p[key + ".scale"] + p[key + ".offset"]


def toy_reference(p, x, prefix):
    for i in (1, 2, 3):
        x = relu(
            x @ p[f"{prefix}reluLayer{i}.linear.weight"] + p[f"{prefix}reluLayer{i}.linear.bias"]
        )
    return x @ p[prefix + "linear.weight"] + p[prefix + "linear.bias"]


def mnist_generator_reference(p, z):
    g = "generator."
    a = relu(z @ p[g + "linear1.weight"] + p[g + "linear1.bias"])
    x = a.reshape(len(z), -1, 4, 4)  # C-order: c * 16 + h * 4 + w
    # §3.2's table: (delta, output length) per layer; layer 1 is then cropped to 7x7
    x = relu(
        conv_transpose(x, p[g + "conv2d_transpose1.weight"], p[g + "conv2d_transpose1.bias"], 1, 8)
    )
    x = x[:, :, :7, :7]
    x = relu(
        conv_transpose(x, p[g + "conv2d_transpose2.weight"], p[g + "conv2d_transpose2.bias"], 2, 14)
    )
    x = conv_transpose(x, p[g + "conv2d_transpose3.weight"], p[g + "conv2d_transpose3.bias"], 1, 28)
    return 1.0 / (1.0 + np.exp(-x))


def mnist_critic_reference(p, x):
    d = "discriminator."
    for i in (1, 2, 3):
        x = conv2d(x, p[f"{d}conv2d_{i}.weight"], p[f"{d}conv2d_{i}.bias"], stride=2)
        x = np.where(x > 0, x, 0.01 * x)
    return x.reshape(len(x), -1) @ p[d + "linear.weight"] + p[d + "linear.bias"]


def cifar_generator_reference(p, z, labels, training):
    g, stats = "generator.", {}
    x = (z @ p[g + "linear1.weight"] + p[g + "linear1.bias"]).reshape(len(z), -1, 4, 4)
    for b in range(3):
        k = f"{g}ResidualBlocks.{b}."
        shortcut = conv2d(
            upsample(x), p[k + "conv_shortcut.conv2D.weight"], p[k + "conv_shortcut.conv2D.bias"]
        )
        h = relu(cond_batch_norm(x, labels, p, k + "normalize1.normalize", training, stats))
        h = conv2d(upsample(h), p[k + "conv_1.conv2D.weight"], p[k + "conv_1.conv2D.bias"])
        h = relu(cond_batch_norm(h, labels, p, k + "normalize2.normalize", training, stats))
        x = shortcut + conv2d(h, p[k + "conv_2.weight"], p[k + "conv_2.bias"])
    x = relu(batch_norm(x, p, g + "Normalize.normalize", training, stats))
    return np.tanh(conv2d(x, p[g + "conv.weight"], p[g + "conv.bias"])), stats


def cifar_critic_reference(p, x, training):
    d, stats = "discriminator.", {}
    o = d + "optimized_resblock_disc1."
    h = avg_pool(
        conv2d(
            relu(conv2d(x, p[o + "conv_1.weight"], p[o + "conv_1.bias"])),
            p[o + "conv_2.conv2D.weight"],
            p[o + "conv_2.conv2D.bias"],
        )
    )
    x = (
        conv2d(
            avg_pool(x), p[o + "conv_shortcut.conv2D.weight"], p[o + "conv_shortcut.conv2D.bias"]
        )
        + h
    )
    for b in range(3):
        k = f"{d}ResidualBlocks.{b}."
        h = relu(layer_norm(x, p, k + "normalize1.normalize", training, stats))
        h = relu(
            layer_norm(
                conv2d(h, p[k + "conv_1.weight"], p[k + "conv_1.bias"]),
                p,
                k + "normalize2.normalize",
                training,
                stats,
            )
        )
        if b == 0:  # down: conv then pool on both paths
            x = avg_pool(
                conv2d(x, p[k + "conv_shortcut.conv2D.weight"], p[k + "conv_shortcut.conv2D.bias"])
            ) + avg_pool(conv2d(h, p[k + "conv_2.conv2D.weight"], p[k + "conv_2.conv2D.bias"]))
        else:  # identity shortcut; conv_shortcut is never used
            x = x + conv2d(h, p[k + "conv_2.weight"], p[k + "conv_2.bias"])
    f = relu(x).mean(axis=(2, 3))
    return (
        f @ p[d + "linear.weight"] + p[d + "linear.bias"],
        f @ p[d + "linear2.weight"] + p[d + "linear2.bias"],
        stats,
    )


def close(actual, expected, rtol=1e-4):
    actual = actual.numpy() if isinstance(actual, paddle.Tensor) else actual
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
def loaded(tmp_path, example, role, seed=0, **sizes):
    """(network with a written published file loaded, {key: float64 array})."""
    arrays = write_published_file(str(tmp_path / "w.pdparams"), example, role, seed, **sizes)
    net = networks.published_network(example, role, **sizes)
    net.set_state_dict(arrays)
    return net, {k: v.astype("float64") for k, v in arrays.items()}


def tensor(array, dtype="float32"):
    return paddle.to_tensor(np.asarray(array).astype(dtype))


# ---------------------------------------------------------------------------
# Layouts and files
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("example,role", EXAMPLES)
def test_state_dict_is_the_published_layout(example, role):
    entries, trainable, statistics, buffers = SPEC_COUNTS[example, role]
    layout = published_layout(example, role)
    assert len(layout) == entries
    net = networks.published_network(example, role)
    state = net.state_dict()
    assert [(k, list(v.shape)) for k, v in state.items()] == [(k, s) for k, s, _ in layout]
    assert all(v.dtype == paddle.float32 for v in state.values())
    size = lambda ts: sum(int(np.prod(t.shape)) for t in ts)  # noqa: E731
    assert size(p for p in net.parameters() if not p.stop_gradient) == trainable
    assert size(p for p in net.parameters() if p.stop_gradient) == statistics
    assert size(net.buffers()) == buffers


@pytest.mark.parametrize("example,role", EXAMPLES)
def test_published_file_format(tmp_path, example, role):
    path = str(tmp_path / "w.pdparams")
    arrays = write_published_file(path, example, role, seed=3)
    with open(path, "rb") as f:
        state = files.NumpyOnlyUnpickler.load(f, path)
    assert list(state) == [k for k, _, _ in published_layout(example, role)] + [EXTRA]
    names = state.pop(EXTRA)
    assert set(names) == set(state) and all(isinstance(v, str) for v in names.values())
    assert all(v.dtype == np.float32 and isinstance(v, np.ndarray) for v in state.values())
    by_paddle = paddle.load(path)  # it consumes the extra entry
    assert list(by_paddle) == list(state)
    np.testing.assert_array_equal(np.asarray(by_paddle[list(state)[-1]]), list(state.values())[-1])
    buffer = io.BytesIO()  # byte for byte what paddle.save writes for the same dict
    paddle.save(pickle.loads(open(path, "rb").read()), buffer)
    assert buffer.getvalue() == open(path, "rb").read()

    assert (
        published_weights.layout_of(state)
        == published_weights.layout_of(list(state) + [EXTRA])
        == "published"
    )
    net = networks.published_network(example, role)
    files.load_weights(net, path, "published")  # our strict loader: names and shapes
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), arrays[key], err_msg=key)


def test_paper_layouts_are_recognised(tmp_path):
    nets = [
        *models.toy_models(2, 16, 2),
        *models.mnist_models(128, 8),
        *models.cifar_models(128, 8, 8, True, True),
    ]
    for net in nets:
        assert published_weights.layout_of(net.state_dict()) == "paper"
    files.save_weights(nets[0], str(tmp_path / "g.pdparams"))  # with paddle.save's extra entry
    assert published_weights.layout_of(files.read_pdparams(str(tmp_path / "g.pdparams"))) == "paper"
    with pytest.raises(ValueError, match="mix"):
        published_weights.layout_of(["generator.linear1.weight", "net.fc.weight"])
    assert isinstance(
        networks.published_network("cifar10", "critic", dim=8), networks.PublishedCifarCritic
    )
    with pytest.raises(ValueError):
        networks.published_network("celeba", "generator")


# ---------------------------------------------------------------------------
# Forward passes against the NumPy reference
# ---------------------------------------------------------------------------
def test_toy_networks(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 2))
    generator, p = loaded(tmp_path, "toy", "generator")
    close(generator(tensor(x)), toy_reference(p, x, "generator."))
    critic, p = loaded(tmp_path, "toy", "critic", seed=1)
    out = critic(tensor(x))
    assert out.shape == [5, 1]
    close(out, toy_reference(p, x, "discriminator."))


def test_same_padding_and_transposed_alignment_of_the_reference():
    # the reference's own padding agrees with the spec's table (§1.2, §3.2)
    assert [same_pads(n, 5, 2) for n in (28, 14, 7)] == [(1, 2), (1, 2), (2, 2)]
    assert [same_pads(n, 3, 1) for n in (4, 32)] == [(1, 1), (1, 1)]


def test_mnist_networks(tmp_path):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(2, 128))
    generator, p = loaded(tmp_path, "mnist", "generator")
    images = generator(tensor(z))
    assert images.shape == [2, 1, 28, 28]
    expected = mnist_generator_reference(p, z)
    assert 0.05 < expected.std()  # not saturated: the check below means something
    close(images, expected)
    critic, p = loaded(tmp_path, "mnist", "critic", seed=1)
    x = rng.uniform(size=(2, 1, 28, 28))
    out = critic(tensor(x))
    assert out.shape == [2, 1]
    close(out, mnist_critic_reference(p, x))
    close(critic(tensor(x.reshape(2, 784))), mnist_critic_reference(p, x))


def test_upsampling_is_paddlescience_channel_mapping():
    x = np.random.default_rng(2).normal(size=(1, 128, 2, 2))
    u = networks.pixel_shuffle_upsample(tensor(x)).numpy()
    close(u, upsample(x), rtol=1e-6)
    # §2.2 (a): channel 0 shows inputs 0..3 at its sub-pixels; channels 32.. repeat 0..31
    np.testing.assert_array_equal(u[0, 0, :2, :2], np.float32(x[0, [[0, 1], [2, 3]], 0, 0]))
    np.testing.assert_array_equal(u[0, 32:64], u[0, :32])
    assert not np.allclose(u[0, 5, ::2, ::2], np.float32(x[0, 5]))  # not nearest-neighbour


@pytest.mark.parametrize("sizes", [{}, {"dim": 8, "label_num": 4}])
@pytest.mark.parametrize("training", [False, True])
def test_cifar_generator(tmp_path, sizes, training):
    rng = np.random.default_rng(3)
    n = 2 if sizes == {} else 3
    labels = np.array([3, 1, 0][:n])
    z = rng.normal(size=(n, 128))
    generator, p = loaded(tmp_path, "cifar10", "generator", **sizes)
    generator.train() if training else generator.eval()
    images = generator(tensor(z), tensor(labels, "int32"))
    assert images.shape == [n, 3, 32, 32]
    expected, stats = cifar_generator_reference(p, z, labels, training)
    assert 0.1 < expected.std() and (np.abs(expected) > 0.999).mean() < 0.1  # mostly unsaturated
    close(images, expected)
    state = generator.state_dict()
    assert set(stats) == (
        {k for k in p if k.endswith((".mean", ".var", "._mean", "._variance"))}
        if training
        else set()
    )
    for key, value in p.items():  # buffers move by 0.1 in training only; the rest never
        close(state[key], stats.get(key, value), rtol=1e-5)


@pytest.mark.parametrize("training", [False, True])
def test_cifar_critic(tmp_path, training):
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, size=(2, 3, 32, 32))
    critic, p = loaded(tmp_path, "cifar10", "critic")
    critic.train() if training else critic.eval()
    score, logits, stats = cifar_critic_reference(p, x, training)
    out = critic(tensor(x))
    assert out.shape == [2, 1]
    close(out, score)
    out, out_logits = critic.forward_with_logits(tensor(x.reshape(2, 3072)))
    close(out, score)
    close(out_logits, logits)
    if training:  # the second call starts from the buffers the first one moved
        _, _, stats = cifar_critic_reference({**p, **stats}, x, training)
    assert set(stats) == ({k for k in p if k.endswith((".mean", ".var"))} if training else set())
    state = critic.state_dict()
    for key, value in p.items():
        close(state[key], stats.get(key, value), rtol=1e-5)


def test_cifar_generator_draws_its_own_noise_without_one():
    generator = networks.published_network("cifar10", "generator", dim=8)
    generator.eval()
    labels = tensor([1, 2, 3], "int64")
    paddle.seed(5)
    first = generator(None, labels).numpy()
    paddle.seed(5)
    np.testing.assert_array_equal(first, generator(paddle.randn([3, 128]), labels).numpy())


# ---------------------------------------------------------------------------
# Inception Score, PaddleScience's protocol (§6.2)
# ---------------------------------------------------------------------------
class StandIn(paddle.nn.Layer):
    """paddle.vision InceptionV3's head on a tiny body: pool, dropout (downscale in
    inference), fc with a bias."""

    def __init__(self):
        super().__init__()
        self.body = paddle.nn.Conv2D(3, 6, 1)
        self.avg_pool = paddle.nn.AdaptiveAvgPool2D(1)
        self.dropout = paddle.nn.Dropout(p=0.2, mode="downscale_in_infer")
        self.fc = paddle.nn.Linear(6, 5)

    def forward(self, x):
        x = self.avg_pool(paddle.nn.functional.relu(self.body(x))).reshape([-1, 6])
        return self.fc(self.dropout(x))


def resize_bilinear(x, size=299):
    """Half-pixel bilinear: source = (dst + 0.5) in/out - 0.5, clamped at the borders."""

    def weights(n_in):
        src = np.maximum((np.arange(size) + 0.5) * n_in / size - 0.5, 0.0)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        m = np.zeros((size, n_in))
        m[np.arange(size), lo] += 1 - (src - lo)
        m[np.arange(size), hi] += src - lo
        return m

    return weights(x.shape[2]) @ x @ weights(x.shape[3]).T


def inception_score_reference(net, pixels, splits):
    w, b = net.body.weight.numpy()[:, :, 0, 0].astype("float64"), net.body.bias.numpy()
    x = resize_bilinear(pixels) / 255.0
    x = (x - np.array([0.485, 0.456, 0.406])[None, :, None, None]) / np.array(
        [0.229, 0.224, 0.225]
    )[None, :, None, None]
    f = relu(np.einsum("nchw,oc->nohw", x, w) + b[None, :, None, None]).mean(axis=(2, 3))
    logits = 0.8 * f @ net.fc.weight.numpy()  # dropout's inference scaling; bias zeroed
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    size = len(p) // splits
    scores = []
    for k in range(splits):
        part = p[k * size : (k + 1) * size]
        kl = (part * (np.log(part) - np.log(part.mean(0)))).sum(1).mean()
        scores.append(np.exp(kl))
    return np.mean(scores), np.std(scores)


def test_paddlescience_inception_score():
    paddle.seed(6)
    net = StandIn()
    rng = np.random.default_rng(6)
    net.body.weight.set_value(rng.normal(0, 1, (6, 3, 1, 1)).astype("float32"))
    net.fc.weight.set_value(rng.normal(0, 2, (6, 5)).astype("float32"))
    bias = np.linspace(-2, 2, 5).astype("float32")  # not constant: it would not change p
    net.fc.bias.set_value(bias)
    net.train()
    # images of distinct colours, so that the classes differ
    images = (
        rng.uniform(-0.9, 0.9, (10, 3, 1, 1)) + rng.uniform(-0.1, 0.1, (10, 3, 32, 32))
    ).astype("float32")
    mean, std = published_weights.paddlescience_inception_score(
        net, images.reshape(10, 3072), splits=3, batch_size=4
    )
    expected = inception_score_reference(net, (images.astype("float64") + 1) * 255.99 / 2, 3)
    np.testing.assert_allclose([mean, std], expected, rtol=1e-4)
    assert mean > 1.01 and std > 0
    assert not net.training
    np.testing.assert_array_equal(net.fc.bias.numpy(), bias)  # restored
    # uint8 pixels (NHWC as metrics.to_uint8 writes them) are used as they are
    pixels = np.clip(
        rng.integers(0, 256, (6, 1, 1, 3)) + rng.integers(-9, 9, (6, 32, 32, 3)), 0, 255
    ).astype(np.uint8)
    mean, std = published_weights.paddlescience_inception_score(
        net, pixels, splits=2, batch_size=64
    )
    np.testing.assert_allclose(
        [mean, std],
        inception_score_reference(net, pixels.transpose(0, 3, 1, 2).astype("float64"), 2),
        rtol=1e-4,
    )
