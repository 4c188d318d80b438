"""What a server answered, when it is a page and not the file: a login portal's HTML, a JSON
error, a text message. Every download here is a binary file (.pdparams, .pth), so an answer
whose first bytes read as a document is refused naming the URL, the content type the server
gave and the kind of document, before the download is kept in the cache."""

import json
from typing import Callable, Optional

from .errors import DownloadError


def kind_of(head: bytes) -> Optional[str]:
    """The kind of document the first bytes of an answer are ("an HTML page", "a JSON
    document", "an XML document", "text", "an empty answer"), or None for binary data."""
    if not head:
        return "an empty answer"
    text = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(text) - 3:  # not only a character cut at the end of the bytes read
            return None
        decoded = text[: e.start].decode("utf-8")
    if any(not (c.isprintable() or c.isspace()) for c in decoded):
        return None
    start = decoded.lstrip().lower()
    if (
        start.startswith(
            ("<!doctype html", "<html", "<head", "<body", "<script", "<meta", "<title", "<!--")
        )
        or "<html" in start[:1000]
    ):
        return "an HTML page"
    if start.startswith("<"):
        return "an XML document"
    if start.startswith(("{", "[")):
        try:
            json.loads(decoded)
        except ValueError:
            if len(head) < 512:  # the whole answer, and not JSON after all
                return "text"
        return "a JSON document"
    return "text"


def kind_of_file(path: str) -> Optional[str]:
    """kind_of() the file's first bytes (None when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return kind_of(f.read(512))
    except OSError:
        return None


class CheckedDownloader:
    """A pooch downloader (pooch.HTTPDownloader's arguments) that notes the content type of
    the answer and refuses one that is a document, not a file (DownloadError)."""

    def __init__(self, what: str, **kwargs):
        import pooch

        self.what, self.content_type = what, None
        self.http = pooch.HTTPDownloader(hooks={"response": [self._note]}, **kwargs)

    def _note(self, response, *args, **kwargs):
        self.content_type = response.headers.get("Content-Type")

    def __call__(self, url, output_file, pooch, check_only=False):
        if check_only:
            return self.http(url, output_file, pooch, check_only=True)
        result = self.http(url, output_file, pooch)
        if not isinstance(output_file, str):
            return result
        with open(output_file, "rb") as f:
            kind = kind_of(f.read(512))
        if kind:
            sent = f"Content-Type {self.content_type}" if self.content_type else "no Content-Type"
            why = f"the server answered with {kind} ({sent}), not {self.what}"
            raise DownloadError(
                f"could not download {url}: {why} (a login or error page, or a link to a page "
                "about the file); check that the URL names the file itself, or fetch the file "
                "in a browser and pass its path.",
                why,
            )
        return result


def downloader(what: str, **kwargs) -> Callable:
    return CheckedDownloader(what, **kwargs)
