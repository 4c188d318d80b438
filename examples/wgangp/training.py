"""The alternating WGAN-GP training loop over two ppsci Solvers, with resume.

Each generator iteration is n_critic critic steps, then one generator step; progress lines
every log_freq iterations; weights, checkpoints and the epoch log every epoch.
"""

import contextlib
import datetime
import sys
import time
from os import path as osp
from typing import Callable, Dict, Optional

import numpy as np
import paddle
import paddle.distributed as dist
import ppsci
from ppsci.utils import logger

import parallel
import plots
from checkpoints import load_checkpoint, save_checkpoint
from errors import UsageError
from monitor import Monitor
from weights import save_json, save_weights


class StreamConstraint(ppsci.constraint.SupervisedConstraint):
    """SupervisedConstraint fed by sample_fn(): a fresh global batch every step (ppsci's
    ContinuousNamedArrayDataset), of which this process takes its rows (local_rows).

    ppsci builds no loader for a stream when several processes run, as it cannot shard
    one; this stream shards itself, so it is its own loader, as ppsci makes it on one
    process.
    """

    def __init__(self, sample_fn: Callable[[], Dict[str, np.ndarray]], loss,
                 output_expr: Optional[Dict[str, Callable]] = None, name: str = "Sup"):
        dataset = ppsci.data.dataset.ContinuousNamedArrayDataset(
            lambda: parallel.local_rows(sample_fn()), lambda _: {})
        self.input_keys, self.output_expr = dataset.input_keys, output_expr or {}
        self.output_keys = tuple(self.output_expr)
        self.data_loader, self.data_iter = dataset, iter(dataset)
        self.loss, self.name = loss, name


class GeneratorAndCritic(ppsci.arch.Arch):
    """The Solvers' model: the generator's forward, holding the critic as well.

    With several processes, ppsci wraps its model in DataParallel and averages the
    gradients of the model's parameters only; holding the critic here makes it average
    the critic's too (each step, only the unfrozen network has gradients).
    """

    def __init__(self, generator: paddle.nn.Layer, critic: paddle.nn.Layer):
        super().__init__()
        self.generator, self.critic = generator, critic
        self.input_keys, self.output_keys = generator.input_keys, generator.output_keys

    def forward(self, inputs):
        return self.generator(inputs)


def learning_rate(train_cfg, steps_per_epoch: int):
    """TRAIN.learning_rate, or with TRAIN.lr_decay a schedule decaying linearly to 0 over
    the run, one decrement per optimizer step."""
    if not train_cfg.get("lr_decay", False):
        return train_cfg.learning_rate
    return ppsci.optimizer.lr_scheduler.Linear(
        train_cfg.epochs, steps_per_epoch, train_cfg.learning_rate)()


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


_NO_STEP_LOG = sys.maxsize  # ppsci's per-step log; Progress logs instead
_LOGGED = ("epoch", "iteration", "critic_loss", "generator_loss", "wasserstein",
           "gradient_penalty", "iters_per_second", "seconds", "learning_rate_critic",
           "learning_rate_generator", "modes_total")


def train_alternately(cfg, model: GeneratorAndCritic, critic_solver, generator_solver,
                      data_state: Dict[str, object],
                      on_epoch_end: Optional[Callable[[int], Optional[dict]]] = None) -> list:
    """Run cfg.TRAIN.epochs x cfg.TRAIN.iters_per_epoch generator iterations.

    Each generator iteration is one train_epoch_func call of critic_solver (its
    iters_per_epoch = n_critic steps) and one of generator_solver (1 step). Solver.train()
    is not used because it writes a checkpoint on every call. data_state names what else
    a checkpoint must hold to continue exactly (the numpy Generator and data streams the
    constraints draw from). on_epoch_end(epoch) may return metrics to log with the epoch.
    Under paddle.distributed.launch every process runs this; rank 0 alone writes files
    and calls on_epoch_end. Returns the epoch log.
    """
    for solver in (critic_solver, generator_solver):
        solver.max_steps = -1  # read by ppsci's step logger, which we keep quiet
    if dist.get_world_size() > 1:
        logger.info(f"Data parallel on {dist.get_world_size()} processes: each computes its "
                    f"share of every global batch (TRAIN.batch_size={cfg.TRAIN.batch_size}) "
                    "and the learning rate is unchanged, so ppsci's advice above to scale it "
                    "does not apply.")
    resumable = {"generator": model.generator, "critic": model.critic,
                 "critic_optimizer": critic_solver.optimizer,
                 "generator_optimizer": generator_solver.optimizer, **data_state}
    history = load_checkpoint(cfg.TRAIN.checkpoint_path, resumable) \
        if cfg.TRAIN.checkpoint_path else []
    monitor = Monitor(cfg) if parallel.is_main_process() else None
    progress = Progress(cfg, len(history) * cfg.TRAIN.iters_per_epoch,
                        history[-1]["seconds"] if history else 0.0)
    logger.info(f"Training generator iterations {progress.done + 1} to {progress.total} "
                f"({cfg.TRAIN.n_critic} critic steps and 1 generator step each); a progress "
                f"line follows iteration {progress.done + 1}, then every {cfg.log_freq}.")
    for epoch in range(len(history) + 1, cfg.TRAIN.epochs + 1):
        paddle.seed(cfg.seed + epoch)  # the penalty's random interpolates, reproducible on resume
        tic = time.perf_counter()
        for i in range(cfg.TRAIN.iters_per_epoch):
            train_iteration(model, critic_solver, generator_solver, epoch)
            iteration = (epoch - 1) * cfg.TRAIN.iters_per_epoch + i + 1
            stop_if_diverged(cfg, critic_solver, generator_solver, iteration)
            if progress.due(iteration):
                progress.log(iteration, critic_solver, generator_solver, monitor)
        seconds = time.perf_counter() - tic
        record = epoch_record(cfg, epoch, critic_solver, generator_solver, seconds,
                              progress.seconds())
        parallel.average_statistics(model.generator, model.critic)
        if parallel.is_main_process():
            save_weights(model.generator, osp.join(cfg.output_dir, "model_generator.pdparams"))
            save_weights(model.critic, osp.join(cfg.output_dir, "model_discriminator.pdparams"))
            if on_epoch_end is not None:
                record.update(on_epoch_end(epoch) or {})
            save_checkpoint(cfg.output_dir, cfg.TRAIN.get("save_freq", 0), history + [record],
                            resumable)
            monitor.scalars({f"epoch/{k}": v for k, v in record.items()
                             if isinstance(v, (int, float)) and k != "epoch"}, record["iteration"])
            monitor.image("samples", osp.join(cfg.output_dir, "plots", f"epoch_{epoch:04d}.png"),
                          record["iteration"])
        history.append(record)
        log_epoch(cfg, record, progress.eta(record["iteration"]))
    if parallel.is_main_process():
        plots.plot_losses(history, osp.join(cfg.output_dir, "losses.png"))
        save_json(history, osp.join(cfg.output_dir, "losses.json"))
        monitor.close()
        logger.info(f"Training done after epoch {len(history)}; a longer run continues "
                    f"with TRAIN.checkpoint_path={osp.abspath(cfg.output_dir)}/checkpoints/latest")
    return history


