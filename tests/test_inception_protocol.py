"""The Inception Score protocol of the papers: the 2015 TF graph's own input processing
(TF1 ResizeBilinear without half-pixel centres, then (x - 128) / 128 on 0..255 pixels),
and pytorch-fid's weights file fetched through ppsci's download cache with its SHA-256
prefix checked."""

import hashlib
import os
import socket

import numpy as np
import paddle
import pytest
from http_server import serve

from gankit import download
from gankit.inception import networks
from gankit.inception import weights as inception_weights


def tf1_resize_reference(image, out_h, out_w):
    """TF1's ResizeBilinear (align_corners=False, no half-pixel centres), pixel by pixel as
    its definition reads: source = destination * in / out in float32, no offset; blend
    floor and floor + 1 (clamped to the last pixel): top/bottom rows, then vertically."""
    h, w = image.shape
    out = np.zeros((out_h, out_w), np.float64)
    for i in range(out_h):
        y = np.float32(i) * (np.float32(h) / np.float32(out_h))
        y0 = int(np.floor(y))
        y1, dy = min(y0 + 1, h - 1), float(y) - y0
        for j in range(out_w):
            x = np.float32(j) * (np.float32(w) / np.float32(out_w))
            x0 = int(np.floor(x))
            x1, dx = min(x0 + 1, w - 1), float(x) - x0
            top = image[y0, x0] + (image[y0, x1] - image[y0, x0]) * dx
            bottom = image[y1, x0] + (image[y1, x1] - image[y1, x0]) * dx
            out[i, j] = top + (bottom - top) * dy
    return out


@pytest.mark.parametrize("in_h, in_w, out", [(32, 32, 299), (5, 7, 11), (9, 4, 3)])
def test_tf1_resize_matches_its_definition(in_h, in_w, out):
    rng = np.random.default_rng(in_h)
    images = rng.integers(0, 256, (2, 3, in_h, in_w)).astype("float32")
    got = networks.resize_tf1(paddle.to_tensor(images), out).numpy()
    assert got.shape == (2, 3, out, out)
    for n in range(2):
        for c in range(3):
            np.testing.assert_allclose(
                got[n, c], tf1_resize_reference(images[n, c], out, out), rtol=0, atol=2e-4
            )


def test_tf1_resize_has_no_half_pixel_offset():
    m = networks.tf1_resize_matrix(32, 299)
    np.testing.assert_allclose(m.sum(1), 1, atol=1e-6)
    assert m[0, 0] == 1  # the first output pixel is the first input pixel
    # x = i * 32 / 299 reaches the last pixel at i = 290: the rest is clamped to it
    assert (m[290:, 31] == 1).all() and m[289, 31] < 1
    # pytorch-fid's half-pixel resize samples elsewhere: not the same image
    x = paddle.to_tensor(np.random.default_rng(0).random((1, 3, 32, 32)).astype("float32"))
    assert float((networks.resize_tf1(x) - networks.resize_to_input(x)).abs().max()) > 0.05


def test_graph_preprocessing_is_resize_then_minus_128_over_128():
    paddle.seed(0)
    net = networks.TFInceptionV3()
    assert net.preprocessing == "tf_graph" and net.protocol == "tf2015-graph"
    pixels = np.random.default_rng(1).integers(0, 256, (2, 3, 32, 32))
    x = net.preprocess(paddle.to_tensor((pixels / 255).astype("float32"))).numpy()
    assert x.shape == (2, 3, 299, 299)
    expected = (tf1_resize_reference(pixels[1, 2].astype("float64"), 299, 299) - 128) / 128
    np.testing.assert_allclose(x[1, 2], expected, rtol=0, atol=1e-5)
    constant = net.preprocess(paddle.full([1, 3, 32, 32], 255 / 255)).numpy()
    np.testing.assert_allclose(constant, 127 / 128, atol=1e-6)  # white is not 1.0 in the graph


