"""Weights loading: strict shapes and names, and no code run from a crafted file."""

import os
import pickle

import numpy as np
import paddle
import pytest

from conftest import usage_error
from gankit import files
from gankit import networks as models


def test_round_trip_through_paddle_save(tmp_path):
    paddle.seed(1)
    saved, _ = models.toy_models(2, 16, 2)
    files.save_weights(saved, str(tmp_path / "g.pdparams"))
    loaded, _ = models.toy_models(2, 16, 2)
    files.load_weights(loaded, str(tmp_path / "g.pdparams"), "EVAL.pretrained_gen_model_path")
    for (name, a), b in zip(saved.state_dict().items(), loaded.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_a_crafted_pickle_is_refused_and_never_run(tmp_path, capsys):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "model_generator.pdparams"
    path.write_bytes(pickle.dumps({"net.0.weight": Payload()}, protocol=4))
    pickle.loads(path.read_bytes())  # plain pickle (and so paddle.load) runs it...
    assert marker.exists()
    marker.unlink()
    generator, _ = models.toy_models(2, 16, 2)
    err = usage_error(
        capsys, files.load_weights, generator, str(path), "EVAL.pretrained_gen_model_path"
    )
    assert "system" in err and "nothing from it was run" in err
    assert not marker.exists()  # ...ours did not


def test_weights_of_another_size_are_refused(tmp_path, capsys):
    small, _ = models.toy_models(2, 16, 2)
    files.save_weights(small, str(tmp_path / "g.pdparams"))
    large, _ = models.toy_models(2, 32, 2)
    err = usage_error(
        capsys,
        files.load_weights,
        large,
        str(tmp_path / "g.pdparams"),
        "INFER.pretrained_model_path",
    )
    assert (
        "INFER.pretrained_model_path" in err
        and "does not fit this model" in err
        and "expected [2, 32]" in err
    )


def test_not_a_weights_file(tmp_path, capsys):
    path = tmp_path / "page.pdparams"
    path.write_text("<html><body>404 Not Found</body></html>")
    generator, _ = models.toy_models(2, 16, 2)
    err = usage_error(
        capsys, files.load_weights, generator, str(path), "EVAL.pretrained_gen_model_path"
    )
    assert f"{path} could not be read: it is an HTML page, not a .pdparams file" in err
    (tmp_path / "junk.pdparams").write_bytes(b"\x00\x01\x02 junk")  # no document: the reason
    err = usage_error(
        capsys,
        files.load_weights,
        generator,
        str(tmp_path / "junk.pdparams"),
        "EVAL.pretrained_gen_model_path",
    )
    assert "is not a readable .pdparams file of arrays (UnpicklingError" in err


# --- weights given by URL: a local HTTP server stands in for the internet ---------------
@pytest.fixture
def server(tmp_path, monkeypatch):
    import functools
    import http.server
    import threading

    from gankit import download

    monkeypatch.setattr(download, "CACHE", str(tmp_path / "cache"))
    site = tmp_path / "site"
    site.mkdir()
    paddle.seed(2)
    generator, _ = models.toy_models(2, 16, 2)
    files.save_weights(generator, str(site / "good.pdparams"))
    (site / "page.pdparams").write_text("<!DOCTYPE html><html><body>Sign in</body></html>")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", site, tmp_path / "cache"
    httpd.shutdown()


def test_weights_by_url_with_checksum(server):
    url, site, cache = server
    model, _ = models.toy_models(2, 16, 2)
    files.load_weights(
        model,
        f"{url}/good.pdparams",
        "EVAL.pretrained_gen_model_path",
        files.file_digest(str(site / "good.pdparams"), "sha256"),
    )
    assert [n for n in os.listdir(cache) if n.endswith("-good.pdparams")]  # named by its URL


def test_checksum_mismatch_is_refused_and_not_cached(server, capsys):
    url, _, cache = server
    model, _ = models.toy_models(2, 16, 2)
    err = usage_error(
        capsys,
        files.load_weights,
        model,
        f"{url}/good.pdparams",
        "EVAL.pretrained_gen_model_path",
        "0" * 64,
    )
    assert "SHA-256" in err and "not kept in the download cache" in err
    assert not [n for n in os.listdir(cache) if n.endswith("good.pdparams")]


def test_checksum_of_a_local_file(tmp_path, capsys):
    model, _ = models.toy_models(2, 16, 2)
    files.save_weights(model, str(tmp_path / "g.pdparams"))
    err = usage_error(
        capsys,
        files.load_weights,
        model,
        str(tmp_path / "g.pdparams"),
        "INFER.pretrained_model_path",
        "ab" * 32,
    )
    assert "INFER.pretrained_model_path" in err and "not the expected" in err
    assert (tmp_path / "g.pdparams").exists()  # the user's own file is never deleted


def test_url_returning_an_html_page_is_refused_and_not_cached(server, capsys):
    url, _, cache = server
    model, _ = models.toy_models(2, 16, 2)
    err = usage_error(
        capsys, files.load_weights, model, f"{url}/page.pdparams", "EVAL.pretrained_gen_model_path"
    )
    assert (
        f"could not download {url}/page.pdparams: the server answered with an HTML page "
        "(Content-Type application/octet-stream), not the file named by "
        "EVAL.pretrained_gen_model_path" in err
    )
    assert not [n for n in os.listdir(cache) if n.endswith("page.pdparams")]


def test_missing_url_and_unreachable_host(server, capsys):
    url, _, _ = server
    model, _ = models.toy_models(2, 16, 2)
    err = usage_error(
        capsys, files.load_weights, model, f"{url}/nope.pdparams", "EVAL.pretrained_gen_model_path"
    )
    assert "could not download" in err and "404" in err
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = usage_error(
        capsys,
        files.load_weights,
        model,
        f"http://127.0.0.1:{port}/g.pdparams",
        "EVAL.pretrained_gen_model_path",
    )
    assert "could not download" in err
