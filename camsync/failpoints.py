"""Named failpoints for crash tests: `failpoint("after_intent_commit")` does nothing unless enabled.

`CAMSYNC_FAILPOINTS` enables them as comma-separated `name=action` pairs, e.g.
`after_intent_commit=kill,during_poll=raise@3`. Actions: `kill` (SIGKILL this process: no cleanup, no flush,
as a power cut would), `raise` (raise `FailpointError`), `sleep:S` (pause S seconds). `@N` fires on the Nth hit
of that name only. Unset, a failpoint costs one dictionary test.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass

ENV = "CAMSYNC_FAILPOINTS"


class FailpointError(RuntimeError):
    """Raised by a failpoint whose action is `raise`."""


@dataclass(frozen=True)
class _Action:
    kind: str
    nth: int | None
    seconds: float = 0.0


_lock = threading.Lock()
_hits: dict[str, int] = {}
_active: dict[str, _Action] | None = None


def _parse(spec: str) -> dict[str, _Action]:
    actions: dict[str, _Action] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, action = item.partition("=")
        action, _, nth = (action.strip() or "kill").partition("@")
        kind, _, arg = action.partition(":")
        if kind not in ("kill", "raise", "sleep"):
            raise ValueError(f"{ENV}: unknown failpoint action {action!r} for {name!r}")
        actions[name.strip()] = _Action(kind, int(nth) if nth else None, float(arg) if arg else 0.0)
    return actions


def configure(spec: str | None = None) -> None:
    """(Re)read the failpoints from `spec`, else from the environment; resets the hit counts."""
    global _active
    with _lock:
        _hits.clear()
        _active = _parse(os.environ.get(ENV, "") if spec is None else spec)


def failpoint(name: str) -> None:
    """Fire the failpoint `name` when it is enabled (see the module docstring)."""
    if _active is None:
        configure()
    action = _active.get(name) if _active else None
    if action is None:
        return
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        hit = _hits[name]
    if action.nth is not None and hit != action.nth:
        return
    if action.kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action.kind == "sleep":
        time.sleep(action.seconds)
        return
    raise FailpointError(f"failpoint {name} fired (hit {hit})")
