"""Checkpoints: save and restore everything needed to continue a run exactly.

Networks, optimizers and their learning-rate schedules, data streams, the epoch log, where
in an epoch an interrupted run stopped, and the settings it was trained with, in one
pickle of arrays and plain values.
"""

import os
import pickle
from os import path as osp
from typing import Dict, Optional, Tuple

import numpy as np
import paddle
from ppsci.utils import logger

from . import parallel
from .errors import UsageError
from .files import (
    NumpyOnlyUnpickler,
    nonfinite,
    shell_word,
    state_problems,
    summarise,
    write_atomically,
)
from .provenance import check_example

# settings that do not change what a run computes, or that a resume may change
FREE = (
    "TRAIN.epochs",
    "TRAIN.checkpoint_path",
    "TRAIN.save_freq",
    "TRAIN.eval_during_train",
    "TRAIN.eval_freq",
    "TRAIN.start_eval_epoch",
    "TRAIN.metric_samples",
    "TRAIN.final_eval_samples",
    "TRAIN.resume_with_changes",
    "TRAIN.pretrained_model_path",
    "TRAIN.dev_freq",
    "TRAIN.dev_samples",
    "TRAIN.replan",
    "DATA.data_path",
    "DATA.md5",
    "DATA.url",  # where the data came from: the data's fingerprint says what it is
)
# settings added after the first checkpoints, each with the value that computes what the
# versions before it did: a checkpoint written without one resumes as if it had that value
ADDED = {"TRAIN.ema_start": 0.25, "TRAIN.lr_decay_power": 1.0, "TRAIN.critic_learning_rate": None}


def training_settings(cfg, data: Optional[np.ndarray] = None) -> Dict[str, object]:
    """{"SECTION.key": value} of every setting that changes the training (networks, losses,
    optimizer, batch sizes, n_critic, data, seed), with a fingerprint of the training data."""
    from omegaconf import OmegaConf

    settings = {"seed": cfg.seed}
    for section in ("DATA", "MODEL", "LOSS", "TRAIN"):
        values = OmegaConf.to_container(cfg[section], resolve=True) if section in cfg else {}
        for key, value in values.items():
            name = f"{section}.{key}"
            if name not in FREE and not isinstance(value, dict) and name != "MODEL.architecture":
                settings[name] = value
    if data is not None:
        import hashlib

        digest = hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest()[:16]
        settings["training data"] = f"{data.shape} {digest}"
    return settings


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


def _put_back(part, state) -> None:
    if isinstance(part, np.random.Generator):
        part.bit_generator.state = state
    else:
        part.set_state_dict(state)


def _restore(part, state, name: str, path: str) -> None:
    """_put_back, once a network's saved state is checked to fit it and to be finite."""
    if isinstance(part, paddle.nn.Layer):
        problems = state_problems(part, state)
        if problems:
            raise UsageError(
                f"TRAIN.checkpoint_path={path}: its {name} does not fit this model "
                f"({summarise(problems)}); resume with the settings the run was "
                "started with."
            )
        bad = nonfinite(state)
        if bad:
            raise UsageError(
                f"TRAIN.checkpoint_path={path}: its {name} holds {bad}: the run had "
                "diverged; resume from an earlier checkpoint (TRAIN.save_freq)."
            )
    _put_back(part, state)


def snapshot(parts: Dict[str, object]) -> Dict[str, object]:
    """A copy in memory of what a checkpoint holds of `parts` (to go back to it)."""
    import copy

    return {name: copy.deepcopy(_state_of(part)) for name, part in parts.items()}


def restore(parts: Dict[str, object], state: Dict[str, object]) -> None:
    """Put `parts` back as snapshot(parts) found them."""
    for name, part in parts.items():
        _put_back(part, state[name])


def checkpoint_file(path: str) -> str:
    """ppsci's convention: <run dir>/checkpoints/latest names latest.pdckpt."""
    return path if str(path).endswith(".pdckpt") else f"{path}.pdckpt"


