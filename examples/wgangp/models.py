"""Networks of the WGAN-GP examples, as in the paper's code (arXiv:1704.00028)."""

import math
from typing import Tuple

import paddle
from paddle import nn
import ppsci


class Generator(ppsci.arch.Arch):
    """ppsci face of a generator network: {"noise": z, ...} -> {"fake": G(z, ...)}.

    The Solvers, export and inference see this dict interface; `net` is the plain
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


def _linear(fan_in: int, fan_out: int, gain: float) -> nn.Linear:
    """Linear layer with the paper's uniform init of std sqrt(gain / fan_in), zero bias."""
    bound = math.sqrt(3.0 * gain / fan_in)
    return nn.Linear(
        fan_in, fan_out,
        weight_attr=nn.initializer.Uniform(-bound, bound),
        bias_attr=nn.initializer.Constant(0.0),
    )


class ToyMLP(nn.Sequential):
    """gan_toy.py's networks: three ReLU layers of `hidden` units (He init), linear out."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 512, depth: int = 3):
        layers, width = [], in_dim
        for _ in range(depth):
            layers += [_linear(width, hidden, gain=2.0), nn.ReLU()]
            width = hidden
        layers.append(_linear(width, out_dim, gain=1.0))
        super().__init__(*layers)


def toy_models(noise_dim: int, hidden: int, depth: int):
    """(generator Arch, critic network) for the 2-D toy problems."""
    generator = Generator(ToyMLP(noise_dim, 2, hidden, depth))
    critic = ToyMLP(2, 1, hidden, depth)
    return generator, critic



class MnistGenerator(nn.Layer):
    """gan_mnist.py's generator: 128 -> 4x4x256, three 5x5 stride-2 transposed convs -> 28x28."""

    def __init__(self, noise_dim: int = 128, dim: int = 64):
        super().__init__()
        self.dim = dim
        self.fc = nn.Linear(noise_dim, 4 * 4 * 4 * dim)

        def up(c_in, c_out):  # doubles height and width ("SAME" padding)
            return nn.Conv2DTranspose(c_in, c_out, 5, stride=2, padding=2, output_padding=1)

        self.up1, self.up2, self.up3 = up(4 * dim, 2 * dim), up(2 * dim, dim), up(dim, 1)

    def forward(self, noise):
        x = nn.functional.relu(self.fc(noise)).reshape([-1, 4 * self.dim, 4, 4])
        x = nn.functional.relu(self.up1(x))[:, :, :7, :7]  # 8x8 -> 7x7, as the paper's code
        x = nn.functional.relu(self.up2(x))
        return nn.functional.sigmoid(self.up3(x))  # [N, 1, 28, 28] in (0, 1)


class MnistCritic(nn.Layer):
    """gan_mnist.py's critic: three 5x5 stride-2 convs (64/128/256), LeakyReLU 0.2, linear.

    No normalisation: batch statistics would break the per-sample gradient penalty.
    """

    def __init__(self, dim: int = 64):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2D(1, dim, 5, stride=2, padding=2), nn.LeakyReLU(0.2),
            nn.Conv2D(dim, 2 * dim, 5, stride=2, padding=2), nn.LeakyReLU(0.2),
            nn.Conv2D(2 * dim, 4 * dim, 5, stride=2, padding=2), nn.LeakyReLU(0.2),
        )
        self.fc = nn.Linear(4 * 4 * 4 * dim, 1)

    def forward(self, images):
        x = self.convs(images)
        return self.fc(x.reshape([x.shape[0], -1]))  # reshape: flatten has no double backward


def mnist_models(noise_dim: int, dim: int):
    """(generator Arch, critic network) for MNIST."""
    return Generator(MnistGenerator(noise_dim, dim)), MnistCritic(dim)


class MnistClassifier(nn.Layer):
    """A small CNN for the MNIST quality metric; `features` is its penultimate layer."""

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
