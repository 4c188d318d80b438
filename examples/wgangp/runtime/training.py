"""The bookkeeping around the scripts' alternating loop: resume, progress lines, checkpoints, the epoch log.

The scripts run the loop itself (n_critic critic steps, then one generator step, through
the two Solvers); `Run` resumes it, logs it, stops it on a diverged loss and saves it.
"""

import contextlib
import datetime
import logging
import sys
import time
from os import path as osp
from typing import Callable, Dict, Iterator, List, Optional

import numpy as np
import paddle
import paddle.distributed as dist
from paddle.distributed import fleet
import ppsci
import psutil
from ppsci.utils import logger
from ppsci.utils.ema import ExponentialMovingAverage

from . import parallel
from . import plots
from . import signals
from .checkpoints import load_checkpoint, restore, save_checkpoint, snapshot, training_settings
from .errors import UsageError
from .files import save_json, save_weights, shell_word
from .monitor import Monitor


class StreamConstraint(ppsci.constraint.SupervisedConstraint):
    """SupervisedConstraint over an endless stream: sample_fn() draws a fresh global batch
    every step (ppsci's ContinuousNamedArrayDataset), of which this process takes its rows.

    On one process this is ppsci's constructor as it is. On several, ppsci's loader refuses
    a stream (it cannot shard one); this stream shards itself (local_rows), so it keeps the
    dataset as its loader, as ppsci does on one process.
    """

    def __init__(self, sample_fn: Callable[[], Dict[str, np.ndarray]], loss,
                 output_expr: Optional[Dict[str, Callable]] = None, name: str = "Sup"):
        dataloader_cfg = {"dataset": {"name": "ContinuousNamedArrayDataset",
                                      "input": lambda: parallel.local_rows(sample_fn()),
                                      "label": lambda _: {}}}
        if dist.get_world_size() == 1:
            super().__init__(dataloader_cfg, loss, output_expr, name)
            return
        config = dataloader_cfg["dataset"]
        dataset = ppsci.data.dataset.ContinuousNamedArrayDataset(config["input"], config["label"])
        self.input_keys, self.output_expr = dataset.input_keys, output_expr or {}
        self.output_keys = tuple(self.output_expr)
        self.data_loader, self.data_iter = dataset, iter(dataset)
        self.loss, self.name = loss, name


def array_loader(arrays: Dict[str, np.ndarray], batch_size: int) -> dict:
    """ppsci's dataloader_cfg for shuffled passes over `arrays` (a NamedArrayDataset) in
    global batches of `batch_size` (TRAIN.batch_size), of which each process reads its rows.

    DistributedBatchSampler on any number of processes: pass p is ordered by
    RandomState(p), so N processes read the global batches one process reads, each its
    contiguous share; incomplete last batches are dropped.
    """
    return {
        "dataset": {"name": "NamedArrayDataset", "input": arrays},
        "batch_size": batch_size // dist.get_world_size(),
        "sampler": {"name": "DistributedBatchSampler", "shuffle": True, "drop_last": True},
    }


def continue_loader(constraint, batches_read: int) -> None:
    """Make the constraint's loader continue after `batches_read` batches of a run, as that
    run did: the pass they end in, ordered as it was, from the batch after them."""
    sampler = constraint.data_loader.batch_sampler
    while not isinstance(sampler, paddle.io.DistributedBatchSampler):
        sampler = sampler.sampler  # ppsci wraps it for batch indexing
    passed, into = divmod(batches_read, len(constraint.data_loader))
    sampler.set_epoch(passed)
    constraint.data_iter = iter(constraint.data_loader)
    for _ in range(into):
        next(constraint.data_iter)


def peak_rate(train_cfg, network: str) -> float:
    """The learning rate `network` ("critic" or "generator") starts at: TRAIN.learning_rate,
    or for the critic TRAIN.critic_learning_rate when set (two time scales, as in TTUR)."""
    critic_rate = train_cfg.get("critic_learning_rate")
    if network == "critic" and critic_rate is not None:
        return critic_rate
    return train_cfg.learning_rate


def learning_rate(train_cfg, steps_per_epoch: int, network: str):
    """`network`'s peak_rate, or with TRAIN.lr_decay a schedule decaying to 0 over the run,
    one decrement per optimizer step: the rate times (1 - step/steps)^TRAIN.lr_decay_power."""
    if not train_cfg.get("lr_decay", False):
        return peak_rate(train_cfg, network)
    return ppsci.optimizer.lr_scheduler.Linear(
        train_cfg.epochs, steps_per_epoch, peak_rate(train_cfg, network),
        power=train_cfg.get("lr_decay_power", 1.0))()


