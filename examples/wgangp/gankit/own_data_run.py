"""What the own-data script (wgangp_custom.py) makes of its settings: the data of
DATA.data_path, the size of the network whose weights a setting names, and the real data's
statistics its metrics compare with."""

from os import path as osp

from ppsci.utils import logger

from . import networks
from .errors import UsageError
from .field_cache import cached_reference_stats
from .files import read_weights
from .inception import own_images
from .own_data import Samples, read
from .parallel import is_main_process


def read_data(cfg):
    """The data of DATA.data_path; MODEL.conditional null becomes: several classes."""
    if not cfg.DATA.data_path:
        raise UsageError(
            "DATA.data_path is not set: give a folder of images (sub-folders: classes) "
            "or an .npy, .npz, .mat or .h5 file of N x H x W or N x C x H x W samples."
        )
    data = read(cfg.DATA.data_path, cfg.DATA.key, cfg.DATA.resolution, cfg.DATA.resize)
    logger.info(data.summary)
    if cfg.MODEL.conditional is None:
        cfg.MODEL.conditional = len(data.classes) > 1
    return data


def recorded_network(cfg, setting: str) -> tuple:
    """(channels, classes) of the generator whose weights `setting` names; the settings of its
    size (DATA.resolution, MODEL.noise_dim, MODEL.dim_g, MODEL.conditional) follow them."""
    section, key = setting.split(".")
    sha256 = cfg[section][key.replace("model_path", "sha256")]
    _, state = read_weights(cfg[section][key], setting, sha256)
    try:
        net = networks.fields.recorded(state)
    except ValueError as e:
        raise UsageError(f"{setting}={cfg[section][key]}: {e}") from None
    cfg.DATA.resolution, cfg.MODEL.noise_dim = net["resolution"], net["noise_dim"]
    cfg.MODEL.dim_g, cfg.MODEL.conditional = net["dim_g"], net["classes"] > 0
    return net["channels"], max(net["classes"], 1)


def reference_stats(cfg, data) -> dict:
    """The metrics' statistics of the real data, computed once and cached by its content."""
    real, cache = Samples(data, data_units=True), osp.expanduser(cfg.EVAL.stats_dir)
    how, swd_images = f"resolution {cfg.DATA.resolution}", cfg.EVAL.swd_images
    stats = cached_reference_stats(
        real, cache, raw=data.array, how=how, write=is_main_process(), patch_images=swd_images
    )
    logger.info(f"Reference statistics of the data: {stats['path']}")
    return stats


def inception_distances(cfg, data, stats: dict):
    """FID and KID against the data's images when they are RGB (None otherwise)."""
    real = Samples(data, data_units=True)
    return own_images.maybe(
        cfg, real, str(stats["content_key"]), osp.expanduser(cfg.EVAL.stats_dir)
    )
