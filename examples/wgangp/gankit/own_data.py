"""A user's own data for the GAN: a folder of images, or an array in a .npy, .npz, .mat,
.h5 or .hdf5 file, served on demand in batches of float32 N x C x R x R in the generator's
[-1, 1], with the scaling that maps generated samples back into the data's own units.

    data = own_data.read("~/fields.h5", key="fields/u", resolution=32)
    check_enough(len(data), batch_size, "DATA.data_path=~/fields.h5")
    x, labels = data[indices]                # float32 in [-1, 1]
    fields = data.scaling.to_data(generated)  # back in the data's units

Array files are not copied into memory (see own_data_arrays); image folders are decoded into
one uint8 array (own_data_images). Every problem with the data stops in one line (exit 2)
that names the file or setting and what to do."""

from dataclasses import dataclass
from os import path as osp
from typing import Iterator, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import UsageError
from .own_data_arrays import ARRAY_EXTENSIONS, ArraySource, open_array, setting
from .own_data_images import read_folder, resize_planes

_CHUNK_BYTES = 32 << 20  # samples read per step of the range scan: bounded memory


@dataclass(frozen=True)
class Scaling:
    """The data's per-channel range [lo, hi], mapped onto the generator's [-1, 1].

    Images: lo = 0, hi = 255. Arrays: each channel's min and max over the whole file. A
    constant channel (hi == lo) maps to -1 and comes back as lo. Channels are on axis -3
    (C x H x W or N x C x H x W). `to_dict` / `from_dict` give a JSON-ready record."""

    lo: Tuple[float, ...]
    hi: Tuple[float, ...]

    def _lo_span(self) -> Tuple[np.ndarray, np.ndarray]:
        lo = np.asarray(self.lo, np.float64).reshape(-1, 1, 1)
        return lo, np.asarray(self.hi, np.float64).reshape(-1, 1, 1) - lo

    def to_model(self, x) -> np.ndarray:
        """Data units -> float32 in [-1, 1] (computed in float64)."""
        lo, span = self._lo_span()
        scale = 2.0 / np.where(span > 0, span, 1.0)
        return ((np.asarray(x, np.float64) - lo) * scale - 1.0).astype(np.float32)

    def to_data(self, y) -> np.ndarray:
        """The inverse of to_model: [-1, 1] -> float64 in the data's own units."""
        lo, span = self._lo_span()
        return (np.asarray(y, np.float64) + 1.0) * (span / 2.0) + lo

    def to_dict(self) -> dict:
        return {"lo": [float(v) for v in self.lo], "hi": [float(v) for v in self.hi]}

    @classmethod
    def from_dict(cls, record: dict) -> "Scaling":
        return cls(tuple(map(float, record["lo"])), tuple(map(float, record["hi"])))


def _as_nchw(block: np.ndarray) -> np.ndarray:
    return block[:, None] if block.ndim == 3 else block


