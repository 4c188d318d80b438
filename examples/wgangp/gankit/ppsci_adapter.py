"""The one module that knows ppsci's internals (paddlesci 1.4.0), each use with its reason.

Why at all: the alternating loop needs one optimizer step of a Solver at a time (n_critic
critic steps, each followed by weight clipping in the paper's WGAN baseline, then one
generator step), and ppsci's `Solver.train()` runs whole epochs and writes a checkpoint on
every call (`Solver.train` in ppsci/solver/solver.py): 5 + 1 checkpoint files a generator
iteration. So the Solvers are built with iters_per_epoch=1, each step is one call of the
epoch function `Solver.train()` calls, and what `Solver.train()` would set or read around it
(the run's step count, the learning-rate schedule's length, the running losses) is set and
read here. tests/test_ppsci_adapter.py checks each assumption against the installed ppsci
and names it when it fails.
"""

import sys
from typing import Callable, Dict, Optional

import numpy as np
import paddle
import paddle.distributed as dist
import ppsci
from ppsci.utils.misc import AverageMeter

from . import parallel

# ppsci's own per-step lines off: the trainer's progress line logs instead
NO_STEP_LINES = sys.maxsize


def train_step(solver, epoch: int) -> None:
    """One optimizer step of `solver` (built with iters_per_epoch=1): ppsci's epoch
    function, without Solver.train()'s checkpoint."""
    solver.train_epoch_func(solver, epoch, NO_STEP_LINES)


def last_loss(solver) -> float:
    """The loss of `solver`'s last step; ppsci's step has read it to the host already."""
    return solver.train_output_info["loss"].val


def mean_loss(solver) -> float:
    """The mean loss of `solver`'s steps since clear_losses (ppsci's running mean)."""
    return solver.train_output_info["loss"].avg


def clear_losses(solver) -> None:
    """Start ppsci's running means of `solver`'s losses afresh (Solver.train() does it each epoch)."""
    solver.train_output_info.clear()


def loss_meters(solver) -> Dict[str, list]:
    """ppsci's running means of `solver`'s losses, for a checkpoint taken mid-epoch."""
    return {key: [m.val, m.avg, m.sum, m.count] for key, m in solver.train_output_info.items()}


def restore_loss_meters(solver, state: Dict[str, list]) -> None:
    for key, (val, avg, total, count) in state.items():
        meter = AverageMeter(key, "7.5f")
        meter.val, meter.avg, meter.sum, meter.count = val, avg, total, count
        solver.train_output_info[key] = meter


def optimizer_of(solver):
    """The optimizer `solver` steps (under the launcher, ppsci's data-parallel wrapper)."""
    return solver.optimizer


def set_length(solver, steps: int, epochs: int, peak_rate: float) -> None:
    """A run of `steps` optimizer steps in `epochs` epochs: the epoch function reads the run's
    step count that Solver.train() sets, and a decaying rate (ppsci's Linear, Paddle's
    PolynomialDecay) spans `steps` from `peak_rate`."""
    solver.max_steps = steps
    solver.epochs = epochs
    scheduler = solver.lr_scheduler
    if scheduler is not None and hasattr(scheduler, "decay_steps"):
        scheduler.decay_steps = steps
        scheduler.base_lr = peak_rate
        scheduler.last_lr = scheduler.get_lr()


def swap_optimizer(solver, optimizer, scheduler) -> tuple:
    """Step `solver` with `optimizer` (and its `scheduler`) until put_back(solver, returned):
    the time budget's trial iterations take no step of the run's own optimizers."""
    saved = (solver.global_step, solver.optimizer, solver.lr_scheduler)
    solver.optimizer, solver.lr_scheduler = optimizer, scheduler
    return saved


def put_back(solver, saved: tuple) -> None:
    solver.global_step, solver.optimizer, solver.lr_scheduler = saved
    clear_losses(solver)


class StreamConstraint(ppsci.constraint.SupervisedConstraint):
    """SupervisedConstraint over an endless stream: sample_fn() draws a fresh global batch
    every step (ppsci's ContinuousNamedArrayDataset), of which this process takes its rows.

    On one process this is ppsci's constructor as it is. On several, ppsci's loader refuses
    a stream (it cannot shard one); this stream shards itself (local_rows), so it keeps the
    dataset as its loader, as ppsci does on one process, setting what Solver reads.
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


def continue_loader(constraint, batches_read: int) -> None:
    """Make the constraint's loader continue after `batches_read` batches of a run, as that
    run did: the pass they end in, ordered as it was, from the batch after them (the
    constraint's iterator is what the epoch function draws from)."""
    sampler = constraint.data_loader.batch_sampler
    while not isinstance(sampler, paddle.io.DistributedBatchSampler):
        sampler = sampler.sampler  # ppsci wraps it for batch indexing
    passed, into = divmod(batches_read, len(constraint.data_loader))
    sampler.set_epoch(passed)
    constraint.data_iter = iter(constraint.data_loader)
    for _ in range(into):
        next(constraint.data_iter)
