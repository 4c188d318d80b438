"""A local HTTP server on 127.0.0.1 standing in for the internet in the tests.

GET /<path>: the file under the served directory (404 if none); /fail/...: HTTP 500;
/stall/...: accepts the request and never answers (the client's time-out ends it); /loop/...:
a redirect to itself;
/truncated/<path>: the file's first half, then the connection closes; /login/...: 200 with
a login portal's HTML page, /json/...: 200 with a JSON error, /text/...: 200 with plain text
(a server that answers with a page instead of the file).
"""

import contextlib
import http.server
import os
import threading
import time

PAGES = [
    (
        "/login/",
        "text/html; charset=utf-8",
        b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><form>user "
        b"<input name=u> password <input type=password name=p></form></body></html>\n",
    ),
    ("/json/", "application/json", b'{"error": "access denied", "code": 403}'),
    ("/text/", "text/plain", b"This file has moved to another server.\n"),
]


class Handler(http.server.BaseHTTPRequestHandler):
    root = None

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path.startswith("/stall/"):
            time.sleep(60)
            return
        if self.path.startswith("/fail/"):
            self.send_error(500, "broken")
            return
        if self.path.startswith("/loop/"):  # a redirect to itself
            self.send_response(302)
            self.send_header("Location", self.path)
            self.end_headers()
            return
        for prefix, content_type, body in PAGES:
            if self.path.startswith(prefix):
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
        truncated = self.path.startswith("/truncated/")
        path = os.path.join(
            self.root,
            self.path[len("/truncated") :].lstrip("/") if truncated else self.path.lstrip("/"),
        )
        if not os.path.isfile(path):
            self.send_error(404)
            return
        with open(path, "rb") as f:
            data = f.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2] if truncated else data)
        if truncated:
            self.close_connection = True

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(directory):
    """http://127.0.0.1:<port> serving `directory`, until the block ends."""
    handler = type("Handler", (Handler,), {"root": str(directory)})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
