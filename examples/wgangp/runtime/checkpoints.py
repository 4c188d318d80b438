"""Checkpoints: save and restore everything needed to continue a run exactly.

Networks, optimizers and their learning-rate schedules, data streams, random states and the
epoch log, in one pickle of arrays.
"""

import os
import pickle
from os import path as osp
from typing import Dict

import numpy as np
import paddle

from . import parallel
from .errors import UsageError
from .files import NumpyOnlyUnpickler, state_problems, summarise, write_atomically


def _to_numpy(obj):
    if isinstance(obj, paddle.Tensor):
        return obj.numpy()
    if isinstance(obj, dict):
        return {k: _to_numpy(v) for k, v in obj.items()}
    return obj


def _state_of(part) -> dict:
    if isinstance(part, np.random.Generator):
        return part.bit_generator.state
    return _to_numpy(part.state_dict())


def _restore(part, state, name: str, path: str) -> None:
    if isinstance(part, np.random.Generator):
        part.bit_generator.state = state
        return
    if isinstance(part, paddle.nn.Layer):
        problems = state_problems(part, state)
        if problems:
            raise UsageError(f"TRAIN.checkpoint_path={path}: its {name} does not fit this model "
                             f"({summarise(problems)}); resume with the settings the run was "
                             "started with.")
    part.set_state_dict(state)


def checkpoint_file(path: str) -> str:
    """ppsci's convention: <run dir>/checkpoints/latest names latest.pdckpt."""
    return path if str(path).endswith(".pdckpt") else f"{path}.pdckpt"


def save_checkpoint(output_dir: str, save_freq: int, history: list,
                    parts: Dict[str, object]) -> None:
    """checkpoints/latest.pdckpt (and epoch_N.pdckpt every save_freq epochs), atomically."""
    directory = osp.join(output_dir, "checkpoints")
    os.makedirs(directory, exist_ok=True)
    state = {"epoch": len(history), "history": history,
             **{name: _state_of(part) for name, part in parts.items()}}
    names = ["latest"]
    if save_freq and len(history) % save_freq == 0:
        names.append(f"epoch_{len(history)}")
    for name in names:
        def write(tmp):
            with open(tmp, "wb") as f:
                pickle.dump(state, f, protocol=4)

        write_atomically(osp.join(directory, f"{name}.pdckpt"), write)


def load_checkpoint(path: str, parts: Dict[str, object]) -> list:
    """Restore `parts` from a checkpoint (numpy-only unpickler); returns its epoch log."""
    if str(path).endswith(".pdparams"):
        raise UsageError(f"TRAIN.checkpoint_path={path} is a weights file, not a checkpoint: "
                         "weights (PaddleScience's published ones too) are for mode=eval or "
                         "export; a run resumes from <run dir>/checkpoints/latest.")
    file = checkpoint_file(path)
    if not osp.isfile(file):
        raise UsageError(f"TRAIN.checkpoint_path={path}: no such checkpoint ({file}); give "
                         "<run dir>/checkpoints/latest of an earlier run.")
    try:
        with open(file, "rb") as f:
            state = NumpyOnlyUnpickler.load(f, file)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise UsageError(f"TRAIN.checkpoint_path={path}: {file} is not a readable checkpoint "
                         f"({e}).") from None
    missing = [name for name in parts if name not in state]
    if missing:
        raise UsageError(f"TRAIN.checkpoint_path={path}: {file} lacks {missing}; it was "
                         "written by another example or version.")
    for name, part in parts.items():
        _restore(part, state[name], name, path)
    parallel.log_every_rank(f"Resumed from {file} after epoch {state['epoch']}")
    return list(state["history"])
