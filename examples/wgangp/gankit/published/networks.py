"""PaddleScience's published WGAN-GP networks, rebuilt from their specification to evaluate its weights."""

# PaddleScience trained networks of its own, not the paper's (models.py): channel-mixing
# CIFAR upsampling, critic norms with running statistics, LeakyReLU 0.01, ... The classes
# follow the specification (seed_architectures.md) layer by layer; their state_dict() keys
# are the published files' keys (generator./discriminator. prefix included), so
# `published_network("cifar10", "generator").set_state_dict(arrays)` loads a published file.
# Inputs and outputs follow our scripts' conventions (models.py), converted inside forward.

import math
from typing import Optional

import paddle
import paddle.nn.functional as F
from paddle import nn

PUBLISHED_FILE_EXTRA = "StructuredToParameterName@@"  # paddle.save's key -> tensor-name map
PREFIXES = ("generator.", "discriminator.")  # added by PaddleScience's Arch wrappers
NOISE_DIM = 128  # CIFAR-10 and MNIST noise width, fixed whatever `dim` is
TOY_NOISE_DIM = 2
SQRT2 = math.sqrt(2.0)


# --- Layers with the published initialisation (it only matters when training from scratch) ---
def _xavier(gain: float) -> paddle.ParamAttr:
    return paddle.ParamAttr(initializer=nn.initializer.XavierUniform(gain=gain))


def _zeros() -> paddle.ParamAttr:
    return paddle.ParamAttr(initializer=nn.initializer.Constant(0.0))


def _linear(fan_in: int, fan_out: int, gain: float = 1.0) -> nn.Linear:
    return nn.Linear(fan_in, fan_out, weight_attr=_xavier(gain), bias_attr=_zeros())


def _conv(c_in: int, c_out: int, kernel: int, gain: float = 1.0, stride: int = 1) -> nn.Conv2D:
    # Paddle's "same" padding: asymmetric (one more at the bottom/right) for stride 2
    return nn.Conv2D(
        c_in,
        c_out,
        kernel,
        stride=stride,
        padding="same",
        weight_attr=_xavier(gain),
        bias_attr=_zeros(),
    )


def _update_running(buffer: paddle.Tensor, batch_value: paddle.Tensor, momentum: float = 0.1):
    """buffer <- (1 - momentum) buffer + momentum batch_value, in place, no gradient."""
    with paddle.no_grad():
        new = buffer * (1.0 - momentum) + batch_value.detach().reshape(buffer.shape) * momentum
        paddle.assign(new, buffer)


# --- Toy 2-D: MLPs of three ReLU layers ---
class _ReluLayer(nn.Layer):
    """PaddleScience's `RuLULayer` (sic): Linear (He-uniform) then ReLU."""

    def __init__(self, fan_in: int, fan_out: int):
        super().__init__()
        bound = math.sqrt(6.0 / fan_in)
        self.linear = nn.Linear(
            fan_in, fan_out, bias_attr=_zeros(), weight_attr=nn.initializer.Uniform(-bound, bound)
        )

    def forward(self, x):
        return F.relu(self.linear(x))


class _ToyNet(nn.Layer):
    def __init__(self, in_dim: int, out_dim: int, dim: int):
        super().__init__()
        self.reluLayer1 = _ReluLayer(in_dim, dim)
        self.reluLayer2 = _ReluLayer(dim, dim)
        self.reluLayer3 = _ReluLayer(dim, dim)
        self.linear = _linear(dim, out_dim)

    def forward(self, x):
        return self.linear(self.reluLayer3(self.reluLayer2(self.reluLayer1(x))))


class PublishedToyGenerator(nn.Layer):
    """noise [N, 2] -> points [N, 2]. PaddleScience drew the noise N(0, I) inside forward;
    here it is passed in, as our scripts do (paddle.randn([N, 2]) reproduces that)."""

    noise_dim = TOY_NOISE_DIM

    def __init__(self, dim: int = 512):
        super().__init__()
        self.generator = _ToyNet(TOY_NOISE_DIM, 2, dim)

    def forward(self, noise):
        return self.generator(noise)


class PublishedToyCritic(nn.Layer):
    """points [N, 2] -> score [N, 1] (PaddleScience returned it reshaped to [N])."""

    def __init__(self, dim: int = 512):
        super().__init__()
        self.discriminator = _ToyNet(2, 1, dim)

    def forward(self, x):
        return self.discriminator(x)


