"""Discovery: read the new and the watched rows of the PAY+ app DB and record them in the store.

The store remembers the highest tuis.id scanned, the ids of rows seen before they were USED and the rejected rows.
A scan reads the rows above that id minus a lookback window (on PostgreSQL ids come from a sequence and a lower id
may commit after a higher one), skipping those already known, plus the watched and the rejected rows, re-checked
every time; an app DB with nothing new costs one small indexed range query. USED rows become txns (or rejects with
their reason; a reject that can now be pushed is resolved); EXPIRED rows and rows that vanished stop being watched.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from camsync.logs import get_logger
from camsync.store import luna_scan
from camsync.store.engine import Store
from camsync.store.luna_scan import NewReject, NewTxn, ScanStart
from camsync.sync.luna import moves
from camsync.sync.luna.states import TxnState

log = get_logger("camsync.sync.luna")

PUSHABLE = "USED"
FINISHED = "EXPIRED"
MAX_KEY = 64  # the store's txn_id and meter columns
LOOKBACK = 1000  # ids below the cursor read again: on PostgreSQL a lower id may commit after a higher one


class SourceRowLike(Protocol):
    tui_id: int
    txn_id: str | None
    status: str
    meter_number: str | None
    amount: Decimal | None
    amount_raw: str | None
    currency: str
    reject_reason: str | None  # a row may also carry topup_amount and has_topup_amount (the money checks)


class SourceLike(Protocol):
    """The part of `PayplusSource` discovery uses (tests pass fakes)."""

    def scan(self, *, after_id: int = 0, ids: Collection[int] = (), batch_size: int = 5000) -> Iterator[Any]: ...


@dataclass(frozen=True)
class ScanReport:
    """What one scan saw and recorded."""

    rows: int
    discovered: int
    rejected: int
    already_known: int
    watched: int
    last_id: int
    seconds: float
    from_id: int = 0  # the scan read every id above this one (0: every row of the app DB)


@dataclass
class _Sorted:
    last_id: int
    found: list[NewTxn]
    rejects: list[NewReject]
    watch: list[tuple[int, str | None]]
    unwatch: list[int]
    resolved: list[int] = field(default_factory=list)
    rows: int = 0


def classify(
    rows: Iterable[SourceRowLike],
    *,
    last_id: int,
    watched: Collection[int],
    rejected: Collection[int] = (),
    known: Collection[int] = (),
    max_amount: Decimal | None = None,
) -> _Sorted:
    """Sort scanned rows into new txns, rejects, rows to watch and rows to stop watching.

    Rows of `known` (already txns) are skipped; a row of `rejected` that can now be pushed is `resolved`.
    """
    out = _Sorted(last_id=last_id, found=[], rejects=[], watch=[], unwatch=[])
    seen: set[int] = set()  # the watched rows still in the app DB
    highest = last_id
    for row in rows:
        out.rows += 1
        tui_id = row.tui_id
        if tui_id > highest:
            highest = tui_id
        is_watched = tui_id in watched
        if is_watched:
            seen.add(tui_id)
        elif tui_id in known:
            continue
        status = (row.status or "").strip().upper()
        if status == PUSHABLE:
            if _pushable(out, row, max_amount) and tui_id in rejected:
                out.resolved.append(tui_id)
        elif status != FINISHED:
            if not is_watched:
                out.watch.append((tui_id, row.status))
            continue
        if is_watched:
            out.unwatch.append(tui_id)
    out.last_id = highest
    out.unwatch.extend(tui_id for tui_id in watched if tui_id not in seen)  # deleted from the app DB
    return out


def _problem(row: SourceRowLike) -> str | None:
    """Why a USED row cannot be pushed, or None."""
    if row.reject_reason:
        return row.reject_reason
    if not row.txn_id or row.amount is None or not row.meter_number:
        return "incomplete row (txn_id, amount or meter missing)"
    if len(row.txn_id) > MAX_KEY:
        return f"txn_id is longer than {MAX_KEY} characters"
    if len(row.meter_number) > MAX_KEY:
        return f"meter number is longer than {MAX_KEY} characters"
    return None


def _cut(value: str | None, size: int) -> str | None:
    return value if value is None or len(value) <= size else value[: size - 1] + "…"


def hold_reason(row: SourceRowLike, max_amount: Decimal | None) -> str | None:
    """Why the money of a pushable row must not move unreviewed, or None: the TUI is signed over the top-up's
    amount, so the two must agree (when the app DB has topups.amount), and no amount may pass LUNA_MAX_AMOUNT."""
    amount = row.amount
    assert amount is not None
    if getattr(row, "has_topup_amount", False):
        topup = getattr(row, "topup_amount", None)
        if topup is None:
            return f"tuis.amount {row.amount_raw} but topups.amount is NULL"
        if topup != amount:
            return f"tuis.amount {row.amount_raw} differs from topups.amount {topup}"
    if max_amount is not None and amount > max_amount:
        return f"amount {row.amount_raw} is over LUNA_MAX_AMOUNT={max_amount.normalize():f}"
    return None


def _pushable(out: _Sorted, row: SourceRowLike, max_amount: Decimal | None = None) -> bool:
    """Add the row to the new txns (True) or to the rejects (False)."""
    reason = _problem(row)
    if reason is not None:
        out.rejects.append(
            NewReject(
                tui_id=row.tui_id,
                txn_id=_cut(row.txn_id, MAX_KEY),
                tui_status=_cut(row.status, 24),
                meter=_cut(row.meter_number, MAX_KEY),
                amount_raw=_cut(row.amount_raw, MAX_KEY),
                reason=reason,
            )
        )
        return False
    assert row.txn_id is not None and row.meter_number is not None and row.amount is not None
    out.found.append(
        NewTxn(row.txn_id, row.tui_id, row.meter_number, row.amount, row.currency, hold_reason(row, max_amount))
    )
    return True


def discover(
    store: Store,
    source: SourceLike,
    *,
    actor: str,
    now: datetime,
    batch_size: int = 5000,
    max_amount: Decimal | None = None,
) -> ScanReport:
    """Scan the app DB past the cursor (minus the lookback window, plus the watched and rejected rows), then
    record what it found in one short store transaction: the app DB is never read while the store is locked."""
    with store.session() as session:
        start = luna_scan.scan_start(session, lookback=LOOKBACK)
    sorted_rows, seconds = _read(source, start, batch_size, max_amount)
    with store.writer() as session:
        luna_scan.lock_scan_cursor(session)  # one scan records at a time
        outcome = moves.apply_scan(
            session,
            now=now,
            actor=actor,
            last_id=sorted_rows.last_id,
            found=sorted_rows.found,
            rejects=sorted_rows.rejects,
            watch=sorted_rows.watch,
            unwatch=sorted_rows.unwatch,
            resolved=sorted_rows.resolved,
        )
    report = ScanReport(
        rows=sorted_rows.rows,
        discovered=len(outcome.discovered),
        rejected=outcome.rejected,
        already_known=outcome.already_known,
        watched=len(start.watched) + len(sorted_rows.watch) - len(sorted_rows.unwatch),
        last_id=sorted_rows.last_id,
        seconds=seconds,
        from_id=start.from_id,
    )
    _log_scan(report, [r for r in sorted_rows.rejects if r.tui_id not in start.rejected])
    new = set(outcome.discovered)
    for item in sorted_rows.found:
        if item.hold_reason is not None and item.txn_id in new:
            log.warning(
                TxnState.HELD.value,
                f"[{TxnState.HELD}] txn={item.txn_id} tuis.id={item.tui_id} {item.hold_reason}: not sent; "
                f"after a look, `camsync luna replay {item.txn_id} --force` sends it",
                tui_id=item.tui_id,
            )
    return report


def _read(
    source: SourceLike, start: ScanStart, batch_size: int, max_amount: Decimal | None = None
) -> tuple[_Sorted, float]:
    started = time.perf_counter()
    rows = source.scan(after_id=start.from_id, ids=sorted({*start.watched, *start.rejected}), batch_size=batch_size)
    sorted_rows = classify(
        rows,
        last_id=start.last_id,
        watched=set(start.watched),
        rejected=set(start.rejected),
        known=start.known,
        max_amount=max_amount,
    )
    return sorted_rows, time.perf_counter() - started


def preview(
    store: Store, source: SourceLike, *, batch_size: int = 5000, max_amount: Decimal | None = None
) -> ScanReport:
    """What `discover` would record, without writing anything (for --dry-run)."""
    with store.session() as session:
        start = luna_scan.scan_start(session, lookback=LOOKBACK)
    rows, seconds = _read(source, start, batch_size, max_amount)
    with store.session() as session:
        known = luna_scan.known_txn_ids(session, txn_ids=[f.txn_id for f in rows.found])
    return ScanReport(
        rows=rows.rows,
        discovered=len({f.txn_id for f in rows.found} - known),
        rejected=len(rows.rejects),
        already_known=len(known),
        watched=len(start.watched),
        last_id=rows.last_id,
        seconds=seconds,
    )


def _log_scan(report: ScanReport, rejects: list[NewReject]) -> None:
    for reject in rejects:
        log.warning(
            "rejected",
            f"[rejected] tuis.id={reject.tui_id} txn={reject.txn_id} {reject.reason}",
            tui_id=reject.tui_id,
        )
    log.info(
        "scan",
        f"app DB scanned: {report.rows} rows read, {report.discovered} new, {report.rejected} rejected",
        seconds=round(report.seconds, 4),
        last_id=report.last_id,
        watched=report.watched,
    )
