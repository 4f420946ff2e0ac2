"""The LUNA push job: discover USED top-ups in the PAY+ app DB, create one work order each, follow them.

`push` is one ledger run (job "luna", run type "push"): release the leases of dead processes on this host,
scan the app DB, then create and poll in a bounded pool (`PushEngine`). `replay` re-pushes one txn after an
operator's decision. Exactly once rests on three things: the intent is committed before the POST, the client
reference (txn_id) is the idempotency key, and any create whose outcome is unknown is looked up before it is
ever sent again.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, closing, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from camsync.errors import NotFoundError, UpstreamError, UsageError
from camsync.logs import get_logger
from camsync.settings import Settings
from camsync.store import luna as q
from camsync.store.base import utcnow
from camsync.store.engine import Store
from camsync.sync.ledger import process_alive, recorded_run
from camsync.sync.luna_engine import PushCounts, PushEngine, PushOptions
from camsync.sync.luna_scan import ScanReport, SourceLike, discover, preview
from camsync.sync.luna_work import LunaApi

log = get_logger(__name__)


_TOKEN = uuid.uuid4().hex[:8]


def namespace_id() -> str:
    """A short id of this boot and pid namespace ("" when unknown): two containers sharing a host name differ."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        pid_namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return ""
    return hashlib.sha256(f"{boot}:{pid_namespace}".encode()).hexdigest()[:12]


def owner_name() -> str:
    """This process's name on leases and history lines: host:pid:token:namespace. The token tells apart two
    processes with the same host name and pid; the namespace (boot and pid namespace) tells whether a pid can be
    checked from here at all, so that only a provably dead process of this namespace loses its claims."""
    namespace = namespace_id()
    return f"{socket.gethostname()}:{os.getpid()}:{_TOKEN}" + (f":{namespace}" if namespace else "")


@dataclass
class PushReport:
    """The outcome of `luna push`: what was scanned, what the pool did, and the state counts afterwards."""

    run_id: int | None
    status: str
    dry_run: bool
    scan: ScanReport
    counts: PushCounts
    states: dict[str, int]
    seconds: float
    message: str | None = None
    due: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["counts"]["reached_terminal"] = self.counts.reached_terminal
        return data


def open_source(settings: Settings) -> Any:
    """The PAY+ app DB of `APP_DB_URL`, read-only, its schema checked."""
    from camsync.source.payplus import PayplusSource

    source = PayplusSource.from_settings(settings)
    try:
        source.check()
    except BaseException:
        source.close()
        raise
    return source


def open_client(settings: Settings, concurrency: int) -> Any:
    """The LUNA client of the `LUNA_*` settings, with a connection per pool thread."""
    from camsync.clients.luna import LunaClient

    return LunaClient.from_settings(settings, max_connections=max(concurrency * 2, 4))


def push(
    settings: Settings,
    store: Store,
    *,
    options: PushOptions,
    dry_run: bool = False,
    trigger: str = "cli",
    parent_id: int | None = None,
    client: LunaApi | None = None,
    source: SourceLike | None = None,
    clock: Callable[[], datetime] = utcnow,
    sleep: Callable[[float], None] = time.sleep,
) -> PushReport:
    """Run one push (or, with `dry_run`, say what it would do without writing or sending anything)."""
    own_source = source is None
    app_db = source if source is not None else open_source(settings)
    try:
        if dry_run:
            return _dry_run(store, app_db, options)
        own_client = client is None
        api = client if client is not None else open_client(settings, options.concurrency)
        try:
            return _push(
                settings, store, api, app_db, options, trigger=trigger, parent_id=parent_id, clock=clock, sleep=sleep
            )
        finally:
            if own_client:
                api.close()  # type: ignore[union-attr]
    finally:
        if own_source:
            app_db.close()  # type: ignore[union-attr]


def _dry_run(store: Store, source: SourceLike, options: PushOptions) -> PushReport:
    scan = preview(store, source, batch_size=max(options.batch_size, 5000))
    with store.session() as session:
        states = q.count_by_state(session)
    due = {
        "to_send": states["discovered"] + scan.discovered,
        "to_settle": states["sending"],
        "to_poll": states["created"],
    }
    return PushReport(None, "DRY-RUN", True, scan, PushCounts(), states, scan.seconds, due=due)


