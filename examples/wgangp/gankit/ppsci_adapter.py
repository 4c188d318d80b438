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

import math
import weakref
from typing import Callable, Dict, Optional

import numpy as np
import paddle
import paddle.distributed as dist
import ppsci
from paddle.distributed.fleet.utils import hybrid_parallel_util as hpu
from ppsci.autodiff import clear as clear_derivatives

from . import parallel


class LossMeter:
    """The running mean of a Solver's loss, as ppsci's AverageMeter keeps it (the sum of each
    loss x its batch size in Python floats, so the means are the same bit for bit), and the
    loss of the largest magnitude. A step only keeps its loss tensor (no device work, no
    wait for the device); they are read to the host together when a value is asked for."""

    def __init__(self):
        self.pending = []  # (loss tensor, batch size) of the steps not yet read
        self.sum, self.count, self.last, self.extreme = 0.0, 0, 0.0, 0.0

    def add(self, loss: paddle.Tensor, batch_size: int) -> None:
        self.pending.append((loss.detach(), batch_size))

    def read(self) -> None:
        """Fold the pending losses in, in order (one read to the host)."""
        if not self.pending:
            return
        values = paddle.stack([loss.reshape([]) for loss, _ in self.pending]).numpy()
        for value, (_, batch_size) in zip(values.tolist(), self.pending):
            self.sum += value * batch_size
            self.count += batch_size
            self.last = value
            if not math.isnan(self.extreme) and not abs(value) <= abs(self.extreme):
                self.extreme = value  # a NaN stays
        self.pending = []

    def mean(self) -> float:
        self.read()
        return self.sum / self.count if self.count else 0.0

    def largest(self) -> float:
        """The loss of the largest magnitude (NaN if one was)."""
        self.read()
        return self.extreme

    def state(self) -> list:
        """[last, mean, sum, count]: ppsci's AverageMeter's val, avg, sum, count."""
        self.read()
        return [self.last, self.mean(), self.sum, self.count]

    def set_state(self, state: list) -> None:
        self.last, _, self.sum, self.count = state
        self.extreme, self.pending = self.last, []


_meters: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _meter(solver) -> LossMeter:
    if solver not in _meters:
        _meters[solver] = LossMeter()
    return _meters[solver]


def train_step(solver, epoch: int) -> None:
    """One optimizer step of `solver` over its one constraint: what ppsci's epoch function
    (ppsci/solver/train.py) does for a step, in its order (so the results are the same bit
    for bit), without its reads of each loss to the host (`.item()`, `float()`: on a GPU each
    waits for the device) and its timing and logging; the loss stays on the device
    (LossMeter). ppsci's epoch function itself cannot be used: Solver.train() writes a
    checkpoint on every call, and the epoch function reads every loss term to the host."""
    constraint = solver.constraint[next(iter(solver.constraint))]
    try:
        input_dict, label_dict, weight_dict = next(constraint.data_iter)
    except StopIteration:
        constraint.data_iter = iter(constraint.data_loader)
        input_dict, label_dict, weight_dict = next(constraint.data_iter)
    for value in input_dict.values():
        if hasattr(value, "stop_gradient"):
            value.stop_gradient = False
    with solver.no_sync_context_manager(solver.world_size > 1, solver.model):
        with solver.autocast_context_manager(solver.use_amp, solver.amp_level):
            output_dict = solver.model(input_dict)
            data_dict = {**input_dict, **output_dict}
            for name, expr in constraint.output_expr.items():
                output_dict[name] = expr(data_dict)
            clear_derivatives()
            losses = constraint.loss(output_dict, label_dict, weight_dict)
            total_loss = solver.loss_aggregator(dict(losses), solver.global_step)
            # the running mean's terms, before an in-place sum could change them
            _meter(solver).add(total_loss, next(iter(input_dict.values())).shape[0])
        if solver.use_amp:
            total_loss = solver.scaler.scale(total_loss)
        total_loss.backward()
    if solver.world_size > 1:  # ppsci's fused all-reduce after no_sync (Paddle issue 48898)
        hpu.fused_allreduce_gradients(list(solver.model.parameters()), None)
    if solver.use_amp:
        solver.scaler.minimize(solver.optimizer, total_loss)
    else:
        solver.optimizer.step()
    solver.optimizer.clear_grad()
    if solver.lr_scheduler is not None and not solver.lr_scheduler.by_epoch:
        solver.lr_scheduler.step()
    solver.global_step += 1


def mean_loss(solver) -> float:
    """The mean loss of `solver`'s steps since clear_losses (one read to the host)."""
    return _meter(solver).mean()


def largest_loss(solver) -> float:
    """The loss of the largest magnitude among `solver`'s steps since clear_losses (read to
    the host; NaN or Inf when a loss was)."""
    return _meter(solver).largest()


def clear_losses(solver) -> None:
    """Start the running mean of `solver`'s losses afresh (each epoch, as Solver.train())."""
    _meters[solver] = LossMeter()


def loss_meters(solver) -> Dict[str, list]:
    """The running mean of `solver`'s loss, for a checkpoint taken mid-epoch (the layout of
    ppsci's AverageMeter: val, avg, sum, count)."""
    meter = _meter(solver)
    meter.read()
    return {"loss": meter.state()} if meter.count else {}


def restore_loss_meters(solver, state: Dict[str, list]) -> None:
    clear_losses(solver)
    if "loss" in state:
        _meter(solver).set_state(state["loss"])


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

    def __init__(
        self,
        sample_fn: Callable[[], Dict[str, np.ndarray]],
        loss,
        output_expr: Optional[Dict[str, Callable]] = None,
        name: str = "Sup",
    ):
        dataloader_cfg = {
            "dataset": {
                "name": "ContinuousNamedArrayDataset",
                "input": lambda: parallel.local_rows(sample_fn()),
                "label": lambda _: {},
            }
        }
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


def continue_loaders(solver, batches_read: int) -> None:
    """continue_loader for each of `solver`'s constraints over a data set (a StreamConstraint
    draws its batches: there is nothing to read on)."""
    for constraint in solver.constraint.values():
        if not isinstance(constraint, StreamConstraint):
            continue_loader(constraint, batches_read)
