"""Monitoring: VisualDL, TensorBoard and W&B writers for ppsci's use_vdl/use_tbd/use_wandb.

They receive the scalars of every progress line and the sample grid of every epoch.
"""

from os import path as osp
from typing import Dict

import numpy as np
from ppsci.utils import logger

from .errors import UsageError


def _need(module: str, switch: str, package: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:
        raise UsageError(f"{switch}=true needs {package}: pip install {package}") from None


class Monitor:
    """The writers the config asks for (none by default), on the process that writes results."""

    def __init__(self, cfg):
        self.vdl = self.tbd = self.wandb = None
        if cfg.get("use_vdl"):
            visualdl = _need("visualdl", "use_vdl", "visualdl")
            logdir = osp.join(cfg.output_dir, "vdl")
            self.vdl = visualdl.LogWriter(logdir)
            logger.info(f"VisualDL: visualdl --logdir {osp.abspath(logdir)}")
        if cfg.get("use_tbd"):
            tensorboardx = _need("tensorboardX", "use_tbd", "tensorboardX")
            self.tbd = tensorboardx.SummaryWriter(osp.join(cfg.output_dir, "tensorboard"))
            logger.info(f"TensorBoard: tensorboard --logdir {osp.abspath(self.tbd.logdir)}")
        if cfg.get("use_wandb"):
            self._wandb = _need("wandb", "use_wandb", "wandb")
            # wandb_config is passed to wandb.init (project, mode=offline, ...)
            options = {"dir": cfg.output_dir, **dict(cfg.get("wandb_config") or {})}
            self.wandb = self._wandb.init(**options)

    def scalars(self, values: Dict[str, float], step: int) -> None:
        logger.scalar(values, step, self.vdl, self.wandb, self.tbd)

    def image(self, tag: str, path: str, step: int) -> None:
        """The PNG at `path` (a sample grid or plot) as an image at `step`."""
        if not (self.vdl or self.tbd or self.wandb) or not osp.isfile(path):
            return
        import matplotlib.image

        image = matplotlib.image.imread(path)[..., :3]  # float RGB in [0, 1]
        image = np.asarray(np.rint(image * 255), np.uint8)
        if self.vdl:
            self.vdl.add_image(tag, image, step)
        if self.tbd:
            self.tbd.add_image(tag, image, step, dataformats="HWC")
        if self.wandb:
            self.wandb.log({tag: self._wandb.Image(image), "step": step})

    def close(self) -> None:
        for writer in (self.vdl, self.tbd):
            if writer is not None:
                writer.close()
        if self.wandb is not None:
            self.wandb.finish()
