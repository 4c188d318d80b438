"""CIFAR-10: gan_cifar_resnet.py's ResNets (128 channels throughout)."""

import paddle
from paddle import nn

from ..errors import UsageError
from .arch import Generator
from .layers import conv, linear
from .norms import ConditionalBatchNorm, GroupedBatchNorm2D, SampleLayerNorm, local_bn_groups


def _upsample(x):
    """Nearest-neighbour 2x upsampling (the paper's depth_to_space of four copies).

    Written as expand + reshape: Paddle's CPU inference engine cannot run
    interpolate's scale attribute."""
    n, c, h, w = x.shape
    return x.reshape([-1, c, h, 1, w, 1]).expand([-1, c, h, 2, w, 2]).reshape([-1, c, 2 * h, 2 * w])


def _mean_pool(x):
    # avg_pool2d, not the paper's strided slices: Paddle has no double backward for those
    return nn.functional.avg_pool2d(x, 2)


class GeneratorBlock(nn.Layer):
    """Residual "up" block: norm, ReLU, upsample + 3x3 conv, norm, ReLU, 3x3 conv;
    shortcut: upsample + 1x1 conv. Norms are class-conditional when num_classes is set;
    bn_groups: see GroupedBatchNorm2D."""

    def __init__(self, channels: int, num_classes: int = 0, bn_groups: int = 1):
        super().__init__()
        self.conditional = num_classes > 0
        norm = (
            (lambda: ConditionalBatchNorm(channels, num_classes, bn_groups))
            if self.conditional
            else (lambda: GroupedBatchNorm2D(channels, bn_groups))
        )
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
    """Linear 128 -> 4x4x128, three up blocks to 32x32, BN, ReLU, 3x3 conv to RGB (or
    `channels` planes), tanh.

    bn_groups: every batch norm normalises this many equal parts of a training batch
    separately (the paper's two towers: 2; under data parallelism, this process's share,
    see local_bn_groups)."""

    def __init__(
        self,
        noise_dim: int = 128,
        dim: int = 128,
        num_classes: int = 10,
        bn_groups: int = 1,
        channels: int = 3,
    ):
        super().__init__()
        self.dim = dim
        self.fc = linear(noise_dim, 4 * 4 * dim)
        self.blocks = nn.LayerList([GeneratorBlock(dim, num_classes, bn_groups) for _ in range(3)])
        self.norm = GroupedBatchNorm2D(dim, bn_groups)  # never conditional, as the paper's
        self.out = conv(dim, channels, 3, padding=1, he_init=False)  # the paper's Generator.Output

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
    `channels`: the images' (RGB's 3, or any number).

    No batch statistics: they would couple samples and invalidate the per-sample penalty.
    """

    def __init__(
        self, dim: int = 128, num_classes: int = 0, layer_norm: bool = False, channels: int = 3
    ):
        super().__init__()
        self.conv1 = conv(channels, dim, 3, padding=1)
        self.conv2 = conv(dim, dim, 3, padding=1)
        self.shortcut1 = conv(channels, dim, 1, he_init=False)
        self.blocks = nn.Sequential(
            CriticBlock(dim, True, layer_norm),
            CriticBlock(dim, False, layer_norm),
            CriticBlock(dim, False, layer_norm),
        )
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


def cifar_models(
    noise_dim: int,
    dim_g: int,
    dim_d: int,
    conditional: bool,
    layer_norm: bool,
    bn_groups: int = 1,
    channels: int = 3,
    num_classes: int = 10,
):
    """(generator Arch, critic network) for CIFAR-10; conditional: AC-GAN with num_classes
    classes; bn_groups: the generator's batch-norm groups in this process (local_bn_groups);
    channels: the images' planes (any number, for other 32x32 data)."""
    classes = num_classes if conditional else 0
    keys = ("noise", "labels") if conditional else ("noise",)
    generator = Generator(CifarGenerator(noise_dim, dim_g, classes, bn_groups, channels), keys)
    return generator, CifarCritic(dim_d, classes, layer_norm, channels)


def bn_groups_of(model_cfg, batch_sizes: tuple, processes: int) -> int:
    """This process's share of MODEL.bn_groups (local_bn_groups); one line naming the setting
    when the processes or batches cannot share them."""
    try:
        return local_bn_groups(model_cfg.bn_groups, processes, batch_sizes)
    except ValueError as e:
        raise UsageError(f"MODEL.bn_groups: {e}") from None


def cifar_models_of(
    model_cfg, batch_sizes: tuple, processes: int, channels: int = 3, num_classes: int = 10
):
    """cifar_models of the MODEL settings, the generator with this process's share of
    MODEL.bn_groups over `processes` (batch_sizes: the critic's and the generator's global
    batches, which the groups must divide)."""
    groups = bn_groups_of(model_cfg, batch_sizes, processes)
    m = model_cfg
    return cifar_models(
        m.noise_dim, m.dim_g, m.dim_d, m.conditional, m.layer_norm, groups, channels, num_classes
    )