def train_iteration(model: GeneratorAndCritic, critic_solver, generator_solver, epoch: int):
    """n_critic critic steps, then one generator step."""
    with frozen(model.generator):  # the critic step treats generated samples as constants
        critic_solver.train_epoch_func(critic_solver, epoch, _NO_STEP_LOG)
    with frozen(model.critic):  # the generator step leaves no gradients in the critic
        generator_solver.train_epoch_func(generator_solver, epoch, _NO_STEP_LOG)


def stop_if_diverged(cfg, critic_solver, generator_solver, iteration: int) -> None:
    """Stop at the first NaN or Inf loss; the weights of the last finished epoch stay."""
    for name, solver in (("critic", critic_solver), ("generator", generator_solver)):
        loss = solver.train_output_info["loss"].val  # ppsci already read it to the host
        if not np.isfinite(loss):
            raise UsageError(f"training diverged: the {name} loss is {loss} at generator "
                             f"iteration {iteration}; the weights of the last finished epoch "
                             f"are kept in {cfg.output_dir}. Lower TRAIN.learning_rate or "
                             "check the data.", code=3)


def _critic_loss(critic_solver):
    return next(iter(critic_solver.constraint.values())).loss.loss_expr  # a CriticLoss


def _clock(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(round(seconds))))


class Progress:
    """A log line after the first generator iteration this process runs, then every log_freq:
    the epoch's mean losses so far, iterations per second and the time left (h:mm:ss)."""

    def __init__(self, cfg, done: int, seconds_before: float):
        self.cfg, self.done, self.before = cfg, done, seconds_before
        self.total = cfg.TRAIN.epochs * cfg.TRAIN.iters_per_epoch
        self.start = self.last_time = time.perf_counter()
        self.last_iteration = done

    def seconds(self) -> float:
        """Training time of the whole run, earlier processes' included (resume)."""
        return self.before + time.perf_counter() - self.start

    def eta(self, iteration: int) -> str:
        rate = (iteration - self.done) / max(time.perf_counter() - self.start, 1e-9)
        return _clock((self.total - iteration) / rate)

    def due(self, iteration: int) -> bool:
        return iteration == self.done + 1 or iteration % self.cfg.log_freq == 0

    def log(self, iteration: int, critic_solver, generator_solver, monitor) -> None:
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
            + ", ".join(f"{k}: {v:.5f}" for k, v in values.items())
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


def log_epoch(cfg, record: dict, eta: str) -> None:
    extra = "".join(f", {k}: {v:.4g}" for k, v in record.items() if k not in _LOGGED)
    parallel.log_every_rank(
        f"[Train][Epoch {record['epoch']}/{cfg.TRAIN.epochs}][Iter {record['iteration']}] "
        f"critic_loss: {record['critic_loss']:.5f}, "
        f"generator_loss: {record['generator_loss']:.5f}, "
        f"wasserstein: {record['wasserstein']:.5f}, "
        f"gradient_penalty: {record['gradient_penalty']:.5f}{extra}, "
        f"{record['iters_per_second']:.2f} it/s, eta: {eta}"
    )
