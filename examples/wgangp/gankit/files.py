"""Weights and result files, read and written safely.

A numpy-only unpickler, checksums, strict name/shape checks, weights by path or URL, and
atomic writes.
"""

import json
import os
import pickle
from os import path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import paddle
from ppsci.utils import logger

from . import download
from .errors import UsageError
from .provenance import check_network


class NumpyOnlyUnpickler:
    """Unpickles numpy arrays and plain containers; refuses every other global, so a
    crafted file cannot run code (paddle.load and pickle.load could)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),  # np.int64(3)
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 pickles bytes
    }

    @classmethod
    def load(cls, file, source: str):
        allowed = cls.ALLOWED

        class Unpickler(pickle.Unpickler):
            def find_class(self, module, name):
                if (module, name) not in allowed:
                    raise pickle.UnpicklingError(f"{source} refers to {module}.{name}")
                import importlib

                if (
                    module.startswith("numpy.core")
                    and np.lib.NumpyVersion(np.__version__) >= "2.0.0"
                ):
                    module = module.replace("numpy.core", "numpy._core", 1)  # moved in numpy 2
                return getattr(importlib.import_module(module), name)

        return Unpickler(file, encoding="latin1").load()


def file_digest(path: str, algorithm: str) -> str:
    """Hex digest ("md5", "sha256", ...) of a file, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomically(path: str, write: Callable[[str], None]) -> None:
    """write(tmp_path), flushed to disk, then renamed over `path` and the rename flushed too:
    a kill or a power loss while saving leaves the previous file or the new one, never a
    broken or empty one."""
    tmp = f"{path}.tmp"
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
    except OSError as e:  # a full disk, a lost mount: the previous file stays as it was
        if osp.exists(tmp):
            os.remove(tmp)
        raise UsageError(
            f"could not write {path} ({e.strerror}); free some space there or "
            f"check the disk; {osp.basename(path)} was left as it was."
        ) from None
    os.replace(tmp, path)
    directory = os.open(osp.dirname(osp.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def save_npz(path: str, **arrays) -> None:
    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    write_atomically(path, write)


def shell_word(text: str) -> str:
    """`text` as one word a shell passes on unchanged (quoted only when it must be)."""
    import shlex

    return (
        shlex.quote(text)
        if any(c.isspace() or c in "'\"$`\\!*?;&|<>()[]{}~#" for c in text)
        else text
    )


def save_json(obj, path: str) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2)

    write_atomically(path, write)


def save_weights(layer: paddle.nn.Layer, path: str) -> None:
    write_atomically(path, lambda tmp: paddle.save(layer.state_dict(), tmp))


def read_pdparams(path: str) -> Dict[str, np.ndarray]:
    """A .pdparams file's {name: array} (name maps and other entries dropped); ValueError
    naming the file when it cannot be read as one."""
    try:
        with open(path, "rb") as f:
            state = NumpyOnlyUnpickler.load(f, path)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, OSError) as e:
        from .answers import kind_of_file  # a page saved in the file's place, named as such

        kind = kind_of_file(path)
        raise ValueError(
            f"{path} could not be read: it is "
            + (
                f"{kind}, not a .pdparams file (a page saved instead of the file?)"
                if kind
                else f"not a readable .pdparams file of arrays ({type(e).__name__}: {e})"
            )
            + "; nothing from it was run."
        ) from None
    if not isinstance(state, dict):
        raise ValueError(
            f"{path} holds a {type(state).__name__}, not a dict of weights; "
            "pass a file written by paddle.save(state_dict)."
        )
    return {k: v for k, v in state.items() if isinstance(v, np.ndarray)}


def state_problems(layer: paddle.nn.Layer, state: Dict[str, object]) -> List[str]:
    """What keeps `state` from loading into `layer` exactly, one phrase per difference."""
    expected = {name: list(value.shape) for name, value in layer.state_dict().items()}
    found: Dict[str, Sequence[int]] = {k: list(np.shape(v)) for k, v in state.items()}
    problems = [f"{name} missing" for name in expected if name not in found]
    problems += [f"{name} not in the network" for name in found if name not in expected]
    problems += [
        f"{name} has shape {found[name]}, expected {shape}"
        for name, shape in expected.items()
        if name in found and found[name] != shape
    ]
    return problems


