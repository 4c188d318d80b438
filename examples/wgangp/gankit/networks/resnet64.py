"""64x64 images: gan_64x64.py's "Good" ResNets (GoodGenerator, GoodDiscriminator), for any
number of image channels, optionally class-conditional (AC-GAN, as the CIFAR-10 variant).

The resampling is cifar.py's: nearest-neighbour upsampling (what depth_to_space of four
channel copies computes) and avg_pool2d (the mean of the four strided slices), both with
a double backward in Paddle, so the gradient penalty runs through them.
"""

import paddle
from paddle import nn

from .arch import Generator
from .cifar import _mean_pool, _upsample
from .layers import Conv2D, conv_std, linear, uniform_init
from .norms import ConditionalBatchNorm, GroupedBatchNorm2D, SampleLayerNorm

GENERATOR_WIDTHS = (8, 8, 4, 2, 1)  # channels / dim: 4x4 input, then after each 'up' block
CRITIC_WIDTHS = (1, 2, 4, 8, 8)  # channels / dim: 64x64 input conv, then after each 'down'


def tflib_conv(
    c_in: int, c_out: int, kernel: int, he_init: bool = True, bias: bool = True, cls=Conv2D
):
    """A stride-1 "SAME" convolution (odd kernel) of class `cls` with tflib's Conv2D
    initialisation (conv_std) and zero bias, or no bias (tflib's biases=False)."""
    return cls(
        c_in,
        c_out,
        kernel,
        padding=kernel // 2,
        weight_attr=uniform_init(conv_std(c_in, c_out, kernel, 1, he_init)),
        bias_attr=nn.initializer.Constant(0.0) if bias else False,
    )


class UpsampleConv(Conv2D):
    """gan_64x64.py's UpsampleConv: 2x upsampling, then the convolution."""

    def forward(self, x):
        return Conv2D.forward(self, _upsample(x))  # not super(): export (layers.Conv2D)


class ConvMeanPool(Conv2D):
    """gan_64x64.py's ConvMeanPool: the convolution, then 2x2 mean pooling."""

    def forward(self, x):
        return _mean_pool(Conv2D.forward(self, x))


class MeanPoolConv(Conv2D):
    """gan_64x64.py's MeanPoolConv: 2x2 mean pooling, then the convolution."""

    def forward(self, x):
        return Conv2D.forward(self, _mean_pool(x))


def _convolutions(c_in: int, c_out: int, resample):
    """(conv1, conv2, shortcut) of gan_64x64.py's ResidualBlock; conv1 without bias, the
    1x1 shortcut without he_init and None (identity) when c_in == c_out, no resampling."""
    kinds = {
        "up": (UpsampleConv, Conv2D, UpsampleConv),
        "down": (Conv2D, ConvMeanPool, MeanPoolConv),
    }
    if resample not in (None, *kinds):
        raise ValueError(f"resample={resample!r}: use 'up', 'down' or None.")
    first, second, short = kinds.get(resample, (Conv2D, Conv2D, Conv2D))
    middle = c_out if resample == "up" else c_in
    conv1 = tflib_conv(c_in, middle, 3, bias=False, cls=first)
    conv2 = tflib_conv(middle, c_out, 3, cls=second)
    shortcut = None
    if resample is not None or c_in != c_out:
        shortcut = tflib_conv(c_in, c_out, 1, he_init=False, cls=short)
    return conv1, conv2, shortcut


class ResidualBlock(nn.Layer):
    """gan_64x64.py's ResidualBlock: shortcut(x) + conv2(ReLU(norm2(conv1(ReLU(norm1(x)))))).

    resample "up": conv1 = UpsampleConv c_in -> c_out, conv2 c_out -> c_out, shortcut a 1x1
    UpsampleConv; "down": conv1 c_in -> c_in, conv2 = ConvMeanPool c_in -> c_out, shortcut a
    1x1 MeanPoolConv; None: conv1 c_in -> c_in, conv2 c_in -> c_out, shortcut identity or
    1x1. norm(channels) makes each norm layer (a ConditionalBatchNorm is given the labels).
    """

    def __init__(self, c_in: int, c_out: int, resample=None, norm=lambda channels: nn.Identity()):
        super().__init__()
        self.conv1, self.conv2, self.shortcut = _convolutions(c_in, c_out, resample)
        self.norm1 = norm(c_in)
        self.norm2 = norm(c_out if resample == "up" else c_in)

    @staticmethod
    def _norm(layer, x, labels):
        return layer(x, labels) if isinstance(layer, ConditionalBatchNorm) else layer(x)

    def forward(self, x, labels=None):
        h = self.conv1(nn.functional.relu(self._norm(self.norm1, x, labels)))
        h = self.conv2(nn.functional.relu(self._norm(self.norm2, h, labels)))
        return (x if self.shortcut is None else self.shortcut(x)) + h


