"""Small HTTP servers on 127.0.0.1 for the tests (the traffic control, Prometheus answers, an
exporter, files to download): a quiet handler that sends one whole body, and a server started
on a free port in a daemon thread, stopped with `stop`."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Handler(BaseHTTPRequestHandler):
    """Logs nothing; `reply` sends a status and one body with its length."""

    def reply(self, status: int, body: bytes | str | Any, content_type: str | None = None,
              headers: dict[str, str] | None = None) -> None:
        """bytes as they are, str as UTF-8, anything else as JSON (application/json)."""
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            body, content_type = json.dumps(body).encode(), content_type or "application/json"
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def start(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """`handler` serving on 127.0.0.1 (a free port) from a daemon thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def stop(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()
