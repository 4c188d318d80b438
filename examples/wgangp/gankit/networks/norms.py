"""The generator's batch norm as the paper's code computes it, and the critic's layer norm."""

import contextlib

import paddle
from paddle import nn


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
            f"smaller groups than the paper's 2 per batch)."
        )
    for size in batch_sizes:
        if size % bn_groups:
            raise ValueError(
                f"bn_groups={bn_groups} does not split a batch of {size} into "
                f"equal groups; give a batch size that is a multiple of {bn_groups}."
            )
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

    def __init__(
        self,
        num_features: int,
        groups: int = 1,
        momentum: float = 0.9,
        epsilon: float = 1e-05,
        **kwargs,
    ):
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
            raise ValueError(
                f"A batch of {n} does not split into {groups} equal batch-norm groups."
            )
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
                        m * running[name] + (1 - m) * batch_value.mean(axis=0).reshape([c])
                    )
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
    others = [
        (sub, sub.training, {k: v.numpy() for k, v in sub.state_dict().items()})
        for sub in norms
        if not isinstance(sub, GroupedBatchNorm2D)
    ]
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
            initializer=nn.initializer.Constant(value), trainable=False
        )
        self.bn = GroupedBatchNorm2D(channels, groups, weight_attr=fixed(1.0), bias_attr=fixed(0.0))
        self.scale = nn.Embedding(num_classes, channels, weight_attr=nn.initializer.Constant(1.0))
        self.shift = nn.Embedding(num_classes, channels, weight_attr=nn.initializer.Constant(0.0))

    def forward(self, x, labels):
        shape = [-1, x.shape[1], 1, 1]
        return self.bn(x) * self.scale(labels).reshape(shape) + self.shift(labels).reshape(shape)


class SampleLayerNorm(nn.Layer):
    """Per-sample normalisation over (C, H, W) with a per-channel scale and shift: the
    paper's suggested critic normalisation, which keeps samples independent."""

    def __init__(self, channels: int, epsilon: float = 1e-5):
        super().__init__()
        self.epsilon = epsilon
        self.weight = self.create_parameter(
            [channels], default_initializer=nn.initializer.Constant(1.0)
        )
        self.bias = self.create_parameter(
            [channels], default_initializer=nn.initializer.Constant(0.0)
        )

    def forward(self, x):
        mean = x.mean(axis=[1, 2, 3], keepdim=True)
        var = ((x - mean) ** 2).mean(axis=[1, 2, 3], keepdim=True)
        shape = [1, -1, 1, 1]
        return (x - mean) / paddle.sqrt(var + self.epsilon) * self.weight.reshape(
            shape
        ) + self.bias.reshape(shape)
