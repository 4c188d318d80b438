"""The ppsci face of the networks (dict in, dict out), and freezing one network for the
other's step."""

import contextlib
from typing import Tuple

import paddle
import ppsci
from paddle import nn

from ..parallel import local_rows


class Generator(ppsci.arch.Arch):
    """A generator network as a ppsci Arch: {"noise": z[, "labels": y]} -> {"fake": G(z[, y])}.

    Solvers, validators, export and inference see this dict interface; `net` is the plain
    network, called with the inputs in `input_keys` order. Inside frozen(generator) (the
    critic's step) its samples are constants: no graph is recorded for them.
    """

    def __init__(self, net: nn.Layer, input_keys: Tuple[str, ...] = ("noise",)):
        super().__init__()
        self.net = net
        self.input_keys = tuple(input_keys)
        self.output_keys = ("fake",)
        self.frozen = False

    def forward(self, inputs):
        args = [inputs[k] for k in self.input_keys]
        if self.frozen:  # no graph, even though ppsci marks every input as needing gradients
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


@contextlib.contextmanager
def frozen(layer: nn.Layer):
    """No parameter gradients for `layer` inside the block (input gradients still flow); a
    Generator's samples are constants there."""
    params = [p for p in layer.parameters() if not p.stop_gradient]
    for p in params:
        p.stop_gradient = True
    generator = layer if isinstance(layer, Generator) else None
    if generator is not None:
        generator.frozen = True
    try:
        yield
    finally:
        if generator is not None:
            generator.frozen = False
        for p in params:
            p.stop_gradient = False
