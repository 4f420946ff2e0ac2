"""The shared httpx setup and the one retry policy of every upstream client.

`HttpService.send` retries connection errors, 5xx and 429 with exponential backoff and full jitter, honouring
`Retry-After` (seconds or an HTTP date) up to a cap. Requests that must not be repeated blindly (a create)
pass `retry_unsent_only=True`: then only failures that prove the request never left (connect errors) are
retried, and anything else is raised as an `OutcomeUnknown` for the caller to settle.
"""

from __future__ import annotations

import random
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from camsync import __version__
from camsync.errors import EndpointError, UpstreamError
from camsync.logs import redact
from camsync.redaction import hide_url_credentials

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = f"camsync/{__version__}"


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to try, and how long to wait between tries."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def delay(self, attempt: int, retry_after: float | None = None, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait before try `attempt + 1` (attempt counts from 0): full jitter, or Retry-After."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return rng() * min(self.max_delay, self.base_delay * (2**attempt))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header as seconds to wait: a number of seconds, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


class OutcomeUnknown(UpstreamError):
    """The request may have reached the server, and its answer was lost (timeout, dropped connection)."""

    def __init__(self, reason: str, *, service: str) -> None:
        super().__init__(
            reason, "The outcome must be looked up before the request is sent again", service=service, retryable=False
        )


def build_client(
    *,
    base_url: str = "",
    timeout: float = 20.0,
    verify: bool = True,
    auth: httpx.Auth | tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
    max_connections: int = 20,
) -> httpx.Client:
    """An httpx client with camsync's defaults; tests pass a MockTransport as `transport`."""
    return httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        verify=verify,
        auth=auth,
        headers={"User-Agent": USER_AGENT, **(headers or {})},
        transport=transport,
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        follow_redirects=False,
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return redact(text.splitlines()[0][:200])


class HttpService:
    """Base of the upstream clients: one httpx client, one retry policy, typed errors."""

    service = "upstream"

    def __init__(
        self,
        client: httpx.Client,
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.requests_made = 0

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> HttpService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(
        self,
        method: str,
        url: str,
        *,
        retry_unsent_only: bool = False,
        stream: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request with the retry policy; return the first answer that is not to be retried.

        With `stream=True` the body is not read: the caller must read or close the response.
        """
        attempt = 0
        while True:
            self.requests_made += 1
            try:
                request = self.client.build_request(method, url, **kwargs)
                response = self.client.send(request, stream=stream)
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                raise EndpointError(
                    f"{self.service} URL {_safe_url(url)} cannot be used: {_short(exc)}",
                    "Check the URL setting: it must be http:// or https:// with a host",
                    service=self.service,
                ) from None
            except httpx.ConnectError as exc:
                if _tls_refused(exc):
                    raise EndpointError(
                        f"{self.service} at {_origin(url, self.client)}: the TLS certificate does not verify "
                        f"({_short(exc)})",
                        "Fix the server's certificate, or set VERIFY_TLS=false for a test server",
                        service=self.service,
                    ) from None
                error: UpstreamError = UpstreamError(
                    f"{self.service} at {_origin(url, self.client)} is unreachable: {_short(exc)}"
                    + (" (the host name does not resolve)" if _no_such_host(exc) else ""),
                    "Check the URL setting and the network",
                    service=self.service,
                    retryable=True,
                )
                retry_after = None
            except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                error = UpstreamError(
                    f"{self.service} at {_origin(url, self.client)} is unreachable: {_short(exc)}",
                    "Check the URL setting and the network",
                    service=self.service,
                    retryable=True,
                )
                retry_after = None
            except httpx.TransportError as exc:
                if retry_unsent_only:
                    raise OutcomeUnknown(
                        f"{self.service} {method} {_path(url)}: answer lost ({_short(exc)})", service=self.service
                    ) from None
                error = UpstreamError(
                    f"{self.service} {method} {_path(url)} failed: {_short(exc)}",
                    "The server dropped or timed out the request",
                    service=self.service,
                    retryable=True,
                )
                retry_after = None
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                body = _peek(response, stream)
                error = UpstreamError(
                    f"{self.service} {method} {_path(url)} answered HTTP {response.status_code}"
                    + (f": {body}" if body else ""),
                    "The server is busy or failing; try later",
                    service=self.service,
                    status=response.status_code,
                    retryable=True,
                )
                if retry_unsent_only and response.status_code != 429:  # a 503 may come from a gateway that passed it on
                    raise error
            attempt += 1
            if attempt >= self.policy.attempts:
                raise error
            self.sleep(self.policy.delay(attempt - 1, retry_after))


def _peek(response: httpx.Response, stream: bool) -> str:
    try:
        if stream:
            response.read()
        text = response.text.strip()
    except httpx.HTTPError:
        return ""
    finally:
        if stream:
            response.close()
    return redact(text[:200])


def _causes(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(found) < 8:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _tls_refused(exc: BaseException) -> bool:
    """Whether a connect error is a certificate that does not verify (not a network failure)."""
    return any(isinstance(e, ssl.SSLCertVerificationError) for e in _causes(exc)) or (
        "CERTIFICATE_VERIFY_FAILED" in str(exc)
    )


def _no_such_host(exc: BaseException) -> bool:
    return any(isinstance(e, socket.gaierror) for e in _causes(exc))


def _safe_url(url: str) -> str:
    return redact(hide_url_credentials(url))


def _path(url: str) -> str:
    return httpx.URL(url).path or url


def _origin(url: str, client: httpx.Client) -> str:
    full = client.base_url.join(url) if client.base_url else httpx.URL(url)
    return f"{full.scheme}://{full.host}" + (f":{full.port}" if full.port else "")