def test_pytorch_fid_preprocessing_is_a_named_option():
    net = networks.TFInceptionV3("pytorch_fid")
    assert net.protocol == "tf2015-pytorch-fid"
    x = net.preprocess(paddle.full([1, 3, 32, 32], 1.0)).numpy()
    np.testing.assert_allclose(x, 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="Unknown Inception preprocessing 'tf'"):
        networks.TFInceptionV3("tf")


# ---- pytorch-fid's weights downloaded once (runtime.download), from a local server ----


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "CACHE", str(tmp_path / "weights"))
    return tmp_path / "weights"


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A local server for the files written into `root`; the official URL points at it."""
    root = tmp_path / "site"
    root.mkdir()
    with serve(root) as url:
        monkeypatch.setattr(
            inception_weights, "TF_WEIGHTS_URL", f"{url}/w/{inception_weights.TF_WEIGHTS_NAME}"
        )
        yield url, root


def test_file_name_carries_the_sha256_prefix():
    assert inception_weights.TF_WEIGHTS_URL == (
        "https://github.com/mseitzer/pytorch-fid/releases/"
        "download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
    )
    assert inception_weights.sha256_prefix(inception_weights.TF_WEIGHTS_URL) == "6726825d"
    assert inception_weights.sha256_prefix("inception_tf2015.pdparams") is None


def test_matching_download_is_accepted_unpacked(cache, site):
    url, root = site
    content = b"PK\x03\x04weights"  # binary, as torch.save's zip archive (kept as it is)
    prefix = hashlib.sha256(content).hexdigest()[:8]
    (root / "w").mkdir()
    (root / "w" / f"fake-{prefix}.pth").write_bytes(content)
    path = inception_weights.download_tf_weights(f"{url}/w/fake-{prefix}.pth")
    assert os.path.dirname(path) == str(cache) and path.endswith(f"-fake-{prefix}.pth")
    assert open(path, "rb").read() == content


def test_mismatching_download_is_refused_and_removed(cache, site):
    url, root = site
    (root / "w").mkdir()
    (root / "w" / inception_weights.TF_WEIGHTS_NAME).write_bytes(b"PK\x03\x04 another file")
    with pytest.raises(
        ValueError,
        match=f"The download of {url}/w/pt_inception-2015-12-05-"
        "6726825d.pth has SHA-256 .* does not start with "
        "6726825d .*removed it from the download cache",
    ):
        inception_weights.load_inception("tf2015", None)  # the default: the official URL
    assert not [n for n in os.listdir(cache) if n.endswith(".pth")]


def test_a_copy_put_into_the_download_folder_is_used_first(cache, site):
    """Offline users put the file there under its own name, as the message says."""
    cache.mkdir()
    (cache / inception_weights.TF_WEIGHTS_NAME).write_bytes(b"not the weights")
    with pytest.raises(ValueError, match="does not start with 6726825d.*use an intact copy"):
        inception_weights.download_tf_weights()  # checked, not downloaded (the server has none)
    assert (cache / inception_weights.TF_WEIGHTS_NAME).exists()


def test_local_file_with_the_official_name_is_checked_not_removed(tmp_path):
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    path.write_bytes(b"truncated")
    with pytest.raises(ValueError, match="does not start with 6726825d.*use an intact copy"):
        inception_weights.load_inception("tf2015", str(path))
    assert path.exists()


def test_offline_message_says_what_to_download_where_and_which_setting(cache, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(
        inception_weights,
        "TF_WEIGHTS_URL",
        f"http://127.0.0.1:{port}/w/{inception_weights.TF_WEIGHTS_NAME}",
    )
    with pytest.raises(ValueError) as info:
        inception_weights.load_inception("tf2015", None)
    message = str(info.value)
    assert inception_weights.TF_WEIGHTS_URL in message and "EVAL.inception_weights=" in message
    assert str(cache) in message and "could not be downloaded" in message
