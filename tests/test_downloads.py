"""Weights by URL, as a user meets them: a local HTTP server on 127.0.0.1 that serves two runs'
files under one file name, answers 500, stalls, or is not there. Every download goes through
gankit.download (pooch): cached by the whole URL, bounded in time, one line on failure."""

import os
import socket
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest
from http_server import serve

from conftest import EXAMPLE_DIR, one_error_line
from gankit import download, files
from gankit import networks as models

TOY = ["MODEL.hidden_size=16", "EVAL.num_samples=50"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Two toy generators of different weights, both named model_generator.pdparams."""
    root = tmp_path_factory.mktemp("served")
    for run, seed in (("run1", 1), ("run2", 2)):
        paddle.seed(seed)
        generator, _ = models.toy_models(2, 16, 3)
        os.makedirs(root / run)
        files.save_weights(generator, str(root / run / "model_generator.pdparams"))
    with serve(root) as url:
        yield url


def evaluate(url, home, run_dir, *extra):
    env = dict(os.environ, HOME=str(home), PYTHONWARNINGS="ignore")
    return subprocess.run(
        [
            sys.executable,
            os.path.join(EXAMPLE_DIR, "wgangp_toy.py"),
            "mode=eval",
            *TOY,
            f"EVAL.pretrained_gen_model_path={url}",
            f"hydra.run.dir={run_dir}",
            *extra,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_two_urls_with_one_file_name_are_two_files(server, tmp_path):
    samples = {}
    for run in ("run1", "run2"):
        result = evaluate(f"{server}/{run}/model_generator.pdparams", tmp_path, tmp_path / run)
        assert result.returncode == 0, result.stderr[-2000:]
        samples[run] = np.load(tmp_path / run / "samples.npz")["samples"]
    assert not np.array_equal(samples["run1"], samples["run2"])
    cached = os.listdir(tmp_path / ".paddlesci" / "weights")
    assert len([n for n in cached if n.endswith("model_generator.pdparams")]) == 2
    # the same URL again comes from the cache: the server's copy is gone, the run still works
    again = evaluate(f"{server}/run1/model_generator.pdparams", tmp_path, tmp_path / "again")
    assert again.returncode == 0, again.stderr[-2000:]
    np.testing.assert_array_equal(
        np.load(tmp_path / "again" / "samples.npz")["samples"], samples["run1"]
    )


def test_a_url_the_cache_has_under_its_name_is_still_fetched_from_its_server(server, tmp_path):
    ok = evaluate(f"{server}/run1/model_generator.pdparams", tmp_path, tmp_path / "ok")
    assert ok.returncode == 0, ok.stderr[-2000:]
    line = one_error_line(
        evaluate(f"{server}/fail/model_generator.pdparams", tmp_path, tmp_path / "fail")
    )
    assert f"{server}/fail/model_generator.pdparams" in line and "HTTP 500" in line
    assert not (tmp_path / "fail").exists()  # nothing written


def test_a_server_that_never_answers_times_out_in_one_line(server, tmp_path):
    tic = time.time()
    line = one_error_line(
        evaluate(
            f"{server}/stall/model_generator.pdparams",
            tmp_path,
            tmp_path / "stall",
            "download_timeout=2",
        )
    )
    assert time.time() - tic < 60
    assert "/stall/model_generator.pdparams" in line and "sent no data for 2 s" in line


def test_a_redirect_loop_is_one_line_saying_to_check_the_url(server, tmp_path):
    url = f"{server}/loop/model_generator.pdparams"
    line = one_error_line(evaluate(url, tmp_path, tmp_path / "loop"))
    assert line.endswith(
        f"could not download {url}: the server's redirects go round in a loop; check the URL."
    ), line


def test_an_unreachable_host_is_said_once_and_not_retried(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/w/model_generator.pdparams"
    tic = time.time()
    with pytest.raises(download.DownloadError, match="could not be reached"):
        download.download(url)
    with pytest.raises(download.DownloadError, match="earlier in this run"):
        download.download(url.replace("/w/", "/other/"))
    assert time.time() - tic < 10  # no retries


def test_an_interrupted_download_leaves_no_file_a_later_run_trusts(server, tmp_path, monkeypatch):
    """The download is written to a temporary file and moved into place once complete."""
    monkeypatch.setattr(download, "CACHE", str(tmp_path / "cache"))
    import pooch

    real = pooch.HTTPDownloader.__call__

    def cut_short(self, url, output_file, pooch_):
        with open(output_file, "wb") as f:
            f.write(b"half a file")
        raise KeyboardInterrupt  # Ctrl-C in the middle of the transfer

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", cut_short)
    url = f"{server}/run2/model_generator.pdparams"
    with pytest.raises(KeyboardInterrupt):
        download.download(url)
    assert not [n for n in os.listdir(tmp_path / "cache") if n.endswith(".pdparams")]
    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", real)
    path = download.download(url)
    assert files.read_pdparams(path)  # the whole file now


def test_a_transfer_cut_short_is_one_line_and_leaves_nothing(server, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "CACHE", str(tmp_path / "cache"))
    url = f"{server}/truncated/run1/model_generator.pdparams"
    with pytest.raises(download.DownloadError, match="the transfer failed"):
        download.download(url)
    assert not [n for n in os.listdir(tmp_path / "cache") if n.endswith(".pdparams")]


@pytest.mark.parametrize(
    "prefix, kind, content_type",
    [
        ("login", "an HTML page", "text/html; charset=utf-8"),
        ("json", "a JSON document", "application/json"),
        ("text", "text", "text/plain"),
    ],
)
def test_a_page_instead_of_the_file_names_the_url_and_what_came(
    server, tmp_path, prefix, kind, content_type
):
    """A server that answers 200 with a page (a login portal, a JSON error, a message): the
    error named the cache file ("is not a readable .pdparams file (invalid load key '<')")."""
    url = f"{server}/{prefix}/model_generator.pdparams"
    line = one_error_line(evaluate(url, tmp_path, tmp_path / "run"))
    assert line.startswith(
        f"ERROR: EVAL.pretrained_gen_model_path: could not download {url}: "
        f"the server answered with {kind} (Content-Type {content_type}), "
        "not the file named by EVAL.pretrained_gen_model_path"
    ), line
    assert ".paddlesci" not in line
    cache = tmp_path / ".paddlesci" / "weights"
    assert not cache.exists() or not os.listdir(cache)  # nothing a later run would trust


def test_weights_of_another_model_by_url_name_the_url_not_the_cache_file(server, tmp_path):
    url = f"{server}/run1/model_generator.pdparams"
    line = one_error_line(evaluate(url, tmp_path, tmp_path / "run", "MODEL.hidden_size=32"))
    assert f"EVAL.pretrained_gen_model_path: {url} does not fit this model" in line, line
    assert ".paddlesci" not in line


def test_a_broken_local_file_given_with_a_tilde_is_named_and_kept(tmp_path):
    """A local file that is not weights: named as the user's file, never removed (a path
    with ~ was taken for a download and deleted)."""
    (tmp_path / "broken.pdparams").write_bytes(b"\x00\x01 not weights")
    line = one_error_line(evaluate("~/broken.pdparams", tmp_path, tmp_path / "run"))
    assert f"{tmp_path / 'broken.pdparams'} could not be read" in line, line
    assert (tmp_path / "broken.pdparams").exists()
