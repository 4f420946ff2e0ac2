"""The heartbeat ping of a dead man's switch such as healthchecks.io: GET the URL on success, URL/fail on failure.

The URL's path and query often are the check's secret (a UUID or ping key), so they are registered for
redaction and no message of this module shows more than the URL's origin.
"""

from __future__ import annotations

import httpx

from camsync.clients.http import build_client
from camsync.errors import UpstreamError
from camsync.logs import register_secret

PING_TIMEOUT = 5.0


def redacted_url(url: str) -> str:
    """The URL reduced to its origin, the rest masked: `https://hc-ping.com/****`."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "****"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}/****"


def fail_url(url: str) -> str:
    """The failure signal of a ping URL: `/fail` appended to its path, its query kept."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(path=parsed.path.rstrip("/") + "/fail"))


class HeartbeatClient:
    """Pings one heartbeat URL; a short timeout and no retries, so a slow monitor never holds up a run."""

    service = "heartbeat"

    def __init__(
        self, url: str, *, timeout: float = PING_TIMEOUT, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url = url
        self.shown = redacted_url(url)
        parsed = httpx.URL(url)
        register_secret(parsed.raw_path.decode("ascii", "replace"))
        register_secret(parsed.path)
        self.client = build_client(timeout=timeout, transport=transport, max_connections=1)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> HeartbeatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping(self, *, ok: bool) -> None:
        """Signal success (`ok`) or failure; raise UpstreamError when the monitor cannot be told."""
        target = self.url if ok else fail_url(self.url)
        what = "success" if ok else "failure"
        try:
            response = self.client.get(target)
        except httpx.HTTPError as exc:
            raise UpstreamError(
                f"heartbeat ping ({what}) to {self.shown} failed: {type(exc).__name__}",
                "Check HEARTBEAT_URL and that the monitor is reachable",
                service=self.service,
                retryable=True,
            ) from None
        if not response.is_success:
            raise UpstreamError(
                f"heartbeat ping ({what}) to {self.shown} answered HTTP {response.status_code}",
                "Check HEARTBEAT_URL (the check may have been deleted)",
                service=self.service,
                status=response.status_code,
                retryable=response.status_code >= 500,
            )