# --- MNIST: DCGAN-style, no normalisation ---
class _MnistGeneratorNet(nn.Layer):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.linear1 = _linear(NOISE_DIM, 4 * 4 * 4 * dim)

        def up(c_in, c_out, output_padding=0):
            # "same" for a transposed conv: Paddle derives the crop from the INPUT size
            # (4 -> 8 keeps full positions 1..8, 7 -> 14 keeps 2..15, 14 -> 28 keeps 1..28)
            return nn.Conv2DTranspose(
                c_in,
                c_out,
                5,
                stride=2,
                padding="same",
                output_padding=output_padding,
                weight_attr=_xavier(SQRT2),
                bias_attr=_zeros(),
            )

        self.conv2d_transpose1 = up(4 * dim, 2 * dim)
        self.conv2d_transpose2 = up(2 * dim, dim, output_padding=1)
        self.conv2d_transpose3 = up(dim, 1)

    def forward(self, z):
        x = F.relu(self.linear1(z)).reshape([-1, 4 * self.dim, 4, 4])
        x = F.relu(self.conv2d_transpose1(x))[:, :, :7, :7]  # 8x8 -> 7x7: last row/column dropped
        x = F.relu(self.conv2d_transpose2(x))
        return F.sigmoid(self.conv2d_transpose3(x))


class PublishedMnistGenerator(nn.Layer):
    """noise [N, 128] -> images [N, 1, 28, 28] in (0, 1).

    PaddleScience drew the noise inside forward and returned the images flattened to
    [N, 784]; here the noise is passed in and the images keep our [N, 1, 28, 28] shape.
    """

    noise_dim = NOISE_DIM

    def __init__(self, dim: int = 64):
        super().__init__()
        self.generator = _MnistGeneratorNet(dim)

    def forward(self, noise):
        return self.generator(noise)


class _MnistCriticNet(nn.Layer):
    def __init__(self, dim: int):
        super().__init__()
        self.conv2d_1 = _conv(1, dim, 5, SQRT2, stride=2)
        self.conv2d_2 = _conv(dim, 2 * dim, 5, SQRT2, stride=2)
        self.conv2d_3 = _conv(2 * dim, 4 * dim, 5, SQRT2, stride=2)
        self.linear = _linear(4 * 4 * 4 * dim, 1)

    def forward(self, x):
        x = x.reshape([-1, 1, 28, 28])
        for conv in (self.conv2d_1, self.conv2d_2, self.conv2d_3):
            x = F.leaky_relu(conv(x), 0.01)  # Paddle's default slope; the paper uses 0.2
        return self.linear(x.reshape([x.shape[0], -1]))


class PublishedMnistCritic(nn.Layer):
    """images [N, 1, 28, 28] (or [N, 784]) in [0, 1] -> score [N, 1] (PaddleScience: [N])."""

    def __init__(self, dim: int = 64):
        super().__init__()
        self.discriminator = _MnistCriticNet(dim)

    def forward(self, x):
        return self.discriminator(x)


# --- CIFAR-10: conditional ResNets with an AC-GAN head ---
def pixel_shuffle_upsample(x):
    """PaddleScience's 2x "upsampling": four copies of x concatenated, then PixelShuffle(2).

    The paper's code does this with TF's depth_to_space, which is nearest-neighbour; Paddle's
    PixelShuffle reads channels in another order, so output channel c at sub-pixel (i, j)
    is input channel (4c + 2i + j) mod C. The published weights were trained through this.
    """
    return F.pixel_shuffle(paddle.concat([x, x, x, x], axis=1), 2)


class _WithConv(nn.Layer):
    """A "same" convolution held as `conv2D` (the name is in the keys), with resampling."""

    def __init__(self, c_in: int, c_out: int, kernel: int, gain: float):
        super().__init__()
        self.conv2D = _conv(c_in, c_out, kernel, gain)


class _UpsampleConv(_WithConv):
    def forward(self, x):
        return self.conv2D(pixel_shuffle_upsample(x))


class _ConvMeanPool(_WithConv):
    def forward(self, x):
        return F.avg_pool2d(self.conv2D(x), 2)


class _MeanPoolConv(_WithConv):
    def forward(self, x):
        return self.conv2D(F.avg_pool2d(x, 2))