class OwnData:
    """The samples, read on demand: `data[indices]` -> (float32 N x C x R x R in [-1, 1],
    int64 labels). Samples of another size are centre-cropped and resized per batch.

    array: the backing np.memmap / h5py.Dataset / ndarray (not a copy); classes: class
    names, labels 0..K-1 (an array file is one class, named after its array); scaling: the
    Scaling; summary: one line saying what was read and how."""

    def __init__(self, source: ArraySource, labels, classes, scaling, resolution, summary):
        self.source, self.array = source, source.array
        self.labels, self.classes, self.scaling = labels, list(classes), scaling
        self.resolution, self.summary = resolution, summary
        self.channels = 1 if len(source.shape) == 3 else source.shape[1]

    def __len__(self) -> int:
        return self.source.shape[0]

    def _indices(self, indices: Union[int, slice, Sequence[int], np.ndarray]) -> np.ndarray:
        n = len(self)
        if isinstance(indices, slice):
            return np.arange(*indices.indices(n))
        idx = np.asarray(indices, np.int64).reshape(-1)
        idx = np.where(idx < 0, idx + n, idx)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"sample index out of range 0..{n - 1}")
        return idx

    def raw(self, indices) -> np.ndarray:
        """The samples at `indices` as stored: N x C x H x W, the file's dtype and size."""
        idx = self._indices(indices)
        unique, inverse = np.unique(idx, return_inverse=True)  # h5py reads increasing indices
        return _as_nchw(self.source.take(unique)[inverse.reshape(-1)])

    def __getitem__(self, indices) -> Tuple[np.ndarray, np.ndarray]:
        idx = self._indices(indices)
        x = self.scaling.to_model(self.raw(idx))
        if x.shape[-2:] != (self.resolution, self.resolution):
            x = np.clip(resize_planes(x, self.resolution), -1.0, 1.0)
        return x, self.labels[idx]

    def batches(self, batch_size: int, rng: np.random.Generator) -> Iterator[tuple]:
        """One pass in random order, `batch_size` samples at a time (the last partial batch
        left out), each read only when asked for; a batch's indices are sorted, which keeps
        reads from a file in its order."""
        order = rng.permutation(len(self))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            yield self[np.sort(order[start : start + batch_size])]

    def close(self) -> None:
        if self.source.handle is not None:
            self.source.handle.close()


class Samples:
    """`data`'s samples alone as an array-like N x C x R x R, read on demand: in [-1, 1] (the
    training loader's, as ppsci's NamedArrayDataset indexes its arrays) or, with
    `data_units`, in the data's own units (float64, what the metrics compare). Indexed by
    indices, a slice, or (indices, channel ...)."""

    def __init__(self, data: OwnData, data_units: bool = False):
        self.data, self.data_units = data, data_units
        self.shape = (len(data), data.channels, data.resolution, data.resolution)
        self.ndim = 4

    def __len__(self) -> int:
        return self.shape[0]

    def __deepcopy__(self, memo) -> "Samples":
        # ppsci's build_dataset deep-copies its config: a view of a file is shared, never
        # copied (a memmap's copy would read the whole file into memory; h5py's cannot)
        return self

    def __getitem__(self, key):
        indices, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        x = self.data[indices][0]
        x = self.data.scaling.to_data(x) if self.data_units else x
        return x[(slice(None), *rest)] if rest else x


def check_enough(n: int, batch_size: int, where: str) -> None:
    """One line unless `n` samples make at least one batch of `batch_size`."""
    if n < batch_size:
        raise UsageError(
            f"{where} has {n} samples, fewer than TRAIN.batch_size={batch_size}; add samples "
            "or lower TRAIN.batch_size."
        )


def _check_layout(shape: tuple, where: str, resolution: int, resize: bool) -> None:
    """N x H x W or N x C x H x W with at least one sample, and H x W the resolution unless
    `resize`; channels-last arrays are refused (they would be read as 3-pixel-wide images)."""
    if len(shape) not in (3, 4):
        raise UsageError(
            f"{where} has shape {shape}; give samples as N x H x W (one channel) or "
            "N x C x H x W (reshape flattened samples first)."
        )
    if shape[0] == 0:
        raise UsageError(f"{where} has no samples (shape {shape}); give a non-empty array.")
    height, width = shape[-2:]
    if len(shape) == 4 and shape[3] <= 4 < shape[2] and shape[1] == shape[2]:
        raise UsageError(
            f"{where} has shape {shape}, which looks channels-last (N x H x W x C); save it "
            "as N x C x H x W (np.moveaxis(x, -1, 1))."
        )
    if (height, width) != (resolution, resolution) and not resize:
        raise UsageError(
            f"{where} holds {height}x{width} samples, not DATA.resolution={resolution}; set "
            f"DATA.resolution to their size, or DATA.resize=true to centre-crop and resize them."
        )


def _refuse_first_bad(source: ArraySource, bad: np.ndarray, where: str) -> None:
    """One line naming the first sample flagged in `bad` and what it holds."""
    i = int(np.argmax(bad))
    what = "NaN" if np.isnan(source.take(np.array([i]))).any() else "Inf"
    raise UsageError(
        f"{where} has {what} in sample {i} (counting from 0); remove or fill such samples "
        "before training."
    )


