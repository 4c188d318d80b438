"""Weights files in the exact layout of PaddleScience's published WGAN-GP .pdparams, with
random values. The layouts are written from the specification's state-dict tables
(seed_architectures.md §2.4, §2.6, §3.3, §3.5, §4.3, §4.4), not from published.py."""

import pickle

import numpy as np

EXTRA = "StructuredToParameterName@@"
NOISE = 128  # CIFAR-10 and MNIST noise width


def _toy(prefix, dim, out):
    return [
        (f"{prefix}reluLayer1.linear.weight", [2, dim], "linear"),
        (f"{prefix}reluLayer1.linear.bias", [dim], "linear"),
        (f"{prefix}reluLayer2.linear.weight", [dim, dim], "linear"),
        (f"{prefix}reluLayer2.linear.bias", [dim], "linear"),
        (f"{prefix}reluLayer3.linear.weight", [dim, dim], "linear"),
        (f"{prefix}reluLayer3.linear.bias", [dim], "linear"),
        (f"{prefix}linear.weight", [dim, out], "linear"),
        (f"{prefix}linear.bias", [out], "linear"),
    ]


def _pair(key, weight_shape, kind):
    return [
        (f"{key}.weight", weight_shape, kind),
        (f"{key}.bias", [weight_shape[0 if kind == "conv2d" else 1]], kind),
    ]


def _cbn(key, labels, c):
    return [
        (f"{key}.scale", [labels, c], "table"),
        (f"{key}.offset", [labels, c], "table"),
        (f"{key}.mean", [c], "buffer_mean"),
        (f"{key}.var", [c], "buffer_var"),
    ]


def _layer_norm(key):
    return [
        (f"{key}.scale", [1], "scalar"),
        (f"{key}.offset", [1], "scalar"),
        (f"{key}.mean", [1], "buffer_mean"),
        (f"{key}.var", [1], "buffer_var"),
    ]


def published_layout(example, role, dim=None, label_num=10):
    """[(key, shape, kind)] in the file's order. kind says what the entry is: linear,
    conv2d, conv2d_transpose (weight and bias), table (conditional-BN scale/offset), scalar
    (layer-norm scale/offset), bn (BatchNorm weight/bias), bn_mean / bn_var (its
    non-trainable statistics), buffer_mean / buffer_var (persistable buffers)."""
    if example == "toy":
        dim = dim or 512
        return _toy(
            "generator." if role == "generator" else "discriminator.",
            dim,
            2 if role == "generator" else 1,
        )
    if example == "mnist":
        d = dim or 64
        if role == "generator":
            g = "generator."
            return (
                _pair(g + "linear1", [NOISE, 64 * d], "linear")
                + _pair(g + "conv2d_transpose1", [4 * d, 2 * d, 5, 5], "conv2d_transpose")
                + _pair(g + "conv2d_transpose2", [2 * d, d, 5, 5], "conv2d_transpose")
                + _pair(g + "conv2d_transpose3", [d, 1, 5, 5], "conv2d_transpose")
            )
        c = "discriminator."
        return (
            _pair(c + "conv2d_1", [d, 1, 5, 5], "conv2d")
            + _pair(c + "conv2d_2", [2 * d, d, 5, 5], "conv2d")
            + _pair(c + "conv2d_3", [4 * d, 2 * d, 5, 5], "conv2d")
            + _pair(c + "linear", [64 * d, 1], "linear")
        )
    if example != "cifar10":
        raise ValueError(example)
    C, L = dim or 128, label_num
    if role == "generator":
        g = "generator."
        rows = _pair(g + "linear1", [NOISE, 16 * C], "linear")
        for b in range(3):
            blk = f"{g}ResidualBlocks.{b}."
            rows += (
                _pair(blk + "conv_shortcut.conv2D", [C, C, 1, 1], "conv2d")
                + _pair(blk + "conv_1.conv2D", [C, C, 3, 3], "conv2d")
                + _pair(blk + "conv_2", [C, C, 3, 3], "conv2d")
                + _cbn(blk + "normalize1.normalize", L, C)
                + _cbn(blk + "normalize2.normalize", L, C)
            )
        n = g + "Normalize.normalize"
        rows += [
            (f"{n}.weight", [C], "bn"),
            (f"{n}.bias", [C], "bn"),
            (f"{n}._mean", [C], "bn_mean"),
            (f"{n}._variance", [C], "bn_var"),
        ]
        return rows + _pair(g + "conv", [3, C, 3, 3], "conv2d")
    d = "discriminator."
    o = d + "optimized_resblock_disc1."
    rows = (
        _pair(o + "conv_1", [C, 3, 3, 3], "conv2d")
        + _pair(o + "conv_2.conv2D", [C, C, 3, 3], "conv2d")
        + _pair(o + "conv_shortcut.conv2D", [C, 3, 1, 1], "conv2d")
    )
    for b in range(3):
        blk = f"{d}ResidualBlocks.{b}."
        down = ".conv2D" if b == 0 else ""
        rows += (
            _pair(f"{blk}conv_shortcut{down}", [C, C, 1, 1], "conv2d")
            + _pair(blk + "conv_1", [C, C, 3, 3], "conv2d")
            + _pair(f"{blk}conv_2{down}", [C, C, 3, 3], "conv2d")
            + _layer_norm(blk + "normalize1.normalize")
            + _layer_norm(blk + "normalize2.normalize")
        )
    return rows + _pair(d + "linear", [C, 1], "linear") + _pair(d + "linear2", [C, L], "linear")


