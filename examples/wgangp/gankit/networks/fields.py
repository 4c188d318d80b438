"""The networks for a user's own data: the paper's ResNets for 32x32 or 64x64 fields of any
number of channels, the generator carrying the data's units with its weights.

The generator works in [-1, 1]; the data's per-channel range (own_data.Scaling) is kept in
two buffers of the generator, so it is saved with the weights (model_generator.pdparams)
and travels into the exported model, whose output is in the data's own units.
"""

from typing import Tuple

import numpy as np
import paddle
from paddle import nn

from ..own_data import Scaling
from ..provenance import network_of
from .arch import Generator
from .cifar import bn_groups_of, cifar_models
from .resnet64 import resnet64_models


class DataUnits(nn.Layer):
    """[-1, 1] -> the data's units, per channel: lo + (y + 1) (hi - lo) / 2 (float64 buffers,
    the Scaling's exact numbers); and what network the generator is (`network`: resolution,
    noise_dim, dim_g, classes it is conditioned on or 0), so that its weights alone say."""

    def __init__(self, channels: int, network: Tuple[int, int, int, int] = (32, 128, 128, 0)):
        super().__init__()
        shape = [1, channels, 1, 1]
        self.register_buffer("lo", paddle.zeros(shape, "float64"), persistable=True)
        self.register_buffer("hi", paddle.ones(shape, "float64"), persistable=True)
        self.register_buffer("network", paddle.to_tensor(list(network), "int64"), persistable=True)

    def set(self, scaling: Scaling) -> None:
        shape = self.lo.shape
        self.lo.set_value(np.asarray(scaling.lo, np.float64).reshape(shape))
        self.hi.set_value(np.asarray(scaling.hi, np.float64).reshape(shape))

    def scaling(self) -> Scaling:
        return Scaling(
            tuple(float(v) for v in self.lo.numpy().ravel()),
            tuple(float(v) for v in self.hi.numpy().ravel()),
        )

    def forward(self, y):
        lo, hi = self.lo.astype(y.dtype), self.hi.astype(y.dtype)
        return (y + 1.0) * ((hi - lo) * 0.5) + lo


class FieldGenerator(Generator):
    """A Generator holding its data's units (`units`, saved with its weights); with
    `in_data_units` set (export), its "fake" comes in the data's units."""

    def __init__(self, net: nn.Layer, input_keys: Tuple[str, ...], channels: int, network: tuple):
        super().__init__(net, input_keys)
        self.units = DataUnits(channels, network)
        self.in_data_units = False

    def forward(self, inputs):
        out = Generator.forward(self, inputs)  # not super(): export's dy2static (layers.Conv2D)
        return {"fake": self.units(out["fake"])} if self.in_data_units else out


def own_data_models(
    model_cfg, resolution: int, channels: int, classes: int, batch_sizes: tuple, processes: int
):
    """(FieldGenerator, critic) for `resolution` x `resolution` fields of `channels` planes:
    at 32, gan_cifar_resnet.py's ResNets (cifar_models); at 64, gan_64x64.py's (resnet64_models).
    MODEL.dim_g, dim_d and layer_norm null: the paper's for the size (128, 128, none at 32;
    64, 64, layer norm at 64); conditional (AC-GAN over `classes`) when MODEL.conditional
    says, or when null and there are several classes; the generator with this process's
    share of MODEL.bn_groups over `processes`."""
    m = model_cfg
    groups = bn_groups_of(m, batch_sizes, processes)
    conditional = classes > 1 if m.conditional is None else bool(m.conditional)
    labels = classes if conditional else 0
    paper = {32: (128, 128, False), 64: (64, 64, True)}[resolution]
    dim_g, dim_d, layer_norm = (
        paper[i] if value is None else value
        for i, value in enumerate((m.dim_g, m.dim_d, m.layer_norm))
    )
    if resolution == 32:
        generator, critic = cifar_models(
            m.noise_dim, dim_g, dim_d, conditional, layer_norm, groups, channels, labels
        )
    else:
        generator, critic = resnet64_models(
            m.noise_dim, dim_g, dim_d, channels, labels, layer_norm, groups
        )
    network = (resolution, m.noise_dim, dim_g, labels)
    return FieldGenerator(generator.net, generator.input_keys, channels, network), critic


def recorded(state: dict) -> dict:
    """What a FieldGenerator's weights record of its network: channels, resolution,
    noise_dim, dim_g and the classes it is conditioned on (0: none); a ValueError for weights
    without the record (not a generator of wgangp_custom.py)."""
    if "units.lo" not in state or "units.network" not in state:
        what = network_of(state)
        if what is None:
            raise ValueError("no units.lo / units.network: not a generator of wgangp_custom.py")
        other = what[1] and what[1] != "wgangp_custom.py"
        script = f"; give it to examples/wgangp/{what[1]}" if other else ""
        raise ValueError(f"holds the weights of {what[0]}, not of this example's generator{script}")
    resolution, noise_dim, dim_g, classes = (int(v) for v in np.asarray(state["units.network"]))
    channels = int(np.asarray(state["units.lo"]).shape[1])
    return dict(
        channels=channels, resolution=resolution, noise_dim=noise_dim, dim_g=dim_g, classes=classes
    )
