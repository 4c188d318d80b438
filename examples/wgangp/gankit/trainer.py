"""The alternating loop of WGAN-GP training (the paper's Algorithm 1) over two ppsci Solvers.

    trainer = AlternatingTrainer(cfg, model, critic_solver, generator_solver, critic_loss.meter)
    trainer.train()

Each generator iteration is n_critic steps of the critic's Solver, then one of the
generator's (step); around it the trainer resumes, keeps TRAIN.minutes, logs progress, saves
weights and checkpoints each epoch, and stops on a diverged loss or a signal with a
checkpoint of exactly where it stands.
"""

import time
from typing import Callable, Dict, Iterator, Optional

import numpy as np
import paddle

from . import divergence, parallel, resumption, signals
from . import ppsci_adapter as adapter
from .average import GeneratorAverage
from .budget import TimeBudget
from .checkpoints import training_settings
from .networks import frozen
from .progress import HeldOutCosts, TermMeter, epoch_record, log_epoch
from .solvers import peak_rate


def clip_weights(layer: paddle.nn.Layer, clip: Optional[float]) -> None:
    """WGAN's weight clipping: every parameter of `layer` into [-clip, clip] (None: none)."""
    if clip is None:
        return
    with paddle.no_grad():
        for p in layer.parameters():
            p.set_value(paddle.clip(p, -clip, clip))


def epoch_due(train_cfg, epoch: int) -> bool:
    """Whether the check runs after `epoch`: TRAIN.eval_during_train, every TRAIN.eval_freq
    epochs from TRAIN.start_eval_epoch on, as ppsci's Solver.train()."""
    return (
        bool(train_cfg.eval_during_train)
        and epoch % train_cfg.eval_freq == 0
        and epoch >= train_cfg.start_eval_epoch
    )


