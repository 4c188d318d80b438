"""What rank 0 writes for a training run: the networks' weights, checkpoints, the monitors,
and at the end losses.json and losses.png."""

from os import path as osp

from ppsci.utils import logger

from . import parallel, plots, signals
from .checkpoints import save_checkpoint
from .files import save_json, save_weights, shell_word
from .monitor import Monitor


class RunFiles:
    """The files of a run in cfg.output_dir: every method writes on rank 0 only.
    `resumable`: what a checkpoint holds (checkpoints.save_checkpoint); `average`: the
    generator's moving average (TRAIN.ema_decay) or None."""

    def __init__(self, cfg, model, resumable: dict, settings: dict, average=None):
        self.cfg, self.model, self.resumable, self.settings = cfg, model, resumable, settings
        self.average = average
        self.monitor = Monitor(cfg) if parallel.is_main_process() else None
        self.latest = osp.join(osp.abspath(cfg.output_dir), "checkpoints", "latest")
        self.saved = False  # whether this run has written its networks and a checkpoint

    def continue_with(self) -> str:
        """The setting that continues the run, quoted for a shell."""
        return shell_word("TRAIN.checkpoint_path=" + self.latest)

    def scalars(self, values: dict, iteration: int) -> None:
        if self.monitor is not None:
            self.monitor.scalars(values, iteration)

    def save_networks(self) -> None:
        """The networks' weights files (and the generator's moving average, once started)."""
        output_dir, generator = self.cfg.output_dir, self.model.generator
        save_weights(generator, osp.join(output_dir, "model_generator.pdparams"))
        save_weights(self.model.critic, osp.join(output_dir, "model_discriminator.pdparams"))
        if self.average is not None and self.average.started:
            with self.average.applied():
                save_weights(generator, osp.join(output_dir, "model_generator_ema.pdparams"))

    def save_epoch(self, history: list) -> None:
        """After an epoch (the last record of `history`): weights, checkpoint, monitors."""
        if not parallel.is_main_process():
            return
        record, output_dir = history[-1], self.cfg.output_dir
        self.save_networks()
        self.saved = True
        save_checkpoint(
            output_dir, self.cfg.TRAIN.get("save_freq", 0), history, self.resumable, self.settings
        )
        self.monitor.scalars(
            {
                f"epoch/{k}": v
                for k, v in record.items()
                if isinstance(v, (int, float)) and k != "epoch"
            },
            record["iteration"],
        )
        self.monitor.image(
            "samples",
            osp.join(output_dir, "plots", f"epoch_{record['epoch']:04d}.png"),
            record["iteration"],
        )

    def save_stop(self, history: list, partial: dict) -> None:
        """A checkpoint of a run stopped mid-epoch (`partial`: where it stands)."""
        if parallel.is_main_process():
            self.save_networks()
            save_checkpoint(self.cfg.output_dir, 0, history, self.resumable, self.settings, partial)
            self.monitor.close()

    def save_final(self, history: list) -> None:
        """losses.png and losses.json, and the closing line; the networks and a checkpoint
        too when this run trained no epoch (a resume of a finished run)."""
        if parallel.is_main_process():
            if not self.saved and history:
                self.save_epoch(history)
            plots.plot_losses(history, osp.join(self.cfg.output_dir, "losses.png"))
            save_json(history, osp.join(self.cfg.output_dir, "losses.json"))
            self.monitor.close()
            weights = osp.join(osp.abspath(self.cfg.output_dir), "model_generator.pdparams")
            signals.note(
                "Training had finished, and its weights are saved; the metrics come from "
                f"mode=eval {shell_word('EVAL.pretrained_gen_model_path=' + weights)}."
            )
            logger.info(
                f"Training done after epoch {len(history)}; a longer run continues "
                f"with {self.continue_with()}"
            )
