"""MNIST's stride-2 convolutions line up with the paper's TensorFlow "SAME" layers.

TF pads a "SAME" convolution of stride s by max((out - 1) s + k - in, 0) in all, half of
it (rounded down) before; its conv2d_transpose is by definition the gradient of that
convolution with respect to its input. Both are written out in numpy here.
"""

import numpy as np
import paddle
import pytest

from gankit import networks as models


def tf_same_conv(x, w, stride):
    """TF's conv2d(padding="SAME"), NCHW, w [out, in, k, k]."""
    k, size = w.shape[-1], x.shape[-1]
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    before = total // 2
    x = np.pad(x, ((0, 0), (0, 0), (before, total - before), (before, total - before)))
    y = np.zeros((x.shape[0], w.shape[0], out, out))
    for i in range(out):
        for j in range(out):
            window = x[:, :, i * stride : i * stride + k, j * stride : j * stride + k]
            y[:, :, i, j] = np.einsum("nchw,ochw->no", window, w)
    return y


def tf_same_conv_transpose(y, w, stride):
    """TF's conv2d_transpose(padding="SAME") to stride times the size: the input-gradient
    of tf_same_conv with upstream gradient y. w [in, out, k, k] as Paddle stores it."""
    n, _, size, _ = y.shape
    out, k = size * stride, w.shape[-1]
    total = max((size - 1) * stride + k - out, 0)
    before = total // 2
    grad = np.zeros((n, w.shape[1], out + total, out + total))
    for i in range(size):
        for j in range(size):
            grad[:, :, i * stride : i * stride + k, j * stride : j * stride + k] += np.einsum(
                "nc,cohw->nohw", y[:, :, i, j], w
            )
    return grad[:, :, before : before + out, before : before + out]


@pytest.fixture(scope="module")
def mnist():
    paddle.seed(0)
    return models.MnistGenerator(noise_dim=8, dim=2), models.MnistCritic(dim=2)


def test_critic_convolutions_are_tf_same(mnist):
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28))
    for layer in mnist[1].convs[::2]:  # 28 -> 14 -> 7 -> 4
        w = layer.weight.numpy().astype("float64")
        expected = tf_same_conv(x, w, 2) + layer.bias.numpy()[None, :, None, None]
        got = layer(paddle.to_tensor(x, "float32")).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
        x = expected


@pytest.mark.parametrize("layer, size", [("up1", 4), ("up2", 7), ("up3", 14)])
def test_generator_transposed_convolutions_are_tf_same(mnist, layer, size):
    deconv = getattr(mnist[0], layer)
    y = np.random.default_rng(1).standard_normal((2, deconv.weight.shape[0], size, size))
    expected = tf_same_conv_transpose(y, deconv.weight.numpy().astype("float64"), 2)
    got = deconv(paddle.to_tensor(y, "float32")).numpy()
    assert got.shape == (2, deconv.weight.shape[1], 2 * size, 2 * size)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_penalty_double_backward_through_same_padding(mnist):
    import functions

    critic = mnist[1]
    gp, _ = functions.gradient_penalty(
        critic, paddle.rand([3, 1, 28, 28]), paddle.rand([3, 1, 28, 28])
    )
    gp.backward()
    assert all(
        p.grad is not None for name, p in critic.named_parameters() if name.endswith("weight")
    )
    assert mnist[0](paddle.randn([3, 8])).shape == [3, 1, 28, 28]
