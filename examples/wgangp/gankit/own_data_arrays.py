"""A user's array file opened without copying it: .npy and uncompressed .npz memory-mapped,
.h5/.hdf5 and v7.3 .mat (HDF5) read lazily through h5py; v5 .mat and compressed .npz members
are read into memory (neither format can be mapped). Each problem stops in one line.

`open_array` returns an `ArraySource`: the backing array (np.memmap, h5py.Dataset or
ndarray), with samples on the first axis as the user sees them."""

import struct
import zipfile
from os import path as osp
from typing import Iterator, List, Optional, Tuple

import numpy as np

from .errors import UsageError

ARRAY_EXTENSIONS = (".npy", ".npz", ".mat", ".h5", ".hdf5")
_MATLAB_INTERNAL = ("#refs#", "#subsystem#")  # v7.3 bookkeeping groups, not the user's arrays
_MATLAB_NOT_NUMERIC = ("cell", "struct", "object", "char", "function_handle", "sparse")


class ArraySource:
    """Read access to one array, samples first.

    array: the backing np.memmap / h5py.Dataset / ndarray. reverse_axes: a v7.3 .mat, whose
    HDF5 dataset holds MATLAB's column-major array with its axes reversed; reversing them
    gives the layout MATLAB (and scipy.io.loadmat) shows. storage: how it is read, for the
    summary line. handle: the open h5py.File, kept alive with the dataset."""

    def __init__(self, array, key: str, storage: str, reverse_axes=False, handle=None):
        self.array, self.key, self.storage = array, key, storage
        self.reverse_axes, self.handle = reverse_axes, handle
        shape = tuple(int(s) for s in array.shape)
        self.shape = shape[::-1] if reverse_axes else shape
        self.dtype = np.dtype(array.dtype)

    def blocks(self, max_bytes: int) -> Iterator[Tuple[int, np.ndarray]]:
        """The whole array in slabs of about max_bytes, in storage order (one sequential
        pass): (first sample, N-first block of consecutive samples); for a v7.3 .mat, whose
        samples are its last HDF5 axis, (0, a slice of the first HDF5 axis of every sample)."""
        shape = self.array.shape
        step = max(1, max_bytes // max(1, int(np.prod(shape[1:])) * self.dtype.itemsize))
        for start in range(0, shape[0], step):
            block = np.asarray(self.array[start : start + step])
            yield (0, block.transpose()) if self.reverse_axes else (start, block)

    def take(self, indices: np.ndarray) -> np.ndarray:
        """Samples at `indices`, increasing and unique (h5py's fancy indexing needs that)."""
        indices = list(map(int, indices)) if self.handle is not None else indices
        if self.reverse_axes:
            return np.asarray(self.array[..., indices]).transpose()
        return np.asarray(self.array[indices])


def setting(path: str, key: Optional[str]) -> str:
    """How errors name the file (and its array)."""
    return f"DATA.data_path={path}" + (f" (DATA.key={key})" if key is not None else "")


def _pick_key(path: str, key: Optional[str], found: List[Tuple[str, tuple]]) -> str:
    """The array named `key`, or the file's only one; else one line listing those there are."""
    listing = ", ".join(f"{name} {tuple(shape)}" for name, shape in found[:20])
    listing += ", ..." if len(found) > 20 else ""
    names = [name for name, _ in found]
    if not names:
        raise UsageError(f"DATA.data_path={path} holds no numeric arrays; save the data in it.")
    if key is None:
        if len(names) > 1:
            raise UsageError(
                f"DATA.data_path={path} holds several arrays ({listing}); "
                "set DATA.key to the one to train on."
            )
        return names[0]
    if str(key) not in names:
        raise UsageError(
            f"DATA.key={key} is not in DATA.data_path={path}; its arrays: {listing}. "
            "Set DATA.key to one of them."
        )
    return str(key)


def _refuse_dtype(dtype: np.dtype, where: str) -> None:
    if dtype.hasobject or dtype.kind not in "biuf":
        raise UsageError(
            f"{where} has dtype {dtype}; only integer or float arrays can be trained on "
            "(object, text, complex and structured arrays are refused)."
        )


def _npy_header(f) -> Tuple[tuple, bool, np.dtype]:
    """(shape, fortran_order, dtype) of the .npy stream at f's position."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    return np.lib.format.read_array_header_2_0(f)  # 2.0 and 3.0 share the header layout


def _open_npy(path: str) -> ArraySource:
    try:
        with open(path, "rb") as f:
            shape, _, dtype = _npy_header(f)
        _refuse_dtype(dtype, f"DATA.data_path={path}")
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UsageError(
            f"DATA.data_path={path} is not a readable .npy file ({e}); check it or save "
            "it again with np.save."
        ) from None
    storage = "memory-mapped" if isinstance(array, np.memmap) else "in memory"
    return ArraySource(array, osp.basename(path), storage)


def _npz_member_memmap(path: str, info: zipfile.ZipInfo) -> Optional[np.memmap]:
    """The member mapped straight from the zip (np.savez stores members uncompressed), or
    None where it is compressed (np.savez_compressed) and must be read into memory."""
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)  # the member's local header: its own name and extra-field lengths
        if local[:4] != b"PK\x03\x04":
            raise ValueError("bad local header")
        name_length, extra_length = struct.unpack("<HH", local[26:30])
        f.seek(info.header_offset + 30 + name_length + extra_length)
        shape, fortran, dtype = _npy_header(f)
        offset = f.tell()
    if 0 in shape or not shape:
        return None  # nothing to map; np.load reads it
    order = "F" if fortran else "C"
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)


def _open_npz(path: str, key: Optional[str]) -> ArraySource:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = {i.filename[:-4]: i for i in archive.infolist() if i.filename.endswith(".npy")}
            headers = {}
            for name, info in infos.items():
                with archive.open(info) as f:
                    headers[name] = _npy_header(f)  # (shape, fortran_order, dtype)
        key = _pick_key(path, key, [(name, h[0]) for name, h in headers.items()])
        _refuse_dtype(headers[key][2], setting(path, key))
        array = _npz_member_memmap(path, infos[key])
        if array is not None:
            return ArraySource(array, key, "memory-mapped")
        with np.load(path, allow_pickle=False) as npz:
            array = npz[key]
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise UsageError(
            f"DATA.data_path={path} is not a readable .npz file ({e}); check it or save "
            "it again with np.savez."
        ) from None
    return ArraySource(array, key, "in memory (compressed .npz member)")


def _h5_datasets(group, skip=()) -> List[Tuple[str, tuple]]:
    import h5py

    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and not name.startswith(skip):
            found.append((name, obj.shape))

    group.visititems(visit)
    return found


def _open_hdf5(path: str, key: Optional[str], matlab: bool) -> ArraySource:
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as e:
        raise UsageError(
            f"DATA.data_path={path} is not a readable HDF5 file ({e}); check the file."
        ) from None
    try:
        found = _h5_datasets(handle, _MATLAB_INTERNAL if matlab else ())
        name = _pick_key(path, None if key is None else str(key).strip("/"), found)
        dataset, where = handle[name], setting(path, name)
        kind = dataset.attrs.get("MATLAB_class", b"")
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        if kind in _MATLAB_NOT_NUMERIC:
            raise UsageError(f"{where} is a MATLAB {kind}, not a numeric array; save one.")
        _refuse_dtype(dataset.dtype, where)
    except BaseException:
        handle.close()
        raise
    return ArraySource(dataset, name, "read lazily (HDF5)", reverse_axes=matlab, handle=handle)


def _open_mat(path: str, key: Optional[str]) -> ArraySource:
    import h5py
    import scipy.io

    if h5py.is_hdf5(path):  # MATLAB's -v7.3 files are HDF5
        return _open_hdf5(path, key, matlab=True)
    try:
        variables = scipy.io.whosmat(path)
        numeric = [(n, s) for n, s, kind in variables if kind not in _MATLAB_NOT_NUMERIC]
        key = _pick_key(path, key, numeric)
        array = scipy.io.loadmat(path, variable_names=[key])[key]
    except Exception as e:  # scipy raises ValueError, TypeError, MatReadError, ...
        raise UsageError(
            f"DATA.data_path={path} is not a readable .mat file ({type(e).__name__}: {e}); "
            "save it with MATLAB's save or scipy.io.savemat."
        ) from None
    _refuse_dtype(array.dtype, setting(path, key))
    return ArraySource(array, key, "in memory (.mat v5)")


def open_array(path: str, key: Optional[str]) -> ArraySource:
    """The array `key` of the file at `path` (or its only one), by the file's extension."""
    extension = osp.splitext(path)[1].lower()
    if extension == ".npy":
        if key is not None:
            raise UsageError(
                f"DATA.key={key} is set but DATA.data_path={path} is a .npy file, which holds "
                "one array; leave DATA.key unset (null)."
            )
        return _open_npy(path)
    if extension == ".npz":
        return _open_npz(path, key)
    if extension == ".mat":
        return _open_mat(path, key)
    if extension in (".h5", ".hdf5"):
        return _open_hdf5(path, key, matlab=False)
    raise UsageError(
        f"DATA.data_path={path} has an unknown extension {extension or '(none)'!r}; give a "
        f"folder of images or an array file ({', '.join(ARRAY_EXTENSIONS)})."
    )