def _push(
    settings: Settings,
    store: Store,
    client: LunaApi,
    source: SourceLike,
    options: PushOptions,
    *,
    trigger: str,
    parent_id: int | None,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
) -> PushReport:
    started = time.monotonic()
    owner = owner_name()
    with store.session() as session:
        cursor_before = str(q.scan_position(session)[0])
    with recorded_run(
        store,
        job="luna",
        run_type="push",
        trigger=trigger,
        parent_id=parent_id,
        cursor_before=cursor_before,
        stale_seconds=settings.run_stale_seconds,
    ) as run:
        recover_dead_claims(store, owner=owner)
        scan = discover(store, source, actor=owner, now=clock(), batch_size=max(options.batch_size, 5000))
        run.add(fetched=scan.discovered)
        if options.txn_id is not None:
            _require_known(store, options.txn_id)
        engine = PushEngine(store, client, options, owner=owner, clock=clock, sleep=sleep)
        engine.heartbeat = lambda: _beat(run, engine.counts)
        counts = engine.run()
        with store.session() as session:
            states = q.count_by_state(session)
        _record(run, scan, counts, states, options)
        if counts.fatal:
            raise UpstreamError(counts.fatal, "Fix the LUNA settings and push again", service="LUNA")
    return PushReport(run.id, run.status, False, scan, counts, states, time.monotonic() - started, run.error_message)


def _require_known(store: Store, txn_id: str) -> None:
    with store.session() as session:
        if q.get_txn(session, txn_id=txn_id) is not None:
            return
        rejects = q.list_rejects(session, txn_id=txn_id, limit=1)
    hint = f"It is a rejected app DB row: {rejects[0]['reason']}" if rejects else "Is it a USED row of the app DB?"
    raise NotFoundError(f"txn {txn_id} is not known", hint)


def recover_dead_claims(store: Store, *, owner: str) -> list[str]:
    """Free the leases of dead processes of this host; their `sending` txns will be looked up first."""
    with store.writer() as session:
        freed = q.release_dead_claims(
            session, host=socket.gethostname(), owner=owner, alive=process_alive, now=utcnow()
        )
    if freed:
        log.warning("recovered", f"released {len(freed)} txns claimed by processes that are gone", txns=len(freed))
    return freed


def _beat(run: Any, counts: PushCounts) -> None:
    """Show the pool's progress to the run's watchers (progress bars) and keep the run's heartbeat."""
    run.details["live"] = {
        "created": counts.created + counts.adopted,
        "finished": counts.reached_terminal,
        "requests": counts.requests,
    }
    run.beat()


def _record(run: Any, scan: ScanReport, counts: PushCounts, states: dict[str, int], options: PushOptions) -> None:
    run.details.pop("live", None)
    run.add(inserted=counts.created, updated=counts.reached_terminal, failed=counts.not_successful)
    run.add(unchanged=scan.already_known)
    run.cursor_after = str(scan.last_id)
    run.details.update(
        {
            "states": states,
            "requests": counts.requests,
            "creates": counts.creates,
            "created": counts.created,
            "adopted": counts.adopted,
            "polls": counts.polls,
            "lookups": counts.lookups,
            "retries": counts.retries,
            "finished": counts.finished,
            "unknown": counts.unknown,
            "rejected_by_luna": counts.rejected_by_luna,
            "duplicate_work_orders": counts.duplicates,
            "orphans": counts.orphans,
            "rejected_rows_new": scan.rejected,
            "left_in_flight": counts.left_in_flight,
            "scan_seconds": round(scan.seconds, 4),
            "scan_rows": scan.rows,
            "concurrency": options.concurrency,
        }
    )
    problems = []
    if counts.not_successful:
        problems.append(f"{counts.not_successful} txns did not succeed (failed, cancelled, expired or unknown)")
    if counts.duplicates:
        problems.append(f"{counts.duplicates} txns have several work orders in LUNA (credited more than once?)")
    if options.wait and options.require_terminal and counts.left_in_flight:
        problems.append(f"{counts.left_in_flight} txns still in flight at the timeout")
    if problems:
        run.fail("; ".join(problems), partial=True)


