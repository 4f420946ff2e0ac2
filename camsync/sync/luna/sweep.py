"""The full sweep: every USED row of the PAY+ app DB compared with the store, so that a row the incremental scan
missed (committed more than the lookback window below the highest id seen) is found and pushed.

The sweep reads the whole app DB by id in the source's batches and compares each batch with the store's txns and
rejects of the same id range (one indexed range query each): memory stays flat on a million rows. A USED row the
store knows nothing of is recorded exactly as the scan records a new row (`classify`, then `moves.apply_scan`:
the same transition table), in a short store transaction of its own; the app DB is never read while the store
is locked. The scan cursor is left alone. `luna push` sweeps when the last sweep is older than
`LUNA_SWEEP_INTERVAL_SECONDS` (a scan that started at id 0 read every row, and counts as one), or always with
`--sweep`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from camsync.logs import get_logger
from camsync.store import luna_scan, luna_sweep
from camsync.store.engine import Store
from camsync.sync.luna import moves
from camsync.sync.luna.options import PushOptions
from camsync.sync.luna.scan import PUSHABLE, ScanReport, SourceLike, classify

log = get_logger("camsync.sync.luna")


@dataclass(frozen=True)
class SweepReport:
    """What one sweep read and recorded; `missed` = USED rows the store knew nothing of (new txns + new rejects)."""

    rows: int
    used: int
    missed: int
    discovered: int
    rejected: int
    already_known: int
    last_id: int
    seconds: float
    by_scan: bool = False  # the push's scan started at id 0: it read every row, so it was the sweep

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def groups(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """`rows` in lists of `size` (the last may be shorter)."""
    group: list[Any] = []
    for row in rows:
        group.append(row)
        if len(group) >= size:
            yield group
            group = []
    if group:
        yield group


def sweep(
    store: Store,
    source: SourceLike,
    *,
    actor: str,
    now: datetime,
    batch_size: int = 5000,
    max_amount: Decimal | None = None,
) -> SweepReport:
    """Compare every USED row of the app DB with the store; record those it lacks as the scan would."""
    started = time.perf_counter()
    rows = used = discovered = rejected = already_known = 0
    after = 0
    for group in groups(source.scan(after_id=0, batch_size=batch_size), batch_size):
        upto = max(after, group[-1].tui_id)
        rows += len(group)
        pushable = [row for row in group if (row.status or "").strip().upper() == PUSHABLE]
        used += len(pushable)
        missed = _missed(store, pushable, after=after, upto=upto)
        if missed:
            found = classify(missed, last_id=0, watched=(), max_amount=max_amount)
            with store.writer() as session:
                luna_scan.lock_scan_cursor(session)  # one scan (or sweep) records at a time
                outcome = moves.apply_scan(
                    session,
                    now=now,
                    actor=actor,
                    last_id=0,  # the scan cursor is the scan's: left alone
                    found=found.found,
                    rejects=found.rejects,
                    watch=[],
                    unwatch=[],
                )
            discovered += len(outcome.discovered)
            rejected += outcome.rejected
            already_known += outcome.already_known
        after = upto
    with store.writer() as session:
        luna_scan.lock_scan_cursor(session)
        luna_sweep.record_sweep(session, now=now, last_id=after)
    report = SweepReport(
        rows, used, discovered + rejected, discovered, rejected, already_known, after, time.perf_counter() - started
    )
    _log_sweep(report)
    return report


def _missed(store: Store, used: list[Any], *, after: int, upto: int) -> list[Any]:
    """The USED rows of one batch the store holds neither as a txn nor as a reject."""
    if not used:
        return []
    with store.session() as session:
        known = luna_sweep.txn_tui_ids(session, after=after, upto=upto)
        known |= luna_sweep.reject_tui_ids(session, after=after, upto=upto)
    return [row for row in used if row.tui_id not in known]


def sweep_if_due(
    store: Store,
    source: SourceLike,
    *,
    interval: float,
    actor: str,
    clock: Callable[[], datetime],
    force: bool = False,
    scanned_from: int | None = None,
    scanned_to: int = 0,
    batch_size: int = 5000,
    max_amount: Decimal | None = None,
) -> SweepReport | None:
    """Sweep when `force`, or when the last sweep is older than `interval` seconds (0: only when forced).

    A due sweep right after a scan that started at id 0 (`scanned_from`) is recorded without reading again:
    that scan read every row up to `scanned_to`."""
    now = clock()
    if not force:
        if interval <= 0 or not _due(store, now=now, interval=interval):
            return None
        if scanned_from == 0:
            with store.writer() as session:
                luna_scan.lock_scan_cursor(session)
                luna_sweep.record_sweep(session, now=now, last_id=scanned_to)
            return SweepReport(0, 0, 0, 0, 0, 0, scanned_to, 0.0, by_scan=True)
    return sweep(store, source, actor=actor, now=now, batch_size=batch_size, max_amount=max_amount)


def sweep_for_push(
    store: Store,
    source: SourceLike,
    options: PushOptions,
    scan: ScanReport,
    *,
    actor: str,
    clock: Callable[[], datetime],
) -> SweepReport | None:
    """The sweep of one push, right after its scan: when `--sweep` asks for it, or when it is due."""
    return sweep_if_due(
        store,
        source,
        interval=options.sweep_interval,
        actor=actor,
        clock=clock,
        force=options.sweep,
        scanned_from=scan.from_id,
        scanned_to=scan.last_id,
        batch_size=max(options.batch_size, 5000),
        max_amount=options.max_amount,
    )


def _due(store: Store, *, now: datetime, interval: float) -> bool:
    with store.session() as session:
        last = luna_sweep.last_sweep(session)
    return last is None or now - last >= timedelta(seconds=interval)


def _log_sweep(report: SweepReport) -> None:
    message = (
        f"full sweep: {report.rows} rows read, {report.used} USED, {report.missed} the scan had missed "
        f"({report.discovered} new txns, {report.rejected} rejected)"
    )
    fields = {"seconds": round(report.seconds, 4), "missed": report.missed, "last_id": report.last_id}
    if report.missed:
        log.warning("sweep", message, **fields)
    else:
        log.info("sweep", message, **fields)
