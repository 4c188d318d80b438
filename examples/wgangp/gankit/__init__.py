"""The machinery under the WGAN-GP examples' scripts: the alternating trainer, its time
budget, checkpoints and progress, the paper's networks, Inception and PaddleScience's
published networks for evaluation, start-up checks, files and processes.

The scripts use the names below; the modules beside them hold the rest.
"""

from .networks import GeneratorAndCritic, frozen
from .ppsci_adapter import StreamConstraint
from .solvers import array_loader, optimizer, quiet
from .trainer import AlternatingTrainer, clip_weights, epoch_due

__all__ = ["AlternatingTrainer", "GeneratorAndCritic", "StreamConstraint", "array_loader",
           "clip_weights", "epoch_due", "frozen", "optimizer", "quiet"]
