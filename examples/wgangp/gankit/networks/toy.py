"""gan_toy.py's MLPs for the 2-D toy problems."""

from paddle import nn

from .arch import Generator
from .layers import linear


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
