"""The real data's reference statistics for the field metrics (field_metrics.reference_stats),
computed once and cached by the data's content: the same data under another file name finds
them, one changed value does not. Files are .npz without pickled objects, written to a
temporary name and renamed into place, so that a reader never sees half a file."""

import hashlib
import json
import os
from typing import Dict

import numpy as np

from .field_metrics import FORMAT, _settings, reference_stats


def content_key(x, chunk_bytes: int = 1 << 24) -> str:
    """sha256 (hex) of an array's dtype, shape and values, read chunk_bytes at a time along
    the first axis (a memmapped file is never loaded whole)."""
    x = x if isinstance(x, np.ndarray) else np.asarray(x)
    x = x.reshape(1) if x.ndim == 0 else x
    digest = hashlib.sha256(f"{x.dtype.str} {tuple(x.shape)}".encode())
    rows = max(1, chunk_bytes // max(1, x[:1].nbytes))
    for start in range(0, len(x), rows):
        digest.update(memoryview(np.ascontiguousarray(x[start : start + rows])).cast("B"))
    return digest.hexdigest()


def save_reference_stats(stats: Dict[str, np.ndarray], path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "wb") as f:
        np.savez(f, **stats)
    os.replace(temporary, path)


def load_reference_stats(path: str) -> Dict[str, np.ndarray]:
    """The stats save_reference_stats wrote (arrays only: allow_pickle=False)."""
    with np.load(path, allow_pickle=False) as saved:
        return {name: saved[name] for name in saved.files}


def reference_stats_path(cache_dir: str, key: str, seed: int = 0, **settings) -> str:
    """The cache file for data with content key `key`, this seed and these settings."""
    recipe = {"format": FORMAT, "seed": seed, **_settings(settings)}
    recipe.pop("batch_size")  # changes the memory needed, not the stats
    recipe_key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    return os.path.join(cache_dir, f"field-stats-{key}-{recipe_key}.npz")


def cached_reference_stats(
    real, cache_dir: str, seed: int = 0, raw=None, how: str = "", write: bool = True, **settings
) -> Dict[str, np.ndarray]:
    """reference_stats of `real` (an array, or an array-like read on demand), read from
    cache_dir when computed before for the same content, seed and settings, else computed
    and saved there. The content is `real`'s, or `raw`'s (the stored samples `real` is made
    from) and `how` (what makes `real` of them, e.g. the resolution); stats["content_key"]
    holds the key, stats["path"] the file. With write=False (a process other than the
    launcher's first: each computes the same), nothing is saved."""
    key = content_key(real if raw is None else raw)
    key = hashlib.sha256(f"{key} {how}".encode()).hexdigest() if how else key
    path = reference_stats_path(cache_dir, key, seed, **settings)
    if os.path.exists(path):
        stats = load_reference_stats(path)
    else:
        stats = reference_stats(real, seed, **settings)
        stats["content_key"] = np.array(key)
        if write:
            save_reference_stats(stats, path)
    return {**stats, "path": np.array(path)}