class _ConditionalBatchNorm(nn.Layer):
    """Batch norm with per-label scale/offset tables. Training normalises with the batch
    mean and the UNBIASED batch variance and moves the `mean`/`var` buffers by 0.1;
    eval uses the buffers."""

    def __init__(self, label_num: int, channels: int, epsilon: float = 1e-5):
        super().__init__()
        self.epsilon = epsilon
        self.scale = self.create_parameter(
            [label_num, channels], default_initializer=nn.initializer.Constant(1.0)
        )
        self.offset = self.create_parameter(
            [label_num, channels], default_initializer=nn.initializer.Constant(0.0)
        )
        self.register_buffer("mean", paddle.zeros([channels]))
        self.register_buffer("var", paddle.ones([channels]))

    def forward(self, x, labels):
        if self.training:
            mean = x.mean(axis=[0, 2, 3])
            count = x.shape[0] * x.shape[2] * x.shape[3]
            var = ((x - mean.reshape([1, -1, 1, 1])) ** 2).sum(axis=[0, 2, 3]) / (count - 1)
            _update_running(self.mean, mean)
            _update_running(self.var, var)
        else:
            mean, var = self.mean, self.var
        shape = [1, -1, 1, 1]
        y = (x - mean.reshape(shape)) / paddle.sqrt(var.reshape(shape) + self.epsilon)
        scale, offset = (paddle.gather(t, labels.reshape([-1])) for t in (self.scale, self.offset))
        return y * scale.reshape([-1, x.shape[1], 1, 1]) + offset.reshape([-1, x.shape[1], 1, 1])


class _ScalarLayerNorm(nn.Layer):
    """The critic's "LayerNorm", scalar scale/offset. Training: per-sample (C, H, W)
    statistics, UNBIASED variance; the scalar `mean`/`var` buffers move by 0.1 towards their
    batch means. Eval: the fixed affine map of the buffers. PaddleScience always trained."""

    def __init__(self, epsilon: float = 1e-5):
        super().__init__()
        self.epsilon = epsilon
        # Paddle's default init for a [1] parameter: U(-sqrt(3), sqrt(3))
        self.scale = self.create_parameter([1], default_initializer=nn.initializer.XavierUniform())
        self.offset = self.create_parameter([1], default_initializer=nn.initializer.XavierUniform())
        self.register_buffer("mean", paddle.zeros([1]))
        self.register_buffer("var", paddle.ones([1]))

    def forward(self, x):
        if self.training:
            mean = x.mean(axis=[1, 2, 3], keepdim=True)
            count = x.shape[1] * x.shape[2] * x.shape[3]
            var = ((x - mean) ** 2).sum(axis=[1, 2, 3], keepdim=True) / (count - 1)
            _update_running(self.mean, mean.mean())
            _update_running(self.var, var.mean())
        else:
            mean, var = self.mean, self.var
        return (x - mean) / paddle.sqrt(var + self.epsilon) * self.scale + self.offset


class _Normalize(nn.Layer):
    """Holds the norm as `normalize` (in the keys); labels reach the conditional one only."""

    def __init__(self, normalize: nn.Layer):
        super().__init__()
        self.normalize = normalize

    def forward(self, x, labels=None):
        if isinstance(self.normalize, _ConditionalBatchNorm):
            return self.normalize(x, labels)
        return self.normalize(x)


class _ResidualBlock(nn.Layer):
    """norm, ReLU, conv_1, norm, ReLU, conv_2, plus a shortcut: resample "up" (generator),
    "down" or None (critic; identity shortcut, its `conv_shortcut` is stored but unused)."""

    def __init__(self, channels: int, resample: Optional[str], norm):
        super().__init__()
        self.resample = resample
        # (shortcut, conv_1, conv_2) wrappers; None: a plain conv (keys without .conv2D)
        wrappers = {
            "up": (_UpsampleConv, _UpsampleConv, None),
            "down": (_ConvMeanPool, None, _ConvMeanPool),
            None: (None, None, None),
        }
        shortcut, first, second = ((w or _conv) for w in wrappers[resample])
        self.conv_shortcut = shortcut(channels, channels, 1, 1.0)
        self.conv_1 = first(channels, channels, 3, SQRT2)
        self.conv_2 = second(channels, channels, 3, SQRT2)
        self.normalize1 = _Normalize(norm())
        self.normalize2 = _Normalize(norm())

    def forward(self, x, labels=None):
        shortcut = x if self.resample is None else self.conv_shortcut(x)
        h = self.conv_1(F.relu(self.normalize1(x, labels)))
        h = self.conv_2(F.relu(self.normalize2(h, labels)))
        return shortcut + h


