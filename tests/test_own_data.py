"""A user's own data (gankit.own_data): image folders and array files written here as a
user's would be, read back in batches in [-1, 1] and mapped back to the data's units; each
bad file stops in one line that names it."""

import json
import os

import h5py
import numpy as np
import pytest
import scipy.io
from PIL import Image

from conftest import usage_error
from gankit import own_data


def _rng(seed=0):
    return np.random.default_rng(seed)


def _png(path, pixels, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels, mode).save(path)
    return path


def _independent_to_model(x, lo, hi):
    """[-1, 1] from the per-channel range, computed here without gankit."""
    lo, hi = np.asarray(lo, float)[:, None, None], np.asarray(hi, float)[:, None, None]
    return (np.asarray(x, float) - lo) / (hi - lo) * 2 - 1


def _error(capsys, fn):
    return usage_error(capsys, fn)


# ---------------------------------------------------------------------------
# image folders
# ---------------------------------------------------------------------------
def test_class_subfolders_give_sorted_labels_and_resized_images(tmp_path):
    rng = _rng()
    same = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    big = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    wide = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)  # H 32, W 48: crop 8 each side
    _png(str(tmp_path / "dogs" / "a.png"), same)
    _png(str(tmp_path / "dogs" / "b.png"), big)
    _png(str(tmp_path / "cats" / "c.png"), wide)
    ramp = np.linspace(0, 255, 32).astype(np.uint8)
    smooth = np.stack(np.broadcast_arrays(ramp[:, None], ramp[None, :], 128), axis=2)
    Image.fromarray(smooth.astype(np.uint8)).save(tmp_path / "cats" / "d.jpg", quality=95)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "dogs" / ".DS_Store").write_bytes(b"\0\1")

    data = own_data.read(str(tmp_path), resolution=32)
    assert data.classes == ["cats", "dogs"] and len(data) == 4 and data.channels == 3
    x, labels = data[np.arange(4)]
    assert x.shape == (4, 3, 32, 32) and x.dtype == np.float32
    np.testing.assert_array_equal(labels, [0, 0, 1, 1])
    assert data.scaling.lo == (0.0,) * 3 and data.scaling.hi == (255.0,) * 3
    chw = lambda a: a.transpose(2, 0, 1)  # noqa: E731
    np.testing.assert_allclose(x[0], chw(wide[:, 8:40]) / 255 * 2 - 1, atol=1e-6)
    np.testing.assert_allclose(x[2], chw(same) / 255 * 2 - 1, atol=1e-6)
    box = big.reshape(32, 2, 32, 2, 3).mean(axis=(1, 3))  # BOX by 2: the 2x2 mean
    np.testing.assert_allclose(x[3], chw(box) / 255 * 2 - 1, atol=1.01 * 2 / 255)
    assert np.abs(x[1] - (chw(smooth) / 255 * 2 - 1)).max() < 0.1  # JPEG, lossy
    assert "4 images in 2 class(es)" in data.summary and "2 resized" in data.summary
    assert "2 other entries ignored" in data.summary
    np.testing.assert_allclose(data.scaling.to_data(x[2]), chw(same), atol=1e-4)


def test_grey_images_in_the_folder_itself_are_one_class(tmp_path):
    rng = _rng(1)
    grey = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    folder = tmp_path / "my_fields"
    _png(str(folder / "g1.png"), grey)
    _png(str(folder / "g2.png"), grey > 128, mode=None)  # mode "1", bilevel
    data = own_data.read(str(folder), resolution=20)  # centre-cropped, not resized
    assert data.classes == ["my_fields"] and data.channels == 1
    x, labels = data[[0, 1]]
    assert x.shape == (2, 1, 20, 20) and set(labels) == {0}
    np.testing.assert_allclose(x[0, 0], grey[:, 5:25] / 255 * 2 - 1, atol=1e-6)
    np.testing.assert_array_equal(x[1, 0], np.where(grey[:, 5:25] > 128, 1.0, -1.0))
    assert isinstance(data.array, np.ndarray) and data.array.dtype == np.uint8


