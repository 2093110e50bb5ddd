"""A webhook receiver on loopback for notification tests (no tests here)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Posts(list[tuple[str, str]]):
    """Every POST as (decoded Title header, body), in order; ``headers`` holds each one's
    headers as sent (the Title still MIME-encoded)."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[dict[str, str]] = []


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, Posts]]:
    """(url, posts) of an ntfy-style receiver on loopback."""
    got = Posts()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server spelling
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode("utf-8")
            got.headers.append(dict(self.headers))
            got.append((str(make_header(decode_header(self.headers.get("Title", "")))), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="webhook")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/topic", got
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
