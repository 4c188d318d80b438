"""Downloads (weights, Inception networks) through pooch: cached by the whole URL, bounded in time.

pooch names each cached file after a hash of its URL, so two URLs never share an entry,
downloads into a temporary file and moves it into place only when it is complete (and has
its known hash), so an interrupted or concurrent download never leaves a file a later run
trusts. Connecting and every read wait at most `timeout` seconds; a host that could not
be reached is not tried again in the same run.
"""

import urllib.parse
from os import path as osp
from typing import Optional

from ppsci.utils import logger

from .errors import DownloadError  # noqa: F401 (download.DownloadError, as callers name it)

CACHE = osp.expanduser("~/.paddlesci/weights")  # ppsci's download folder
_settings = {"timeout": 30.0}
_unreachable = {}  # host -> why, for the rest of this run


def configure(timeout: float) -> None:
    """Seconds a download may wait to connect and between two pieces of data (download_timeout)."""
    _settings["timeout"] = float(timeout)


def is_url(source) -> bool:
    return urllib.parse.urlparse(str(source)).scheme in ("http", "https")


def download(
    url: str, known_hash: Optional[str] = None, what: str = "the file", into: Optional[str] = None
) -> str:
    """Local path of `url` in the cache, downloaded on first use; known_hash ("sha256:...",
    "md5:...") is checked before the file is kept. `into`: the file to download to instead
    (a data set's place in paddle's cache). DownloadError says what went wrong."""
    import pooch
    import requests

    from . import answers

    host = urllib.parse.urlparse(url).netloc
    if host in _unreachable:
        why = f"{host} {_unreachable[host]} earlier in this run"
        raise DownloadError(
            f"could not download {url}: {why}; fetch {what} on a connected machine and "
            "pass its path.",
            why,
        )
    folder, name = (osp.dirname(into), osp.basename(into)) if into else (CACHE, None)
    timeout = _settings["timeout"]  # to connect, and between data
    downloader = answers.downloader(what, timeout=(timeout, timeout), progressbar=False)
    pooch.get_logger().setLevel("WARNING")  # its hints are for its own API
    try:
        path = pooch.retrieve(url, known_hash, fname=name, path=folder, downloader=downloader)
    except DownloadError:  # answers.py: a page, not the file
        raise
    except (requests.exceptions.RequestException, OSError, ValueError) as e:
        raise _failure(e, url, what, folder, known_hash) from None
    logger.info(f"{url}: {path}")
    return path


def _failure(
    e: Exception, url: str, what: str, folder: str, known_hash: Optional[str]
) -> DownloadError:
    """The DownloadError of a failed retrieve, in words; an unreachable host is remembered
    so that the run's next download from it fails at once."""
    import requests

    timeout, host = _settings["timeout"], urllib.parse.urlparse(url).netloc
    if isinstance(e, requests.exceptions.ConnectTimeout):
        why = f"did not accept a connection within {timeout:g} s"
    elif isinstance(e, requests.exceptions.ReadTimeout):
        why = (
            f"accepted the connection but sent no data for {timeout:g} s "
            "(download_timeout sets the wait)"
        )
    elif isinstance(e, requests.exceptions.HTTPError):
        status = e.response.status_code if e.response is not None else "an error"
        why = f"the server answered HTTP {status}"
        return DownloadError(f"could not download {url}: {why}; check the URL.", why)
    elif isinstance(e, requests.exceptions.TooManyRedirects):
        why = "the server's redirects go round in a loop"
        return DownloadError(f"could not download {url}: {why}; check the URL.", why)
    elif isinstance(e, requests.exceptions.ConnectionError):
        why = f"could not be reached ({_reason(e)})"
    elif isinstance(e, requests.exceptions.RequestException):  # a broken transfer, a bad answer
        why = f"the transfer failed ({_reason(e)})"
        return DownloadError(f"could not download {url}: {why}; try again.", why)
    elif isinstance(e, OSError):  # the download folder: full, read-only
        why = f"{folder}: {e.strerror}"
        return DownloadError(
            f"could not download {url} into {folder} ({e.strerror}); free some "
            "space there or make it writable.",
            why,
        )
    else:  # ValueError, pooch: the file's hash is not the known one (not kept)
        algorithm, expected = (
            known_hash.split(":", 1) if ":" in known_hash else ("sha256", known_hash)
        )
        why = (
            f"its {algorithm.upper().replace('SHA256', 'SHA-256')} is not the expected "
            f"{expected}; it was not kept"
        )
        return DownloadError(f"refused the download of {url}: {why} in the download cache.", why)
    _unreachable[host] = why
    return DownloadError(
        f"could not download {url}: {host} {why}; offline, fetch {what} on a "
        "connected machine and pass its path.",
        f"{host} {why}",
    )


def _reason(error: Exception) -> str:
    """The innermost cause of a connection error, in a few words."""
    cause = error
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__
    text = str(cause).split(": ")[-1].strip(" ')\"")
    return text[:80] or type(cause).__name__