def test_exif_rotation_is_applied(tmp_path):
    grey = _rng(13).integers(0, 256, (8, 16), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: shown rotated 90 degrees clockwise
    Image.fromarray(grey).save(tmp_path / "photo.png", exif=exif)
    x = own_data.read(str(tmp_path), resolution=8)[[0]][0]
    upright = np.rot90(grey, k=-1)  # 16 x 8, then centre-cropped to 8 x 8
    np.testing.assert_allclose(x[0, 0], upright[4:12] / 255 * 2 - 1, atol=1e-6)


def test_palette_and_opaque_rgba_images_become_rgb(tmp_path):
    rgb = _rng(2).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    rgba = np.concatenate([rgb, np.full((8, 8, 1), 255, np.uint8)], axis=2)
    _png(str(tmp_path / "q.png"), rgba)
    data = own_data.read(str(tmp_path), resolution=8)
    assert data.channels == 3
    np.testing.assert_allclose(data.scaling.to_data(data[1][0][0]), rgb.transpose(2, 0, 1))


def test_transparent_pixels_are_refused(tmp_path, capsys):
    rgba = np.full((8, 8, 4), 200, np.uint8)
    rgba[0, 0, 3] = 0
    path = _png(str(tmp_path / "alpha.png"), rgba)
    line = _error(capsys, lambda: own_data.read(str(tmp_path), resolution=8))
    assert path in line and "transparent" in line


def test_mixed_grey_and_colour_names_two_files(tmp_path, capsys):
    a = _png(str(tmp_path / "a.png"), np.zeros((8, 8), np.uint8))
    b = _png(str(tmp_path / "b.png"), np.zeros((8, 8, 3), np.uint8))
    line = _error(capsys, lambda: own_data.read(str(tmp_path), resolution=8))
    assert a in line and b in line and " L " in line and "RGB" in line


@pytest.mark.parametrize("content", [b"this is text", "truncated"])
def test_a_bad_image_file_is_named(tmp_path, capsys, content):
    _png(str(tmp_path / "good.png"), np.zeros((8, 8), np.uint8))
    bad = tmp_path / "bad.png"
    if content == "truncated":
        _png(str(bad), _rng().integers(0, 256, (64, 64), dtype=np.uint8))
        bad.write_bytes(bad.read_bytes()[:200])
    else:
        bad.write_bytes(content)
    line = _error(capsys, lambda: own_data.read(str(tmp_path), resolution=8))
    assert str(bad) in line and "not a readable image" in line


def test_sixteen_bit_images_are_refused(tmp_path, capsys):
    path = str(tmp_path / "deep.png")
    Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(path)
    line = _error(capsys, lambda: own_data.read(str(tmp_path), resolution=8))
    assert path in line and ".npy" in line


def test_folder_layout_errors(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".DS_Store").write_text("x")
    line = _error(capsys, lambda: own_data.read(str(tmp_path), resolution=8))
    assert "has no images" in line and "2 other entries ignored" in line
    os.makedirs(tmp_path / "empty_class")
    _png(str(tmp_path / "full" / "a.png"), np.zeros((8, 8), np.uint8))
    line = _error(capsys, lambda: own_data.read(str(tmp_path), resolution=8))
    assert "empty_class/ has no images" in line
    os.rmdir(tmp_path / "empty_class")
    _png(str(tmp_path / "loose.png"), np.zeros((8, 8), np.uint8))
    line = _error(capsys, lambda: own_data.read(str(tmp_path), resolution=8))
    assert "loose.png" in line and "full/" in line
    line = _error(capsys, lambda: own_data.read(str(tmp_path / "full"), key="x", resolution=8))
    assert "DATA.key=x" in line


# ---------------------------------------------------------------------------
# array files
# ---------------------------------------------------------------------------
def test_npy_int_nchw_is_memory_mapped_and_round_trips(tmp_path):
    x = _rng(3).integers(-500, 3000, (10, 2, 8, 8)).astype(np.int16)
    path = str(tmp_path / "fields.npy")
    np.save(path, x)
    data = own_data.read(path, resolution=8)
    assert isinstance(data.array, np.memmap) and data.array.filename == os.path.abspath(path)
    lo, hi = x.min(axis=(0, 2, 3)), x.max(axis=(0, 2, 3))
    assert data.scaling.lo == tuple(lo) and data.scaling.hi == tuple(hi)
    batch, labels = data[[7, 2, 7]]
    assert batch.shape == (3, 2, 8, 8) and batch.dtype == np.float32 and not labels.any()
    np.testing.assert_allclose(batch, _independent_to_model(x[[7, 2, 7]], lo, hi), atol=1e-6)
    np.testing.assert_allclose(data.scaling.to_data(batch), x[[7, 2, 7]], atol=1e-3)
    assert batch.min() >= -1 and batch.max() <= 1
    assert data.classes == ["fields.npy"] and "memory-mapped" in data.summary


def test_npy_float_nhw_has_one_channel(tmp_path):
    x = _rng(4).normal(5.0, 2.0, (6, 4, 4)).astype(np.float32)
    path = str(tmp_path / "u.npy")
    np.save(path, x)
    data = own_data.read(path, resolution=4)
    assert data.channels == 1
    batch = data[:][0]
    assert batch.shape == (6, 1, 4, 4)
    np.testing.assert_allclose(
        batch[:, 0], _independent_to_model(x, [x.min()], [x.max()]), atol=1e-6
    )
    np.testing.assert_allclose(data.scaling.to_data(batch)[:, 0], x, rtol=1e-5)


def test_range_scan_streams_chunks_of_a_memory_map(tmp_path, monkeypatch, capsys):
    x = _rng(5).random((300, 1, 8, 8)).astype(np.float32)
    x[123, 0, 0, 0], x[290, 0, 1, 1] = -7.0, 9.0
    path = str(tmp_path / "big.npy")
    np.save(path, x)
    reads = []
    original = own_data.ArraySource.blocks

    def blocks(source, max_bytes):
        for start, block in original(source, max_bytes):
            reads.append((start, len(block), type(source.array)))
            yield start, block

    monkeypatch.setattr(own_data, "_CHUNK_BYTES", 10 * 8 * 8 * 4)  # 10 samples a slab
    monkeypatch.setattr(own_data.ArraySource, "blocks", blocks)
    data = own_data.read(path, resolution=8)
    assert reads == [(start, 10, np.memmap) for start in range(0, 300, 10)]
    assert data.scaling.lo == (-7.0,) and data.scaling.hi == (9.0,)
    x[211, 0, 3, 3] = np.nan
    np.save(path, x)
    line = _error(capsys, lambda: own_data.read(path, resolution=8))
    assert path in line and "NaN in sample 211" in line


def test_inf_is_named_with_its_sample(tmp_path, capsys):
    x = np.zeros((5, 3, 4, 4))
    x[3, 2, 0, 0] = -np.inf
    path = str(tmp_path / "inf.npz")
    np.savez(path, data=x)
    line = _error(capsys, lambda: own_data.read(path, resolution=4))
    assert path in line and "Inf in sample 3" in line and "DATA.key=data" in line


def test_npz_one_and_several_arrays(tmp_path, capsys):
    u = _rng(6).random((4, 8, 8))
    v = _rng(7).integers(0, 9, (3, 3, 8, 8)).astype(np.uint8)
    one, several = str(tmp_path / "one.npz"), str(tmp_path / "several.npz")
    np.savez(one, u=u)
    np.savez(several, u=u, v=v)
    data = own_data.read(one, resolution=8)
    assert isinstance(data.array, np.memmap)  # np.savez stores members uncompressed
    np.testing.assert_allclose(data.scaling.to_data(data[:][0])[:, 0], u, rtol=1e-6)
    data = own_data.read(several, key="v", resolution=8)
    assert isinstance(data.array, np.memmap) and data.channels == 3
    np.testing.assert_array_equal(data.raw([2, 0]), v[[2, 0]])
    line = _error(capsys, lambda: own_data.read(several, resolution=8))
    assert "several arrays" in line and "u (4, 8, 8)" in line and "v (3, 3, 8, 8)" in line
    line = _error(capsys, lambda: own_data.read(several, key="w", resolution=8))
    assert "DATA.key=w" in line and several in line and "u (4, 8, 8), v (3, 3, 8, 8)" in line


def test_compressed_npz_is_read_into_memory(tmp_path):
    u = _rng(8).random((4, 8, 8)).astype(np.float32)
    path = str(tmp_path / "c.npz")
    np.savez_compressed(path, u=u)
    data = own_data.read(path, resolution=8)
    assert not isinstance(data.array, np.memmap) and "in memory" in data.summary
    np.testing.assert_array_equal(data.raw(slice(None))[:, 0], u)


def test_mat_v5(tmp_path, capsys):
    x = _rng(9).random((5, 2, 8, 8))
    path = str(tmp_path / "sim.mat")
    scipy.io.savemat(path, {"snapshots": x, "mesh": np.arange(4.0), "meta": {"dt": 0.1}})
    data = own_data.read(path, key="snapshots", resolution=8)
    np.testing.assert_allclose(data.raw(slice(None)), x)
    np.testing.assert_allclose(data.scaling.to_data(data[:][0]), x, rtol=1e-5, atol=1e-6)
    line = _error(capsys, lambda: own_data.read(path, key="meta", resolution=8))
    assert "DATA.key=meta" in line and "snapshots (5, 2, 8, 8)" in line
    line = _error(capsys, lambda: own_data.read(path, resolution=8))
    assert "several arrays" in line


def _mat_v73(path, arrays):
    """A file as MATLAB's save -v7.3 writes it: HDF5 after a 512-byte text header, each
    array column-major (its axes reversed in HDF5) with a MATLAB_class attribute."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, array in arrays.items():
            dataset = f.create_dataset(name, data=np.ascontiguousarray(array.transpose()))
            dataset.attrs["MATLAB_class"] = np.bytes_("double")
        f.create_group("#refs#").create_dataset("a", data=np.zeros(2))
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Dec  7 2026".ljust(116))


def test_mat_v73_is_hdf5_read_lazily_in_matlabs_layout(tmp_path):
    x = _rng(10).normal(size=(6, 3, 4, 4))
    path = str(tmp_path / "big.mat")
    _mat_v73(path, {"x": x})
    data = own_data.read(path, resolution=4)
    assert isinstance(data.array, h5py.Dataset) and data.array.shape == (4, 4, 3, 6)
    assert len(data) == 6 and data.channels == 3
    np.testing.assert_allclose(data.raw([5, 1, 5]), x[[5, 1, 5]])
    lo, hi = x.min(axis=(0, 2, 3)), x.max(axis=(0, 2, 3))
    np.testing.assert_allclose(data.scaling.lo, lo)
    np.testing.assert_allclose(data.scaling.hi, hi)
    np.testing.assert_allclose(data[[0, 4]][0], _independent_to_model(x[[0, 4]], lo, hi), atol=1e-6)
    data.close()


def test_mat_v73_nan_found_in_a_later_slab(tmp_path, monkeypatch, capsys):
    x = np.zeros((6, 3, 4, 4))
    # HDF5 holds x's axes reversed, W first: sample 4's NaN (W 1) is read before sample 2's
    # Inf (W 3), yet sample 2 is the first with one
    x[4, 1, 0, 1], x[2, 0, 0, 3] = np.nan, np.inf
    path = str(tmp_path / "bad.mat")
    _mat_v73(path, {"x": x})
    monkeypatch.setattr(own_data, "_CHUNK_BYTES", 1)  # one row of the first HDF5 axis a slab
    line = _error(capsys, lambda: own_data.read(path, resolution=4))
    assert path in line and "Inf in sample 2" in line


def test_h5_nested_key_read_lazily(tmp_path, capsys):
    u = _rng(11).random((9, 8, 8)).astype(np.float32)
    path = str(tmp_path / "run.h5")
    with h5py.File(path, "w") as f:
        f.create_dataset("fields/u", data=u, chunks=(2, 8, 8), compression="gzip")
        f.create_dataset("fields/v", data=u * 2)
    data = own_data.read(path, key="fields/u", resolution=8)
    assert isinstance(data.array, h5py.Dataset) and "read lazily" in data.summary
    batch, _ = data[[8, 0, 8, 3]]  # unsorted, repeated: h5py itself needs increasing indices
    np.testing.assert_allclose(
        batch[:, 0], _independent_to_model(u[[8, 0, 8, 3]], [u.min()], [u.max()]), atol=1e-6
    )
    assert sum(len(b[0]) for b in data.batches(4, _rng())) == 8
    data.close()
    line = _error(capsys, lambda: own_data.read(path, key="fields/w", resolution=8))
    assert "DATA.key=fields/w" in line and "fields/u (9, 8, 8), fields/v (9, 8, 8)" in line
    line = _error(capsys, lambda: own_data.read(path, resolution=8))
    assert "set DATA.key" in line


def test_size_other_than_the_resolution_needs_resize(tmp_path, capsys):
    x = _rng(12).random((3, 2, 16, 16)).astype(np.float32)
    path = str(tmp_path / "hi_res.npy")
    np.save(path, x)
    line = _error(capsys, lambda: own_data.read(path, resolution=8))
    assert path in line and "16x16" in line and "DATA.resolution=8" in line
    assert "DATA.resize=true" in line
    data = own_data.read(path, resolution=8, resize=True)
    batch = data[[2, 0]][0]
    assert batch.shape == (2, 2, 8, 8)
    lo, hi = x.min(axis=(0, 2, 3)), x.max(axis=(0, 2, 3))
    area = x[[2, 0]].reshape(2, 2, 8, 2, 8, 2).mean(axis=(3, 5))  # the 2x2 area mean
    np.testing.assert_allclose(batch, _independent_to_model(area, lo, hi), atol=1e-5)
    wide = str(tmp_path / "wide.npy")
    np.save(wide, np.zeros((2, 6, 12)))
    assert own_data.read(wide, resolution=8, resize=True)[[0]][0].shape == (1, 1, 8, 8)


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.array([None, 1], dtype=object), "dtype object"),
        (np.zeros((2, 4, 4), np.complex64), "dtype complex64"),
        (np.zeros((2, 16)), "shape (2, 16)"),
        (np.zeros((0, 4, 4)), "no samples"),
        (np.zeros((2, 8, 8, 3)), "channels-last"),
    ],
)
def test_bad_arrays_are_refused(tmp_path, capsys, array, expected):
    path = str(tmp_path / "bad.npy")
    np.save(path, array, allow_pickle=True)
    line = _error(capsys, lambda: own_data.read(path, resolution=4, resize=True))
    assert path in line and expected in line


def test_object_member_of_a_compressed_npz_is_refused(tmp_path, capsys):
    path = str(tmp_path / "objects.npz")
    np.savez_compressed(path, u=np.zeros((2, 4, 4)), names=np.array(["a", None], dtype=object))
    line = _error(capsys, lambda: own_data.read(path, key="names", resolution=4))
    assert path in line and "DATA.key=names" in line and "dtype object" in line


@pytest.mark.parametrize("name", ["x.npy", "x.npz", "x.mat", "x.h5", "x.csv", "missing.npy"])
def test_unreadable_files_are_named(tmp_path, capsys, name):
    path = tmp_path / name
    if name != "missing.npy":
        path.write_bytes(b"\x93NUMPY garbage, not the format the name says")
    line = _error(capsys, lambda: own_data.read(str(path), resolution=4))
    assert f"DATA.data_path={path}" in line
    if name == "x.csv":
        assert "unknown extension '.csv'" in line and ".hdf5" in line


def test_check_enough_and_resolution(capsys):
    own_data.check_enough(64, 64, "DATA.data_path=x.npy")
    line = _error(capsys, lambda: own_data.check_enough(10, 64, "DATA.data_path=x.npy"))
    assert "x.npy has 10 samples" in line and "TRAIN.batch_size=64" in line
    line = _error(capsys, lambda: own_data.read("x.npy", resolution=0))
    assert "DATA.resolution=0" in line
    line = _error(capsys, lambda: own_data.read("", resolution=32))
    assert "DATA.data_path is not set" in line


def test_scaling_record_is_json_and_inverts(tmp_path):
    scaling = own_data.Scaling(lo=(-3.0, 5.0), hi=(7.0, 5.0))  # second channel constant
    again = own_data.Scaling.from_dict(json.loads(json.dumps(scaling.to_dict())))
    assert again == scaling
    x = np.stack([np.linspace(-3, 7, 16).reshape(4, 4), np.full((4, 4), 5.0)])
    y = scaling.to_model(x)
    assert y.dtype == np.float32 and y.min() == -1 and y.max() == 1
    assert (y[1] == -1).all()
    np.testing.assert_allclose(scaling.to_data(y), x, atol=1e-5)
    np.testing.assert_allclose(scaling.to_data(np.zeros((2, 4, 4)))[1], 5.0)
