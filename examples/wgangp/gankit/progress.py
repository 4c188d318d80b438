"""Progress and records of the alternating loop: a line every log_freq iterations, each
epoch's record of losses, loss terms, speed and learning rates, and its line."""

import datetime
import time
from typing import Dict, Optional

import numpy as np
import paddle
from ppsci.utils import logger

from . import parallel
from . import ppsci_adapter as adapter
from .solvers import quiet

# an epoch record's entries that are no loss, term or metric
_BOOKKEEPING = (
    "epoch",
    "iteration",
    "iters_per_second",
    "seconds",
    "learning_rate_critic",
    "learning_rate_generator",
    "planned_iterations",
    "planned_epochs",
    "planned_rate_scale",
)


def spread(x):
    """The sample standard deviation of a 1-D tensor, bit for bit as paddle.std computes it
    on a CPU, without its degrees-of-freedom check: that check reads to the host every call
    (a logged term of every critic step; CUDA builds use a kernel of their own)."""
    u = paddle.mean(x, None, True)
    out = paddle.sum(paddle.pow(x - u, 2), None, keepdim=False, dtype=x.dtype)
    out /= paddle.full([], x.shape[0] - 1, x.dtype)
    return paddle.sqrt(out)


class TermMeter:
    """Running means of loss terms, kept on the device and read once per epoch."""

    def __init__(self):
        self.sums, self.count = {}, 0

    def add(self, **terms):
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0) + v.detach()
        self.count += 1

    def means(self) -> Dict[str, float]:
        return {k: float(v) / self.count for k, v in self.sums.items()}

    def pop_means(self) -> Dict[str, float]:
        means = self.means()
        self.sums, self.count = {}, 0
        return means


def describe_method(cfg) -> str:
    """The loss and optimizer a run trains with, in words."""
    loss, train = cfg.LOSS, cfg.TRAIN
    kind = loss.get("kind", "wgan-gp")
    method = {
        "wgan-gp": f"WGAN-GP (gradient penalty, lambda {loss.lambda_gp:g})",
        "wgan": f"WGAN (weight clipping at +-{loss.get('clip', 0):g})",
        "dcgan": "the standard GAN (sigmoid cross-entropy)",
    }[kind]
    rate = f"{train.learning_rate:g}"
    if train.get("critic_learning_rate") is not None:
        rate = f"{train.critic_learning_rate:g} (critic) and {train.learning_rate:g} (generator)"
    if train.get("optimizer", "adam") == "rmsprop":
        rule = f"RMSProp at {rate}"
    else:
        rule = f"Adam at {rate}, betas {train.beta1:g}, {train.beta2:g}"
    power = train.get("lr_decay_power", 1.0)
    decay = (
        ""
        if not train.get("lr_decay", False)
        else ", decaying linearly to 0"
        if power == 1
        else f", decaying to 0 as (1 - i/N)^{power:g}"
    )
    return f"{method} with {rule}{decay}"


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

    def log(
        self,
        iteration: int,
        critic_solver,
        generator_solver,
        terms,
        monitor,
        dev: Optional[Dict[str, float]] = None,
    ) -> None:
        """`dev`: held-out costs computed since the last line, shown after the training's."""
        now = time.perf_counter()
        speed = (iteration - self.last_iteration) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_iteration = now, iteration
        values = parallel.mean_over_processes(
            {
                "critic_loss": adapter.mean_loss(critic_solver),
                "generator_loss": adapter.mean_loss(generator_solver),
                **terms.means(),
            }
        )
        parallel.log_every_rank(
            f"[Train][Iter {iteration}/{self.total}] "
            + ", ".join(f"{k}: {number(v)}" for k, v in {**values, **(dev or {})}.items())
            + f", {speed:.2f} it/s, eta: {self.eta(iteration)}"
        )
        if monitor is not None:
            monitor.scalars({f"train/{k}": v for k, v in values.items()}, iteration)


def epoch_record(
    cfg,
    epoch: int,
    critic_solver,
    generator_solver,
    terms: TermMeter,
    seconds: float,
    total_seconds: float,
) -> dict:
    """The epoch's mean losses and loss terms (`terms`, over processes), speed and learning
    rates; resets the running means."""
    record = {
        "epoch": epoch,
        "iteration": epoch * cfg.TRAIN.iters_per_epoch,
        **parallel.mean_over_processes(
            {
                "critic_loss": adapter.mean_loss(critic_solver),
                "generator_loss": adapter.mean_loss(generator_solver),
                **terms.pop_means(),
            }
        ),
        "iters_per_second": cfg.TRAIN.iters_per_epoch / seconds,
        "seconds": total_seconds,
        "learning_rate_critic": adapter.optimizer_of(critic_solver).get_lr(),
        "learning_rate_generator": adapter.optimizer_of(generator_solver).get_lr(),
    }
    for solver in (critic_solver, generator_solver):
        adapter.clear_losses(solver)
    return record


