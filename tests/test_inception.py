"""The IS/FID Inception networks and the torch-free reading of their weights files.

The .pth files here are written in torch.save's real formats without torch: a
pickle Pickler with persistent ids naming torch's globals, in the zip layout
(archive/data.pkl, archive/data/<key>, archive/version) or the legacy stream.
"""

import collections
import io
import pickle
import zipfile

import numpy as np
import paddle
import pytest
from paddle import nn

from gankit.inception import convert, networks, torch_file
from gankit.inception import weights as inception_weights

# ---- torch.save's formats, written without torch ----


class TorchGlobal:
    """A global of torch's pickles, e.g. torch._utils._rebuild_tensor_v2, by name."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle wants reduce functions callable
        raise TypeError("stands for a torch global in pickles only")


REBUILD_TENSOR = TorchGlobal("torch._utils", "_rebuild_tensor_v2")
STORAGE_TYPES = {
    np.dtype("float32"): "FloatStorage",
    np.dtype("float16"): "HalfStorage",
    np.dtype("int64"): "LongStorage",
}


class Storage:
    def __init__(self, key, values):
        self.key, self.values = key, np.ascontiguousarray(values).ravel()
        self.type = TorchGlobal("torch", STORAGE_TYPES[self.values.dtype])


class Tensor:
    """A strided view of a Storage; pickles as torch.Tensor does."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce__(self):
        return REBUILD_TENSOR, (
            self.storage,
            self.offset,
            tuple(self.size),
            tuple(self.stride),
            False,
            collections.OrderedDict(),
        )


class CodeRunner:
    """A pickled call of an arbitrary global: what a malicious weights file holds."""

    def __init__(self, module, name, argument):
        self.function, self.argument = TorchGlobal(module, name), argument

    def __reduce__(self):
        return self.function, (self.argument,)


class TorchPickler(pickle._Pickler):
    """Writes TorchGlobal as a GLOBAL opcode and storages as persistent ids."""

    dispatch = pickle._Pickler.dispatch.copy()

    def __init__(self, file, legacy=False):
        super().__init__(file, protocol=2)  # torch.save's protocol
        self.legacy = legacy

    def save_torch_global(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    dispatch[TorchGlobal] = save_torch_global

    def persistent_id(self, obj):
        if not isinstance(obj, Storage):
            return None
        pid = ("storage", obj.type, obj.key, "cpu", obj.values.size)
        return pid + (None,) if self.legacy else pid  # legacy: no storage view


def contiguous(storage, shape, offset=0):
    strides = np.cumprod((1,) + tuple(shape[::-1]))[:-1][::-1] if shape else ()
    return Tensor(storage, offset, shape, tuple(int(s) for s in strides))


def torch_state(arrays):
    """{name: array} as a torch state dict: an OrderedDict of tensors, own storages."""
    state = collections.OrderedDict()
    for key, (name, values) in enumerate(arrays.items()):
        state[name] = contiguous(Storage(str(key), values), tuple(values.shape))
    state._metadata = collections.OrderedDict({"": {"version": 1}})  # as state_dict() has
    return state


def storages_of(obj):
    if isinstance(obj, Tensor):
        return {obj.storage.key: obj.storage}
    if isinstance(obj, dict):
        return {k: s for value in obj.values() for k, s in storages_of(value).items()}
    return {}


def write_torch_zip(path, obj):
    """torch.save's zip layout (torch >= 1.6)."""
    pickled = io.BytesIO()
    TorchPickler(pickled).dump(obj)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickled.getvalue())
        archive.writestr("archive/byteorder", "little")
        for key, storage in sorted(storages_of(obj).items()):
            archive.writestr(
                f"archive/data/{key}",
                storage.values.astype(storage.values.dtype.newbyteorder("<")).tobytes(),
            )
        archive.writestr("archive/version", "3\n")


