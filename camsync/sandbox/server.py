"""A small threaded HTTP server for the simulators: real sockets on loopback, in-process or in the foreground.

A simulator subclasses `SandboxApp` and implements `route(request)`, returning a `Reply`, or raising `Refusal`
from anywhere below it to answer at once (an error, a refused login). Faults that are about the connection
(dropping it after the answer was decided) are a `Reply` with `drop=True`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Reply:
    """An answer: status, headers and a body (bytes, or any JSON value)."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"
    drop: bool = False  # close the connection without answering

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Refusal(Exception):
    """An answer raised from inside a simulator: the server sends `reply` instead of what `route` would return."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


@dataclass(frozen=True)
class Request:
    """One HTTP request as a simulator sees it: headers lower-cased, the query parsed, the body read."""

    method: str
    path: str  # percent-decoded (`%24` arrives as `$`)
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON, None when it is empty; raises ValueError when it is not JSON."""
        return json.loads(self.body.decode("utf-8")) if self.body.strip() else None

    @property
    def route_path(self) -> str:
        """The path without trailing slashes (`/` for the root): what simulators route on."""
        return self.path.rstrip("/") or "/"


class SandboxHandler(BaseHTTPRequestHandler):
    """Reads the request, asks the simulator's `route`, writes the reply (keep-alive, HTTP/1.1)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: without this each answer stalls ~40 ms
    server: SandboxServer

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=unquote(parts.path),
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            reply = self.server.app.route(request)
        except Refusal as refusal:
            reply = refusal.reply
        if reply.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        payload = reply.payload()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default
        if self.server.verbose:
            super().log_message(format, *args)


class SandboxApp:
    """What a simulator implements: one answer per request."""

    def route(self, request: Request) -> Reply:  # pragma: no cover - abstract
        """Answer one request (or raise `Refusal`)."""
        raise NotImplementedError


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, app: SandboxApp, host: str, port: int, verbose: bool = False) -> None:
        if host not in LOOPBACK and not host.startswith("127."):
            raise ValueError(f"the sandbox serves on loopback only, not {host}")
        self.app = app
        self.verbose = verbose
        super().__init__((host, port), SandboxHandler)


class RunningSandbox:
    """A sandbox serving in a background thread; `url` is its base URL, `stop()` ends it."""

    def __init__(self, app: SandboxApp, host: str = "127.0.0.1", port: int = 0, verbose: bool = False) -> None:
        self.app = app
        self.server = SandboxServer(app, host, port, verbose)
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"sandbox-{type(app).__name__}",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> RunningSandbox:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> RunningSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
