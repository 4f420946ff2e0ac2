"""The control API of a simulator: its own endpoints under `/_sandbox/`, to inspect and steer it from tests.

They are never authenticated, never faulted and never slowed. A simulator declares its routes (method, path with
`{name}` segments, handler) and how its control answers speak: how a body is read, how an error and an unknown
route are answered, and which exceptions of its methods mean which status. A handler returns a `Reply`, or a
JSON object or array (answered 200), or raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from camsync.sandbox.server import Refusal, Reply, Request

PREFIX = "/_sandbox/"


class ControlCall:
    """One call of a control route: the request, the `{name}` segments of its path, and its body on demand."""

    def __init__(self, request: Request, read_body: Callable[[Request], dict[str, Any]]) -> None:
        self.request = request
        self.params: Mapping[str, str] = {}
        self._read_body = read_body
        self._body: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        """The body as a JSON object, read once (an unreadable body is refused by the simulator's reader)."""
        if self._body is None:
            self._body = self._read_body(self.request)
        return self._body

    def query(self, *names: str) -> str | None:
        """The first value of the first of `names` present in the query string, or None."""
        for name in names:
            values = self.request.query.get(name)
            if values:
                return values[0]
        return None


Handler = Callable[[ControlCall], Any]  # a Reply, or a dict or list answered as JSON


class ControlApi:
    """A table of control routes and the way a simulator answers them.

    `read_body(request)` returns the body as a JSON object or raises `Refusal`; `error(status, exc)` answers an
    exception listed in `statuses` (first match wins); `unrouted(method, path)` answers a path or method no
    route takes. With `body_first`, the body of every POST is read before routing, so a body that cannot be read
    is refused whatever the path.
    """

    def __init__(
        self,
        *,
        read_body: Callable[[Request], dict[str, Any]],
        error: Callable[[int, Exception], Reply],
        unrouted: Callable[[str, str], Reply],
        statuses: Sequence[tuple[type[Exception], int]],
        body_first: bool = False,
    ) -> None:
        self._read_body = read_body
        self._error = error
        self._unrouted = unrouted
        self._statuses = tuple(statuses)
        self._body_first = body_first
        self._routes: list[tuple[str | None, tuple[str, ...], Handler]] = []

    def add(self, method: str | None, pattern: str, handler: Handler) -> None:
        """Route `method` (None: any) on `pattern` (`/_sandbox/items/{id}/status`) to `handler`."""
        if not pattern.startswith(PREFIX):
            raise ValueError(f"a control route lives under {PREFIX}, not {pattern}")
        self._routes.append((method, _segments(pattern), handler))

    @staticmethod
    def owns(path: str) -> bool:
        """Whether a request path is a control path."""
        return path.startswith(PREFIX)

    def answer(self, request: Request, path: str) -> Reply:
        """Answer one control request on `path` (the request's route path)."""
        call = ControlCall(request, self._read_body)
        try:
            if self._body_first and request.method == "POST":
                call.body()
            handler, call.params = self._match(request.method, path)
            if handler is None:
                return self._unrouted(request.method, path)
            result = handler(call)
        except Refusal as refusal:
            return refusal.reply
        except Exception as exc:
            status = self._status(exc)
            if status is None:
                raise
            return self._error(status, exc)
        return result if isinstance(result, Reply) else Reply(200, result)

    def _match(self, method: str, path: str) -> tuple[Handler | None, dict[str, str]]:
        parts = _segments(path)
        for route_method, pattern, handler in self._routes:
            if route_method not in (None, method) or len(pattern) != len(parts):
                continue
            params: dict[str, str] = {}
            for expected, part in zip(pattern, parts, strict=True):
                if expected.startswith("{") and expected.endswith("}"):
                    params[expected[1:-1]] = part
                elif expected != part:
                    break
            else:
                return handler, params
        return None, {}

    def _status(self, exc: Exception) -> int | None:
        for kind, status in self._statuses:
            if isinstance(exc, kind):
                return status
        return None


def _segments(path: str) -> tuple[str, ...]:
    return tuple(path.strip("/").split("/"))
