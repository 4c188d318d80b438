"""Inception v3 networks for the Inception Score and FID of the CIFAR-10 example.

Two networks, both called on float images NCHW in [0, 1] of any size and returning
(pool_features [N, 2048], logits [N, classes]):

- TFInceptionV3: TensorFlow's "2015-12-05" Inception graph, the one the Inception
  Score (Salimans et al. 2016) and FID (Heusel et al. 2017) papers and the WGAN-GP
  paper's numbers use, with that graph's own input processing (TF1 ResizeBilinear to
  299x299, then (x - 128) / 128 on 0..255 pixels). Its weights are the PyTorch port
  `pt_inception-2015-12-05-6726825d.pth` (pytorch-fid's release), read without torch
  by `python -m inception.convert`, and downloaded into ppsci's weights cache when no
  file is given; the parameter names follow torchvision's Inception3 so the file's
  names map one to one.
- PaddleVisionInception: paddle.vision's ImageNet Inception v3 (1000 classes), for
  when the TF weights are not at hand; its scores are not comparable with papers'.

    net = inception_weights.load_inception("tf2015", None)  # downloads pytorch-fid's weights once
    with paddle.no_grad():
        features, logits = net(images)
"""

import functools
from typing import Dict, Optional, Tuple

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import nn

from ..files import read_pdparams, state_problems, summarise

INPUT_SIZE = 299
FEATURES = 2048
TF_CLASSES = 1008  # the 2015 graph's softmax: 1000 ImageNet classes and 8 unused
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # paddle.vision / PaddleClas input normalisation
IMAGENET_STD = (0.229, 0.224, 0.225)


def resize_to_input(images: paddle.Tensor) -> paddle.Tensor:
    """Bilinear resize to 299x299 with half-pixel centres (pytorch-fid's and paddle.vision's
    input processing, not the TF graph's: see resize_tf1)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"Inception expects images [N, 3, H, W], got shape {list(images.shape)}.")
    if tuple(images.shape[2:]) == (INPUT_SIZE, INPUT_SIZE):
        return images
    return F.interpolate(
        images, size=[INPUT_SIZE, INPUT_SIZE], mode="bilinear", align_corners=False, align_mode=0
    )


@functools.lru_cache(maxsize=None)
def tf1_resize_matrix(in_size: int, out_size: int) -> np.ndarray:
    """[out_size, in_size] weights of TensorFlow 1's ResizeBilinear along one axis
    (align_corners=False, half_pixel_centers=False, the op in the 2015 graph's pipeline).

    Destination pixel i reads source coordinate x = i * (in_size / out_size), in float32
    as TF computes it, without a half-pixel offset; it blends pixels floor(x) and
    floor(x) + 1 (clamped to the last pixel) with weights 1 - (x - floor(x)) and
    x - floor(x). Rows sum to 1.
    """
    scale = np.float32(in_size) / np.float32(out_size)
    source = np.arange(out_size, dtype=np.float32) * scale
    lower = np.floor(source).astype(np.int64)
    lerp = source - lower.astype(np.float32)
    upper = np.minimum(lower + 1, in_size - 1)
    matrix = np.zeros((out_size, in_size), np.float32)
    rows = np.arange(out_size)
    np.add.at(matrix, (rows, lower), 1 - lerp)
    np.add.at(matrix, (rows, upper), lerp)
    return matrix


def resize_tf1(images: paddle.Tensor, size: int = INPUT_SIZE) -> paddle.Tensor:
    """TF1 ResizeBilinear of NCHW images to size x size, as two matrix products
    R_h @ image @ R_w^T with tf1_resize_matrix (exact; no interpolate op, whose scale
    attribute Paddle's inference engine rejects)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"Inception expects images [N, 3, H, W], got shape {list(images.shape)}.")
    rows = paddle.to_tensor(tf1_resize_matrix(images.shape[2], size))
    cols = paddle.to_tensor(tf1_resize_matrix(images.shape[3], size))
    return paddle.matmul(paddle.matmul(rows, images), cols, transpose_y=True)


PREPROCESSING = ("tf_graph", "pytorch_fid")


class BasicConv2d(nn.Layer):
    """Convolution without bias, batch norm (eps 0.001, running statistics), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2D(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias_attr=False
        )
        # use_global_stats: the running statistics even if someone calls .train()
        self.bn = nn.BatchNorm2D(out_channels, epsilon=0.001, use_global_stats=True)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def average_pool_3x3() -> nn.Layer:
    """The A/C/E blocks' pool branch: the TF graph's SAME average pool, which
    averages only the pixels inside the image (torchvision counts the padding)."""
    return nn.AvgPool2D(kernel_size=3, stride=1, padding=1, exclusive=True)


def max_pool_3x3() -> nn.Layer:
    """The pool branch of the 2015 graph's last block (Mixed_7c): a max pool."""
    return nn.MaxPool2D(kernel_size=3, stride=1, padding=1)


class InceptionA(nn.Layer):
    """Mixed_5b..5d (35x35): 1x1, 5x5, double 3x3 and pooled branches."""

    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.pool = average_pool_3x3()
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x):
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(self.pool(x))
        return paddle.concat([self.branch1x1(x), branch5x5, branch3x3dbl, branch_pool], axis=1)


class InceptionB(nn.Layer):
    """Mixed_6a: 35x35 -> 17x17 by strided 3x3 convolutions and a max pool."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return paddle.concat([self.branch3x3(x), branch3x3dbl, branch_pool], axis=1)


class InceptionC(nn.Layer):
    """Mixed_6b..6e (17x17): 1x1, factorised 7x7, double factorised 7x7, pooled."""

    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.pool = average_pool_3x3()
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x):
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = x
        for conv in (
            self.branch7x7dbl_1,
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            branch7x7dbl = conv(branch7x7dbl)
        branch_pool = self.branch_pool(self.pool(x))
        return paddle.concat([self.branch1x1(x), branch7x7, branch7x7dbl, branch_pool], axis=1)


class InceptionD(nn.Layer):
    """Mixed_7a: 17x17 -> 8x8 by strided convolutions and a max pool."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        branch3x3 = self.branch3x3_2(self.branch3x3_1(x))
        branch7x7x3 = x
        for conv in (
            self.branch7x7x3_1,
            self.branch7x7x3_2,
            self.branch7x7x3_3,
            self.branch7x7x3_4,
        ):
            branch7x7x3 = conv(branch7x7x3)
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return paddle.concat([branch3x3, branch7x7x3, branch_pool], axis=1)


class InceptionE(nn.Layer):
    """Mixed_7b/7c (8x8): 1x1, split 3x3, double split 3x3 and pooled branches.

    `pool` is the pool branch's layer: an average pool in Mixed_7b, a max pool in
    the 2015 graph's Mixed_7c.
    """

    def __init__(self, in_channels: int, pool: nn.Layer):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.pool = pool
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x):
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = paddle.concat(
            [self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], axis=1
        )
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = paddle.concat(
            [self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], axis=1
        )
        branch_pool = self.branch_pool(self.pool(x))
        return paddle.concat([self.branch1x1(x), branch3x3, branch3x3dbl, branch_pool], axis=1)


