"""gan_mnist.py's networks, and the classifier of the MNIST quality metric."""

from paddle import nn

from .arch import Generator
from .layers import conv, deconv, linear
from .norms import GroupedBatchNorm2D


def tf_same_transposed_padding(kernel: int, stride: int):
    """Padding [top, bottom, left, right] that makes Paddle's transposed convolution
    TF's conv2d_transpose with padding "SAME" and an output `stride` times its input:
    the gradient of a "SAME" convolution from that output size, which pads
    (kernel - stride) // 2 before and the rest after. (Paddle's own "SAME" for transposed
    convolutions pads as if the input were the convolution's input: wrong for 7 -> 14.)"""
    total = max(kernel - stride, 0)
    return [total // 2, total - total // 2] * 2


class MnistGenerator(nn.Layer):
    """gan_mnist.py's generator: 128 -> 4x4x256, three 5x5 stride-2 transposed convs -> 28x28.

    Initialisation as gan_mnist.py calls tflib: Glorot input layer, He (he_init=True, the
    default it keeps) for all three transposed convolutions, the output one included.
    """

    def __init__(self, noise_dim: int = 128, dim: int = 64, batch_norm: bool = False):
        super().__init__()
        self.dim = dim
        self.fc = linear(noise_dim, 4 * 4 * 4 * dim)

        def up(c_in, c_out):  # doubles height and width, aligned as TF's "SAME" (see below)
            return deconv(c_in, c_out, 5, stride=2, padding=tf_same_transposed_padding(5, 2))

        self.up1, self.up2, self.up3 = up(4 * dim, 2 * dim), up(2 * dim, dim), up(dim, 1)
        # gan_mnist.py's MODE='wgan': batch norm after the input layer (over the batch, each
        # unit; here as [N, units, 1, 1]) and the first two transposed convolutions; tflib's
        # epsilon 1e-5 is Paddle's. GroupedBatchNorm2D: batch_statistics() works in eval too
        norm = (lambda c: GroupedBatchNorm2D(c)) if batch_norm else (lambda c: nn.Identity())
        self.bn1, self.bn2, self.bn3 = norm(4 * 4 * 4 * dim), norm(2 * dim), norm(dim)

    def forward(self, noise):
        x = self.bn1(self.fc(noise).reshape([-1, 4 * 4 * 4 * self.dim, 1, 1]))
        x = nn.functional.relu(x).reshape([-1, 4 * self.dim, 4, 4])
        x = nn.functional.relu(self.bn2(self.up1(x)))[:, :, :7, :7]  # 8x8 -> 7x7, as the paper
        x = nn.functional.relu(self.bn3(self.up2(x)))
        return nn.functional.sigmoid(self.up3(x))  # [N, 1, 28, 28] in (0, 1)


class MnistCritic(nn.Layer):
    """gan_mnist.py's critic: three 5x5 stride-2 convs (64/128/256), LeakyReLU 0.2, linear.

    No normalisation by default: batch statistics would break the per-sample gradient
    penalty (gan_mnist.py uses batch norm only with weight clipping, MODE='wgan').
    Initialisation as gan_mnist.py calls tflib: He convolutions with stride 2 in their
    fan_out, Glorot output layer.
    """

    def __init__(self, dim: int = 64, batch_norm: bool = False):
        super().__init__()
        # gan_mnist.py's MODE='wgan' (no penalty to break): batch norm after convs 2 and 3
        norm = (lambda c: [GroupedBatchNorm2D(c)]) if batch_norm else (lambda c: [])
        self.convs = nn.Sequential(
            # "SAME": TF's padding, 1 before and 2 after for 28 -> 14 and 14 -> 7, 2 and 2
            # for 7 -> 4 (a symmetric padding of 2 shifts the first two by one pixel)
            conv(1, dim, 5, stride=2, padding="SAME"),
            nn.LeakyReLU(0.2),
            conv(dim, 2 * dim, 5, stride=2, padding="SAME"),
            *norm(2 * dim),
            nn.LeakyReLU(0.2),
            conv(2 * dim, 4 * dim, 5, stride=2, padding="SAME"),
            *norm(4 * dim),
            nn.LeakyReLU(0.2),
        )
        self.fc = linear(4 * 4 * 4 * dim, 1)

    def forward(self, images):
        x = self.convs(images)
        return self.fc(x.reshape([x.shape[0], -1]))  # reshape: flatten has no double backward


def mnist_models(noise_dim: int, dim: int, batch_norm: bool = False):
    """(generator Arch, critic network) for MNIST; batch_norm: as gan_mnist.py's MODE='wgan'."""
    return (Generator(MnistGenerator(noise_dim, dim, batch_norm)), MnistCritic(dim, batch_norm))


class MnistClassifier(nn.Layer):
    """A small CNN for the MNIST quality metric; `features` is its penultimate layer.

    Our metric, not the paper's: it keeps Paddle's default initialisation."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2D(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2D(2),
            nn.Conv2D(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2D(2),
        )
        self.features = nn.Sequential(nn.Linear(64 * 7 * 7, 128), nn.ReLU())
        self.head = nn.Linear(128, 10)

    def forward(self, images):
        """(penultimate features [N, 128], logits [N, 10])."""
        x = self.body(images)
        features = self.features(x.reshape([x.shape[0], -1]))
        return features, self.head(features)
