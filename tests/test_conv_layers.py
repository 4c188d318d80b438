"""conv_layers' convolutions compute what Paddle's own do: outputs, parameter gradients
and (convolutions, as in the critics) the gradient penalty's double backward, with the
same parameters (names and values), so weights and checkpoints are interchangeable."""

import numpy as np
import paddle
import pytest
from paddle import nn

from gankit import networks as models

CASES = {
    "conv 5x5 stride 2 SAME": (
        models.Conv2D,
        nn.Conv2D,
        dict(in_channels=3, out_channels=8, kernel_size=5, stride=2, padding="SAME"),
        [4, 3, 13, 13],
    ),
    "conv 3x3 pad 1": (
        models.Conv2D,
        nn.Conv2D,
        dict(in_channels=3, out_channels=6, kernel_size=3, padding=1),
        [2, 3, 8, 8],
    ),
    "transposed 5x5 stride 2": (
        models.Conv2DTranspose,
        nn.Conv2DTranspose,
        dict(
            in_channels=4,
            out_channels=3,
            kernel_size=5,
            stride=2,
            padding=[1, 2, 1, 2],
            output_padding=0,
        ),
        [3, 4, 5, 5],
    ),
}


def penalty_and_grads(layer, x, double):
    """Output, and the gradients of a gradient penalty on the layer's input (a double
    backward, as the critic's; else of a plain score, as the generator's) with respect
    to the input and every parameter."""
    x = paddle.to_tensor(x, stop_gradient=False)
    out = layer(x)
    weights = paddle.to_tensor(
        np.linspace(-1, 1, int(np.prod(out.shape))).reshape(out.shape).astype("float32")
    )
    # a leaky_relu keeps the second derivative from vanishing through a linear layer
    score = (nn.functional.leaky_relu(out, 0.2) ** 2 * weights).sum()
    if double:
        grad = paddle.grad(score, x, create_graph=True)[0]
        score = ((grad.reshape([x.shape[0], -1]).norm(2, axis=1) - 1) ** 2).mean()
    score.backward()
    return [out.numpy(), x.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()]


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_parameters_outputs_and_gradients(case):
    fast_cls, paddle_cls, kwargs, shape = CASES[case]
    paddle.seed(3)
    fast = fast_cls(**kwargs)
    reference = paddle_cls(**kwargs)
    bias = np.random.default_rng(0).normal(size=fast.bias.shape).astype("float32")
    fast.bias.set_value(bias)  # a non-zero bias, so its add is tested
    assert list(fast.state_dict()) == list(reference.state_dict())
    reference.set_state_dict(fast.state_dict())
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    double = paddle_cls is nn.Conv2D  # Paddle has no double backward for conv2d_transpose
    for ours, theirs in zip(
        penalty_and_grads(fast, x, double), penalty_and_grads(reference, x, double)
    ):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    # the bias gradient is not trivially zero (the add is on the path)
    assert np.abs(fast.bias.grad.numpy()).max() > 1e-4


def test_export_uses_paddles_forward():
    """In a static graph (export) the layers fall back to Paddle's forward."""
    layer = models.Conv2D(2, 4, 3, padding=1)
    layer.bias.set_value(np.arange(4, dtype="float32"))
    x = paddle.rand([1, 2, 6, 6])
    static = paddle.jit.to_static(layer, full_graph=True)
    np.testing.assert_allclose(static(x).numpy(), nn.Conv2D.forward(layer, x).numpy(), rtol=1e-6)