def summarise(problems: List[str], shown: int = 3) -> str:
    more = f" and {len(problems) - shown} more" if len(problems) > shown else ""
    return f"{len(problems)} problems: " + "; ".join(problems[:shown]) + more


def fetch_weights(source: str, setting: str, sha256: Optional[str] = None) -> str:
    """Local path of a weights file given by path or http(s) URL (gankit.download: cached
    by the whole URL, bounded in time).

    With `sha256`, a file that does not match is refused before it is read (a download
    that does not match is not kept).
    """
    path = osp.expanduser(str(source))
    if download.is_url(source):
        try:
            return download.download(
                path, f"sha256:{sha256.lower()}" if sha256 else None, f"the file named by {setting}"
            )
        except download.DownloadError as e:
            raise UsageError(f"{setting}: {e}") from None
    if not osp.isfile(path):
        raise UsageError(f"{setting}: no such file: {path}")
    if sha256:
        actual = file_digest(path, "sha256")
        if actual != str(sha256).lower():
            raise UsageError(
                f"{setting}: {source} has SHA-256 {actual}, not the expected {sha256}; refused it."
            )
    return path


def read_weights(
    source: Optional[str], setting: str, sha256: Optional[str] = None
) -> Tuple[str, Dict[str, np.ndarray]]:
    """(the path or URL, as messages name it, {name: array}) of the .pdparams path or
    http(s) URL named by `setting`; a download's messages name its URL, not its cache file."""
    if not source:
        raise UsageError(f"{setting} is not set; give a .pdparams path or URL.")
    path = fetch_weights(source, setting, sha256)
    shown = str(source) if download.is_url(source) else path
    try:
        return shown, read_pdparams(path)
    except ValueError as e:
        if download.is_url(source):  # a broken download: never keep it cached (a local
            os.remove(path)  # file, ~/... too, is the user's and stays)
        raise UsageError(f"{setting}: {str(e).replace(path, shown)}") from None


def load_state(
    layer: paddle.nn.Layer, state: Dict[str, np.ndarray], setting: str, path: str
) -> None:
    """Copy `state` into `layer`, strictly: every name and shape must match (paddle's own
    loading only warns)."""
    problems = state_problems(layer, state)
    check_network(setting, path, state, layer.state_dict())  # another example's, or a critic
    if set(state) != set(layer.state_dict()):
        one_sided = set(state) ^ set(layer.state_dict())
        hint = (
            (
                "; batch norms on one side only: the MNIST example's LOSS.kind=wgan networks "
                "have them (MODEL.batch_norm=true), its other kinds' do not"
            )
            if any(k.endswith("._mean") for k in one_sided)
            else ""
        )
        raise UsageError(
            f"{setting}: {path} holds weights of another model "
            f"({summarise(problems)}); check the example and settings it was "
            f"trained with{hint}."
        )
    if problems:
        raise UsageError(f"{setting}: {path} does not fit this model ({summarise(problems)}).")
    bad = nonfinite(state)
    if bad:
        raise UsageError(
            f"{setting}: {path} holds {bad}: these weights cannot give a result "
            "(the run that wrote them had diverged); give other weights."
        )
    layer.set_state_dict(state)


def nonfinite(state: Dict[str, object]) -> Optional[str]:
    """'<tensor> with N NaN / Inf values' for the first tensor of `state` that has any."""
    for name, value in state.items():
        value = np.asarray(value)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            nan, inf = int(np.isnan(value).sum()), int(np.isinf(value).sum())
            what = " and ".join(f"{n} {kind}" for n, kind in ((nan, "NaN"), (inf, "Inf")) if n)
            return f"{name} with {what} values"
    return None


def load_weights(
    layer: paddle.nn.Layer, source: Optional[str], setting: str, sha256: Optional[str] = None
) -> None:
    """Load a .pdparams path or http(s) URL named by `setting` into `layer`, strictly."""
    path, state = read_weights(source, setting, sha256)
    load_state(layer, state, setting, path)
    logger.info(f"Loaded {setting} from {source}")
