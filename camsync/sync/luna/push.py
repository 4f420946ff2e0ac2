"""The LUNA push job: discover USED top-ups in the PAY+ app DB, create one work order each, follow them.

`push` is one ledger run (job "luna", run type "push"): release the leases of dead processes on this host,
scan the app DB, then create and poll in a bounded pool (`PushEngine`). Exactly once rests on three things: the
intent is committed before the POST, the client reference (txn_id) is the idempotency key, and any create whose
outcome is unknown is looked up before it is ever sent again.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from camsync.clients.luna_target import LunaEndpointError, LunaTarget
from camsync.errors import NotFoundError, UpstreamError
from camsync.logs import get_logger
from camsync.settings import Settings
from camsync.store import luna_admin
from camsync.store.base import utcnow
from camsync.store.engine import Store
from camsync.store.luna_scan import scan_position
from camsync.sync.ledger import process_alive, recorded_run
from camsync.sync.luna import moves
from camsync.sync.luna.engine import PushEngine
from camsync.sync.luna.options import PushCounts, PushOptions
from camsync.sync.luna.owner import owner_name
from camsync.sync.luna.scan import ScanReport, SourceLike, discover, preview
from camsync.sync.luna.states import NEEDS_OPERATOR, STATES, TxnState
from camsync.sync.luna.sweep import SweepReport, sweep_for_push
from camsync.sync.luna.target import target_for

log = get_logger("camsync.sync.luna")


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
    sweep: SweepReport | None = None  # the full sweep, when this push ran one

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


def push(
    settings: Settings,
    store: Store,
    *,
    options: PushOptions,
    dry_run: bool = False,
    trigger: str = "cli",
    parent_id: int | None = None,
    client: LunaTarget | None = None,
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
        with target_for(settings, client, options.concurrency) as target:
            return _push(
                settings, store, target, app_db, options, trigger=trigger, parent_id=parent_id, clock=clock, sleep=sleep
            )
    finally:
        if own_source:
            app_db.close()  # type: ignore[union-attr]


def _dry_run(store: Store, source: SourceLike, options: PushOptions) -> PushReport:
    scan = preview(store, source, batch_size=max(options.batch_size, 5000), max_amount=options.max_amount)
    with store.session() as session:
        states = luna_admin.count_by_state(session, states=STATES)
    due = {
        "to_send": states[TxnState.DISCOVERED] + scan.discovered,
        "to_settle": states[TxnState.SENDING],
        "to_poll": states[TxnState.CREATED],
    }
    return PushReport(None, "DRY-RUN", True, scan, PushCounts(), states, scan.seconds, due=due)


def _push(
    settings: Settings,
    store: Store,
    client: LunaTarget,
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
        cursor_before = str(scan_position(session)[0])
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
        scan = discover(
            store,
            source,
            actor=owner,
            now=clock(),
            batch_size=max(options.batch_size, 5000),
            max_amount=options.max_amount,
        )
        run.add(fetched=scan.discovered)
        swept = sweep_for_push(store, source, options, scan, actor=owner, clock=clock)
        if swept is not None:
            run.add(fetched=swept.discovered)
            run.details["sweep"] = swept.as_dict()
        if options.txn_id is not None:
            _require_known(store, options.txn_id)
        engine = PushEngine(store, client, options, owner=owner, clock=clock, sleep=sleep)
        engine.heartbeat = lambda: _beat(run, engine.counts)
        counts = engine.run()
        with store.session() as session:
            states = luna_admin.count_by_state(session, states=STATES)
        _record(run, scan, counts, states, options)
        _raise_if_stopped(counts)
    seconds = time.monotonic() - started
    return PushReport(run.id, run.status, False, scan, counts, states, seconds, run.error_message, sweep=swept)


def _raise_if_stopped(counts: PushCounts) -> None:
    """End the run FAILED when it stopped on an answer about the endpoint (exit 4), or when LUNA could not be
    reached and nothing got through (exit 1): txns it did not reach are left as they were."""
    if counts.unreachable and not counts.fatal and not (counts.created or counts.adopted or counts.reached_terminal):
        counts.fatal, counts.fatal_is_config = counts.unreachable, False
    if not counts.fatal:
        return
    if counts.fatal_is_config:
        raise LunaEndpointError(
            counts.fatal,
            "Fix LUNA_BASE_URL (or LUNA_CREATE_URL, LUNA_STATUS_URL, the credentials, VERIFY_TLS: whichever the "
            "answer names) and push again; no txn was marked failed or unknown by this stop",
        )
    raise UpstreamError(
        f"LUNA is unreachable: {counts.fatal}",
        "Check LUNA_BASE_URL and the network; the txns are sent by the next push",
        service="LUNA",
    )


def _require_known(store: Store, txn_id: str) -> None:
    with store.session() as session:
        if luna_admin.get_txn(session, txn_id=txn_id) is not None:
            return
        rejects = luna_admin.list_rejects(session, txn_id=txn_id, limit=1)
    hint = f"It is a rejected app DB row: {rejects[0]['reason']}" if rejects else "Is it a USED row of the app DB?"
    raise NotFoundError(f"txn {txn_id} is not known", hint)


def recover_dead_claims(store: Store, *, owner: str) -> list[str]:
    """Free the leases of dead processes of this host; their `sending` txns will be looked up first."""
    with store.writer() as session:
        freed = moves.release_dead_claims(
            session, host=socket.gethostname(), owner=owner, alive=process_alive, now=utcnow()
        )
    if freed:
        log.warning("recovered", f"released {len(freed)} txns claimed by processes that are gone", txns=len(freed))
    return freed


def _beat(run: Any, counts: PushCounts) -> None:
    """Show the pool's progress to the run's watchers (progress bars) and keep the run's heartbeat."""
    run.details["live"] = {
        "created": counts.created + counts.adopted,  # not a txn state: work orders created
        "finished": counts.reached_terminal,
        "requests": counts.requests,
    }
    run.beat()


RESOLVE = {
    TxnState.HELD: "review with `camsync luna status --state held`, then `camsync luna replay TXN --force`",
    TxnState.UNKNOWN: "settle them with `camsync luna replay --state unknown`",
}


def operator_problems(states: dict[str, int]) -> list[str]:
    """The txns only an operator can move on (a push ending with any exits 3), each with its command."""
    return [f"{states[state]} txns {state}: {RESOLVE[state]}" for state in NEEDS_OPERATOR if states.get(state)]


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
            "created": counts.created,  # not a txn state: work orders created
            "adopted": counts.adopted,
            "polls": counts.polls,
            "lookups": counts.lookups,
            "retries": counts.retries,
            "finished": counts.finished,
            "unknown": counts.unknown,  # not a txn state: txns held as unknown by this push
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
    problems += operator_problems(states)
    if problems:
        run.fail("; ".join(problems), partial=True)
