"""What the scripts build their Solvers from: optimizers at the run's learning rates, the
loader of an array data set; ppsci's set-up lines once a run, however many Solvers log them."""

import contextlib
import logging
from typing import Dict

import numpy as np
import paddle.distributed as dist
import ppsci


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
        train_cfg.epochs,
        steps_per_epoch,
        peak_rate(train_cfg, network),
        power=train_cfg.get("lr_decay_power", 1.0),
    )()


def steps_per_epoch(train_cfg, network: str) -> int:
    """`network`'s optimizer steps in an epoch: TRAIN.n_critic per generator iteration for
    the critic, one for the generator."""
    return train_cfg.iters_per_epoch * (train_cfg.get("n_critic", 1) if network == "critic" else 1)


def optimizer(train_cfg, network: str, rate=None):
    """ppsci's optimizer TRAIN.optimizer names for `network` ("critic" or "generator"), at
    learning_rate(...) over its steps_per_epoch (or `rate`): Adam with TRAIN.beta1 and
    beta2, or RMSProp with TensorFlow's decay 0.9 and epsilon 1e-10 (weight clipping)."""
    if rate is None:
        rate = learning_rate(train_cfg, steps_per_epoch(train_cfg, network), network)
    if train_cfg.get("optimizer", "adam") == "rmsprop":
        return ppsci.optimizer.RMSProp(rate, rho=0.9, epsilon=1e-10)
    return ppsci.optimizer.Adam(rate, train_cfg.beta1, train_cfg.beta2)


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


# what every ppsci Solver logs as it is built, the same for each
SET_UP_LINES = ("Using paddlepaddle ", "Set to_static=", "VisualDL is enabled", "TensorboardX is")


class _OnceEach(logging.Filter):
    def __init__(self):
        super().__init__()
        self.seen = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith(SET_UP_LINES):
            return True
        first = message not in self.seen
        self.seen.add(message)
        return first


def set_up_lines_once() -> None:
    """ppsci's set-up lines (SET_UP_LINES) logged by the first Solver only: a script builds one
    per network and more to evaluate."""
    log = logging.getLogger("ppsci")
    if not any(isinstance(f, _OnceEach) for f in log.filters):
        log.addFilter(_OnceEach())
