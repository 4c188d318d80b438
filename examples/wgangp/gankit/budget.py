"""TRAIN.minutes: a time budget for the whole run. A trial epoch times a few iterations on
this machine, the run is planned to fit (plan_epochs), and after each epoch the plan follows
the machine's pace (replan_epochs), the learning rate still decaying to 0 at the end."""

import contextlib
import time
from typing import Iterator, List

import numpy as np
import paddle
import paddle.distributed as dist
import psutil
from paddle.distributed import fleet
from ppsci.utils import logger

from . import parallel
from . import ppsci_adapter as adapter
from .checkpoints import restore, snapshot
from .errors import UsageError
from .progress import number
from .solvers import learning_rate, optimizer, quiet

# TRAIN.minutes: generator iterations timed before the plan; the clock starts with the process
CALIBRATION = 8
STARTED = psutil.Process().create_time()


def plan_epochs(
    cfg, per_iteration: float, dev: float, epoch_end: float, check: float, elapsed: float
) -> dict:
    """The epochs that fit TRAIN.minutes after `elapsed` seconds, each at least
    TRAIN.iters_per_epoch generator iterations and lengthened alike to fill the budget (so
    no part of an epoch is lost to rounding): each iteration `per_iteration` s plus a
    held-out cost (`dev` s) every TRAIN.dev_freq iterations, each epoch's end (check, plot,
    files) `epoch_end` s, of which `check` s the validator's check of TRAIN.metric_samples.
    The final evaluation is kept that end with the check scaled to the samples it scores
    (TRAIN.final_eval_samples where the example has it, else EVAL.num_samples; twice with
    TRAIN.ema_decay); 2 % of the budget is spare for the machine's variation."""
    train = cfg.TRAIN
    budget = 60 * train.minutes
    final = train.get("final_eval_samples") or cfg.EVAL.num_samples  # what training ends with
    scale = final / train.metric_samples if train.get("metric_samples") else 1.0
    evaluated = 2 if train.get("ema_decay") else 1  # the generator and its moving average
    reserved = epoch_end + check * (evaluated * max(scale, 1.0) - 1.0) + 0.02 * budget
    per_iteration += dev / train.dev_freq if train.get("dev_freq") else 0.0
    available = budget - elapsed - reserved
    epochs = int(available // (train.iters_per_epoch * per_iteration + epoch_end))
    length = int((available - epochs * epoch_end) // (max(epochs, 1) * per_iteration))
    return {
        "epochs": max(epochs, 1),
        "iters_per_epoch": max(length, train.iters_per_epoch),
        "short": epochs < 1,
        "reserved": reserved,
    }


# the epochs whose median is the pace a re-plan goes by
PACE_EPOCHS = 5


def recent_pace(ends: List[float], window: int = PACE_EPOCHS) -> float:
    """Seconds an epoch at the recent pace: the median time between the last `window` + 1
    of the epoch ends `ends` (seconds), so one stalled epoch does not set it."""
    return float(np.median(np.diff(ends[-window - 1 :])))


def replan_epochs(
    epochs: int, done: int, seconds_left: float, per_epoch: float, relative: float = 0.1
) -> int:
    """The epochs a plan should have after `done` of `epochs`, with `seconds_left` for
    training at `per_epoch` s each (the recent pace, epoch ends included): unchanged while
    the run would end between one epoch early and half an epoch late (inside the plan's
    2 % spare), or within `relative` of the epochs left, whichever is wider (a pace
    measured early says less about the end, and the band narrows as it nears); else as
    many as fit."""
    fit = max(seconds_left, 0.0) / per_epoch
    left = epochs - done
    if fit - max(1.0, relative * left) <= left <= fit + max(0.5, relative * left):
        return epochs
    return done + int(fit)


def rescaled_rate(scale: float, total: int, done: int, new_total: int, power: float = 1.0) -> float:
    """The factor on the peak rates (peak_rate) that keeps a decay (1 - step/total)^power
    continuous when its length changes from `total` to `new_total` steps after `done`: the
    rate scale * (1 - done/total)^power now, decaying to 0 at new_total."""
    return scale * ((total - done) * new_total / (total * (new_total - done))) ** power


class TimeBudget:
    """The plan of a TRAIN.minutes run for `trainer` (an AlternatingTrainer): a new run's
    trial epoch (`calibrating`), its plan, and the plan's re-plans (`replanning`); a resumed
    run keeps the plan its checkpoint holds. Without TRAIN.minutes it does nothing."""

    def __init__(self, trainer, saved: dict):
        cfg = trainer.cfg
        self.trainer, self.cfg = trainer, cfg
        self.planned, self.calibrating, self.check_seconds = None, False, 0.0
        # TRAIN.replan: the plan follows the machine's pace in the process that made it
        self.replanning, self.rate_scale, self.epoch_ends = False, 1.0, []
        self.epochs, self.length = cfg.TRAIN.epochs, None
        if not cfg.TRAIN.get("minutes"):
            return
        self.planned = saved.get("planned_iterations")
        if cfg.TRAIN.checkpoint_path and not self.planned:
            raise UsageError(
                f"TRAIN.minutes={cfg.TRAIN.minutes} plans a new run, and "
                f"TRAIN.checkpoint_path={cfg.TRAIN.checkpoint_path} was trained "
                "without a plan: resume it with TRAIN.epochs and "
                "TRAIN.minutes=null."
            )
        self.calibrating = not self.planned
        if self.planned:  # the plan's epochs, as long as the plan made them
            self.epochs = saved.get("planned_epochs", self.planned // cfg.TRAIN.iters_per_epoch)
            self.length = self.planned // self.epochs
            self.rate_scale = saved.get("planned_rate_scale", 1.0)

    def record(self) -> dict:
        """What an epoch's record and a checkpoint keep of the plan."""
        return (
            {
                "planned_iterations": self.planned,
                "planned_epochs": self.cfg.TRAIN.epochs,
                "planned_rate_scale": self.rate_scale,
            }
            if self.planned
            else {}
        )

    @contextlib.contextmanager
    def timed_check(self):
        """Around the validator's check of an epoch: from its time in the trial epoch,
        TRAIN.minutes keeps the final evaluation's (plan_epochs)."""
        tic = time.perf_counter()
        try:
            yield
        finally:
            self.check_seconds = time.perf_counter() - tic

    def trial_optimizers(self) -> None:
        """New optimizers for the trial epoch, built as the scripts build them and wrapped for
        data parallelism as ppsci's Solver wraps its own; the run's own take no step before
        the plan (so their state, and its names in a checkpoint, are a fresh run's)."""
        trainer, cfg = self.trainer, self.cfg.TRAIN
        self.saved_solvers = {}
        for solver, layer, steps, network in (
            (trainer.critic_solver, trainer.model.critic, cfg.n_critic, "critic"),
            (trainer.generator_solver, trainer.model.generator, 1, "generator"),
        ):
            rate = learning_rate(cfg, cfg.iters_per_epoch * steps, network)
            trial = optimizer(cfg, network, rate)(layer)
            if dist.get_world_size() > 1:
                trial = fleet.distributed_optimizer(trial)
            scheduler = rate if isinstance(rate, paddle.optimizer.lr.LRScheduler) else None
            self.saved_solvers[solver] = adapter.swap_optimizer(solver, trial, scheduler)

    def trial_iterations(self) -> Iterator[int]:
        """TRAIN.minutes' trial epoch: CALIBRATION timed generator iterations (the first two
        warm up) and a held-out cost, from a snapshot that end_trial goes back to."""
        trainer = self.trainer
        # networks and data streams go back to this state; the trial has its own optimizers
        self.parts = {k: v for k, v in trainer.resumable.items() if not k.endswith("_optimizer")}
        self.before = snapshot(self.parts)
        self.trial_optimizers()
        seconds = []
        # the trial optimizers' state takes its names from a namespace of its own, so the
        # run's optimizers name theirs (and a checkpoint holds them) as in a run without one
        with paddle.utils.unique_name.guard():
            for iteration in range(1, CALIBRATION + 1):
                paddle.seed(self.cfg.seed * 1_000_003 + iteration)  # as the real one will be
                tic = time.perf_counter()
                yield iteration
                seconds.append(time.perf_counter() - tic)
        tic = time.perf_counter()
        if trainer.held_out.every:
            with quiet():
                trainer.held_out.held_out()
        self.per_iteration = float(np.median(seconds[2:]))
        self.dev = time.perf_counter() - tic
        self.ended = time.perf_counter()

    def end_trial(self, metrics: dict) -> None:
        """After the trial epoch's end (the check, plot and this call, timed): the run back at
        iteration 0, and the plan of the epochs that fit TRAIN.minutes."""
        trainer, cfg = self.trainer, self.cfg
        epoch_end = time.perf_counter() - self.ended
        restore(self.parts, self.before)
        trainer.continue_loaders(0)
        for solver, saved in self.saved_solvers.items():
            adapter.put_back(solver, saved)
        trainer.critic_terms.pop_means()
        trainer.held_out.clear()
        check = self.check_seconds if metrics else 0.0
        per_iteration, dev, epoch_end, check, elapsed = parallel.max_over_processes_of(
            [self.per_iteration, self.dev, epoch_end, check, time.time() - STARTED]
        )
        plan = plan_epochs(cfg, per_iteration, dev, epoch_end, check, elapsed)
        self.planned = plan["epochs"] * plan["iters_per_epoch"]
        trainer.set_length(plan["epochs"], plan["iters_per_epoch"])
        self.calibrating, self.parts, self.before, self.saved_solvers = False, None, None, None
        self.replanning, self.reserved = cfg.TRAIN.get("replan", True), plan["reserved"]
        self.epoch_ends = [time.perf_counter()]
        parallel.log_every_rank(  # every process says the plan it trains
            f"{self.planned} iterations planned ({plan['epochs']} epochs of "
            f"{plan['iters_per_epoch']}) for TRAIN.minutes={cfg.TRAIN.minutes:g}: "
            f"{number(per_iteration)} s per iteration measured, {number(epoch_end)} s per "
            f"epoch's end ({number(check)} s of it the check), {elapsed:.0f} s spent on start-up "
            f"and timing, {plan['reserved']:.0f} s kept for the final evaluation; "
            f"TRAIN.epochs={plan['epochs']} TRAIN.iters_per_epoch={plan['iters_per_epoch']} "
            "repeats this length"
            + (
                " unless the machine's pace changes and the plan follows it (TRAIN.replan)."
                if self.replanning
                else "."
            )
        )
        if plan["short"]:
            logger.warning(
                f"TRAIN.minutes={cfg.TRAIN.minutes:g} holds less than one epoch of "
                f"{plan['iters_per_epoch']} iterations here; training one."
            )

    def follow_pace(self, epoch: int) -> None:
        """TRAIN.replan: after `epoch`, more or fewer epochs of the plan's length when the
        recent pace (recent_pace, epoch ends included) would end training off the time the
        plan keeps (replan_epochs); the learning rate goes on from where it is and decays to
        0 at the new end (rescaled_rate). When not one more epoch fits, training ends with
        this one, its rate where the decay had come to."""
        if not self.replanning or epoch >= self.cfg.TRAIN.epochs:
            return
        self.epoch_ends.append(time.perf_counter())
        if len(self.epoch_ends) < 3:  # two epochs timed at least
            return
        per_epoch, elapsed = parallel.max_over_processes_of(
            [recent_pace(self.epoch_ends), time.time() - STARTED]
        )
        seconds_left = 60 * self.cfg.TRAIN.minutes - self.reserved - elapsed
        epochs = replan_epochs(self.cfg.TRAIN.epochs, epoch, seconds_left, per_epoch)
        if epochs == self.cfg.TRAIN.epochs:
            return
        length = self.cfg.TRAIN.iters_per_epoch
        before = self.cfg.TRAIN.epochs
        if epochs > epoch:  # the rate decays to 0 over the new length
            self.rate_scale = rescaled_rate(
                self.rate_scale,
                before * length,
                epoch * length,
                epochs * length,
                self.cfg.TRAIN.get("lr_decay_power", 1.0),
            )
        self.planned = epochs * length
        self.trainer.set_length(epochs, length)
        parallel.log_every_rank(
            f"Re-planned after epoch {epoch} at {elapsed / 60:.1f} minutes: the last epochs took "
            f"{per_epoch:.1f} s each, so {epochs} epochs of {length} fit TRAIN.minutes="
            f"{self.cfg.TRAIN.minutes:g} instead of {before} ({self.planned} iterations); "
            + (
                "the learning rate decays to 0 at the new end"
                if epochs > epoch
                else "training ends with this epoch"
            )
            + ". TRAIN.epochs cannot repeat a re-planned run (TRAIN.replan=false keeps the "
            "first plan)."
        )

    def finished(self) -> None:
        if self.planned:
            logger.info(
                f"TRAIN.minutes={self.cfg.TRAIN.minutes:g}: training ended "
                f"{(time.time() - STARTED) / 60:.1f} minutes after the start; the final "
                "evaluation follows."
            )