def write_torch_legacy(path, obj):
    """torch.save's format before 1.6: a stream of pickles, then the raw storages."""
    sys_info = {
        "protocol_version": 1001,
        "little_endian": True,
        "type_sizes": {"short": 2, "int": 4, "long": 8},
    }
    storages = storages_of(obj)
    with open(path, "wb") as f:
        for header in (torch_file.LEGACY_MAGIC_NUMBER, 1001, sys_info):
            pickle.dump(header, f, protocol=2)
        TorchPickler(f, legacy=True).dump(obj)
        pickle.dump(sorted(storages), f, protocol=2)
        for key in sorted(storages):
            values = storages[key].values
            f.write(np.int64(values.size).tobytes() + values.tobytes())


# ---- a TF Inception weights file with torchvision's names ----


def torch_name(paddle_name):
    return paddle_name.replace("._mean", ".running_mean").replace("._variance", ".running_var")


@pytest.fixture(scope="module")
def tf_net():
    paddle.seed(0)
    return networks.TFInceptionV3()


@pytest.fixture(scope="module")
def tf_weights(tf_net):
    """(torch state dict to pickle, expected {paddle name: values}) of the full key set,
    with a transposed view at an offset, two tensors sharing a storage, a float16
    storage and num_batches_tracked entries."""
    rng = np.random.default_rng(0)
    expected = {
        name: (0.01 * rng.standard_normal(value.shape)).astype("float32")
        for name, value in tf_net.state_dict().items()
    }
    state = torch_state({torch_name(k): v for k, v in expected.items()})

    # a [32, 3, 3, 3] weight stored as [3, 32, 3, 3] after 5 other numbers
    name = "Conv2d_1a_3x3.conv.weight"
    stored = np.ascontiguousarray(expected[name].transpose(1, 0, 2, 3))
    storage = Storage("strided", np.concatenate([np.zeros(5, "float32"), stored.ravel()]))
    state[name] = Tensor(storage, 5, (32, 3, 3, 3), (9, 288, 3, 1))

    weight, bias = "Conv2d_2a_3x3.bn.weight", "Conv2d_2a_3x3.bn.bias"  # one storage, two views
    shared = Storage("shared", np.concatenate([expected[weight], expected[bias]]))
    state[weight], state[bias] = contiguous(shared, (32,)), contiguous(shared, (32,), offset=32)

    half = "Mixed_5b.branch1x1.bn._variance"
    expected[half] = np.abs(expected[half]).astype("float16").astype("float32")
    state[torch_name(half)] = contiguous(Storage("half", expected[half].astype("float16")), (64,))

    for key, name in enumerate(k for k in list(state) if k.endswith(".bn.running_var")):
        counter = Storage(f"count{key}", np.array([1000 + key], "int64"))
        state[name.replace("running_var", "num_batches_tracked")] = Tensor(counter, 0, (), ())
    return state, expected