def scan_range(source: ArraySource, where: str) -> Scaling:
    """Per-channel min and max, streamed over slabs of about 32 MiB (a memory-mapped or HDF5
    file is read once, in storage order); NaN or Inf stops, naming the first sample that
    holds one."""
    bad = np.zeros(source.shape[0], bool)
    lo = hi = None
    for start, block in source.blocks(_CHUNK_BYTES):
        block = _as_nchw(block)
        if block.dtype.kind == "f":
            bad[start : start + len(block)] |= ~np.isfinite(block).reshape(len(block), -1).all(1)
            if bad.any() and not source.reverse_axes:
                break  # slabs of whole samples, in order: the first bad one is known
        block_lo = block.min(axis=(0, 2, 3)).astype(np.float64)
        block_hi = block.max(axis=(0, 2, 3)).astype(np.float64)
        lo = block_lo if lo is None else np.minimum(lo, block_lo)
        hi = block_hi if hi is None else np.maximum(hi, block_hi)
    if bad.any():
        _refuse_first_bad(source, bad, where)
    return Scaling(tuple(lo.tolist()), tuple(hi.tolist()))


def _check_resolution(resolution) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)):
        resolution = -1
    if resolution < 1:
        raise UsageError(f"DATA.resolution={resolution} must be a positive whole number (32).")
    return int(resolution)


def _read_images(path: str, key: Optional[str], resolution: int) -> OwnData:
    if key is not None:
        raise UsageError(
            f"DATA.key={key} is set but DATA.data_path={path} is a folder of images; "
            "leave DATA.key unset (null)."
        )
    images, labels, classes, summary = read_folder(path, resolution)
    source = ArraySource(images, osp.basename(osp.normpath(path)), "decoded into memory")
    channels = images.shape[1]
    scaling = Scaling((0.0,) * channels, (255.0,) * channels)
    return OwnData(source, labels, classes, scaling, resolution, summary)


def _summary(source: ArraySource, path: str, scaling: Scaling, resolution: int) -> str:
    ranges = ", ".join(f"{lo:g}..{hi:g}" for lo, hi in zip(scaling.lo[:4], scaling.hi[:4]))
    resized = source.shape[-2:] != (resolution, resolution)
    return (
        f"{source.shape[0]} samples {source.shape[1:]} {source.dtype} from {path} "
        f"[{source.key}], {source.storage}; range per channel {ranges}"
        + ("..." if len(scaling.lo) > 4 else "")
        + (f"; cropped and resized to {resolution}x{resolution} per batch" if resized else "")
    )


def read(
    data_path: str, key: Optional[str] = None, resolution: int = 32, resize: bool = False
) -> OwnData:
    """The user's data at `data_path`: a folder of images (files in it: one class; its
    sub-folders: one class each, sorted by name) or an array file (.npy, .npz, .mat, .h5,
    .hdf5; `key`: the array's name, or a path like "fields/u" in HDF5, unset for a file's
    only array). Images of another size are centre-cropped and resized to `resolution`;
    arrays only with `resize` (else refused with the size they have)."""
    known = f"a folder of images or an array file ({', '.join(ARRAY_EXTENSIONS)})"
    if not data_path:
        raise UsageError(f"DATA.data_path is not set: give {known}.")
    path = osp.expanduser(str(data_path))
    resolution = _check_resolution(resolution)
    if osp.isdir(path):
        return _read_images(path, key, resolution)
    if not osp.isfile(path):
        raise UsageError(f"DATA.data_path={path}: no such file or folder; give {known}.")
    source = open_array(path, key)
    where = setting(path, None if path.lower().endswith(".npy") else source.key)
    _check_layout(source.shape, where, resolution, resize)
    scaling = scan_range(source, where)
    labels = np.zeros(source.shape[0], np.int64)
    summary = _summary(source, path, scaling, resolution)
    return OwnData(source, labels, [source.key], scaling, resolution, summary)
