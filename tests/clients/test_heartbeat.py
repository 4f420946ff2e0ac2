"""The heartbeat client: success and failure pings (healthchecks.io convention), short timeout, no token shown."""

from __future__ import annotations

import httpx
import pytest

from camsync.clients.heartbeat import PING_TIMEOUT, HeartbeatClient, fail_url, redacted_url
from camsync.errors import UpstreamError
from camsync.sandbox.server import Reply, Request, RunningSandbox, SandboxApp

TOKEN = "5f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"


def recorder(status: int = 200) -> tuple[list[httpx.Request], httpx.MockTransport]:
    requests: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(status, text="OK")

    return requests, httpx.MockTransport(handle)


@pytest.mark.parametrize(
    ("url", "ok", "sent"),
    [
        (f"https://hc.example/{TOKEN}", True, f"https://hc.example/{TOKEN}"),
        (f"https://hc.example/{TOKEN}", False, f"https://hc.example/{TOKEN}/fail"),
        (f"https://hc.example/{TOKEN}/", False, f"https://hc.example/{TOKEN}/fail"),
        (f"https://hc.example/ping/{TOKEN}?rid=7", False, f"https://hc.example/ping/{TOKEN}/fail?rid=7"),
    ],
)
def test_success_gets_the_url_and_failure_gets_its_fail_path(url: str, ok: bool, sent: str) -> None:
    requests, transport = recorder()
    with HeartbeatClient(url, transport=transport) as client:
        client.ping(ok=ok)
    assert [(r.method, str(r.url)) for r in requests] == [("GET", sent)]


def test_the_timeout_is_short() -> None:
    client = HeartbeatClient(f"https://hc.example/{TOKEN}")
    try:
        assert client.client.timeout.read == PING_TIMEOUT <= 10
        assert client.client.timeout.connect is not None and client.client.timeout.connect <= PING_TIMEOUT
    finally:
        client.close()


def test_an_error_answer_is_an_upstream_error_without_the_token() -> None:
    _requests, transport = recorder(status=404)
    client = HeartbeatClient(f"https://hc.example/{TOKEN}", transport=transport)
    with client, pytest.raises(UpstreamError) as caught:
        client.ping(ok=False)
    assert caught.value.status == 404 and caught.value.service == "heartbeat"
    assert "https://hc.example/****" in str(caught.value) and TOKEN not in str(caught.value)


def test_an_unreachable_monitor_is_a_retryable_error_without_the_token() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    client = HeartbeatClient(f"https://hc.example/{TOKEN}", transport=httpx.MockTransport(refuse))
    with client, pytest.raises(UpstreamError) as caught:
        client.ping(ok=True)
    assert caught.value.retryable and "ConnectError" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_redacted_url_keeps_only_the_origin() -> None:
    assert redacted_url(f"https://hc.example:8443/{TOKEN}?k=v") == "https://hc.example:8443/****"
    assert fail_url("https://hc.example/abc?x=1") == "https://hc.example/abc/fail?x=1"


class _Monitor(SandboxApp):
    def __init__(self) -> None:
        self.paths: list[str] = []

    def route(self, request: Request) -> Reply:
        self.paths.append(request.path)
        return Reply(200, b"OK", content_type="text/plain")


def test_pings_reach_a_real_server_on_loopback() -> None:
    monitor = _Monitor()
    with RunningSandbox(monitor) as server, HeartbeatClient(f"{server.url}/{TOKEN}") as client:
        client.ping(ok=True)
        client.ping(ok=False)
    assert monitor.paths == [f"/{TOKEN}", f"/{TOKEN}/fail"]
