"""Divergence beyond NaN: a run whose losses or gradient norms leave any sane range stops.

The bound, `divergence_bound` (1e6 by default; null: none), is on the absolute value of each
Solver's loss (its largest since the epoch began, read with each progress line) and of
the epoch's means of the critic's terms (Wasserstein estimate, gradient penalty, gradient
norms at the interpolates) and held-out costs, before the epoch's checkpoint is written.
How it was chosen: the critic's cost in the paper's published curves, and both costs in
the runs logged here, stay in the tens at most (the toy at its settings: critic loss 1.6 to
-0.02, generator loss -3.7 to -1.7, gradient norm at most 1.7; the WGAN's clipped critic:
below 1; the own-data ResNets' hour on MNIST digits: critic loss -1.4 to 0.5, generator loss
with its class term -0.9 to 10.4, gradient norm 1.04 to 1.09; the 64x64 fields' at most 9.7),
and the penalty holds the gradient norm near 1. 1e6 leaves a margin of 1e4 or more
over these, while a run that explodes without NaN leaves it at once (TRAIN.learning_rate=1e3
on the toy: a critic loss of 5e27 in its first iteration) or within a few epochs (the toy
with no penalty, LOSS.lambda_gp=0, at 1e-2: the penalty it would have grows tenfold an epoch,
3e3 to 2e6 in epochs 1 to 4, while its losses stay in the hundreds). NaN and Inf always stop, whatever the bound.
"""

import math
import os
from os import path as osp
from typing import Dict, Optional

from . import parallel
from . import ppsci_adapter as adapter
from .errors import UsageError
from .files import shell_word

DEFAULT = 1e6
CODE = 3  # the exit status of a diverged run
EPOCH_TERMS = (
    "critic_loss",
    "generator_loss",
    "wasserstein",
    "gradient_penalty",
    "grad_norm_mean",
    "grad_norm_std",
)


def bound(cfg) -> Optional[float]:
    value = cfg.get("divergence_bound", DEFAULT)
    return None if value is None else float(value)


def check_losses(run, iteration: int) -> None:
    """With a progress line and at an epoch's end: each Solver's loss of the largest
    magnitude since the epoch began (NaN or Inf if one was), kept on the device in between.
    Under the launcher each process has the loss of its own rows: the processes agree on
    the largest magnitude (NaN as Inf), so that all of them stop, or none."""
    values = {
        f"the {name} loss": float(adapter.largest_loss(solver))
        for name, solver in (("critic", run.critic_solver), ("generator", run.generator_solver))
    }
    worst = parallel.max_over_processes_of(
        [abs(v) if math.isfinite(v) else math.inf for v in values.values()]
    )
    limit = bound(run.cfg)
    for (what, value), largest in zip(list(values.items()), worst):
        if _sound(value, limit) and not _sound(largest, limit):
            del values[what]
            values[f"{what} of another process, in magnitude,"] = largest
    check(run, iteration, values)


def _sound(value: float, limit: Optional[float]) -> bool:
    return math.isfinite(value) and (limit is None or abs(value) <= limit)


def check_record(run, record: dict) -> None:
    """At an epoch's end, before its checkpoint: the epoch's mean losses and terms."""
    values = {
        f"the epoch's mean {key}": value
        for key, value in record.items()
        if (key in EPOCH_TERMS or key.startswith("dev_")) and isinstance(value, (int, float))
    }
    check(run, record["iteration"], values)


def check(run, iteration: int, values: Dict[str, float]) -> None:
    limit = bound(run.cfg)
    for what, value in values.items():
        value = float(value)
        if _sound(value, limit):
            continue
        beyond = (
            ""
            if not math.isfinite(value)
            else f", beyond the bound of +-{limit:g} (divergence_bound)"
        )
        going_on = (
            ""
            if not math.isfinite(value)
            else "; divergence_bound=null (or a larger bound) trains on regardless"
        )
        rates = "TRAIN.learning_rate" + (
            " or TRAIN.critic_learning_rate"
            if run.cfg.TRAIN.get("critic_learning_rate") is not None
            else ""
        )
        shown = f"{value:.4g}" if math.isfinite(value) else str(value)
        error = UsageError(
            f"training diverged: {what} is {shown} at generator iteration "
            f"{iteration}{beyond}; {kept(run)}. Lower {rates} or check the data{going_on}.",
            code=CODE,
        )
        # every process decided this together: all say it before any ends (the launcher
        # stops the others when the first ends)
        parallel.barrier()
        raise error


def kept(run) -> str:
    """What of the run is sound and stays: its last epoch's checkpoint, or the one it resumed
    from."""
    output_dir = osp.abspath(run.cfg.output_dir)
    latest = osp.join(output_dir, "checkpoints", "latest")
    if osp.isfile(latest + ".pdckpt"):
        epochs = len(run.history)
        return (
            f"the last sound checkpoint, after epoch {epochs}, is kept "
            f"({shell_word('TRAIN.checkpoint_path=' + latest)}; its weights are in "
            f"{shell_word(output_dir)})"
        )
    if run.cfg.TRAIN.get("checkpoint_path"):
        return (
            f"the checkpoint it resumed from is kept as it was "
            f"({shell_word('TRAIN.checkpoint_path=' + os.fspath(run.cfg.TRAIN.checkpoint_path))})"
        )
    return "no epoch had finished, so no weights were kept"
