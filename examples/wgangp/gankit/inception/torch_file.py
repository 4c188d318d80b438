"""Reads PyTorch weights files (torch.save'd state dicts) as numpy arrays, without torch and without running them.

torch.save writes a pickle whose tensors are calls of
torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...) and whose
storages are persistent ids ('storage', torch.FloatStorage, key, location, numel):
in a zip (torch >= 1.6: <prefix>/data.pkl, raw storages in <prefix>/data/<key>)
or, in the older format, in one stream of pickles followed by the raw storages.
The unpickler here resolves only the few globals such files need and refuses any
other, so reading a file never runs code from it.
"""

import collections
import io
import os
import pickle
import zipfile
from typing import Dict, Tuple

import numpy as np

# torch storage class -> element type (little-endian; byte order set per file)
STORAGE_DTYPES = {
    "FloatStorage": "f4",
    "DoubleStorage": "f8",
    "HalfStorage": "f2",
    "BFloat16Storage": "u2",  # numpy has no bfloat16: read as bits, widened below
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "b1",
}
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # torch.save before zip files
LEGACY_PROTOCOL_VERSION = 1001


class WeightsFileError(ValueError):
    """A weights file that cannot be read; the message names the file."""


class StorageType:
    """A torch storage class named in the pickle; only its element type matters."""

    def __init__(self, name: str):
        self.name = name


class StorageRef:
    """A storage of the file, by its key; its bytes are read after unpickling."""

    def __init__(self, key: str, storage_type: StorageType, numel: int):
        self.key, self.storage_type, self.numel = key, storage_type, numel


class TensorRef:
    """A tensor as torch.save describes it: a strided view of a storage."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def rebuild_tensor(storage, storage_offset, size, stride, *unused):
    """Stands in for torch._utils._rebuild_tensor_v2 (requires_grad, hooks unused)."""
    return TensorRef(storage, storage_offset, size, stride)


def rebuild_parameter(data, *unused):
    """Stands in for torch._utils._rebuild_parameter: a Parameter is its data."""
    return data


SAFE_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
}


class WeightsUnpickler(pickle.Unpickler):
    """Unpickles torch.save's pickles, resolving only tensors' and dicts' globals."""

    def __init__(self, file, source: str):
        super().__init__(file)
        self.source = source
        self.storages: Dict[str, StorageRef] = {}

    def find_class(self, module, name):
        if (module, name) in SAFE_GLOBALS:
            return SAFE_GLOBALS[(module, name)]
        if module in ("torch", "torch.cuda") and name in STORAGE_DTYPES:
            return StorageType(name)
        raise WeightsFileError(
            f"{self.source} refers to {module}.{name}, which a file of "
            f"weights does not need; it was refused (nothing was run), "
            f"use a state dict saved by torch.save."
        )

    def persistent_load(self, pid):
        # zip: ('storage', type, key, location, numel); legacy adds view_metadata
        if not (
            isinstance(pid, tuple)
            and len(pid) in (5, 6)
            and pid[0] == "storage"
            and isinstance(pid[1], StorageType)
            and isinstance(pid[4], int)
        ):
            raise WeightsFileError(
                f"{self.source} holds an unknown kind of saved object "
                f"({str(pid)[:80]}); use a state dict saved by torch.save."
            )
        if len(pid) == 6 and pid[5] is not None:
            raise WeightsFileError(
                f"{self.source} uses storage views of torch < 0.4; re-save it with a recent torch."
            )
        key = str(pid[2])
        if key not in self.storages:
            self.storages[key] = StorageRef(key, pid[1], pid[4])
        return self.storages[key]


def unpickle(file, source: str) -> Tuple[object, WeightsUnpickler]:
    unpickler = WeightsUnpickler(file, source)
    try:
        return unpickler.load(), unpickler
    except WeightsFileError:
        raise
    except Exception as e:  # a corrupt pickle fails in many ways
        raise WeightsFileError(
            f"{source} could not be unpickled as torch.save's output "
            f"({type(e).__name__}: {e}); check the file is complete."
        ) from None


def read_zip(path: str):
    """(object, storages, {key: bytes}, byte order) of a zip-format torch.save file."""
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise WeightsFileError(
                f"{path} is a zip but not a torch.save file (it has no "
                f"<name>/data.pkl); pass the .pth file of the weights."
            )
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = archive.read(prefix + "byteorder").decode("ascii").strip()
        obj, unpickler = unpickle(io.BytesIO(archive.read(pickles[0])), path)
        raw = {}
        for key in unpickler.storages:
            if f"{prefix}data/{key}" not in names:
                raise WeightsFileError(
                    f"{path} lacks the data of storage {key}; the file is incomplete."
                )
            raw[key] = archive.read(f"{prefix}data/{key}")
    return obj, unpickler.storages, raw, byteorder