def log_epoch(cfg, record: dict, eta: str, metrics=()) -> None:
    """The epoch's line: the losses and the critic's measured terms (5 decimals), the
    epoch's `metrics` (4 significant digits), speed and time left."""
    terms = ", ".join(
        f"{k}: {number(v)}" for k, v in record.items() if k not in _BOOKKEEPING and k not in metrics
    )
    extra = "".join(f", {k}: {record[k]:.4g}" for k in metrics if k in record)
    parallel.log_every_rank(
        f"[Train][Epoch {record['epoch']}/{cfg.TRAIN.epochs}][Iter {record['iteration']}] "
        f"{terms}{extra}, {record['iters_per_second']:.2f} it/s, eta: {eta}"
    )


def log_start(cfg, done: int, total: int, trial_iterations: int = 0) -> None:
    """The run's first line: the method, the iterations ahead (with TRAIN.minutes' trial of
    `trial_iterations`, those that fit the budget), when progress lines follow."""
    steps = f"{cfg.TRAIN.n_critic} critic step{'s' if cfg.TRAIN.n_critic > 1 else ''}"
    last = (
        (
            f"as many as fit TRAIN.minutes={cfg.TRAIN.minutes:g}, planned after "
            f"{trial_iterations} timed ones"
        )
        if trial_iterations
        else total
    )
    if done >= total and not trial_iterations:  # a resume of a run that had finished
        logger.info(
            f"Nothing left to train: the checkpoint has done all {total} generator "
            f"iterations of TRAIN.epochs={cfg.TRAIN.epochs}; its networks are saved here "
            "and evaluated (a larger TRAIN.epochs trains on)."
        )
        return
    logger.info(
        f"Training {describe_method(cfg)}: generator iterations {done + 1} to "
        f"{last} ({steps} and 1 generator step each); a progress line follows "
        f"iteration {done + 1}, then every {cfg.log_freq}."
    )


def running_means(critic_solver, generator_solver, terms: TermMeter, dev_values: list) -> dict:
    """The running means of the epoch so far (ppsci's, the critic's terms, held-out costs),
    for a checkpoint taken mid-epoch."""
    meters = {
        name: adapter.loss_meters(solver)
        for name, solver in (("critic", critic_solver), ("generator", generator_solver))
    }
    meters["terms"] = {"count": terms.count, "sums": {k: v.numpy() for k, v in terms.sums.items()}}
    meters["dev"] = list(dev_values)
    return meters


def restore_running_means(meters: dict, critic_solver, generator_solver, terms: TermMeter) -> list:
    """Put running_means back; returns the held-out costs."""
    for name, solver in (("critic", critic_solver), ("generator", generator_solver)):
        adapter.restore_loss_meters(solver, meters[name])
    terms.count = meters["terms"]["count"]
    terms.sums = {k: paddle.to_tensor(v) for k, v in meters["terms"]["sums"].items()}
    return list(meters.get("dev", []))


class HeldOutCosts:
    """The critic's cost on held-out data (the paper's dev_cost): `measure()` runs
    `held_out()` every TRAIN.dev_freq iterations (means over processes), for the monitors,
    the next progress line (`unshown`) and the epoch's record (`epoch_means`)."""

    def __init__(self, held_out, every: int):
        self.held_out, self.every = held_out, every if held_out else 0
        self.values, self.unshown = [], {}  # the epoch's costs so far; the latest not logged

    def due(self, iteration: int) -> bool:
        return bool(self.every) and iteration % self.every == 0

    def measure(self, iteration: int, files) -> None:
        with quiet():  # the validator's own lines
            dev = parallel.mean_over_processes({f"dev_{k}": v for k, v in self.held_out().items()})
        self.values.append(dev)
        self.unshown = dev
        files.scalars({f"train/{k}": v for k, v in dev.items()}, iteration)

    def pop_unshown(self) -> dict:
        unshown, self.unshown = self.unshown, {}
        return unshown

    def epoch_means(self) -> dict:
        """The epoch's means of each cost; the next epoch starts afresh."""
        means = {
            key: float(np.mean([dev[key] for dev in self.values]))
            for key in (self.values[0] if self.values else {})
        }
        self.values = []
        return means

    def clear(self) -> None:
        self.values, self.unshown = [], {}