def optimizer(train_cfg, steps_per_epoch: int, network: str, rate=None):
    """ppsci's optimizer TRAIN.optimizer names for `network` ("critic" or "generator"), at
    learning_rate(...) (or `rate`): Adam with TRAIN.beta1 and beta2, or RMSProp with
    TensorFlow's decay 0.9 and epsilon 1e-10 (weight clipping)."""
    rate = learning_rate(train_cfg, steps_per_epoch, network) if rate is None else rate
    if train_cfg.get("optimizer", "adam") == "rmsprop":
        return ppsci.optimizer.RMSProp(rate, rho=0.9, epsilon=1e-10)
    return ppsci.optimizer.Adam(rate, train_cfg.beta1, train_cfg.beta2)


@contextlib.contextmanager
def frozen(layer: paddle.nn.Layer):
    """No parameter gradients for `layer` inside the block (input gradients still flow)."""
    params = [p for p in layer.parameters() if not p.stop_gradient]
    for p in params:
        p.stop_gradient = True
    try:
        yield
    finally:
        for p in params:
            p.stop_gradient = False


@contextlib.contextmanager
def quiet():
    """ppsci's INFO and MESSAGE lines off inside the block; warnings and errors still show."""
    log = logging.getLogger("ppsci")
    level = log.level
    log.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        log.setLevel(level)


class GeneratorAverage:
    """TRAIN.ema_decay: ppsci's ExponentialMovingAverage of the generator's weights, started
    (from a copy of them) at the first generator iteration past TRAIN.ema_start of the run's
    planned iterations and moved after every generator step since; a checkpoint holds it
    ({} before it starts)."""

    def __init__(self, generator: paddle.nn.Layer, decay: float, start: float):
        self.generator, self.decay, self.start = generator, decay, start
        self.ema = None

    @property
    def started(self) -> bool:
        return self.ema is not None

    def update(self, iteration: int, total: int) -> None:
        if self.ema is not None:
            self.ema.update()
        elif iteration > self.start * total:
            self.ema = ExponentialMovingAverage(self.generator, self.decay)
            logger.info(f"The generator's moving average (TRAIN.ema_decay={self.decay:g}) starts "
                        f"at generator iteration {iteration}, past TRAIN.ema_start="
                        f"{self.start:g} of {total}.")

    @contextlib.contextmanager
    def applied(self):
        """The average's weights in the generator inside the block (its own after it)."""
        self.ema.apply_shadow()
        try:
            yield
        finally:
            self.ema.restore()

    def state_dict(self) -> dict:
        return {} if self.ema is None else dict(self.ema.state_dict())

    def set_state_dict(self, state: dict) -> None:
        self.ema = None
        if state:
            self.ema = ExponentialMovingAverage(self.generator, self.decay)
            self.ema.set_state_dict({k: paddle.to_tensor(v) for k, v in state.items()})


# an epoch record's entries that are no loss, term or metric
_BOOKKEEPING = ("epoch", "iteration", "iters_per_second", "seconds", "learning_rate_critic",
                "learning_rate_generator", "planned_iterations", "planned_epochs",
                "planned_rate_scale")

# TRAIN.minutes: generator iterations timed before the plan; the clock starts with the process
CALIBRATION = 8
STARTED = psutil.Process().create_time()