class _CifarGeneratorNet(nn.Layer):
    def __init__(self, dim: int, label_num: int, use_label: bool):
        super().__init__()
        self.dim = dim
        self.linear1 = _linear(NOISE_DIM, 4 * 4 * dim)
        norm = (
            (lambda: _ConditionalBatchNorm(label_num, dim))
            if use_label
            else (lambda: nn.BatchNorm(dim))
        )
        self.ResidualBlocks = nn.LayerList([_ResidualBlock(dim, "up", norm) for _ in range(3)])
        # unconditional; Paddle BatchNorm: biased batch variance, running stats moved by 0.1
        self.Normalize = _Normalize(nn.BatchNorm(dim))
        self.conv = _conv(dim, 3, 3)

    def forward(self, z, labels):
        x = self.linear1(z).reshape([-1, self.dim, 4, 4])  # no activation here
        for block in self.ResidualBlocks:
            x = block(x, labels)
        return paddle.tanh(self.conv(F.relu(self.Normalize(x))))


class PublishedCifarGenerator(nn.Layer):
    """(noise [N, 128], labels [N] int) -> images [N, 3, 32, 32] in (-1, 1), RGB.

    PaddleScience drew the noise inside forward (N = len(labels)) and returned [N, 3072];
    here noise=None draws it the same way, and images keep our NCHW shape. Its metric ran
    this network in EVAL mode (running statistics); training mode gives other images.
    """

    noise_dim = NOISE_DIM

    def __init__(self, dim: int = 128, label_num: int = 10, use_label: bool = True):
        super().__init__()
        self.generator = _CifarGeneratorNet(dim, label_num, use_label)

    def forward(self, noise, labels):
        if noise is None:
            noise = paddle.randn([labels.shape[0], NOISE_DIM])
        return self.generator(noise, labels)


class _OptimizedBlock(nn.Layer):
    """The critic's first block, no norm: the shortcut pools then convolves, the main path
    convolves then pools."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv_1 = _conv(3, dim, 3, SQRT2)
        self.conv_2 = _ConvMeanPool(dim, dim, 3, SQRT2)
        self.conv_shortcut = _MeanPoolConv(3, dim, 1, 1.0)

    def forward(self, x):
        return self.conv_shortcut(x) + self.conv_2(F.relu(self.conv_1(x)))


class _CifarCriticNet(nn.Layer):
    def __init__(self, dim: int, label_num: int):
        super().__init__()
        self.optimized_resblock_disc1 = _OptimizedBlock(dim)
        self.ResidualBlocks = nn.LayerList(
            [_ResidualBlock(dim, resample, _ScalarLayerNorm) for resample in ("down", None, None)]
        )
        self.linear = _linear(dim, 1)
        self.linear2 = _linear(dim, label_num)  # created even when use_label is false

    def features(self, x):
        x = self.optimized_resblock_disc1(x.reshape([-1, 3, 32, 32]))
        for block in self.ResidualBlocks:
            x = block(x)
        return F.relu(x).mean(axis=[2, 3])


class PublishedCifarCritic(nn.Layer):
    """images [N, 3, 32, 32] (or [N, 3072]) in [-1, 1] -> score [N, 1] (PaddleScience: [N]).

    Its layer norms behave differently in training mode (per-sample statistics, the mode
    PaddleScience always used, also in evaluation) and eval mode (running statistics).
    """

    def __init__(self, dim: int = 128, label_num: int = 10, use_label: bool = True):
        super().__init__()
        self.use_label = use_label
        self.discriminator = _CifarCriticNet(dim, label_num)

    def forward(self, x):
        return self.discriminator.linear(self.discriminator.features(x))

    def forward_with_logits(self, x):
        """(score [N, 1], AC-GAN class logits [N, label_num], None without use_label)."""
        features = self.discriminator.features(x)
        logits = self.discriminator.linear2(features) if self.use_label else None
        return self.discriminator.linear(features), logits


# --- Choosing a network, recognising a file ---
_NETWORKS = {
    ("toy", "generator"): PublishedToyGenerator,
    ("toy", "critic"): PublishedToyCritic,
    ("mnist", "generator"): PublishedMnistGenerator,
    ("mnist", "critic"): PublishedMnistCritic,
    ("cifar10", "generator"): PublishedCifarGenerator,
    ("cifar10", "critic"): PublishedCifarCritic,
}


def published_network(example: str, role: str, **sizes) -> nn.Layer:
    """The published network of `example` ("toy", "mnist", "cifar10") and `role`
    ("generator", "critic"); sizes (dim, label_num, use_label) default to the published config."""
    if (example, role) not in _NETWORKS:
        raise ValueError(
            f"No published network for example {example!r}, role {role!r}; "
            f"examples: toy, mnist, cifar10; roles: generator, critic."
        )
    return _NETWORKS[example, role](**sizes)
