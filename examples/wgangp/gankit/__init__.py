"""gankit: the machinery under the WGAN-GP examples' scripts.

The alternating trainer (trainer.py) and what it stands on: the time budget (budget.py),
progress lines and records (progress.py), the files of a run (run_files.py, checkpoints.py,
files.py), the one module that knows ppsci's internals (ppsci_adapter.py), processes and
signals (parallel.py, signals.py, startup.py); the data sets' readers (datasets.py; a user's
own data: own_data.py, and what the own-data script makes of it: own_data_run.py),
evaluations (evaluation.py), the metrics' arithmetic (metrics.py, classifier.py;
field_metrics.py and field_cache.py: the network-free ones for a user's own fields), the
paper's networks (networks/), Inception (inception/) and PaddleScience's published networks
(published/).

The names below are the scripts' API (the scripts import them from their modules, which
keeps their imports short); importing the package imports none of its modules
(environment.py runs before Paddle is imported), each name loads its module when used.
"""

import importlib

_API = {
    "AlternatingTrainer": "trainer",
    "clip_weights": "trainer",
    "epoch_due": "trainer",
    "StreamConstraint": "ppsci_adapter",
    "array_loader": "solvers",
    "optimizer": "solvers",
    "GeneratorAndCritic": "networks",
    "frozen": "networks",
}
__all__ = list(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