@pytest.fixture(scope="module")
def tf_pth(tf_weights, tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "pt_inception-test.pth"
    write_torch_zip(path, tf_weights[0])
    return str(path)


def test_reader_follows_strides_offsets_and_storage_types(tf_weights, tf_pth):
    state, expected = tf_weights
    read = torch_file.read_torch_state_dict(tf_pth)
    assert set(read) == set(state)
    for name in ("Conv2d_1a_3x3.conv.weight", "Conv2d_2a_3x3.bn.weight", "Conv2d_2a_3x3.bn.bias"):
        np.testing.assert_array_equal(read[name], expected[name])
    assert read["Mixed_5b.branch1x1.bn.running_var"].dtype == np.float16
    counter = read["Conv2d_1a_3x3.bn.num_batches_tracked"]
    assert counter.dtype == np.int64 and counter.shape == () and counter >= 1000


def test_converted_weights_load_unchanged(tf_weights, tf_pth, tmp_path):
    expected = tf_weights[1]
    out = str(tmp_path / "inception_tf2015.pdparams")
    assert convert.main([tf_pth, out]) == 0
    for weights in (out, tf_pth):  # the converted file and the .pth directly
        net = inception_weights.load_inception("tf2015", weights)
        loaded = net.state_dict()
        assert set(loaded) == set(expected)
        for name, values in expected.items():
            np.testing.assert_array_equal(loaded[name].numpy(), values, err_msg=name)


def test_legacy_torch_format_is_read(tmp_path):
    path = tmp_path / "legacy.pth"
    arrays = {
        "a.weight": np.arange(6, dtype="float32").reshape(2, 3),
        "a.num_batches_tracked": np.array([7], "int64"),
    }
    state = torch_state(arrays)
    state["a.weight_t"] = Tensor(state["a.weight"].storage, 0, (3, 2), (1, 3))
    write_torch_legacy(path, state)
    read = torch_file.read_torch_state_dict(str(path))
    np.testing.assert_array_equal(read["a.weight"], arrays["a.weight"])
    np.testing.assert_array_equal(read["a.weight_t"], arrays["a.weight"].T)
    assert read["a.num_batches_tracked"].tolist() == [7]


@pytest.mark.parametrize("write", [write_torch_zip, write_torch_legacy])
@pytest.mark.parametrize(
    "module, name, code",
    [
        ("os", "system", "touch {marker}"),
        ("posix", "system", "touch {marker}"),
        ("builtins", "eval", "open({marker!r}, 'w').close()"),
    ],
)
def test_malicious_pickle_is_refused_unrun(tmp_path, write, module, name, code):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    state = torch_state({"x": np.zeros(2, "float32")})
    state["y"] = CodeRunner(module, name, code.format(marker=str(marker)))
    write(path, state)
    with pytest.raises(ValueError, match=f"evil.pth refers to {module}.{name}.*refused"):
        torch_file.read_torch_state_dict(str(path))
    with pytest.raises(ValueError, match="refused"):
        inception_weights.load_inception("tf2015", str(path))
    assert not marker.exists()


def test_wrong_shape_is_named(tf_weights, tmp_path):
    state = collections.OrderedDict(tf_weights[0])
    state["Mixed_6b.branch1x1.conv.weight"] = contiguous(
        Storage("wrong", np.zeros(192 * 768 * 3 * 3, "float32")), (192, 768, 3, 3)
    )
    path = str(tmp_path / "wrong.pth")
    write_torch_zip(path, state)
    message = (
        "wrong.pth does not hold the weights of the 2015 TF Inception graph .*"
        r"Mixed_6b.branch1x1.conv.weight has shape \[192, 768, 3, 3\], "
        r"expected \[192, 768, 1, 1\]"
    )
    with pytest.raises(ValueError, match=message):
        convert.convert(path, str(tmp_path / "out.pdparams"))
    assert convert.main([path, str(tmp_path / "out.pdparams")]) == 1
    with pytest.raises(ValueError, match=message):
        inception_weights.load_inception("tf2015", path)


def test_missing_and_unreadable_files_give_value_errors(tmp_path, monkeypatch):
    missing = str(tmp_path / "nowhere.pth")
    with pytest.raises(ValueError, match="nowhere.pth does not exist"):
        inception_weights.load_inception("tf2015", missing)
    with pytest.raises(ValueError, match="nowhere.pth does not exist"):
        torch_file.read_torch_state_dict(missing)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a weights file")
    with pytest.raises(ValueError, match="junk.pth is not a file written by torch.save"):
        inception_weights.load_inception("tf2015", str(junk))
    junk_params = tmp_path / "junk.pdparams"
    junk_params.write_bytes(b"not a weights file")
    with pytest.raises(ValueError, match="junk.pdparams could not be read"):
        inception_weights.load_inception("paddle", str(junk_params))
    with pytest.raises(ValueError, match="Unknown Inception kind"):
        inception_weights.load_inception("tf2016", None)
    # no file given and no network: the download's error, with what to do offline
    import socket

    from gankit import download

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(download, "CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(inception_weights, "TF_WEIGHTS_URL", f"http://127.0.0.1:{port}/w.pth")
    with pytest.raises(ValueError, match="could not be downloaded.*EVAL.inception_weights"):
        inception_weights.load_inception("tf2015", None)


# ---- the networks ----


def test_tf_inception_shapes_and_biasless_logits(tf_net):
    images = paddle.rand([2, 3, 32, 32])
    with paddle.no_grad():
        features, logits = tf_net(images)
    assert features.shape == [2, 2048] and logits.shape == [2, 1008]
    assert np.isfinite(features.numpy()).all()
    # logits = pool3 @ W.T, no bias even when the file's bias is not zero
    tf_net.fc.bias.set_value(np.ones(1008, "float32"))
    with paddle.no_grad():
        logits = tf_net.fc(features)
    np.testing.assert_allclose(
        logits.numpy(), features.numpy() @ tf_net.fc.weight.numpy().T, rtol=1e-4, atol=1e-5
    )
    tf_net.fc.bias.set_value(np.zeros(1008, "float32"))


def test_preprocessing_resizes_to_299_in_minus_one_one(tf_net):
    images = paddle.concat([paddle.full([1, 3, 32, 40], 0.5), paddle.ones([1, 3, 32, 40])])
    x = tf_net.preprocess(images).numpy()  # the graph's: (255 x - 128) / 128
    assert x.shape == (2, 3, 299, 299)
    np.testing.assert_allclose(x[0], -0.5 / 128, atol=1e-6)
    np.testing.assert_allclose(x[1], 127 / 128, atol=1e-6)
    x = networks.TFInceptionV3("pytorch_fid").preprocess(images).numpy()  # 2 x - 1
    np.testing.assert_allclose(x[0], 0.0, atol=1e-6)
    np.testing.assert_allclose(x[1], 1.0, atol=1e-6)


def test_block_pools_are_the_2015_graphs(tf_net):
    average_blocks = [
        tf_net.Mixed_5b,
        tf_net.Mixed_5c,
        tf_net.Mixed_5d,
        tf_net.Mixed_6b,
        tf_net.Mixed_6c,
        tf_net.Mixed_6d,
        tf_net.Mixed_6e,
        tf_net.Mixed_7b,
    ]
    ones = paddle.ones([1, 2, 5, 5])
    for block in average_blocks:
        assert isinstance(block.pool, nn.AvgPool2D) and block.pool.exclusive
        # padding not counted: a constant image stays constant at the borders
        np.testing.assert_allclose(block.pool(ones).numpy(), 1.0, rtol=1e-6)
    assert isinstance(tf_net.Mixed_7c.pool, nn.MaxPool2D)
    x = np.random.default_rng(1).standard_normal((1, 2, 5, 5)).astype("float32")
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))
    np.testing.assert_array_equal(
        tf_net.Mixed_7c.pool(paddle.to_tensor(x)).numpy(), windows.max(axis=(-2, -1))
    )


def test_paddle_vision_inception_shapes_and_local_weights(tmp_path):
    paddle.seed(0)
    net = networks.PaddleVisionInception(pretrained=False)
    with paddle.no_grad():
        features, logits = net(paddle.rand([2, 3, 32, 32]))
    assert features.shape == [2, 2048] and logits.shape == [2, 1000]
    np.testing.assert_allclose(
        logits.numpy(),
        features.numpy() @ net.net.fc.weight.numpy() + net.net.fc.bias.numpy(),
        rtol=1e-4,
        atol=1e-5,
    )

    path = str(tmp_path / "inception_v3.pdparams")
    paddle.save(net.net.state_dict(), path)
    loaded = inception_weights.load_inception("paddle", path)
    for name, value in net.net.state_dict().items():
        np.testing.assert_array_equal(loaded.net.state_dict()[name].numpy(), value.numpy())


def test_inception_pdparams_with_code_is_refused_without_running_it(tmp_path):
    import os
    import pickle

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "inception.pdparams"
    path.write_bytes(pickle.dumps({"Conv2d_1a_3x3.conv.weight": Payload()}, protocol=4))
    with pytest.raises(ValueError, match="could not be read"):
        inception_weights.load_inception("tf2015", str(path))
    assert not marker.exists()