def _values(rng, key, shape, kind):
    """Random values that keep activations of order one (so outputs are not saturated)."""
    if kind in ("linear", "conv2d", "conv2d_transpose") and key.endswith(".weight"):
        fan_in = shape[0] if kind == "linear" else int(np.prod(shape[1:]))
        if kind == "conv2d_transpose":  # each output sees about in * k * k / stride^2 inputs
            fan_in = shape[0] * shape[2] * shape[3] / 4
        bound = np.sqrt(3.0 / fan_in)
        return rng.uniform(-bound, bound, shape)
    if kind in ("table", "bn") and not key.endswith(("offset", "bias")):
        return rng.uniform(0.5, 1.5, shape)
    if kind in ("buffer_var", "bn_var"):
        return rng.uniform(0.5, 2.0, shape)
    if kind == "scalar":
        return rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
    return rng.normal(0.0, 0.2, shape)  # biases, offsets, running means


def _tensor_names(layout):
    """Paddle-like internal names (linear_0.w_0, conv2d_3.b_0, eager_tmp_1, ...) for the
    extra entry: one counter per layer type, as Paddle numbers them."""
    counters, layers, names = {}, {}, {}
    for key, _, kind in layout:
        if kind.startswith("buffer"):
            names[key] = f"eager_tmp_{counters.setdefault('eager_tmp', 0)}"
            counters["eager_tmp"] += 1
            continue
        layer, leaf = key.rsplit(".", 1)
        family = {
            "table": "create_parameter",
            "scalar": "create_parameter",
            "bn_mean": "batch_norm",
            "bn_var": "batch_norm",
            "bn": "batch_norm",
        }.get(kind, kind)
        if (layer, family) not in layers or family == "create_parameter":
            layers[layer, family] = counters.get(family, 0)
            counters[family] = layers[layer, family] + 1
        suffix = {"bias": "b_0", "_mean": "w_1", "_variance": "w_2"}.get(leaf, "w_0")
        names[key] = f"{family}_{layers[layer, family]}.{suffix}"
    return names


def write_published_file(path, example, role, seed, **sizes):
    """Write a .pdparams as PaddleScience's: {key: float32 ndarray} in the published order,
    then the extra {key: tensor name} entry, pickled (protocol 4) as paddle.save does.
    Returns the arrays. sizes: dim, label_num (defaults: the published config)."""
    rng = np.random.default_rng(seed)
    layout = published_layout(example, role, **sizes)
    arrays = {
        key: np.ascontiguousarray(_values(rng, key, shape, kind), dtype=np.float32)
        for key, shape, kind in layout
    }
    state = dict(arrays)
    state[EXTRA] = _tensor_names(layout)
    with open(path, "wb") as f:
        pickle.dump(state, f, protocol=4)
    return arrays
