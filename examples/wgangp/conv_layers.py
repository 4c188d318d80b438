"""Paddle's convolutions with a bias add that is fast on CPU; same parameters, same results.

Paddle's CPU kernel for a broadcast add ([N, C, H, W] + [1, C, 1, 1]) is several times
slower than an add of equal shapes: on the MNIST critic it took as long as a third of the
convolutions (benchmarks/conv_levers.py). These layers expand the bias to the output's
shape and add that; on GPU and in static graphs (export) they are Paddle's own forward.
"""

import paddle
from paddle import nn
from paddle.nn import functional as F


def _add_bias(out: paddle.Tensor, bias: paddle.Tensor) -> paddle.Tensor:
    return out + bias.reshape([1, -1, 1, 1]).expand(out.shape)


def _fast_path(layer: nn.Layer, x: paddle.Tensor) -> bool:
    return (layer.bias is not None and paddle.in_dynamic_mode() and x.place.is_cpu_place()
            and layer._data_format == "NCHW")


class Conv2D(nn.Conv2D):
    """nn.Conv2D (zero padding mode), bias added at the output's shape on CPU."""

    def forward(self, x):
        if self._padding_mode != "zeros" or not _fast_path(self, x):
            return super().forward(x)
        out = F.conv._conv_nd(
            x, self.weight, bias=None, stride=self._stride, padding=self._updated_padding,
            padding_algorithm=self._padding_algorithm, dilation=self._dilation,
            groups=self._groups, data_format=self._data_format, channel_dim=self._channel_dim,
            op_type=self._op_type, use_cudnn=self._use_cudnn)
        return _add_bias(out, self.bias)


class Conv2DTranspose(nn.Conv2DTranspose):
    """nn.Conv2DTranspose, bias added at the output's shape on CPU."""

    def forward(self, x, output_size=None):
        if not _fast_path(self, x):
            return super().forward(x, output_size)
        out = F.conv2d_transpose(
            x, self.weight, bias=None, padding=self._padding,
            output_padding=self.output_padding if output_size is None else 0,
            stride=self._stride, dilation=self._dilation, groups=self._groups,
            output_size=output_size, data_format=self._data_format)
        return _add_bias(out, self.bias)