class SoftmaxWeights(nn.Layer):
    """The graph's softmax layer in the weights file's layout: weight [classes, 2048].

    forward gives pool3 @ weight.T WITHOUT the bias: the reference Inception Score
    code multiplies the pool3 features by the softmax weights only. The bias is kept
    so that the weights file loads key for key.
    """

    def __init__(self, in_features: int, classes: int):
        super().__init__()
        bound = 1.0 / np.sqrt(in_features)
        self.weight = self.create_parameter(
            [classes, in_features], default_initializer=nn.initializer.Uniform(-bound, bound)
        )
        self.bias = self.create_parameter(
            [classes], is_bias=True, default_initializer=nn.initializer.Constant(0.0)
        )

    def forward(self, features):
        return paddle.matmul(features, self.weight, transpose_y=True)


class TFInceptionV3(nn.Layer):
    """TensorFlow's 2015-12-05 Inception v3 graph (inference only), torchvision names.

    forward(images in [0, 1], NCHW, any size) -> (pool3 features [N, 2048],
    logits [N, 1008] = pool3 @ fc.weight.T, no bias).

    preprocessing: "tf_graph" (default), the graph's own: TF1 ResizeBilinear of the
    0..255 pixels to 299x299, then (x - 128) / 128, the protocol behind the Inception
    Scores of the IS and WGAN-GP papers; "pytorch_fid": pytorch-fid's half-pixel bilinear
    resize and 2x - 1, kept to reproduce FIDs computed with pytorch-fid.
    `protocol` names the network and its preprocessing (e.g. for caches of statistics).
    """

    def __init__(self, preprocessing: str = "tf_graph"):
        super().__init__()
        if preprocessing not in PREPROCESSING:
            raise ValueError(
                f"Unknown Inception preprocessing {preprocessing!r}; use one of "
                f"{', '.join(PREPROCESSING)}."
            )
        self.preprocessing = preprocessing
        self.protocol = "tf2015-graph" if preprocessing == "tf_graph" else "tf2015-pytorch-fid"
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool=average_pool_3x3())
        self.Mixed_7c = InceptionE(2048, pool=max_pool_3x3())
        self.fc = SoftmaxWeights(FEATURES, TF_CLASSES)
        for param in self.parameters():  # fixed weights: no gradients kept for them
            param.stop_gradient = True
        self.eval()

    def preprocess(self, images: paddle.Tensor) -> paddle.Tensor:
        """[0, 1] images of any size -> the graph's 299x299 input (see `preprocessing`)."""
        if self.preprocessing == "pytorch_fid":
            return 2.0 * resize_to_input(images) - 1.0
        # the graph: its ResizeBilinear on 0..255 pixels, then Sub 128 and Mul 1/128
        return (resize_tf1(images * 255.0) - 128.0) / 128.0

    def pool_features(self, x: paddle.Tensor) -> paddle.Tensor:
        """The 2048 'pool_3' features of a preprocessed batch."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)
        return x.mean(axis=[2, 3])  # the graph's 8x8 average pool

    def forward(self, images: paddle.Tensor) -> Tuple[paddle.Tensor, paddle.Tensor]:
        features = self.pool_features(self.preprocess(images))
        return features, self.fc(features)


class PaddleVisionInception(nn.Layer):
    """paddle.vision's ImageNet Inception v3 behind the (pool features, logits) face.

    weights_path: a local paddle.vision inception_v3 .pdparams; without one,
    pretrained=True downloads paddle's weights, pretrained=False keeps random ones.
    Logits are the network's own classifier output (1000 classes, with bias).
    """

    protocol = "paddle"

    def __init__(self, weights_path: Optional[str] = None, pretrained: bool = False):
        super().__init__()
        from paddle.vision.models import inception_v3

        self.net = inception_v3(pretrained=pretrained and weights_path is None)
        if weights_path is not None:
            load_checked(
                self.net, read_pdparams(weights_path), weights_path, "paddle.vision's inception_v3"
            )
        self.register_buffer(
            "mean", paddle.to_tensor(IMAGENET_MEAN).reshape([1, 3, 1, 1]), persistable=False
        )
        self.register_buffer(
            "std", paddle.to_tensor(IMAGENET_STD).reshape([1, 3, 1, 1]), persistable=False
        )
        for param in self.parameters():
            param.stop_gradient = True
        self.eval()

    def forward(self, images: paddle.Tensor) -> Tuple[paddle.Tensor, paddle.Tensor]:
        # PaddleClas trained it on RGB in [0, 1] normalised by the ImageNet mean/std
        x = (resize_to_input(images) - self.mean) / self.std
        x = self.net.inception_stem(x)
        for block in self.net.inception_block_list:
            x = block(x)
        features = self.net.avg_pool(x).reshape([-1, FEATURES])
        return features, self.net.fc(features)  # dropout skipped: identity at inference


def check_weights(layer: nn.Layer, state: Dict[str, object], path: str, what: str):
    """Raise ValueError naming `path` unless `state` has exactly `layer`'s names and shapes."""
    problems = state_problems(layer, state)
    if problems:
        raise ValueError(
            f"{path} does not hold the weights of {what} "
            f"({summarise(problems, shown=5)}); pass the right weights file."
        )


def load_checked(layer: nn.Layer, state: Dict[str, object], path: str, what: str):
    """Check `state` against `layer`, then copy it in as float32."""
    check_weights(layer, state, path, what)
    layer.set_state_dict({k: np.asarray(v, dtype="float32") for k, v in state.items()})


@paddle.no_grad()
def features_and_probs(net: nn.Layer, images: np.ndarray, batch_size: int):
    """(pool features [N, 2048], class probabilities) of uint8 images [N, H, W, 3]."""
    net.eval()
    features, probs = [], []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].transpose(0, 3, 1, 2).astype("float32") / 255
        f, logits = net(paddle.to_tensor(batch))
        features.append(f.numpy())
        probs.append(F.softmax(logits, axis=1).numpy())
    return np.concatenate(features), np.concatenate(probs)
