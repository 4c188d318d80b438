"""The paper's layers and initialisation (its tflib/ops), and convolutions with a bias add
that is fast on CPU."""

import math

import paddle
from paddle import nn
from paddle.nn import functional as F


# ---------------------------------------------------------------------------
# The paper's initialisation (tflib/ops): every weight uniform in
# [-std*sqrt(3), std*sqrt(3)] with a std from the layer's fans, every bias zero. The
# draws come from Paddle's global generator while the layers are built, so paddle.seed
# before construction fixes them.
# ---------------------------------------------------------------------------
def uniform_init(std: float) -> nn.initializer.Uniform:
    """U(-std*sqrt(3), std*sqrt(3)): the uniform distribution of standard deviation `std`."""
    bound = std * math.sqrt(3.0)
    return nn.initializer.Uniform(-bound, bound)


def linear_std(fan_in: int, fan_out: int, init: str = "glorot") -> float:
    """tflib's Linear: "glorot" (its default) sqrt(2 / (fan_in + fan_out)), "he" sqrt(2 / fan_in)."""
    if init == "glorot":
        return math.sqrt(2.0 / (fan_in + fan_out))
    if init == "he":
        return math.sqrt(2.0 / fan_in)
    raise ValueError(f"Unknown initialisation {init!r}; use 'glorot' or 'he'.")


def conv_std(
    c_in: int,
    c_out: int,
    kernel: int,
    stride: int = 1,
    he_init: bool = True,
    transposed: bool = False,
) -> float:
    """tflib's Conv2D / Deconv2D: sqrt(4 / (fan_in + fan_out)) with he_init, else
    sqrt(2 / (fan_in + fan_out)); fan_in = c_in k^2, fan_out = c_out k^2 / stride^2
    (transposed: fan_in = c_in k^2 / stride^2, fan_out = c_out k^2)."""
    fan_in, fan_out = c_in * kernel**2, c_out * kernel**2
    if transposed:
        fan_in /= stride**2
    else:
        fan_out /= stride**2
    return math.sqrt((4.0 if he_init else 2.0) / (fan_in + fan_out))


_ZERO = nn.initializer.Constant(0.0)


def linear(fan_in: int, fan_out: int, init: str = "glorot") -> nn.Linear:
    """nn.Linear with tflib's Linear initialisation (see linear_std), zero bias."""
    return nn.Linear(
        fan_in,
        fan_out,
        weight_attr=uniform_init(linear_std(fan_in, fan_out, init)),
        bias_attr=_ZERO,
    )


def conv(
    c_in: int, c_out: int, kernel: int, stride: int = 1, padding=0, he_init: bool = True
) -> "Conv2D":
    """Conv2D (below) with tflib's Conv2D initialisation (see conv_std), zero bias."""
    std = conv_std(c_in, c_out, kernel, stride, he_init)
    return Conv2D(
        c_in,
        c_out,
        kernel,
        stride=stride,
        padding=padding,
        weight_attr=uniform_init(std),
        bias_attr=_ZERO,
    )


def deconv(
    c_in: int, c_out: int, kernel: int, stride: int = 2, padding=0, he_init: bool = True
) -> "Conv2DTranspose":
    """Conv2DTranspose (below) with tflib's Deconv2D initialisation (see conv_std), zero bias."""
    std = conv_std(c_in, c_out, kernel, stride, he_init, transposed=True)
    return Conv2DTranspose(
        c_in,
        c_out,
        kernel,
        stride=stride,
        padding=padding,
        weight_attr=uniform_init(std),
        bias_attr=_ZERO,
    )


# ---------------------------------------------------------------------------
# Convolutions with a bias add that is fast on CPU: Paddle's CPU kernel for the broadcast
# add [N, C, H, W] + [1, C, 1, 1] cost as much as a third of the MNIST critic's
# convolutions (17 % of its step, benchmarks/conv_levers.py); an add of equal shapes is
# fast. Same parameters and results; on GPU and in static graphs (export) Paddle's own
# forward. Each records its arguments to call the public functional form.
# ---------------------------------------------------------------------------
def _cpu_dynamic(x: paddle.Tensor) -> bool:
    return paddle.in_dynamic_mode() and x.place.is_cpu_place()


def _add_bias(out: paddle.Tensor, bias: paddle.Tensor) -> paddle.Tensor:
    return out + bias.reshape([1, -1, 1, 1]).expand(out.shape)


class Conv2D(nn.Conv2D):
    """nn.Conv2D, bias added at the output's shape on CPU (NCHW, zero padding, a bias)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding=0,
        **kwargs,
    ):
        super().__init__(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, **kwargs
        )
        self.conv_args = {"stride": stride, "padding": padding}
        self.fast_bias = (
            kwargs.get("data_format", "NCHW") == "NCHW"
            and kwargs.get("padding_mode", "zeros") == "zeros"
            and kwargs.get("bias_attr") is not False
        )

    def forward(self, x):
        if not (self.fast_bias and _cpu_dynamic(x)):
            # the class by name: export's dy2static resolves a bare super() by the instance's
            # class, which recurses in a subclass (resnet64's UpsampleConv, ...)
            return nn.Conv2D.forward(self, x)
        return _add_bias(F.conv2d(x, self.weight, None, **self.conv_args), self.bias)


class Conv2DTranspose(nn.Conv2DTranspose):
    """nn.Conv2DTranspose, bias added at the output's shape on CPU (NCHW, a bias)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding=0,
        **kwargs,
    ):
        super().__init__(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, **kwargs
        )
        self.conv_args = {"stride": stride, "padding": padding}
        self.fast_bias = (
            kwargs.get("data_format", "NCHW") == "NCHW"
            and kwargs.get("bias_attr") is not False
            and not kwargs.get("output_padding")
        )

    def forward(self, x, output_size=None):
        if not (self.fast_bias and _cpu_dynamic(x)) or output_size is not None:
            return nn.Conv2DTranspose.forward(self, x, output_size)  # as Conv2D's
        return _add_bias(F.conv2d_transpose(x, self.weight, None, **self.conv_args), self.bias)