def read_legacy(path: str):
    """(object, storages, {key: bytes}, byte order) of a torch < 1.6 torch.save file:
    pickles of the magic number, protocol, system info, the object and the sorted
    storage keys, then each storage as its int64 element count and its bytes
    (both little-endian whatever the machine)."""
    with open(path, "rb") as f:
        try:
            magic = WeightsUnpickler(f, path).load()
        except Exception:  # not a pickle at all
            magic = None
        if magic != LEGACY_MAGIC_NUMBER:
            raise WeightsFileError(
                f"{path} is not a file written by torch.save (neither a zip "
                f"nor the legacy format); pass the .pth file of the weights."
            )
        if unpickle(f, path)[0] != LEGACY_PROTOCOL_VERSION:
            raise WeightsFileError(
                f"{path} has an unknown torch.save protocol version; "
                f"re-save it with a recent torch."
            )
        unpickle(f, path)  # system info: sizes of C types, unused
        obj, unpickler = unpickle(f, path)
        keys, _ = unpickle(f, path)
        raw = {}
        for key in keys:
            storage = unpickler.storages.get(str(key))
            count = int.from_bytes(f.read(8), "little")
            if storage is None or count != storage.numel:
                raise WeightsFileError(
                    f"{path} has inconsistent storage records; the file is corrupt."
                )
            itemsize = np.dtype(STORAGE_DTYPES[storage.storage_type.name]).itemsize
            raw[storage.key] = f.read(count * itemsize)
    return obj, unpickler.storages, raw, "little"


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_view(tensor: TensorRef, source: str):
    """A tensor's storage, offset, size and stride must describe a view inside it."""
    storage, size, stride, offset = tensor.storage, tensor.size, tensor.stride, tensor.offset
    well_formed = (
        isinstance(storage, StorageRef)
        and is_int(offset)
        and offset >= 0
        and isinstance(size, tuple)
        and isinstance(stride, tuple)
        and len(size) == len(stride)
        and all(is_int(n) and n >= 0 for n in size)
        and all(is_int(s) and s >= 0 for s in stride)
    )
    if not well_formed:
        raise WeightsFileError(f"{source} holds a malformed tensor record; the file is corrupt.")
    if 0 not in size and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= storage.numel:
        raise WeightsFileError(
            f"{source}: a tensor of size {list(size)} reaches outside its "
            f"storage {storage.key}; the file is corrupt."
        )


def tensor_array(
    tensor: TensorRef, storage_bytes: Dict[str, bytes], byteorder: str, source: str
) -> np.ndarray:
    """The tensor's values: its strided view of its storage's bytes, copied."""
    check_view(tensor, source)
    storage = tensor.storage
    raw = storage_bytes[storage.key]
    order = "<" if byteorder == "little" else ">"
    dtype = np.dtype(order + STORAGE_DTYPES[storage.storage_type.name])
    if len(raw) < storage.numel * dtype.itemsize:
        raise WeightsFileError(
            f"{source}: storage {storage.key} is shorter than its "
            f"{storage.numel} elements; the file is truncated."
        )
    flat = np.frombuffer(raw, dtype=dtype, count=storage.numel)
    if 0 in tensor.size:
        values = np.zeros(tensor.size, dtype)
    else:
        # torch tensors are strided views: take the same view of the storage, then copy
        values = np.lib.stride_tricks.as_strided(
            flat[tensor.offset :],
            shape=tensor.size,
            strides=[s * dtype.itemsize for s in tensor.stride],
        )
    values = np.array(values, dtype=dtype.newbyteorder("="))
    if storage.storage_type.name == "BFloat16Storage":  # bfloat16: float32's upper half
        values = (values.astype(np.uint32) << 16).view(np.float32)
    return values


def read_torch_state_dict(path: str) -> Dict[str, np.ndarray]:
    """A torch.save'd state dict as {name: numpy array}, read without torch.

    Raises ValueError naming the file when it is missing, not torch.save's output,
    refers to anything but tensors and dicts, or is not a dict of tensors.
    """
    if not os.path.isfile(path):
        raise WeightsFileError(
            f"Weights file {path} does not exist; give the path of the .pth file."
        )
    reader = read_zip if zipfile.is_zipfile(path) else read_legacy
    obj, storages, raw, byteorder = reader(path)
    if not isinstance(obj, dict):
        raise WeightsFileError(
            f"{path} holds a {type(obj).__name__}, not a state dict; "
            f"save model.state_dict() instead."
        )
    state = {}
    for name, value in obj.items():
        if not isinstance(value, TensorRef):
            raise WeightsFileError(
                f"{path}: entry {name!r} is a {type(value).__name__}, not a "
                f"tensor; pass a plain state dict."
            )
        state[str(name)] = tensor_array(value, raw, byteorder, path)
    return state
