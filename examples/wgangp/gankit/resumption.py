"""Where a run stands: read from TRAIN.checkpoint_path when a run starts, and kept in a stop's
checkpoint (a signal mid-epoch) so that the run continues exactly where it stopped."""

import time

from ppsci.utils import logger

from . import parallel, signals
from .budget import CALIBRATION
from .checkpoints import load_checkpoint
from .errors import UsageError
from .progress import Progress, log_start, restore_running_means, running_means
from .run_files import RunFiles


def load(cfg, resumable: dict, settings: dict) -> tuple:
    """(the finished epochs' records, the stop's state or None) of TRAIN.checkpoint_path, its
    arrays loaded into `resumable`; ([], None) for a new run."""
    if not cfg.TRAIN.checkpoint_path:
        return [], None
    return load_checkpoint(
        cfg.TRAIN.checkpoint_path, resumable, settings, cfg.TRAIN.resume_with_changes
    )


def resume(trainer) -> Progress:
    """The trainer at the checkpoint's epochs and iterations (held-out costs, running losses,
    the loaders' places), said in the log; its run's files (trainer.files)."""
    cfg, planned, history, partial = (
        trainer.cfg,
        trainer.budget.planned,
        trainer.history,
        trainer.partial,
    )
    if planned:
        logger.info(
            f"{planned} generator iterations planned for TRAIN.minutes="
            f"{cfg.TRAIN.minutes:g} when the run started (from the checkpoint); "
            "a resumed run keeps the plan it stopped with"
        )
    if len(history) > cfg.TRAIN.epochs:
        raise UsageError(
            f"TRAIN.epochs={cfg.TRAIN.epochs}: the checkpoint has finished "
            f"{len(history)} epochs; give TRAIN.epochs > {len(history)} to train on."
        )
    done = len(history) * cfg.TRAIN.iters_per_epoch
    if partial:
        done += partial["iteration"]
        trainer.held_out.values = restore_running_means(
            partial["meters"], trainer.critic_solver, trainer.generator_solver, trainer.critic_terms
        )
    trainer.continue_loaders(done)
    trainer.files = RunFiles(
        cfg, trainer.model, trainer.resumable, trainer.settings, trainer.average
    )
    seconds = partial["seconds"] if partial else history[-1]["seconds"] if history else 0.0
    progress = Progress(cfg, done, seconds)
    log_start(cfg, done, progress.total, CALIBRATION if trainer.budget.calibrating else 0)
    return progress


def stop(trainer, done_in_epoch: int, iteration: int, signum: int) -> None:
    """A checkpoint of exactly where the run stands, one line, exit status 128 + signum."""
    parallel.average_statistics(trainer.model.generator, trainer.model.critic)
    trainer.files.save_stop(trainer.history, stop_state(trainer, done_in_epoch))
    _stop_with(
        f"Stopped by {signals.NAMES[signum]} after generator iteration {iteration} of "
        f"{trainer.progress.total}, with a checkpoint of where it stands; the run continues "
        f"with {trainer.files.continue_with()}",
        signum,
    )


def stop_after_epoch(epoch: int, continue_with: str) -> None:
    """A signal received during an epoch's evaluation or files stops the run once they are
    written (in every process, when any received one): one line, exit status 128 + signum."""
    signum = parallel.max_over_processes(signals.requested() or 0)
    if signum:
        line = f"Stopped by {signals.NAMES[signum]} after epoch {epoch}; the run continues with "
        _stop_with(line + continue_with, signum)


def _stop_with(line: str, signum: int) -> None:
    """The stop's line in every process's log and on the launcher's console; exit 128 + signum."""
    parallel.log_every_rank(line)
    signals.tell_launcher_console(line)
    raise SystemExit(signals.CODES[signum])


def stop_state(trainer, done_in_epoch: int) -> dict:
    """What a stop's checkpoint keeps beside the weights to continue mid-epoch: the
    iteration, the time spent, the plan, and the running means of the losses."""
    return {
        "iteration": done_in_epoch,
        "seconds": trainer.progress.seconds(),
        "planned_iterations": trainer.budget.planned,
        "planned_epochs": trainer.cfg.TRAIN.epochs,
        "planned_rate_scale": trainer.budget.rate_scale,
        "epoch_seconds": trainer.epoch_before + time.perf_counter() - trainer.tic,
        "meters": running_means(
            trainer.critic_solver,
            trainer.generator_solver,
            trainer.critic_terms,
            trainer.held_out.values,
        ),
    }
