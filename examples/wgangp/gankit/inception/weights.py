"""Inception weights: fetched, checked and loaded into the IS/FID networks.

pytorch-fid's TF 2015 file (downloaded once and accepted only with the SHA-256 its name
carries, read without torch) and paddle.vision's ImageNet weights; load_inception builds
the network the settings name.
"""

import os
import re
from typing import Dict, Optional

import numpy as np
from paddle import nn

from .. import download
from ..files import file_digest, read_pdparams
from . import torch_file
from .networks import PaddleVisionInception, TFInceptionV3, load_checked

BATCH_NORM_STATISTICS = ((".running_mean", "._mean"), (".running_var", "._variance"))


def paddle_name(torch_name: str) -> str:
    """torchvision's batch-norm statistics are Paddle's _mean and _variance."""
    for torch_suffix, paddle_suffix in BATCH_NORM_STATISTICS:
        if torch_name.endswith(torch_suffix):
            return torch_name[: -len(torch_suffix)] + paddle_suffix
    return torch_name


def state_from_torch(path: str) -> Dict[str, np.ndarray]:
    """A torchvision-named state dict file as float32 arrays with Paddle's names.

    num_batches_tracked (training bookkeeping Paddle has no slot for) is dropped.
    """
    return {
        paddle_name(name): values.astype(np.float32)
        for name, values in torch_file.read_torch_state_dict(path).items()
        if not name.endswith(".num_batches_tracked")
    }


TF_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
TF_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + TF_WEIGHTS_NAME
)
TF_WEIGHTS_HELP = (
    f"pass pytorch-fid's {TF_WEIGHTS_NAME} ({TF_WEIGHTS_URL}) or its "
    "conversion by `python -m inception.convert`"
)


def sha256_prefix(name: str) -> Optional[str]:
    """The SHA-256 prefix a weights file name carries, torch.hub's convention:
    "<name>-<hex digits>.<ext>" -> the hex digits (None without)."""
    match = re.search(r"-([0-9a-f]{8,64})\.[^.]+$", os.path.basename(name))
    return match.group(1) if match else None


def check_sha256_prefix(path: str, name: str, cached: bool) -> None:
    """ValueError unless the file's SHA-256 starts with the prefix in `name`; a refused
    file of the download cache (`cached`) is removed so the next run downloads it again."""
    prefix = sha256_prefix(name)
    if prefix is None:
        return
    actual = file_digest(path, "sha256")
    if actual.startswith(prefix):
        return
    if cached:
        os.remove(path)
    what = (
        "removed it from the download cache, so the next run downloads it again"
        if cached
        else "use an intact copy"
    )
    raise ValueError(
        f"{path} has SHA-256 {actual}, which does not start with {prefix} as its "
        f"name {os.path.basename(name)} says: a partial or different file. Refused "
        f"it; {what}."
    )


def download_tf_weights(url: Optional[str] = None) -> str:
    """Path of pytorch-fid's TF Inception weights (url: TF_WEIGHTS_URL): a copy put into the
    download folder under its own name, else downloaded once (gankit.download); accepted
    only if its SHA-256 starts with the prefix in its name."""
    url = url or TF_WEIGHTS_URL
    name = url.rsplit("/", 1)[-1]
    placed = os.path.join(download.CACHE, name)
    if os.path.isfile(placed):
        check_sha256_prefix(placed, name, cached=False)
        return placed
    try:
        path = download.download(url, what=f"pytorch-fid's {name}")
    except download.DownloadError as e:
        raise ValueError(
            f"The tf2015 Inception's weights could not be downloaded: {e} Set "
            f"EVAL.inception_weights=/path/to/{name}, or put the file into "
            f"{download.CACHE}/, where it is looked for first."
        ) from None
    try:
        check_sha256_prefix(path, name, cached=True)
    except ValueError as e:  # named by its URL, not its file in the cache
        raise ValueError(str(e).replace(path, f"The download of {url}", 1)) from None
    return path


def load_tf_inception(weights: Optional[str], preprocessing: str = "tf_graph") -> TFInceptionV3:
    """TFInceptionV3 with the 2015 graph's weights from a .pth or a converted .pdparams;
    weights None: pytorch-fid's file from ppsci's download cache (download_tf_weights)."""
    if weights is None:
        weights = download_tf_weights()
    weights = os.path.expanduser(weights)
    if not os.path.isfile(weights):
        raise ValueError(f"Inception weights file {weights} does not exist; {TF_WEIGHTS_HELP}.")
    elif os.path.basename(weights) == TF_WEIGHTS_NAME:
        check_sha256_prefix(weights, weights, cached=False)
    state = (
        state_from_torch(weights) if weights.endswith((".pth", ".pt")) else read_pdparams(weights)
    )
    net = TFInceptionV3(preprocessing)
    load_checked(net, state, weights, "the 2015 TF Inception graph")
    return net


def load_paddle_inception(weights: Optional[str]) -> PaddleVisionInception:
    """paddle.vision's Inception v3 from a local .pdparams, else its weights downloaded once
    (gankit.download, MD5 checked)."""
    if weights is None:
        from paddle.vision.models.inceptionv3 import model_urls

        url, md5 = model_urls["inception_v3"]
        try:
            weights = download.download(url, f"md5:{md5}", "paddle.vision's inception_v3.pdparams")
        except download.DownloadError as e:
            raise ValueError(f"{e} Pass the file as the weights.") from None
    return PaddleVisionInception(weights_path=weights)


def load_inception(kind: str, weights: Optional[str], preprocessing: str = "tf_graph") -> nn.Layer:
    """The Inception network for IS/FID: kind "tf2015" (papers' numbers; preprocessing, see
    TFInceptionV3) or "paddle" (not comparable with papers)."""
    if kind == "tf2015":
        return load_tf_inception(weights, preprocessing)
    if kind == "paddle":
        return load_paddle_inception(weights)
    raise ValueError(f"Unknown Inception kind {kind!r}; use 'tf2015' or 'paddle'.")