class ResNet64Generator(nn.Layer):
    """GoodGenerator: linear noise -> 8dim x 4 x 4, four 'up' blocks (8dim, 8dim, 4dim,
    2dim, dim channels; 64x64), batch norm, ReLU, 3x3 conv to `channels`, tanh.

    num_classes > 0: the blocks' batch norms are class-conditional (ConditionalBatchNorm,
    as the CIFAR-10 AC-GAN generator; not in gan_64x64.py); bn_groups: see
    GroupedBatchNorm2D (gan_64x64.py: one group per GPU, 1 by default)."""

    def __init__(
        self,
        noise_dim: int = 128,
        dim: int = 64,
        channels: int = 3,
        num_classes: int = 0,
        bn_groups: int = 1,
    ):
        super().__init__()
        self.dim, self.conditional = dim, num_classes > 0
        if self.conditional:
            norm = lambda c: ConditionalBatchNorm(c, num_classes, bn_groups)  # noqa: E731
        else:
            norm = lambda c: GroupedBatchNorm2D(c, bn_groups)  # noqa: E731
        widths = [w * dim for w in GENERATOR_WIDTHS]
        self.fc = linear(noise_dim, 4 * 4 * widths[0])  # Glorot, tflib's default
        self.blocks = nn.LayerList(
            [ResidualBlock(a, b, "up", norm) for a, b in zip(widths, widths[1:])]
        )
        self.norm = GroupedBatchNorm2D(dim, bn_groups)  # never conditional
        self.out = tflib_conv(dim, channels, 3)  # Generator.Output keeps he_init

    def forward(self, noise, labels=None):
        x = self.fc(noise).reshape([-1, GENERATOR_WIDTHS[0] * self.dim, 4, 4])
        for block in self.blocks:
            x = block(x, labels)
        return paddle.tanh(self.out(nn.functional.relu(self.norm(x))))


class ResNet64Critic(nn.Layer):
    """GoodDiscriminator: 3x3 conv `channels` -> dim (no he_init), four 'down' blocks (2dim,
    4dim, 8dim, 8dim channels; 4x4), linear 4*4*8dim -> 1; no ReLU before the linear.

    layer_norm: the blocks' norms are per-sample layer norms (SampleLayerNorm), what
    gan_64x64.py's Normalize gives the critic in its wgan-gp mode; False: none. No batch
    statistics (they would couple samples under the penalty). num_classes > 0: an AC-GAN
    class head beside the score (not in gan_64x64.py)."""

    def __init__(
        self, dim: int = 64, channels: int = 3, num_classes: int = 0, layer_norm: bool = True
    ):
        super().__init__()
        norm = SampleLayerNorm if layer_norm else (lambda c: nn.Identity())
        widths = [w * dim for w in CRITIC_WIDTHS]
        self.input = tflib_conv(channels, dim, 3, he_init=False)
        self.blocks = nn.Sequential(
            *[ResidualBlock(a, b, "down", norm) for a, b in zip(widths, widths[1:])]
        )
        features = 4 * 4 * widths[-1]
        self.score = linear(features, 1)
        self.classes = linear(features, num_classes) if num_classes else None

    def features(self, images):
        x = self.blocks(self.input(images))
        return x.reshape([x.shape[0], -1])  # reshape: flatten has no double backward

    def forward(self, images):
        return self.score(self.features(images))

    def forward_with_logits(self, images):
        """(score [N, 1], AC-GAN class logits [N, num_classes])."""
        features = self.features(images)
        return self.score(features), self.classes(features)


def resnet64_models(
    noise_dim: int = 128,
    dim_g: int = 64,
    dim_d: int = 64,
    channels: int = 3,
    num_classes: int = 0,
    layer_norm: bool = True,
    bn_groups: int = 1,
):
    """(generator Arch, critic network) for 64x64 images of `channels` channels;
    num_classes > 0: AC-GAN (the generator's inputs "noise", "labels")."""
    keys = ("noise", "labels") if num_classes else ("noise",)
    generator = Generator(
        ResNet64Generator(noise_dim, dim_g, channels, num_classes, bn_groups), keys
    )
    return generator, ResNet64Critic(dim_d, channels, num_classes, layer_norm)
