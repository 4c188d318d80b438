"""The paper's weight initialisation (tflib/ops), layer by layer.

The paper's weight initialisation (tflib/ops): every weight uniform in
[-std*sqrt(3), std*sqrt(3)] with a std from the layer's fans, every bias zero.

The draws come from Paddle's global generator while the layers are constructed, so
paddle.seed(...) before construction fixes them.
"""

import math

from paddle import nn

from conv_layers import Conv2D, Conv2DTranspose


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


def conv_std(c_in: int, c_out: int, kernel: int, stride: int = 1, he_init: bool = True,
             transposed: bool = False) -> float:
    """tflib's Conv2D / Deconv2D: sqrt(4 / (fan_in + fan_out)) with he_init, else
    sqrt(2 / (fan_in + fan_out)); fan_in = c_in k^2, fan_out = c_out k^2 / stride^2
    (transposed: fan_in = c_in k^2 / stride^2, fan_out = c_out k^2)."""
    fan_in, fan_out = c_in * kernel ** 2, c_out * kernel ** 2
    if transposed:
        fan_in /= stride ** 2
    else:
        fan_out /= stride ** 2
    return math.sqrt((4.0 if he_init else 2.0) / (fan_in + fan_out))


_ZERO = nn.initializer.Constant(0.0)


def linear(fan_in: int, fan_out: int, init: str = "glorot") -> nn.Linear:
    """nn.Linear with tflib's Linear initialisation (see linear_std), zero bias."""
    return nn.Linear(fan_in, fan_out, weight_attr=uniform_init(linear_std(fan_in, fan_out, init)),
                     bias_attr=_ZERO)


def conv(c_in: int, c_out: int, kernel: int, stride: int = 1, padding=0,
         he_init: bool = True) -> Conv2D:
    """Conv2D (conv_layers) with tflib's Conv2D initialisation (see conv_std), zero bias."""
    std = conv_std(c_in, c_out, kernel, stride, he_init)
    return Conv2D(c_in, c_out, kernel, stride=stride, padding=padding,
                  weight_attr=uniform_init(std), bias_attr=_ZERO)


def deconv(c_in: int, c_out: int, kernel: int, stride: int = 2, padding=0, output_padding=0,
           he_init: bool = True) -> Conv2DTranspose:
    """Conv2DTranspose (conv_layers) with tflib's Deconv2D initialisation (see conv_std), zero bias."""
    std = conv_std(c_in, c_out, kernel, stride, he_init, transposed=True)
    return Conv2DTranspose(c_in, c_out, kernel, stride=stride, padding=padding,
                           output_padding=output_padding, weight_attr=uniform_init(std),
                           bias_attr=_ZERO)
