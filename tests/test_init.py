"""The paper's initialisation (tflib/ops), layer by layer, on freshly built models.

Every weight is drawn from U(-std*sqrt(3), std*sqrt(3)) with std written out below as the
paper's scripts call tflib (gan_toy.py, gan_mnist.py, gan_cifar_resnet.py):
convolutions sqrt(4 / (fan_in + fan_out)) with he_init, sqrt(2 / (fan_in + fan_out))
without; fan_in = in k^2, fan_out = out k^2 / stride^2 (transposed: fan_in = in k^2 /
stride^2, fan_out = out k^2); linear layers Glorot sqrt(2 / (in + out)) unless the script
asks for He sqrt(2 / in). Biases are zero.
"""

from math import sqrt

import numpy as np
import paddle
import pytest

from gankit import networks as models

NOISE = 128
DIM_MNIST = 64
DIM = 128  # CIFAR-10 channels

TOY = {  # gan_toy.py: ReLULayer = Linear(initialization='he'); output Linear() = Glorot
    "G.0.weight": sqrt(2 / 2),
    "G.2.weight": sqrt(2 / 512),
    "G.4.weight": sqrt(2 / 512),
    "G.6.weight": sqrt(2 / (512 + 2)),
    "D.0.weight": sqrt(2 / 2),
    "D.2.weight": sqrt(2 / 512),
    "D.4.weight": sqrt(2 / 512),
    "D.6.weight": sqrt(2 / (512 + 1)),
}

d = DIM_MNIST
MNIST = {  # gan_mnist.py (wgan-gp): Deconv2D / Conv2D with he_init=True, stride 2
    "G.fc.weight": sqrt(2 / (NOISE + 4 * 4 * 4 * d)),
    "G.up1.weight": sqrt(4 / (4 * d * 25 / 4 + 2 * d * 25)),
    "G.up2.weight": sqrt(4 / (2 * d * 25 / 4 + d * 25)),
    "G.up3.weight": sqrt(4 / (d * 25 / 4 + 1 * 25)),  # the output deconv keeps he_init too
    "D.convs.0.weight": sqrt(4 / (1 * 25 + d * 25 / 4)),
    "D.convs.2.weight": sqrt(4 / (d * 25 + 2 * d * 25 / 4)),
    "D.convs.4.weight": sqrt(4 / (2 * d * 25 + 4 * d * 25 / 4)),
    "D.fc.weight": sqrt(2 / (4 * 4 * 4 * d + 1)),
}

c = DIM
HE3 = sqrt(4 / (c * 9 + c * 9))  # 3x3, 128 -> 128, stride 1 (the mean pools come after)
SHORTCUT = sqrt(2 / (c + c))  # 1x1, he_init=False
CIFAR = {
    "G.fc.weight": sqrt(2 / (NOISE + 4 * 4 * c)),
    **{
        f"G.blocks.{i}.{name}.weight": std
        for i in range(3)
        for name, std in (("conv1", HE3), ("conv2", HE3), ("shortcut", SHORTCUT))
    },
    "G.out.weight": sqrt(2 / (c * 9 + 3 * 9)),  # Generator.Output: he_init=False
    "D.conv1.weight": sqrt(4 / (3 * 9 + c * 9)),
    "D.conv2.weight": HE3,
    "D.shortcut1.weight": sqrt(2 / (3 + c)),  # MeanPoolConv, he_init=False
    "D.blocks.0.conv1.weight": HE3,
    "D.blocks.0.conv2.weight": HE3,
    "D.blocks.0.shortcut.weight": SHORTCUT,
    "D.blocks.1.conv1.weight": HE3,
    "D.blocks.1.conv2.weight": HE3,
    "D.blocks.2.conv1.weight": HE3,
    "D.blocks.2.conv2.weight": HE3,
    "D.score.weight": sqrt(2 / (c + 1)),
    "D.classes.weight": sqrt(2 / (c + 10)),
}


def build(example):
    if example == "toy":
        return models.toy_models(2, 512, 3)
    if example == "mnist":
        return models.mnist_models(NOISE, DIM_MNIST)
    return models.cifar_models(NOISE, DIM, DIM, conditional=True, layer_norm=False)


def parameters(example):
    generator, critic = build(example)
    named = {f"G.{k}": p for k, p in generator.net.named_parameters()}
    named.update({f"D.{k}": p for k, p in critic.named_parameters()})
    return named


@pytest.fixture(scope="module", params=["toy", "mnist", "cifar10"])
def example(request):
    paddle.seed(1234)
    return (
        request.param,
        parameters(request.param),
        {"toy": TOY, "mnist": MNIST, "cifar10": CIFAR}[request.param],
    )


def test_every_weight_has_the_papers_uniform_distribution(example):
    name, params, table = example
    weights = {
        k
        for k, p in params.items()
        if k.endswith(".weight") and p.ndim >= 2 and ".scale." not in k and ".shift." not in k
    }
    assert weights == set(table), f"{name}: layers without an expected std"
    for key, std in table.items():
        w = params[key].numpy().astype("float64").ravel()
        n, bound = w.size, std * sqrt(3)
        assert np.abs(w).max() <= bound * (1 + 1e-6), key
        # the largest of n uniform draws is below bound*(1-t) with probability (1-t)^n < 1e-9
        assert np.abs(w).max() >= bound * (1 - min(0.2, 21 / n)), key
        # sample std and mean: 6 standard errors (uniform: sd(s)/s = sqrt(0.8 / n) / 2)
        assert abs(w.std() / std - 1) <= 6 * 0.45 / sqrt(n) + 1e-3, (key, w.std(), std)
        assert abs(w.mean()) <= 6 * std / sqrt(n), key


def test_biases_start_at_zero(example):
    name, params, _ = example
    biases = {
        k: p
        for k, p in params.items()
        if k.endswith(".bias") and ".bn." not in k and ".norm" not in k
    }
    assert biases, name
    for key, p in biases.items():
        assert not np.any(p.numpy()), key


def test_std_formulas():
    assert models.conv_std(1, 64, 5, stride=2) == pytest.approx(sqrt(4 / (25 + 400)))
    assert models.conv_std(256, 128, 5, stride=2, transposed=True) == pytest.approx(
        sqrt(4 / (1600 + 3200))
    )
    assert models.conv_std(128, 128, 1, he_init=False) == pytest.approx(sqrt(2 / 256))
    assert models.linear_std(512, 2) == pytest.approx(sqrt(2 / 514))
    assert models.linear_std(2, 512, "he") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="Unknown initialisation"):
        models.linear_std(2, 2, "orthogonal")


@pytest.mark.parametrize("name", ["toy", "mnist"])
def test_draws_are_fixed_by_the_seed_before_construction(name):
    paddle.seed(7)
    first = {k: p.numpy() for k, p in parameters(name).items()}
    paddle.seed(7)
    again = {k: p.numpy() for k, p in parameters(name).items()}
    paddle.seed(8)
    other = {k: p.numpy() for k, p in parameters(name).items()}
    for key in first:
        np.testing.assert_array_equal(first[key], again[key], err_msg=key)
    assert any(not np.array_equal(first[k], other[k]) for k in first if k.endswith("weight"))


def test_metric_classifier_keeps_paddles_default_initialisation():
    paddle.seed(0)
    net = models.MnistClassifier()
    w = net.body[0].weight.numpy()  # Paddle's conv default: normal, std sqrt(2 / fan_in)
    assert abs(w.std() / sqrt(2 / 9) - 1) < 0.1 and np.abs(w).max() > sqrt(3 * 2 / 9)
