"""A process-wide stop request: the worker's signal handlers set it, long jobs check it between units of work.

A job that sees `requested()` finishes the request and the commit in hand, then stops taking new work, so a
SIGTERM never leaves a half-written batch or an unrecorded create behind.
"""

from __future__ import annotations

import threading

_stop = threading.Event()


def request() -> None:
    """Ask every running job to stop at its next safe point."""
    _stop.set()


def requested() -> bool:
    """Whether a stop was asked for."""
    return _stop.is_set()


def wait(seconds: float) -> bool:
    """Sleep up to `seconds`, waking at once on a stop request; True when a stop was requested."""
    return _stop.wait(max(seconds, 0.0))


def clear() -> None:
    """Forget a stop request (tests, and a worker starting afresh)."""
    _stop.clear()