def save_checkpoint(
    output_dir: str,
    save_freq: int,
    history: list,
    parts: Dict[str, object],
    settings: Dict[str, object],
    partial: Optional[dict] = None,
) -> str:
    """checkpoints/latest.pdckpt (and epoch_N.pdckpt every save_freq epochs), atomically;
    `partial`: where in the next epoch an interrupted run stands. Returns latest's path."""
    directory = osp.join(output_dir, "checkpoints")
    os.makedirs(directory, exist_ok=True)
    state = {
        "epoch": len(history),
        "history": history,
        "settings": settings,
        "partial": partial,
        **{name: _state_of(part) for name, part in parts.items()},
    }
    names = ["latest"]
    if save_freq and len(history) % save_freq == 0 and partial is None:
        names.append(f"epoch_{len(history)}")
    for name in names:

        def write(tmp):
            with open(tmp, "wb") as f:
                pickle.dump(state, f, protocol=4)

        write_atomically(osp.join(directory, f"{name}.pdckpt"), write)
    return osp.join(directory, "latest")


def load_checkpoint(
    path: str, parts: Dict[str, object], settings: Dict[str, object], with_changes: bool = False
) -> Tuple[list, Optional[dict]]:
    """Restore `parts` from a checkpoint (numpy-only unpickler); returns its epoch log and
    where in an epoch it stopped (None at an epoch's end). A checkpoint trained with other
    `settings` is refused, naming each difference, unless `with_changes`."""
    if str(path).endswith(".pdparams"):
        raise UsageError(
            f"TRAIN.checkpoint_path={path} is a weights file, not a checkpoint: "
            "weights (PaddleScience's published ones too) are for mode=eval or "
            "export; a run resumes from <run dir>/checkpoints/latest."
        )
    file = checkpoint_file(path)
    if osp.isdir(path):  # a run directory, or its checkpoints folder
        inside = [
            osp.join(path, *sub, "latest")
            for sub in (("checkpoints",), ())
            if osp.isfile(checkpoint_file(osp.join(path, *sub, "latest")))
        ]
        where = (
            f"give {shell_word('TRAIN.checkpoint_path=' + inside[0])}"
            if inside
            else "it holds none; give <run dir>/checkpoints/latest of an earlier run"
        )
        raise UsageError(f"TRAIN.checkpoint_path={path} is a folder, not a checkpoint; {where}.")
    if not osp.isfile(file):
        raise UsageError(
            f"TRAIN.checkpoint_path={path}: no such checkpoint ({file}); give "
            "<run dir>/checkpoints/latest of an earlier run."
        )
    try:
        with open(file, "rb") as f:
            state = NumpyOnlyUnpickler.load(f, file)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise UsageError(
            f"TRAIN.checkpoint_path={path}: {file} is not a readable checkpoint ({e})."
        ) from None
    check_example(path, state.get("settings"), settings)  # before any other difference
    missing = [name for name in parts if name not in state]
    if missing:
        raise UsageError(
            f"TRAIN.checkpoint_path={path}: {file} lacks {missing}; it was "
            "written by another example or version."
        )
    check_settings(path, state.get("settings"), settings, with_changes)
    for name, part in parts.items():
        _restore(part, state[name], name, path)
    partial = state.get("partial")
    where = (
        f"in epoch {state['epoch'] + 1}, after generator iteration {partial['iteration']}"
        if partial
        else f"after epoch {state['epoch']}"
    )
    parallel.log_every_rank(f"Resumed from {file} {where}")
    return list(state["history"]), partial


def check_settings(
    path: str, saved: Optional[dict], now: Dict[str, object], with_changes: bool
) -> None:
    """Refuse (or with `with_changes` log) every setting that differs from the checkpoint's."""
    if saved is None:
        logger.warning(
            f"TRAIN.checkpoint_path={path}: written by an earlier version, without "
            "its settings; they are not compared."
        )
        return
    saved = {**{key: value for key, value in ADDED.items() if key in now}, **saved}
    changes = [
        f"{key} {saved.get(key, '(unset)')!r} -> {now.get(key, '(unset)')!r}"
        for key in sorted(set(saved) | set(now))
        if saved.get(key) != now.get(key)
    ]
    if not changes:
        return
    if not with_changes:
        raise UsageError(
            f"TRAIN.checkpoint_path={path}: the run was trained with other "
            f"settings: {'; '.join(changes)}. Resume with the run's settings, or "
            "add TRAIN.resume_with_changes=true to continue with these."
        )
    for change in changes:
        logger.warning(f"Resuming with a changed setting (TRAIN.resume_with_changes): {change}")
