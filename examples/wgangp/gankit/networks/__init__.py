"""The paper's networks (its code's layers and initialisation) and the ppsci Arch the Solvers train.

Toy MLPs (gan_toy.py), MNIST's DCGAN-like networks (gan_mnist.py), CIFAR-10's ResNets
(gan_cifar_resnet.py), 64x64 ResNets (gan_64x64.py's "Good" ones); every weight
initialised as the paper's tflib does.
"""

from .arch import Generator, GeneratorAndCritic, frozen
from .cifar import CifarCritic, CifarGenerator, cifar_models, cifar_models_of
from .fields import DataUnits, FieldGenerator, own_data_models
from .layers import (
    Conv2D,
    Conv2DTranspose,
    conv,
    conv_std,
    deconv,
    linear,
    linear_std,
    uniform_init,
)
from .mnist import (
    MnistClassifier,
    MnistCritic,
    MnistGenerator,
    mnist_models,
    tf_same_transposed_padding,
)
from .norms import (
    BATCH_NORMS,
    ConditionalBatchNorm,
    GroupedBatchNorm2D,
    SampleLayerNorm,
    batch_statistics,
    local_bn_groups,
    sampling,
)
from .resnet64 import ResNet64Critic, ResNet64Generator, resnet64_models
from .toy import ToyMLP, toy_models

__all__ = [
    "DataUnits",
    "FieldGenerator",
    "own_data_models",
    "Generator",
    "GeneratorAndCritic",
    "frozen",
    "CifarCritic",
    "CifarGenerator",
    "cifar_models",
    "cifar_models_of",
    "Conv2D",
    "Conv2DTranspose",
    "conv",
    "conv_std",
    "deconv",
    "linear",
    "linear_std",
    "uniform_init",
    "MnistClassifier",
    "MnistCritic",
    "MnistGenerator",
    "mnist_models",
    "tf_same_transposed_padding",
    "BATCH_NORMS",
    "ConditionalBatchNorm",
    "GroupedBatchNorm2D",
    "SampleLayerNorm",
    "batch_statistics",
    "local_bn_groups",
    "sampling",
    "ResNet64Critic",
    "ResNet64Generator",
    "resnet64_models",
    "ToyMLP",
    "toy_models",
]
