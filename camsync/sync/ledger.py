"""Recording a job's run in the ledger: RUNNING first, a heartbeat while it works, its outcome at the end."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from camsync.errors import CamsyncError
from camsync.logs import get_logger, job_context
from camsync.store import runs as run_queries
from camsync.store.base import utcnow
from camsync.store.engine import Store

log = get_logger(__name__)
HEARTBEAT_EVERY = 30.0

# Who watches runs as they go (the CLI's progress bars): called with ("start" | "progress" | "end", handle).
Listener = Callable[[str, "RunHandle"], None]
_listeners: list[Listener] = []


def add_listener(listener: Listener) -> None:
    """Be told when a run starts, makes progress (counts added, heartbeats) and ends."""
    _listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def _notify(event: str, handle: RunHandle) -> None:
    for listener in list(_listeners):
        listener(event, handle)


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class RunHandle:
    """What a job fills in while it runs; written to its `sync_runs` row at the end (and at each beat)."""

    id: int
    job: str
    run_type: str
    status: str = "SUCCESS"
    error_message: str | None = None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(run_queries.COUNTERS, 0))
    window_start: datetime | None = None
    window_end: datetime | None = None
    cursor_after: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    _store: Store | None = None
    _last_beat: float = field(default_factory=time.monotonic)

    def add(self, **counts: int) -> None:
        """Add to the run's counters (fetched, inserted, updated, unchanged, failed)."""
        for key, value in counts.items():
            self.counts[key] += value
        _notify("progress", self)

    def fail(self, message: str, *, partial: bool = False) -> None:
        """End the run FAILED (or PARTIAL) with `message`, without raising."""
        self.status = "PARTIAL" if partial else "FAILED"
        self.error_message = message if not self.error_message else f"{self.error_message}; {message}"

    def beat(self, *, force: bool = False) -> None:
        """Tell the ledger the run is alive (at most every 30 s unless forced)."""
        _notify("progress", self)
        if self._store is None or (not force and time.monotonic() - self._last_beat < HEARTBEAT_EVERY):
            return
        self._last_beat = time.monotonic()
        with self._store.session() as session:
            run_queries.heartbeat(session, run_id=self.id, now=utcnow(), counts=dict(self.counts))


def reap(store: Store, *, stale_seconds: int) -> list[int]:
    """Mark abandoned runs FAILED; returns their ids."""
    now = utcnow()
    with store.session() as session:
        reaped = run_queries.reap_abandoned(
            session,
            now=now,
            stale_before=now - timedelta(seconds=stale_seconds),
            host=socket.gethostname(),
            alive=process_alive,
        )
    for run_id in reaped:
        log.warning("run_abandoned", f"run {run_id} was abandoned by its process; marked FAILED", run=run_id)
    return reaped


@contextmanager
def recorded_run(
    store: Store,
    *,
    job: str,
    run_type: str,
    trigger: str = "cli",
    parent_id: int | None = None,
    cursor_before: str | None = None,
    stale_seconds: int = 900,
) -> Iterator[RunHandle]:
    """Run a block as one ledger run. An exception ends it FAILED with the error's reason and propagates."""
    reap(store, stale_seconds=stale_seconds)
    with store.session() as session:
        row = run_queries.create_run(
            session,
            job=job,
            run_type=run_type,
            trigger=trigger,
            host=socket.gethostname(),
            pid=os.getpid(),
            now=utcnow(),
            parent_id=parent_id,
            cursor_before=cursor_before,
        )
        handle = RunHandle(id=row.id, job=job, run_type=run_type, _store=store)
    started = time.monotonic()
    with job_context(job, handle.id):
        log.info("run_start", f"{job} {run_type} run started", trigger=trigger)
        _notify("start", handle)
        try:
            yield handle
        except BaseException as exc:
            reason = exc.reason if isinstance(exc, CamsyncError) else f"{type(exc).__name__}: {exc}"
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                reason = "interrupted"
            handle.fail(reason)
            raise
        finally:
            _finish(store, handle, time.monotonic() - started)
            _notify("end", handle)


def _finish(store: Store, handle: RunHandle, seconds: float) -> None:
    handle.details["duration_seconds"] = round(seconds, 3)
    values: dict[str, Any] = {
        **handle.counts,
        "error_message": handle.error_message,
        "details": handle.details,
        "window_start": handle.window_start,
        "window_end": handle.window_end,
        "cursor_after": handle.cursor_after,
    }
    with store.session() as session:
        run_queries.finish_run(session, run_id=handle.id, status=handle.status, now=utcnow(), values=values)
    fields = {k: v for k, v in handle.counts.items() if v}
    if handle.status == "SUCCESS":
        log.info(
            "run_end",
            f"{handle.job} {handle.run_type} run {handle.status}",
            status=handle.status,
            seconds=round(seconds, 2),
            **fields,
        )
    else:
        log.error(
            "run_end",
            f"{handle.job} {handle.run_type} run {handle.status}",
            status=handle.status,
            seconds=round(seconds, 2),
            error=handle.error_message,
            **fields,
        )
