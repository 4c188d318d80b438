"""PaddleScience's published weights: recognised, loaded and scored as PaddleScience did.

A weights file is recognised by its keys and loaded into the matching network (the paper's,
models.py, or PaddleScience's, published/networks.py); PaddleScience's own Inception Score
of its CIFAR-10 generator is computed as it computed it.
"""

from typing import Iterable, Optional, Tuple

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import nn
from ppsci.utils import logger

from ..errors import UsageError
from ..files import load_state, read_weights
from ..networks import Generator
from .networks import PREFIXES, PUBLISHED_FILE_EXTRA, published_network


def layout_of(keys: Iterable[str]) -> str:
    """ "published" for PaddleScience's key layout (every key prefixed by its Arch wrapper's
    `generator.`/`discriminator.`), "paper" for our models.py networks'."""
    keys = [k for k in keys if k != PUBLISHED_FILE_EXTRA]  # paddle.save adds it to both
    prefixed = [k.startswith(PREFIXES) for k in keys]
    if keys and all(prefixed):
        return "published"
    if not any(prefixed):
        return "paper"
    raise ValueError(
        "The weights mix published (generator./discriminator.) and other keys, "
        f"e.g. {keys[prefixed.index(True)]!r} and {keys[prefixed.index(False)]!r}."
    )


def load(
    example: str,
    role: str,
    ours: nn.Layer,
    source: Optional[str],
    setting: str,
    sha256: Optional[str] = None,
    architecture: str = "auto",
) -> Tuple[nn.Layer, str]:
    """The network for a weights file and the architecture it has: `ours` (the paper's
    network, models.py) or PaddleScience's published one, recognised by the file's keys
    unless `architecture` (MODEL.architecture) names one. Loaded strictly either way; a
    published generator gets our Generator's dict interface ("noise"[, "labels"] -> "fake")."""
    path, state = read_weights(source, setting, sha256)
    if architecture == "auto":
        try:
            architecture = "paddlescience" if layout_of(state) == "published" else "paper"
        except ValueError as e:
            raise UsageError(f"{setting}: {path}: {e}") from None
    net = ours if architecture == "paper" else published_network(example, role)
    load_state(net, state, setting, path)
    if architecture == "paddlescience" and role == "generator":
        net = Generator(net, ours.input_keys)
    what = "the paper's network" if architecture == "paper" else "PaddleScience's published network"
    logger.info(f"Loaded {setting} from {source}: {what}")
    return net, architecture


def load_setting(
    cfg, example: str, role: str, ours: nn.Layer, setting: str, optional: bool = False
) -> Tuple[Optional[nn.Layer], Optional[str]]:
    """load() of the weights file the setting `setting` names (e.g.
    "EVAL.pretrained_gen_model_path"), checked against its SHA-256 setting (the same name
    with "sha256" for "model_path") and read as MODEL.architecture says; (None, None) when
    an `optional` setting is unset."""
    section, key = setting.split(".")
    source = cfg[section][key]
    if optional and not source:
        return None, None
    sha256 = cfg[section][key.replace("model_path", "sha256")]
    network, architecture = load(
        example, role, ours, source, setting, sha256, cfg.MODEL.architecture
    )
    if architecture == "paddlescience" and not cfg.MODEL.get("conditional", True):
        raise UsageError(
            f"{setting}: PaddleScience's published CIFAR-10 networks are "
            "conditional; evaluate them with MODEL.conditional=true."
        )
    return network, architecture


def load_evaluated(cfg, example: str, generator: nn.Layer, critic: nn.Layer):
    """(generator, critic, architecture) for mode=eval: load_setting of
    EVAL.pretrained_gen_model_path into `generator`, and of the optional
    EVAL.pretrained_dis_model_path into `critic` (None when unset)."""
    generator, architecture = load_setting(
        cfg, example, "generator", generator, "EVAL.pretrained_gen_model_path"
    )
    critic, _ = load_setting(
        cfg, example, "critic", critic, "EVAL.pretrained_dis_model_path", optional=True
    )
    return generator, critic, architecture


def load_exported(cfg, example: str, generator: nn.Layer) -> nn.Layer:
    """`generator` with the weights INFER.pretrained_model_path names (load_setting), for
    mode=export."""
    return load_setting(cfg, example, "generator", generator, "INFER.pretrained_model_path")[0]


# --- The Inception Score as PaddleScience computed it (not comparable with papers' scores) ---
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@paddle.no_grad()
def paddlescience_inception_score(
    net: nn.Layer, images: np.ndarray, splits: int = 10, batch_size: int = 64, eps: float = 0.0
) -> Tuple[float, float]:
    """(mean, std over `splits`) of the Inception Score, with PaddleScience's protocol.

    net: paddle.vision's InceptionV3 or alike: logits from `fc` after dropout(0.2,
    downscale_in_infer), i.e. features x 0.8 in eval mode. images: floats in [-1, 1],
    [N, 3, 32, 32] or [N, 3072], mapped to (x + 1) 255.99 / 2 unrounded; or uint8 pixels,
    NHWC (metrics.to_uint8) or NCHW, used as they are. Then, as PaddleScience: net in
    eval mode, fc bias zeroed (restored afterwards); chunks of `batch_size` resized
    bilinearly (half-pixel) to 299x299, /255, ImageNet mean/std; p = softmax + eps (eps 0
    as its config: p = 0 gives NaN); IS_k = exp(mean KL) over `splits` consecutive splits
    of N // splits rows (a remainder is unused). PaddleScience reported only the mean.
    """
    images = np.asarray(images)
    if images.dtype == np.uint8:
        pixels = images.transpose(0, 3, 1, 2) if images.shape[-1] == 3 else images
        pixels = pixels.astype("float32")
    else:
        pixels = images.astype("float32")
        if pixels.ndim == 2:
            pixels = pixels.reshape([len(pixels), 3, 32, 32])
        pixels = (pixels + 1) * np.float32(255.99 / 2)
    mean = paddle.to_tensor(IMAGENET_MEAN, dtype="float32").reshape([1, 3, 1, 1])
    std = paddle.to_tensor(IMAGENET_STD, dtype="float32").reshape([1, 3, 1, 1])

    net.eval()
    bias, saved_bias = net.fc.bias, net.fc.bias.numpy().copy()
    bias.set_value(np.zeros_like(saved_bias))
    try:
        probs = []
        for start in range(0, len(pixels), batch_size):
            x = paddle.to_tensor(pixels[start : start + batch_size])
            x = (
                F.interpolate(
                    x, size=[299, 299], mode="bilinear", align_corners=False, align_mode=0
                )
                / 255.0
            )
            logits = net((x - mean) / std)
            probs.append(F.softmax(logits, axis=-1).numpy().astype("float64") + eps)
    finally:
        bias.set_value(saved_bias)
    probs = np.concatenate(probs)

    size = len(probs) // splits
    scores = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in range(splits):
            part = probs[k * size : (k + 1) * size]
            marginal = part.mean(axis=0, keepdims=True)
            kl = (part * (np.log(part) - np.log(marginal))).sum(axis=1).mean()
            scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))
