"""Networks of the WGAN-GP examples, as in the paper's code (arXiv:1704.00028)."""

import math
from typing import Tuple

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
        return {"fake": self.net(*[inputs[k] for k in self.input_keys])}


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