# --- replay --------------------------------------------------------------------------------------------------


@dataclass
class ReplayReport:
    txn_id: str
    before: str
    after: str
    work_order_id: str | None
    message: str


def replay(
    settings: Settings,
    store: Store,
    *,
    txn_id: str,
    force: bool = False,
    timeout: float = 60.0,
    client: LunaApi | None = None,
    clock: Callable[[], datetime] = utcnow,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplayReport:
    """Re-push one txn: settle an unknown by lookup first; a successful one only with `force`."""
    owner = owner_name()
    api = client if client is not None else open_client(settings, 1)
    closer: AbstractContextManager[Any] = nullcontext() if client is not None else closing(api)
    with closer:
        options = PushOptions.from_settings(settings, txn_id=txn_id, concurrency=1, wait=True, timeout=timeout)
        before = _prepare_replay(store, api, options, txn_id=txn_id, force=force, owner=owner)
        PushEngine(store, api, options, owner=owner, clock=clock, sleep=sleep).run()
    with store.session() as session:
        after = q.get_txn(session, txn_id=txn_id) or {}
    state = after.get("state", "forgotten")
    return ReplayReport(txn_id, before, state, after.get("work_order_id"), f"txn {txn_id}: {before} → {state}")


def _prepare_replay(
    store: Store, client: LunaApi, options: PushOptions, *, txn_id: str, force: bool, owner: str
) -> str:
    """Check the txn may be replayed and put it where the engine will pick it up; returns its state before."""
    now = utcnow()
    with store.writer() as session:
        row = q.get_txn(session, txn_id=txn_id)
        if row is None:
            rejects = q.list_rejects(session, txn_id=txn_id, limit=1)
            hint = f"It is a rejected app DB row: {rejects[0]['reason']}" if rejects else "See `camsync luna status`"
            raise NotFoundError(f"txn {txn_id} is not known", hint)
        state = row["state"]
        if q.leased(session, now=now, txn_id=txn_id, lock=True):
            raise UsageError(f"txn {txn_id} is being pushed right now ({row['claimed_by']})", "Try again later")
        if state == "successful" and not force:
            raise UsageError(
                f"txn {txn_id} is already successful (work order {row['work_order_id']})",
                "Pass --force to push it again anyway",
            )
        if state in ("unknown", "sending") and not client.lookup_available and not force:
            raise UsageError(
                f"txn {txn_id} may already have a work order in LUNA and lookup is off (LUNA_LOOKUP_URL=none)",
                "Check in LUNA first; pass --force to send it again",
            )
        expired_here = state == "expired" and row["work_order_id"] and not options.terminal_state(row["remote_status"])
        changes = _replay_changes("created" if expired_here and not force else state, lookup=client.lookup_available)
        if changes["state"] == "created":
            changes.update(polls=0, work_order_at=now)  # follow the same work order again, with a new poll timeout
        moved = q.transition(
            session,
            txn_id=txn_id,
            owner=None,
            from_states=(state,),
            now=now,
            changes=changes,
            kind="operator",
            message=f"luna replay{' --force' if force else ''} by {owner}: {state} → {changes['state']}",
            unleased_at=now,
        )
        if not moved:
            raise UsageError(
                f"txn {txn_id} changed, or a push claimed it, while it was being replayed",
                "Look at `camsync luna show` and retry",
            )
    return state


def _replay_changes(state: str, *, lookup: bool) -> dict[str, Any]:
    """Where a replayed txn goes: polled now, looked up then sent, or sent again (settled or forced).

    A txn expired here (LUNA never said its work order ended) is followed again, not re-created.
    """
    base: dict[str, Any] = {"next_attempt_at": None, "claimed_by": None, "claimed_until": None, "finished_at": None}
    if state in ("created", "discovered"):
        return {**base, "state": state}
    if state in ("unknown", "sending"):
        return {**base, "state": "sending" if lookup else "discovered", "lookup_first": lookup}
    return {**base, "state": "discovered", "lookup_first": False, "work_order_id": None, "remote_status": None}