def plan_epochs(cfg, per_iteration: float, dev: float, epoch_end: float, check: float,
                elapsed: float) -> dict:
    """The epochs that fit TRAIN.minutes after `elapsed` seconds, each at least
    TRAIN.iters_per_epoch generator iterations and lengthened alike to fill the budget (so
    no part of an epoch is lost to rounding): each iteration `per_iteration` s plus a
    held-out cost (`dev` s) every TRAIN.dev_freq iterations, each epoch's end (check, plot,
    files) `epoch_end` s, of which `check` s the validator's check of TRAIN.metric_samples.
    The final evaluation is kept that end with the check scaled to EVAL.num_samples (twice
    with TRAIN.ema_decay); 2 % of the budget is spare for the machine's variation."""
    train = cfg.TRAIN
    budget = 60 * train.minutes
    scale = cfg.EVAL.num_samples / train.metric_samples if train.get("metric_samples") else 1.0
    evaluated = 2 if train.get("ema_decay") else 1  # the generator and its moving average
    reserved = epoch_end + check * (evaluated * max(scale, 1.0) - 1.0) + 0.02 * budget
    per_iteration += dev / train.dev_freq if train.get("dev_freq") else 0.0
    available = budget - elapsed - reserved
    epochs = int(available // (train.iters_per_epoch * per_iteration + epoch_end))
    length = int((available - epochs * epoch_end) // (max(epochs, 1) * per_iteration))
    return {"epochs": max(epochs, 1), "iters_per_epoch": max(length, train.iters_per_epoch),
            "short": epochs < 1, "reserved": reserved}


# the epochs whose median is the pace a re-plan goes by
PACE_EPOCHS = 5


def recent_pace(ends: List[float], window: int = PACE_EPOCHS) -> float:
    """Seconds an epoch at the recent pace: the median time between the last `window` + 1
    of the epoch ends `ends` (seconds), so one stalled epoch does not set it."""
    return float(np.median(np.diff(ends[-window - 1:])))


def replan_epochs(epochs: int, done: int, seconds_left: float, per_epoch: float,
                  relative: float = 0.1) -> int:
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


def rescaled_rate(scale: float, total: int, done: int, new_total: int,
                  power: float = 1.0) -> float:
    """The factor on the peak rates (peak_rate) that keeps a decay (1 - step/total)^power
    continuous when its length changes from `total` to `new_total` steps after `done`: the
    rate scale * (1 - done/total)^power now, decaying to 0 at new_total."""
    return scale * ((total - done) * new_total / (total * (new_total - done))) ** power


class Run:
    """cfg.TRAIN.epochs x cfg.TRAIN.iters_per_epoch generator iterations of the scripts'
    loop, resumed from cfg.TRAIN.checkpoint_path if set:

        for epoch in run.epochs():
            for _ in run.iterations(epoch):
                for _ in range(cfg.TRAIN.n_critic):
                    critic_solver.train_epoch_func(critic_solver, epoch, run.log_freq)
                generator_solver.train_epoch_func(generator_solver, epoch, run.log_freq)
            run.end_epoch(epoch, metrics)
        run.finish()

    Each iteration is n_critic calls of ppsci's epoch function of the critic's Solver and
    one of the generator's (each Solver's iters_per_epoch is 1: one step a call, so that
    weight clipping can follow every critic step); Solver.train() is not used because it
    writes ppsci's checkpoint on every call. data_state names what else a checkpoint
    must hold to continue exactly (numpy Generators the constraints draw from); `loaders`
    the constraints over data sets and the batches each reads per generator iteration;
    `data` the training data, whose fingerprint a resume compares; `held_out` returns the
    critic's cost on held-out data ({name: value}), run every TRAIN.dev_freq iterations
    (the paper's dev_cost), logged, monitored and averaged into the epoch's record with
    "dev_" names. Ctrl-C or SIGTERM stop
    the run after the iteration it is in, with a checkpoint of where it stands.
    Under paddle.distributed.launch every process runs this; rank 0 alone writes files.
    """

    log_freq = sys.maxsize  # ppsci's own step lines: off (a progress line logs instead)

    def __init__(self, cfg, model, critic_solver, generator_solver,
                 data_state: Optional[Dict[str, object]] = None,
                 loaders: Optional[Dict[str, tuple]] = None, data: Optional[np.ndarray] = None,
                 held_out: Optional[Callable[[], Dict[str, float]]] = None):
        self.cfg, self.model, self.held_out = cfg, model, held_out
        self.dev_freq = cfg.TRAIN.get("dev_freq", 0) if held_out else 0
        self.dev_values, self.unshown_dev = [], {}  # the epoch's held-out costs so far
        self.critic_solver, self.generator_solver = critic_solver, generator_solver
        self.loaders = loaders or {}
        if dist.get_world_size() > 1:
            logger.info(f"Data parallel on {dist.get_world_size()} processes: each computes its "
                        f"share of every global batch (TRAIN.batch_size={cfg.TRAIN.batch_size}) "
                        "and the learning rate is unchanged, so ppsci's advice above to scale it "
                        "does not apply.")
        self.resumable = {"generator": model.generator, "critic": model.critic,
                          "critic_optimizer": critic_solver.optimizer,
                          "generator_optimizer": generator_solver.optimizer, **(data_state or {})}
        self.average = None
        if cfg.TRAIN.get("ema_decay"):
            self.average = GeneratorAverage(model.generator, cfg.TRAIN.ema_decay,
                                            cfg.TRAIN.ema_start)
            self.resumable["generator_average"] = self.average
        self.settings = training_settings(cfg, data)
        self.history, self.partial = load_checkpoint(
            cfg.TRAIN.checkpoint_path, self.resumable, self.settings,
            cfg.TRAIN.resume_with_changes) if cfg.TRAIN.checkpoint_path else ([], None)
        self.planned, self.calibrating, self.check_seconds = None, False, 0.0
        # TRAIN.replan: the plan follows the machine's pace in the process that made it
        self.replanning, self.rate_scale, self.epoch_ends = False, 1.0, []
        epochs, length = cfg.TRAIN.epochs, None
        if cfg.TRAIN.get("minutes"):
            saved = self.partial or (self.history[-1] if self.history else {})
            self.planned = saved.get("planned_iterations")
            if cfg.TRAIN.checkpoint_path and not self.planned:
                raise UsageError(f"TRAIN.minutes={cfg.TRAIN.minutes} plans a new run, and "
                                 f"TRAIN.checkpoint_path={cfg.TRAIN.checkpoint_path} was trained "
                                 "without a plan: resume it with TRAIN.epochs and "
                                 "TRAIN.minutes=null.")
            self.calibrating = not self.planned
            if self.planned:  # the plan's epochs, as long as the plan made them
                epochs = saved.get("planned_epochs", self.planned // cfg.TRAIN.iters_per_epoch)
                length = self.planned // epochs
                self.rate_scale = saved.get("planned_rate_scale", 1.0)
        self.set_length(epochs, length)
        if self.planned:
            logger.info(f"{self.planned} generator iterations planned for TRAIN.minutes="
                        f"{cfg.TRAIN.minutes:g} when the run started (from the checkpoint); "
                        "a resumed run keeps the plan it stopped with")
        if len(self.history) > cfg.TRAIN.epochs:
            raise UsageError(f"TRAIN.epochs={cfg.TRAIN.epochs}: the checkpoint has finished "
                             f"{len(self.history)} epochs; give TRAIN.epochs > "
                             f"{len(self.history)} to train on.")
        done = len(self.history) * cfg.TRAIN.iters_per_epoch
        if self.partial:
            done += self.partial["iteration"]
            self._restore_meters(self.partial)
        for constraint, per_iteration in self.loaders.values():
            continue_loader(constraint, done * per_iteration)
        self.monitor = Monitor(cfg) if parallel.is_main_process() else None
        seconds = self.partial["seconds"] if self.partial else \
            self.history[-1]["seconds"] if self.history else 0.0
        self.progress = Progress(cfg, done, seconds)
        steps = f"{cfg.TRAIN.n_critic} critic step{'s' if cfg.TRAIN.n_critic > 1 else ''}"
        last = (f"as many as fit TRAIN.minutes={cfg.TRAIN.minutes:g}, planned after "
                f"{CALIBRATION} timed ones") if self.calibrating else self.progress.total
        logger.info(f"Training {describe_method(cfg)}: generator iterations {done + 1} to "
                    f"{last} ({steps} and 1 generator step each); a progress line follows "
                    f"iteration {done + 1}, then every {cfg.log_freq}.")

    def set_length(self, epochs: int, iters_per_epoch: Optional[int] = None) -> None:
        """Train `epochs` epochs (of `iters_per_epoch`): the Solvers' step counts and the
        learning-rate decay span them (ppsci's Linear is paddle's PolynomialDecay over
        decay_steps, from each network's peak_rate x the plan's rate_scale, with its power)."""
        self.cfg.TRAIN.epochs = epochs
        if iters_per_epoch:
            self.cfg.TRAIN.iters_per_epoch = iters_per_epoch
        total = epochs * self.cfg.TRAIN.iters_per_epoch
        for solver, steps, network in ((self.critic_solver, self.cfg.TRAIN.n_critic, "critic"),
                                       (self.generator_solver, 1, "generator")):
            # ppsci's epoch function reads the run's step count, which Solver.train() sets
            solver.max_steps = total * steps
            solver.epochs = epochs
            scheduler = solver.lr_scheduler
            if scheduler is not None and hasattr(scheduler, "decay_steps"):
                scheduler.decay_steps = total * steps
                scheduler.base_lr = peak_rate(self.cfg.TRAIN, network) * self.rate_scale
                scheduler.last_lr = scheduler.get_lr()
        if hasattr(self, "progress"):
            self.progress.total = total

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
        cfg = self.cfg.TRAIN
        for solver, layer, steps, network in (
                (self.critic_solver, self.model.critic, cfg.n_critic, "critic"),
                (self.generator_solver, self.model.generator, 1, "generator")):
            rate = learning_rate(cfg, cfg.iters_per_epoch * steps, network)
            trial = optimizer(cfg, cfg.iters_per_epoch * steps, network, rate)(layer)
            if dist.get_world_size() > 1:
                trial = fleet.distributed_optimizer(trial)
            solver.optimizer = trial
            solver.lr_scheduler = rate if isinstance(rate, paddle.optimizer.lr.LRScheduler) \
                else None

    def trial_iterations(self) -> Iterator[int]:
        """TRAIN.minutes' trial epoch: CALIBRATION timed generator iterations (the first two
        warm up) and a held-out cost, from a snapshot that end_trial goes back to."""
        # networks and data streams go back to this state; the trial has its own optimizers
        self.trial = {"parts": {k: v for k, v in self.resumable.items()
                                if not k.endswith("_optimizer")}}
        self.trial["before"] = snapshot(self.trial["parts"])
        self.trial["solvers"] = {s: (s.global_step, s.optimizer, s.lr_scheduler)
                                 for s in (self.critic_solver, self.generator_solver)}
        self.trial_optimizers()
        seconds = []
        # the trial optimizers' state takes its names from a namespace of its own, so the
        # run's optimizers name theirs (and a checkpoint holds them) as in a run without one
        with paddle.utils.unique_name.guard():
            for iteration in range(1, CALIBRATION + 1):
                paddle.seed(self.cfg.seed * 1_000_003 + iteration)  # as the real one will be
                tic = time.perf_counter()
                with quiet():
                    yield iteration
                seconds.append(time.perf_counter() - tic)
        tic = time.perf_counter()
        if self.dev_freq:
            with quiet():
                self.held_out()
        self.trial["per_iteration"] = float(np.median(seconds[2:]))
        self.trial["dev"] = time.perf_counter() - tic
        self.trial["ended"] = time.perf_counter()

    def end_trial(self, metrics: dict) -> None:
        """After the trial epoch's end (the script's check, plot and this call, timed): the
        run back at iteration 0, and the plan of the epochs that fit TRAIN.minutes."""
        cfg, trial = self.cfg, self.trial
        epoch_end = time.perf_counter() - trial["ended"]
        restore(trial["parts"], trial["before"])
        for constraint, _ in self.loaders.values():
            continue_loader(constraint, 0)
        for solver, (step, own_optimizer, own_scheduler) in trial["solvers"].items():
            solver.global_step, solver.optimizer, solver.lr_scheduler = \
                step, own_optimizer, own_scheduler
            solver.train_output_info.clear()
        _critic_loss(self.critic_solver).meter.pop_means()
        self.dev_values, self.unshown_dev = [], {}
        check = self.check_seconds if metrics else 0.0
        per_iteration, dev, epoch_end, check, elapsed = parallel.max_over_processes_of(
            [trial["per_iteration"], trial["dev"], epoch_end, check, time.time() - STARTED])
        plan = plan_epochs(cfg, per_iteration, dev, epoch_end, check, elapsed)
        self.planned = plan["epochs"] * plan["iters_per_epoch"]
        self.set_length(plan["epochs"], plan["iters_per_epoch"])
        self.calibrating, self.trial = False, None
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
            + (" unless the machine's pace changes and the plan follows it (TRAIN.replan)."
               if self.replanning else "."))
        if plan["short"]:
            logger.warning(f"TRAIN.minutes={cfg.TRAIN.minutes:g} holds less than one epoch of "
                           f"{plan['iters_per_epoch']} iterations here; training one.")

    def epochs(self) -> Iterator[int]:
        """The epochs still to run (an interrupted one first; with TRAIN.minutes, after a
        trial epoch 1 that plans the run). Ctrl-C or SIGTERM during an epoch's evaluation
        and files stop the run once its checkpoint is written."""
        if self.calibrating:
            with signals.graceful():  # a signal here stops the first real iteration
                yield 1
            self.progress.restart()  # speed and time left count from the real start
        epoch = len(self.history)
        while epoch < self.cfg.TRAIN.epochs:
            epoch += 1
            self.tic = time.perf_counter()
            with signals.graceful():
                yield epoch
            signum = parallel.max_over_processes(signals.requested() or 0)
            if signum:
                latest = osp.join(osp.abspath(self.cfg.output_dir), "checkpoints", "latest")
                parallel.log_every_rank(
                    f"Stopped by {signals.NAMES[signum]} after epoch {epoch}; the run continues "
                    f"with {shell_word('TRAIN.checkpoint_path=' + latest)}")
                raise SystemExit(signals.CODES[signum])

    def iterations(self, epoch: int) -> Iterator[int]:
        """The epoch's generator iterations, each from the random state its number gives
        (noise and interpolates, reproducible on resume); after each, a diverged loss stops
        the run, a progress line follows when due, and Ctrl-C or SIGTERM stop it here."""
        if self.calibrating:
            yield from self.trial_iterations()
            return
        first, self.epoch_before = 0, 0.0
        if self.partial:  # the rest of an interrupted epoch
            first, self.epoch_before = self.partial["iteration"], self.partial["epoch_seconds"]
            self.partial = None
        with signals.graceful():
            for i in range(first, self.cfg.TRAIN.iters_per_epoch):
                iteration = (epoch - 1) * self.cfg.TRAIN.iters_per_epoch + i + 1
                paddle.seed(self.cfg.seed * 1_000_003 + iteration)
                with quiet():  # ppsci logs each Solver's first step
                    yield iteration
                self.stop_if_diverged(iteration)
                if self.average is not None:
                    self.average.update(iteration, self.progress.total)
                if self.dev_freq and iteration % self.dev_freq == 0:
                    self.held_out_cost(iteration)
                if self.progress.due(iteration):  # with the latest held-out cost not shown
                    self.progress.log(iteration, self.critic_solver, self.generator_solver,
                                      self.monitor, self.unshown_dev)
                    self.unshown_dev = {}
                signum = parallel.max_over_processes(signals.requested() or 0)
                if signum:
                    self.stop(epoch, i + 1, iteration, signum)
        self.epoch_seconds = (self.epoch_before + time.perf_counter() - self.tic,
                              self.progress.seconds())
        # one model in every process before the epoch's evaluation and files
        parallel.average_statistics(self.model.generator, self.model.critic)

    def held_out_cost(self, iteration: int) -> None:
        """The critic's cost on held-out data now, for the monitors, the next progress line
        and the epoch's record."""
        with quiet():  # the validator's own lines
            dev = parallel.mean_over_processes(
                {f"dev_{k}": v for k, v in self.held_out().items()})
        self.dev_values.append(dev)
        self.unshown_dev = dev
        if self.monitor is not None:
            self.monitor.scalars({f"train/{k}": v for k, v in dev.items()}, iteration)

    def stop(self, epoch: int, done_in_epoch: int, iteration: int, signum: int) -> None:
        """A checkpoint of exactly where the run stands, one line, exit status 128 + signum."""
        parallel.average_statistics(self.model.generator, self.model.critic)
        partial = {"iteration": done_in_epoch, "seconds": self.progress.seconds(),
                   "planned_iterations": self.planned, "planned_epochs": self.cfg.TRAIN.epochs,
                   "planned_rate_scale": self.rate_scale,
                   "epoch_seconds": self.epoch_before + time.perf_counter() - self.tic,
                   "meters": self._meters()}
        output_dir = self.cfg.output_dir
        if parallel.is_main_process():
            self.save_networks()
            save_checkpoint(output_dir, 0, self.history, self.resumable, self.settings, partial)
            self.monitor.close()
        latest = osp.join(osp.abspath(output_dir), "checkpoints", "latest")
        parallel.log_every_rank(
            f"Stopped by {signals.NAMES[signum]} after generator iteration {iteration} of "
            f"{self.progress.total}, with a checkpoint of where it stands; the run continues "
            f"with {shell_word('TRAIN.checkpoint_path=' + latest)}")
        raise SystemExit(signals.CODES[signum])

    def _meters(self) -> dict:
        """The running means of the epoch so far: ppsci's and CriticLoss's."""
        meters = {name: {key: [m.val, m.avg, m.sum, m.count]
                         for key, m in solver.train_output_info.items()}
                  for name, solver in (("critic", self.critic_solver),
                                       ("generator", self.generator_solver))}
        terms = _critic_loss(self.critic_solver).meter
        meters["terms"] = {"count": terms.count,
                           "sums": {k: v.numpy() for k, v in terms.sums.items()}}
        meters["dev"] = list(self.dev_values)
        return meters

    def _restore_meters(self, partial: dict) -> None:
        from ppsci.utils.misc import AverageMeter

        for name, solver in (("critic", self.critic_solver), ("generator", self.generator_solver)):
            for key, (val, avg, total, count) in partial["meters"][name].items():
                meter = AverageMeter(key, "7.5f")
                meter.val, meter.avg, meter.sum, meter.count = val, avg, total, count
                solver.train_output_info[key] = meter
        terms = _critic_loss(self.critic_solver).meter
        terms.count = partial["meters"]["terms"]["count"]
        terms.sums = {k: paddle.to_tensor(v) for k, v in partial["meters"]["terms"]["sums"].items()}
        self.dev_values = list(partial["meters"].get("dev", []))

    def stop_if_diverged(self, iteration: int) -> None:
        """Stop at the first NaN, Inf or loss beyond divergence_bound (divergence.py); the
        last sound checkpoint stays."""
        from .divergence import check_losses

        check_losses(self, iteration)

    def end_epoch(self, epoch: int, metrics: Optional[dict] = None) -> None:
        """The epoch's record (losses, speed, `metrics`) into the log and the checkpoint;
        weights, checkpoint and monitors by rank 0 (after a trial epoch: the plan)."""
        if self.calibrating:
            return self.end_trial(metrics or {})
        record = epoch_record(self.cfg, epoch, self.critic_solver, self.generator_solver,
                              *self.epoch_seconds)
        from .divergence import check_record  # a sound epoch before its checkpoint

        check_record(self, record)
        if self.replanning and epoch < self.cfg.TRAIN.epochs:
            self.follow_pace(epoch)
        if self.planned:
            record["planned_iterations"] = self.planned
            record["planned_epochs"] = self.cfg.TRAIN.epochs
            record["planned_rate_scale"] = self.rate_scale
        for key in (self.dev_values[0] if self.dev_values else {}):  # the epoch's means
            record[key] = float(np.mean([dev[key] for dev in self.dev_values]))
        self.dev_values = []
        record.update(metrics or {})
        if parallel.is_main_process():
            output_dir = self.cfg.output_dir
            self.save_networks()
            save_checkpoint(output_dir, self.cfg.TRAIN.get("save_freq", 0),
                            self.history + [record], self.resumable, self.settings)
            self.monitor.scalars({f"epoch/{k}": v for k, v in record.items()
                                  if isinstance(v, (int, float)) and k != "epoch"},
                                 record["iteration"])
            self.monitor.image("samples", osp.join(output_dir, "plots", f"epoch_{epoch:04d}.png"),
                               record["iteration"])
        self.history.append(record)
        log_epoch(self.cfg, record, self.progress.eta(record["iteration"]),
                  list(metrics or {}))

    def save_networks(self) -> None:
        """The networks' weights files (and the generator's moving average, once started)."""
        output_dir, generator = self.cfg.output_dir, self.model.generator
        save_weights(generator, osp.join(output_dir, "model_generator.pdparams"))
        save_weights(self.model.critic, osp.join(output_dir, "model_discriminator.pdparams"))
        if self.average is not None and self.average.started:
            with self.average.applied():
                save_weights(generator, osp.join(output_dir, "model_generator_ema.pdparams"))

    def follow_pace(self, epoch: int) -> None:
        """TRAIN.replan: after `epoch`, more or fewer epochs of the plan's length when the
        recent pace (recent_pace, epoch ends included) would end training off the time the
        plan keeps (replan_epochs); the learning rate goes on from where it is and decays to
        0 at the new end (rescaled_rate). When not one more epoch fits, training ends with
        this one, its rate where the decay had come to."""
        self.epoch_ends.append(time.perf_counter())
        if len(self.epoch_ends) < 3:  # two epochs timed at least
            return
        per_epoch, elapsed = parallel.max_over_processes_of(
            [recent_pace(self.epoch_ends), time.time() - STARTED])
        seconds_left = 60 * self.cfg.TRAIN.minutes - self.reserved - elapsed
        epochs = replan_epochs(self.cfg.TRAIN.epochs, epoch, seconds_left, per_epoch)
        if epochs == self.cfg.TRAIN.epochs:
            return
        length = self.cfg.TRAIN.iters_per_epoch
        before = self.cfg.TRAIN.epochs
        if epochs > epoch:  # the rate decays to 0 over the new length
            self.rate_scale = rescaled_rate(self.rate_scale, before * length, epoch * length,
                                            epochs * length,
                                            self.cfg.TRAIN.get("lr_decay_power", 1.0))
        self.planned = epochs * length
        self.set_length(epochs, length)
        parallel.log_every_rank(
            f"Re-planned after epoch {epoch} at {elapsed / 60:.1f} minutes: the last epochs took "
            f"{per_epoch:.1f} s each, so {epochs} epochs of {length} fit TRAIN.minutes="
            f"{self.cfg.TRAIN.minutes:g} instead of {before} ({self.planned} iterations); "
            + ("the learning rate decays to 0 at the new end" if epochs > epoch
               else "training ends with this epoch")
            + ". TRAIN.epochs cannot repeat a re-planned run (TRAIN.replan=false keeps the "
            "first plan).")

    def finish(self) -> list:
        """losses.png and losses.json (rank 0) and the closing line; returns the epoch log."""
        if parallel.is_main_process():
            plots.plot_losses(self.history, osp.join(self.cfg.output_dir, "losses.png"))
            save_json(self.history, osp.join(self.cfg.output_dir, "losses.json"))
            self.monitor.close()
            latest = osp.join(osp.abspath(self.cfg.output_dir), "checkpoints", "latest")
            logger.info(f"Training done after epoch {len(self.history)}; a longer run continues "
                        f"with {shell_word('TRAIN.checkpoint_path=' + latest)}")
        if self.planned:
            logger.info(f"TRAIN.minutes={self.cfg.TRAIN.minutes:g}: training ended "
                        f"{(time.time() - STARTED) / 60:.1f} minutes after the start; the final "
                        "evaluation follows.")
        return self.history


def describe_method(cfg) -> str:
    """The loss and optimizer a run trains with, in words."""
    loss, train = cfg.LOSS, cfg.TRAIN
    kind = loss.get("kind", "wgan-gp")
    method = {"wgan-gp": f"WGAN-GP (gradient penalty, lambda {loss.lambda_gp:g})",
              "wgan": f"WGAN (weight clipping at +-{loss.get('clip', 0):g})",
              "dcgan": "the standard GAN (sigmoid cross-entropy)"}[kind]
    rate = f"{train.learning_rate:g}"
    if train.get("critic_learning_rate") is not None:
        rate = f"{train.critic_learning_rate:g} (critic) and {train.learning_rate:g} (generator)"
    if train.get("optimizer", "adam") == "rmsprop":
        rule = f"RMSProp at {rate}"
    else:
        rule = f"Adam at {rate}, betas {train.beta1:g}, {train.beta2:g}"
    power = train.get("lr_decay_power", 1.0)
    decay = ("" if not train.get("lr_decay", False) else ", decaying linearly to 0"
             if power == 1 else f", decaying to 0 as (1 - i/N)^{power:g}")
    return f"{method} with {rule}{decay}"


def epoch_due(train_cfg, epoch: int) -> bool:
    """Whether the validator runs after `epoch`: TRAIN.eval_during_train, every
    TRAIN.eval_freq epochs from TRAIN.start_eval_epoch on, as ppsci's Solver.train()."""
    return bool(train_cfg.eval_during_train) and epoch % train_cfg.eval_freq == 0 \
        and epoch >= train_cfg.start_eval_epoch


def _critic_loss(critic_solver):
    return next(iter(critic_solver.constraint.values())).loss.loss_expr  # a CriticLoss


def number(value: float) -> str:
    """5 decimals, or 4 significant digits below 0.001 (a clipped critic's tiny values)."""
    return f"{value:.5f}" if value == 0 or abs(value) >= 1e-3 else f"{value:.3e}"


def _clock(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(round(seconds))))


class Progress:
    """A log line after the first generator iteration this process runs, then every log_freq:
    the epoch's mean losses so far, iterations per second and the time left (h:mm:ss)."""

    def __init__(self, cfg, done: int, seconds_before: float):
        self.cfg, self.done, self.before = cfg, done, seconds_before
        self.total = cfg.TRAIN.epochs * cfg.TRAIN.iters_per_epoch
        self.restart()

    def restart(self) -> None:
        """Count speed and time left from now (after TRAIN.minutes' timing)."""
        self.start = self.last_time = time.perf_counter()
        self.last_iteration = self.done

    def seconds(self) -> float:
        """Training time of the whole run, earlier processes' included (resume)."""
        return self.before + time.perf_counter() - self.start

    def eta(self, iteration: int) -> str:
        """The time left at this process's pace; unknown until it has run an iteration (a
        resume that starts at an epoch's end, stopped after the epoch's last iteration)."""
        if iteration >= self.total:
            return _clock(0)
        if iteration <= self.done:
            return "unknown"
        rate = (iteration - self.done) / max(time.perf_counter() - self.start, 1e-9)
        return _clock((self.total - iteration) / rate)

    def due(self, iteration: int) -> bool:
        return iteration == self.done + 1 or iteration % self.cfg.log_freq == 0

    def log(self, iteration: int, critic_solver, generator_solver, monitor,
            dev: Optional[Dict[str, float]] = None) -> None:
        """`dev`: held-out costs computed since the last line, shown after the training's."""
        now = time.perf_counter()
        speed = (iteration - self.last_iteration) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_iteration = now, iteration
        values = parallel.mean_over_processes({
            "critic_loss": critic_solver.train_output_info["loss"].avg,
            "generator_loss": generator_solver.train_output_info["loss"].avg,
            **_critic_loss(critic_solver).meter.means(),
        })
        parallel.log_every_rank(
            f"[Train][Iter {iteration}/{self.total}] "
            + ", ".join(f"{k}: {number(v)}" for k, v in {**values, **(dev or {})}.items())
            + f", {speed:.2f} it/s, eta: {self.eta(iteration)}")
        if monitor is not None:
            monitor.scalars({f"train/{k}": v for k, v in values.items()}, iteration)


def epoch_record(cfg, epoch: int, critic_solver, generator_solver, seconds: float,
                 total_seconds: float) -> dict:
    """The epoch's mean losses and loss terms (over processes), speed and learning rates;
    resets the Solvers' running means."""
    record = {
        "epoch": epoch,
        "iteration": epoch * cfg.TRAIN.iters_per_epoch,
        **parallel.mean_over_processes({
            "critic_loss": critic_solver.train_output_info["loss"].avg,
            "generator_loss": generator_solver.train_output_info["loss"].avg,
            **_critic_loss(critic_solver).meter.pop_means(),
        }),
        "iters_per_second": cfg.TRAIN.iters_per_epoch / seconds,
        "seconds": total_seconds,
        "learning_rate_critic": critic_solver.optimizer.get_lr(),
        "learning_rate_generator": generator_solver.optimizer.get_lr(),
    }
    for solver in (critic_solver, generator_solver):
        solver.train_output_info.clear()
    return record


def log_epoch(cfg, record: dict, eta: str, metrics=()) -> None:
    """The epoch's line: the losses and the critic's measured terms (5 decimals), the
    epoch's `metrics` (4 significant digits), speed and time left."""
    terms = ", ".join(f"{k}: {number(v)}" for k, v in record.items()
                      if k not in _BOOKKEEPING and k not in metrics)
    extra = "".join(f", {k}: {record[k]:.4g}" for k in metrics if k in record)
    parallel.log_every_rank(
        f"[Train][Epoch {record['epoch']}/{cfg.TRAIN.epochs}][Iter {record['iteration']}] "
        f"{terms}{extra}, {record['iters_per_second']:.2f} it/s, eta: {eta}")
