"""The paper's networks (its code's layers and initialisation) and the ppsci Arch the Solvers train.

Toy MLPs (gan_toy.py), MNIST's DCGAN-like networks (gan_mnist.py), CIFAR-10's ResNets
(gan_cifar_resnet.py); every weight initialised as the paper's tflib does.
"""

import contextlib
import math
from typing import Tuple

import paddle
import ppsci
from paddle import nn
from paddle.nn import functional as F

from runtime.parallel import local_rows


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
         he_init: bool = True) -> "Conv2D":
    """Conv2D (below) with tflib's Conv2D initialisation (see conv_std), zero bias."""
    std = conv_std(c_in, c_out, kernel, stride, he_init)
    return Conv2D(c_in, c_out, kernel, stride=stride, padding=padding,
                  weight_attr=uniform_init(std), bias_attr=_ZERO)


def deconv(c_in: int, c_out: int, kernel: int, stride: int = 2, padding=0,
           he_init: bool = True) -> "Conv2DTranspose":
    """Conv2DTranspose (below) with tflib's Deconv2D initialisation (see conv_std), zero bias."""
    std = conv_std(c_in, c_out, kernel, stride, he_init, transposed=True)
    return Conv2DTranspose(c_in, c_out, kernel, stride=stride, padding=padding,
                           weight_attr=uniform_init(std), bias_attr=_ZERO)


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

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding=0, **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         **kwargs)
        self.conv_args = {"stride": stride, "padding": padding}
        self.fast_bias = kwargs.get("data_format", "NCHW") == "NCHW" and \
            kwargs.get("padding_mode", "zeros") == "zeros" and kwargs.get("bias_attr") is not False

    def forward(self, x):
        if not (self.fast_bias and _cpu_dynamic(x)):
            return super().forward(x)
        return _add_bias(F.conv2d(x, self.weight, None, **self.conv_args), self.bias)