class AlternatingTrainer:
    """cfg.TRAIN.epochs x cfg.TRAIN.iters_per_epoch generator iterations of `model`
    (a GeneratorAndCritic) through `critic_solver` and `generator_solver` (each built with
    iters_per_epoch=1), resumed from cfg.TRAIN.checkpoint_path if set.

    critic_terms: the critic loss's TermMeter (its measured terms, logged and recorded).
    clip: LOSS.kind=wgan's weight clipping after each critic step (None: none).
    check(epoch) -> metrics: the epoch's validator check, when epoch_due (timed for
    TRAIN.minutes); plot(epoch): the epoch's picture (rank 0).
    data_state: what else a checkpoint must hold to continue exactly (numpy Generators the
    constraints draw from; the constraints over data sets read on by themselves); data: the
    training data, whose fingerprint a resume compares; held_out() -> {name: value}: the
    critic's cost on held-out data every TRAIN.dev_freq iterations (the paper's dev_cost).
    Under paddle.distributed.launch every process runs this; rank 0 alone writes files.
    """

    def __init__(
        self,
        cfg,
        model,
        critic_solver,
        generator_solver,
        critic_terms: TermMeter,
        *,
        clip: Optional[float] = None,
        check: Optional[Callable[[int], dict]] = None,
        plot: Optional[Callable[[int], None]] = None,
        data_state: Optional[Dict[str, object]] = None,
        data: Optional[np.ndarray] = None,
        held_out: Optional[Callable[[], Dict[str, float]]] = None,
    ):
        self.cfg, self.model, self.critic_terms = cfg, model, critic_terms
        self.critic_solver, self.generator_solver = critic_solver, generator_solver
        self.clip, self.check, self.plot = clip, check, plot
        self.held_out = HeldOutCosts(held_out, cfg.TRAIN.get("dev_freq", 0))
        self.signal_every = 1  # iterations between the processes' checks for a signal
        parallel.log_data_parallel(cfg.TRAIN.batch_size)
        self.resumable = {
            "generator": model.generator,
            "critic": model.critic,
            "critic_optimizer": adapter.optimizer_of(critic_solver),
            "generator_optimizer": adapter.optimizer_of(generator_solver),
            **(data_state or {}),
        }
        self.average = None
        if cfg.TRAIN.get("ema_decay"):
            self.average = GeneratorAverage(
                model.generator, cfg.TRAIN.ema_decay, cfg.TRAIN.ema_start
            )
            self.resumable["generator_average"] = self.average
        self.settings = training_settings(cfg, data)
        self.history, self.partial = resumption.load(cfg, self.resumable, self.settings)
        self.budget = TimeBudget(self, self.partial or (self.history[-1] if self.history else {}))
        self.set_length(self.budget.epochs, self.budget.length)
        self.progress = resumption.resume(self)  # and self.files, the run's files

    def continue_loaders(self, iterations: int) -> None:
        """The constraints over data sets read on as after `iterations` generator iterations."""
        for solver, per_iteration in (
            (self.critic_solver, self.cfg.TRAIN.n_critic),
            (self.generator_solver, 1),
        ):
            adapter.continue_loaders(solver, iterations * per_iteration)

    def train(self) -> list:
        """Train to the end; returns the epoch log."""
        for epoch in self.epochs():
            for _ in self.iterations(epoch):
                self.step(epoch)
            self.end_epoch(epoch)
        return self.finish()

    def step(self, epoch: int) -> None:
        """One generator iteration: n_critic critic steps (each followed by weight clipping
        when `clip` is set), then one generator step."""
        for _ in range(self.cfg.TRAIN.n_critic):
            with frozen(self.model.generator):  # generated samples are constants here
                adapter.train_step(self.critic_solver, epoch)
            clip_weights(self.model.critic, self.clip)
        with frozen(self.model.critic):  # no gradients for the critic's parameters
            adapter.train_step(self.generator_solver, epoch)

    def set_length(self, epochs: int, iters_per_epoch: Optional[int] = None) -> None:
        """Train `epochs` epochs (of `iters_per_epoch`): the Solvers' step counts and the
        learning-rate decay span them, from each network's peak_rate x the plan's rate scale."""
        self.cfg.TRAIN.epochs = epochs
        if iters_per_epoch:
            self.cfg.TRAIN.iters_per_epoch = iters_per_epoch
        total = epochs * self.cfg.TRAIN.iters_per_epoch
        for solver, steps, network in (
            (self.critic_solver, self.cfg.TRAIN.n_critic, "critic"),
            (self.generator_solver, 1, "generator"),
        ):
            adapter.set_length(
                solver,
                total * steps,
                epochs,
                peak_rate(self.cfg.TRAIN, network) * self.budget.rate_scale,
            )
        if hasattr(self, "progress"):
            self.progress.total = total

    def epochs(self) -> Iterator[int]:
        """The epochs still to run (an interrupted one first; with TRAIN.minutes, after a
        trial epoch 1 that plans the run). Ctrl-C or SIGTERM during an epoch's evaluation
        and files stop the run once its checkpoint is written."""
        if self.budget.calibrating:
            with signals.graceful():  # a signal here stops the first real iteration
                yield 1
            self.progress.restart()  # speed and time left count from the real start
        epoch = len(self.history)
        while epoch < self.cfg.TRAIN.epochs:
            epoch += 1
            self.tic = time.perf_counter()
            with signals.graceful():
                yield epoch
            resumption.stop_after_epoch(epoch, self.files.continue_with())

    def iterations(self, epoch: int) -> Iterator[int]:
        """The epoch's generator iterations, each from the random state its number gives
        (noise and interpolates, reproducible on resume); after each, a diverged loss stops
        the run, a progress line follows when due, and Ctrl-C or SIGTERM stop it here."""
        if self.budget.calibrating:
            yield from self.budget.trial_iterations()
            return
        first, self.epoch_before = 0, 0.0
        if self.partial:  # the rest of an interrupted epoch
            first, self.epoch_before = self.partial["iteration"], self.partial["epoch_seconds"]
            self.partial = None
        with signals.graceful():
            for i in range(first, self.cfg.TRAIN.iters_per_epoch):
                iteration = (epoch - 1) * self.cfg.TRAIN.iters_per_epoch + i + 1
                paddle.seed(self.cfg.seed * 1_000_003 + iteration)
                yield iteration
                self.after_iteration(epoch, i, iteration)
        self.epoch_seconds = (
            self.epoch_before + time.perf_counter() - self.tic,
            self.progress.seconds(),
        )
        # one model in every process before the epoch's evaluation and files
        parallel.average_statistics(self.model.generator, self.model.critic)

    def after_iteration(self, epoch: int, i: int, iteration: int) -> None:
        """The moving average moves; the held-out cost when due; with each progress line, a
        diverged loss stops the run (the losses stay on the device in between: no step
        waits for them); a signal received stops the run here (under the launcher, checked
        about once a second: every process at the same iteration, see signal_every)."""
        if self.average is not None:
            self.average.update(iteration, self.progress.total)
        if self.held_out.due(iteration):
            self.held_out.measure(iteration, self.files)
        if self.progress.due(iteration):  # with the latest held-out cost not shown
            divergence.check_losses(self, iteration)  # NaN, Inf or beyond divergence_bound
            self.progress.log(
                iteration,
                self.critic_solver,
                self.generator_solver,
                self.critic_terms,
                self.files,
                self.held_out.pop_unshown(),
            )
        if iteration % self.signal_every == 0:
            signum = parallel.max_over_processes(signals.requested() or 0)
            if signum:
                resumption.stop(self, i + 1, iteration, signum)

    def end_epoch(self, epoch: int) -> None:
        """The epoch's check and plot, then its record (losses, speed, metrics) into the log
        and the checkpoint; weights, checkpoint and monitors by rank 0 (after a trial epoch:
        the plan)."""
        metrics = {}
        if self.check is not None and epoch_due(self.cfg.TRAIN, epoch):
            with self.budget.timed_check():
                metrics = self.check(epoch)
        if self.plot is not None and parallel.is_main_process():
            self.plot(epoch)
        if self.budget.calibrating:
            return self.budget.end_trial(metrics)
        divergence.check_losses(self, epoch * self.cfg.TRAIN.iters_per_epoch)
        self.signal_every = parallel.signal_every(
            self.epoch_seconds[0] / self.cfg.TRAIN.iters_per_epoch
        )
        solvers = (self.critic_solver, self.generator_solver)
        record = epoch_record(self.cfg, epoch, *solvers, self.critic_terms, *self.epoch_seconds)
        self.budget.follow_pace(epoch)
        record.update(self.budget.record())
        record.update(self.held_out.epoch_means())
        record.update(metrics)
        divergence.check_record(self, record)  # a sound epoch before its checkpoint
        self.history.append(record)
        self.files.save_epoch(self.history)
        log_epoch(self.cfg, record, self.progress.eta(record["iteration"]), list(metrics))

    def finish(self) -> list:
        """losses.png and losses.json (rank 0) and the closing line; returns the epoch log."""
        self.files.save_final(self.history)
        self.budget.finished()
        return self.history
