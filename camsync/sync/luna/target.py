"""The one place that opens the configured LUNA target; the engine only knows `LunaTarget`."""

from __future__ import annotations

from contextlib import AbstractContextManager, closing, nullcontext
from typing import Any

from camsync.clients.luna_target import LunaTarget, OpenTarget
from camsync.settings import Settings


def open_target(settings: Settings, concurrency: int, *, transport: Any = None, policy: Any = None) -> OpenTarget:
    """The LUNA client of the `LUNA_*` settings (REST), with a connection per pool thread; `transport` and
    `policy` (an httpx transport, a retry policy) for tests and one-try probes."""
    from camsync.clients.luna_rest import LunaClient

    return LunaClient.from_settings(
        settings, max_connections=max(concurrency * 2, 4), transport=transport, policy=policy
    )


def target_for(settings: Settings, client: LunaTarget | None, concurrency: int) -> AbstractContextManager[LunaTarget]:
    """The given target as it is (tests, callers that own one), or the configured one, closed on exit."""
    return nullcontext(client) if client is not None else closing(open_target(settings, concurrency))