class Conv2DTranspose(nn.Conv2DTranspose):
    """nn.Conv2DTranspose, bias added at the output's shape on CPU (NCHW, a bias)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding=0, **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         **kwargs)
        self.conv_args = {"stride": stride, "padding": padding}
        self.fast_bias = kwargs.get("data_format", "NCHW") == "NCHW" and \
            kwargs.get("bias_attr") is not False and not kwargs.get("output_padding")

    def forward(self, x, output_size=None):
        if not (self.fast_bias and _cpu_dynamic(x)) or output_size is not None:
            return super().forward(x, output_size)
        return _add_bias(F.conv2d_transpose(x, self.weight, None, **self.conv_args), self.bias)


# ---------------------------------------------------------------------------
# The ppsci face of the networks: dict in, dict out
# ---------------------------------------------------------------------------
class Generator(ppsci.arch.Arch):
    """A generator network as a ppsci Arch: {"noise": z[, "labels": y]} -> {"fake": G(z[, y])}.

    Solvers, validators, export and inference see this dict interface; `net` is the plain
    network, called with the inputs in `input_keys` order.
    """

    def __init__(self, net: nn.Layer, input_keys: Tuple[str, ...] = ("noise",)):
        super().__init__()
        self.net = net
        self.input_keys = tuple(input_keys)
        self.output_keys = ("fake",)

    def forward(self, inputs):
        args = [inputs[k] for k in self.input_keys]
        if all(p.stop_gradient for p in self.net.parameters()):
            # frozen (the critic's step): its samples are constants, so record no graph,
            # even though ppsci marks every input as requiring gradients
            with paddle.no_grad():
                return {"fake": self.net(*args)}
        return {"fake": self.net(*args)}


class GeneratorAndCritic(ppsci.arch.Arch):
    """The Solvers' model: the generator's forward, holding the critic as well; a batch
    without "noise" gets fresh N(0, 1) noise, drawn for the global batch (local_rows).

    With several processes, ppsci wraps its model in DataParallel and averages the
    gradients of the model's parameters only; holding the critic here makes it average
    the critic's too (each step, only the unfrozen network has gradients).
    """

    def __init__(self, generator: Generator, critic: nn.Layer, noise_dim: int):
        super().__init__()
        self.generator, self.critic, self.noise_dim = generator, critic, noise_dim
        self.input_keys, self.output_keys = generator.input_keys, generator.output_keys

    def forward(self, inputs):
        if "noise" not in inputs:
            rows = next(iter(inputs.values())).shape[0] * paddle.distributed.get_world_size()
            inputs = {**inputs, "noise": local_rows(paddle.randn([rows, self.noise_dim]))}
        return self.generator(inputs)


# ---------------------------------------------------------------------------
# Toy data and MNIST: gan_toy.py's MLPs, gan_mnist.py's networks, our metric's classifier
# ---------------------------------------------------------------------------
class ToyMLP(nn.Sequential):
    """gan_toy.py's networks: three ReLU layers of `hidden` units (He init), linear out
    (Glorot init, tflib's default)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 512, depth: int = 3):
        layers, width = [], in_dim
        for _ in range(depth):
            layers += [linear(width, hidden, init="he"), nn.ReLU()]
            width = hidden
        layers.append(linear(width, out_dim))
        super().__init__(*layers)


def toy_models(noise_dim: int, hidden: int, depth: int):
    """(generator Arch, critic network) for the 2-D toy problems."""
    generator = Generator(ToyMLP(noise_dim, 2, hidden, depth))
    critic = ToyMLP(2, 1, hidden, depth)
    return generator, critic



def tf_same_transposed_padding(kernel: int, stride: int):
    """Padding [top, bottom, left, right] that makes Paddle's transposed convolution
    TF's conv2d_transpose with padding "SAME" and an output `stride` times its input:
    the gradient of a "SAME" convolution from that output size, which pads
    (kernel - stride) // 2 before and the rest after. (Paddle's own "SAME" for transposed
    convolutions pads as if the input were the convolution's input: wrong for 7 -> 14.)"""
    total = max(kernel - stride, 0)
    return [total // 2, total - total // 2] * 2


class MnistGenerator(nn.Layer):
    """gan_mnist.py's generator: 128 -> 4x4x256, three 5x5 stride-2 transposed convs -> 28x28.

    Initialisation as gan_mnist.py calls tflib: Glorot input layer, He (he_init=True, the
    default it keeps) for all three transposed convolutions, the output one included.
    """

    def __init__(self, noise_dim: int = 128, dim: int = 64, batch_norm: bool = False):
        super().__init__()
        self.dim = dim
        self.fc = linear(noise_dim, 4 * 4 * 4 * dim)

        def up(c_in, c_out):  # doubles height and width, aligned as TF's "SAME" (see below)
            return deconv(c_in, c_out, 5, stride=2, padding=tf_same_transposed_padding(5, 2))

        self.up1, self.up2, self.up3 = up(4 * dim, 2 * dim), up(2 * dim, dim), up(dim, 1)
        # gan_mnist.py's MODE='wgan': batch norm after the input layer (over the batch, each
        # unit; here as [N, units, 1, 1]) and the first two transposed convolutions; tflib's
        # epsilon 1e-5 is Paddle's. GroupedBatchNorm2D: batch_statistics() works in eval too
        norm = (lambda c: GroupedBatchNorm2D(c)) if batch_norm else (lambda c: nn.Identity())
        self.bn1, self.bn2, self.bn3 = norm(4 * 4 * 4 * dim), norm(2 * dim), norm(dim)

    def forward(self, noise):
        x = self.bn1(self.fc(noise).reshape([-1, 4 * 4 * 4 * self.dim, 1, 1]))
        x = nn.functional.relu(x).reshape([-1, 4 * self.dim, 4, 4])
        x = nn.functional.relu(self.bn2(self.up1(x)))[:, :, :7, :7]  # 8x8 -> 7x7, as the paper
        x = nn.functional.relu(self.bn3(self.up2(x)))
        return nn.functional.sigmoid(self.up3(x))  # [N, 1, 28, 28] in (0, 1)


class MnistCritic(nn.Layer):
    """gan_mnist.py's critic: three 5x5 stride-2 convs (64/128/256), LeakyReLU 0.2, linear.

    No normalisation by default: batch statistics would break the per-sample gradient
    penalty (gan_mnist.py uses batch norm only with weight clipping, MODE='wgan').
    Initialisation as gan_mnist.py calls tflib: He convolutions with stride 2 in their
    fan_out, Glorot output layer.
    """

    def __init__(self, dim: int = 64, batch_norm: bool = False):
        super().__init__()
        # gan_mnist.py's MODE='wgan' (no penalty to break): batch norm after convs 2 and 3
        norm = (lambda c: [GroupedBatchNorm2D(c)]) if batch_norm else (lambda c: [])
        self.convs = nn.Sequential(
            # "SAME": TF's padding, 1 before and 2 after for 28 -> 14 and 14 -> 7, 2 and 2
            # for 7 -> 4 (a symmetric padding of 2 shifts the first two by one pixel)
            conv(1, dim, 5, stride=2, padding="SAME"), nn.LeakyReLU(0.2),
            conv(dim, 2 * dim, 5, stride=2, padding="SAME"), *norm(2 * dim), nn.LeakyReLU(0.2),
            conv(2 * dim, 4 * dim, 5, stride=2, padding="SAME"), *norm(4 * dim),
            nn.LeakyReLU(0.2),
        )
        self.fc = linear(4 * 4 * 4 * dim, 1)

    def forward(self, images):
        x = self.convs(images)
        return self.fc(x.reshape([x.shape[0], -1]))  # reshape: flatten has no double backward


def mnist_models(noise_dim: int, dim: int, batch_norm: bool = False):
    """(generator Arch, critic network) for MNIST; batch_norm: as gan_mnist.py's MODE='wgan'."""
    return (Generator(MnistGenerator(noise_dim, dim, batch_norm)),
            MnistCritic(dim, batch_norm))


class MnistClassifier(nn.Layer):
    """A small CNN for the MNIST quality metric; `features` is its penultimate layer.

    Our metric, not the paper's: it keeps Paddle's default initialisation."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2D(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2D(2),
            nn.Conv2D(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2D(2),
        )
        self.features = nn.Sequential(nn.Linear(64 * 7 * 7, 128), nn.ReLU())
        self.head = nn.Linear(128, 10)

    def forward(self, images):
        """(penultimate features [N, 128], logits [N, 10])."""
        x = self.body(images)
        features = self.features(x.reshape([x.shape[0], -1]))
        return features, self.head(features)



# ---------------------------------------------------------------------------
# CIFAR-10: gan_cifar_resnet.py's ResNets (128 channels throughout)
# ---------------------------------------------------------------------------
def _upsample(x):
    """Nearest-neighbour 2x upsampling (the paper's depth_to_space of four copies).

    Written as expand + reshape: Paddle's CPU inference engine cannot run
    interpolate's scale attribute."""
    n, c, h, w = x.shape
    return x.reshape([-1, c, h, 1, w, 1]).expand([-1, c, h, 2, w, 2]).reshape([-1, c, 2 * h, 2 * w])


def _mean_pool(x):
    # avg_pool2d, not the paper's strided slices: Paddle has no double backward for those
    return nn.functional.avg_pool2d(x, 2)


# ---------------------------------------------------------------------------
# The generator's batch norm as the paper's code computes it
# ---------------------------------------------------------------------------
def local_bn_groups(bn_groups: int, world_size: int, batch_sizes=()) -> int:
    """Batch-norm groups of each of `world_size` processes for `bn_groups` in all.

    Every process holds a contiguous 1/world_size share of each global batch, and a group
    cannot span processes (there is no synchronised batch norm), so bn_groups must be a
    multiple of world_size; each process then normalises bn_groups // world_size groups
    of its share, and N processes compute the statistics one process computes. Each
    global batch size in `batch_sizes` must split into bn_groups equal groups.
    ValueError says what to change otherwise.
    """
    if isinstance(bn_groups, bool) or not isinstance(bn_groups, int) or bn_groups < 1:
        raise ValueError(f"bn_groups={bn_groups!r} must be a positive integer (the paper: 2).")
    if bn_groups % world_size:
        multiple = -(-bn_groups // world_size) * world_size
        raise ValueError(
            f"bn_groups={bn_groups} cannot be shared by {world_size} processes: each process "
            f"normalises its own 1/{world_size} of every batch and a group cannot span "
            f"processes, so bn_groups must be a multiple of {world_size} (e.g. {multiple}; "
            f"smaller groups than the paper's 2 per batch).")
    for size in batch_sizes:
        if size % bn_groups:
            raise ValueError(f"bn_groups={bn_groups} does not split a batch of {size} into "
                             f"equal groups; give a batch size that is a multiple of {bn_groups}.")
    return bn_groups // world_size


BATCH_NORMS = (nn.BatchNorm, nn.BatchNorm1D, nn.BatchNorm2D, nn.BatchNorm3D)


class GroupedBatchNorm2D(nn.BatchNorm2D):
    """Paddle's BatchNorm2D, normalising `groups` equal contiguous parts of a training batch
    with the statistics of each part, as the paper's code does on its two towers.

    In training with groups > 1, rows [i n/G, (i+1) n/G) are normalised with their own mean
    and (biased) variance over (rows, H, W), and the running averages are updated once per
    call, by Paddle's rule (running = momentum * running + (1 - momentum) * batch value,
    biased variance), from the mean over the groups of the group means and of the group
    variances: the statistics the groups were normalised with, on average. With one group
    this is Paddle's own BatchNorm2D (used as is). In evaluation it uses the running
    averages; inside batch_statistics(...) the whole batch's statistics, no update.
    Parameters and buffers are BatchNorm2D's, so weights files are unchanged.
    """

    def __init__(self, num_features: int, groups: int = 1, momentum: float = 0.9,
                 epsilon: float = 1e-05, **kwargs):
        super().__init__(num_features, momentum=momentum, epsilon=epsilon, **kwargs)
        self.groups, self.momentum, self.epsilon = groups, momentum, epsilon
        self.batch_statistics_only = False  # set by batch_statistics()

    def forward(self, x):
        if self.batch_statistics_only:
            return self._normalise(x, 1, update=False)
        if self.training and self.groups > 1:
            return self._normalise(x, self.groups, update=True)
        return super().forward(x)

    def _normalise(self, x, groups: int, update: bool):
        n, c, h, w = x.shape
        if n % groups:
            raise ValueError(f"A batch of {n} does not split into {groups} equal batch-norm "
                             f"groups.")
        parts = x.reshape([groups, n // groups, c, h, w])
        mean = parts.mean(axis=[1, 3, 4], keepdim=True)
        var = ((parts - mean) ** 2).mean(axis=[1, 3, 4], keepdim=True)
        y = ((parts - mean) / paddle.sqrt(var + self.epsilon)).reshape([n, c, h, w])
        if update:
            running = self.state_dict()  # its "_mean" and "_variance", the weights files' names
            with paddle.no_grad():
                m = self.momentum
                for name, batch_value in (("_mean", mean), ("_variance", var)):
                    running[name].set_value(
                        m * running[name] + (1 - m) * batch_value.mean(axis=0).reshape([c]))
        shape = [1, c, 1, 1]
        return y * self.weight.reshape(shape) + self.bias.reshape(shape)


@contextlib.contextmanager
def batch_statistics(layer: nn.Layer):
    """Inside the block, every batch norm in `layer` normalises each call's whole batch with
    that batch's own statistics, in training and evaluation mode alike, and leaves its
    running averages alone; on exit everything is as it was.

    This is how the paper's code samples (a batch of 100 through the training graph).
    GroupedBatchNorm2D layers compute it directly; Paddle's other batch norms run in
    training mode and get their running averages and modes put back, bit for bit.
    """
    norms = [sub for sub in layer.sublayers(include_self=True) if isinstance(sub, BATCH_NORMS)]
    ours = [sub for sub in norms if isinstance(sub, GroupedBatchNorm2D)]
    others = [(sub, sub.training, {k: v.numpy() for k, v in sub.state_dict().items()})
              for sub in norms if not isinstance(sub, GroupedBatchNorm2D)]
    flags = [sub.batch_statistics_only for sub in ours]
    try:
        for sub in ours:
            sub.batch_statistics_only = True
        for sub, *_ in others:
            sub.train()
        yield layer
    finally:
        for sub, flag in zip(ours, flags):
            sub.batch_statistics_only = flag
        for sub, training, state in others:
            sub.set_state_dict(state)
            sub.train() if training else sub.eval()


def sampling(generator: nn.Layer, norm: str):
    """The batch norms' statistics when sampling: "batch", each batch's own (batch_statistics),
    or "running", the running averages (what export and inference use)."""
    return batch_statistics(generator) if norm == "batch" else contextlib.nullcontext()


class ConditionalBatchNorm(nn.Layer):
    """Batch norm whose scale and shift are looked up by class label."""

    def __init__(self, channels: int, num_classes: int, groups: int = 1):
        super().__init__()
        # fixed unit scale and zero shift (not weight_attr=False: Paddle's inference engine
        # cannot run a batch norm without them)
        fixed = lambda value: paddle.ParamAttr(  # noqa: E731
            initializer=nn.initializer.Constant(value), trainable=False)
        self.bn = GroupedBatchNorm2D(channels, groups, weight_attr=fixed(1.0),
                                     bias_attr=fixed(0.0))
        self.scale = nn.Embedding(num_classes, channels,
                                  weight_attr=nn.initializer.Constant(1.0))
        self.shift = nn.Embedding(num_classes, channels,
                                  weight_attr=nn.initializer.Constant(0.0))

    def forward(self, x, labels):
        shape = [-1, x.shape[1], 1, 1]
        return self.bn(x) * self.scale(labels).reshape(shape) + self.shift(labels).reshape(shape)


class SampleLayerNorm(nn.Layer):
    """Per-sample normalisation over (C, H, W) with a per-channel scale and shift: the
    paper's suggested critic normalisation, which keeps samples independent."""

    def __init__(self, channels: int, epsilon: float = 1e-5):
        super().__init__()
        self.epsilon = epsilon
        self.weight = self.create_parameter([channels], default_initializer=nn.initializer.Constant(1.0))
        self.bias = self.create_parameter([channels], default_initializer=nn.initializer.Constant(0.0))

    def forward(self, x):
        mean = x.mean(axis=[1, 2, 3], keepdim=True)
        var = ((x - mean) ** 2).mean(axis=[1, 2, 3], keepdim=True)
        shape = [1, -1, 1, 1]
        return (x - mean) / paddle.sqrt(var + self.epsilon) * self.weight.reshape(shape) \
            + self.bias.reshape(shape)


class GeneratorBlock(nn.Layer):
    """Residual "up" block: norm, ReLU, upsample + 3x3 conv, norm, ReLU, 3x3 conv;
    shortcut: upsample + 1x1 conv. Norms are class-conditional when num_classes is set;
    bn_groups: see GroupedBatchNorm2D."""

    def __init__(self, channels: int, num_classes: int = 0, bn_groups: int = 1):
        super().__init__()
        self.conditional = num_classes > 0
        norm = (lambda: ConditionalBatchNorm(channels, num_classes, bn_groups)) \
            if self.conditional else (lambda: GroupedBatchNorm2D(channels, bn_groups))
        self.norm1, self.norm2 = norm(), norm()
        self.conv1 = conv(channels, channels, 3, padding=1)  # he_init, as tflib's default
        self.conv2 = conv(channels, channels, 3, padding=1)
        self.shortcut = conv(channels, channels, 1, he_init=False)  # as the paper's blocks

    def _norm(self, layer, x, labels):
        return layer(x, labels) if self.conditional else layer(x)

    def forward(self, x, labels=None):
        h = self.conv1(_upsample(nn.functional.relu(self._norm(self.norm1, x, labels))))
        h = self.conv2(nn.functional.relu(self._norm(self.norm2, h, labels)))
        return self.shortcut(_upsample(x)) + h


class CifarGenerator(nn.Layer):
    """Linear 128 -> 4x4x128, three up blocks to 32x32, BN, ReLU, 3x3 conv to RGB, tanh.

    bn_groups: every batch norm normalises this many equal parts of a training batch
    separately (the paper's two towers: 2; under data parallelism, this process's share,
    see local_bn_groups)."""

    def __init__(self, noise_dim: int = 128, dim: int = 128, num_classes: int = 10,
                 bn_groups: int = 1):
        super().__init__()
        self.dim = dim
        self.fc = linear(noise_dim, 4 * 4 * dim)
        self.blocks = nn.LayerList([GeneratorBlock(dim, num_classes, bn_groups)
                                    for _ in range(3)])
        self.norm = GroupedBatchNorm2D(dim, bn_groups)  # never conditional, as the paper's
        self.out = conv(dim, 3, 3, padding=1, he_init=False)  # as the paper's Generator.Output

    def forward(self, noise, labels=None):
        x = self.fc(noise).reshape([-1, self.dim, 4, 4])
        for block in self.blocks:
            x = block(x, labels)
        return paddle.tanh(self.out(nn.functional.relu(self.norm(x))))


class CriticBlock(nn.Layer):
    """Residual critic block: [norm], ReLU, 3x3 conv, [norm], ReLU, 3x3 conv [, mean pool];
    shortcut: 1x1 conv + mean pool when downsampling, identity otherwise."""

    def __init__(self, channels: int, down: bool, layer_norm: bool):
        super().__init__()
        norm = (lambda: SampleLayerNorm(channels)) if layer_norm else (lambda: nn.Identity())
        self.down = down
        self.norm1, self.norm2 = norm(), norm()
        self.conv1 = conv(channels, channels, 3, padding=1)
        self.conv2 = conv(channels, channels, 3, padding=1)
        self.shortcut = conv(channels, channels, 1, he_init=False) if down else None

    def forward(self, x):
        h = self.conv1(nn.functional.relu(self.norm1(x)))
        h = self.conv2(nn.functional.relu(self.norm2(h)))
        if not self.down:
            return x + h
        return _mean_pool(self.shortcut(x)) + _mean_pool(h)


class CifarCritic(nn.Layer):
    """Optimized first block (32 -> 16), a down block (-> 8), two plain blocks, ReLU,
    global mean pool, linear to the score; with num_classes, also an AC-GAN class head.

    No batch statistics: they would couple samples and invalidate the per-sample penalty.
    """

    def __init__(self, dim: int = 128, num_classes: int = 0, layer_norm: bool = False):
        super().__init__()
        self.conv1 = conv(3, dim, 3, padding=1)
        self.conv2 = conv(dim, dim, 3, padding=1)
        self.shortcut1 = conv(3, dim, 1, he_init=False)
        self.blocks = nn.Sequential(CriticBlock(dim, True, layer_norm),
                                    CriticBlock(dim, False, layer_norm),
                                    CriticBlock(dim, False, layer_norm))
        self.score = linear(dim, 1)
        self.classes = linear(dim, num_classes) if num_classes else None

    def features(self, images):
        h = _mean_pool(self.conv2(nn.functional.relu(self.conv1(images))))
        x = self.shortcut1(_mean_pool(images)) + h
        return nn.functional.relu(self.blocks(x)).mean(axis=[2, 3])

    def forward(self, images):
        return self.score(self.features(images))

    def forward_with_logits(self, images):
        """(score [N, 1], AC-GAN class logits [N, num_classes])."""
        features = self.features(images)
        return self.score(features), self.classes(features)


def cifar_models(noise_dim: int, dim_g: int, dim_d: int, conditional: bool, layer_norm: bool,
                 bn_groups: int = 1):
    """(generator Arch, critic network) for CIFAR-10; conditional: AC-GAN with 10 classes;
    bn_groups: the generator's batch-norm groups in this process (local_bn_groups)."""
    classes = 10 if conditional else 0
    keys = ("noise", "labels") if conditional else ("noise",)
    generator = Generator(CifarGenerator(noise_dim, dim_g, classes, bn_groups), keys)
    return generator, CifarCritic(dim_d, classes, layer_norm)
