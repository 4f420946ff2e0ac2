"""Reconcile: per day, the USED top-ups of the PAY+ app DB against the successful LUNA work orders of the store.

A day is the app row's `created_at` date in UTC (`undated` when it has none or it does not parse). Each day
counts the USED rows and their amount, and the txns that reached `successful` and their amount; every USED row
that is not a successful txn is a difference: `not_sent` (the store knows nothing of it), `rejected` (recorded as
a row that cannot be pushed), or the state its txn is in (every state of `TxnState` but `successful`, so a state
added later shows up under its own name). A txn whose app row is gone or is no longer USED is a difference too
(`no_used_row`, dated by its app row, else by when it was discovered). The app DB is read by id in the source's
batches and each batch is compared with the store's txns and rejects of the same id range, as the sweep does.

With a `lookup` (the CLI's `--lookup`, which needs LUNA's lookup by client reference), LUNA is asked too, one
lookup per row, for the rows the store knows nothing of: an app row in range that is not USED and has a txn_id is a
difference `luna_only` when LUNA holds a work order for it (credit loaded for a top-up the app did not complete),
and a `not_sent` row that LUNA already holds (sent by another program) says so in its detail. Work orders whose
reference is no app row at all cannot be found: LUNA offers no listing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from camsync.errors import UsageError
from camsync.settings import Settings
from camsync.store import luna_sweep
from camsync.store.engine import Store
from camsync.store.luna_sweep import StoredTxn
from camsync.sync.luna.scan import PUSHABLE, SourceLike
from camsync.sync.luna.states import TxnState
from camsync.sync.luna.sweep import groups

UNDATED = "undated"  # the day of a row without a readable created_at
NOT_SENT = "not_sent"  # not a txn state: a USED row the store knows nothing of
REJECTED = "rejected"  # not a txn state: a row recorded in luna_rejects
NO_USED_ROW = "no_used_row"  # not a txn state: a txn whose app row is gone or not USED
LUNA_ONLY = "luna_only"  # not a txn state: a work order at LUNA for an app row that is not USED, unknown to the store

Lookup = Callable[[str], list[Any]]  # txn_id -> the work orders LUNA holds for it (each with `id`, `status`)
SUCCESSFUL = TxnState.SUCCESSFUL.value


def _pending_states() -> dict[str, int]:
    return {state.value: 0 for state in TxnState if state is not TxnState.SUCCESSFUL}


@dataclass
class Day:
    """One day's totals: the app DB's USED rows, the store's successful txns, and the differences by kind."""

    day: str
    used: int = 0
    used_amount: Decimal = Decimal(0)
    successful: int = 0
    successful_amount: Decimal = Decimal(0)
    not_sent: int = 0
    rejected: int = 0
    states: dict[str, int] = field(default_factory=_pending_states)  # txns not successful, by state
    no_used_row: int = 0
    luna_only: int = 0

    @property
    def differences(self) -> int:
        return self.not_sent + self.rejected + sum(self.states.values()) + self.no_used_row + self.luna_only

    @property
    def matches(self) -> bool:
        return not self.differences and self.used == self.successful and self.used_amount == self.successful_amount


@dataclass(frozen=True)
class Difference:
    """One row that does not match: its day, kind (not_sent, rejected, a txn state, no_used_row) and ids."""

    day: str
    kind: str
    tui_id: int | None
    txn_id: str | None
    amount: str | None
    detail: str = ""


@dataclass
class ReconcileReport:
    """Every day of the range, oldest first, and every difference."""

    date_from: date | None
    date_to: date | None
    days: list[Day]
    differences: list[Difference]
    rows_read: int
    seconds: float
    lookups: int = 0  # LUNA lookups made (0 without --lookup)

    @property
    def matches(self) -> bool:
        return all(day.matches for day in self.days)

    def as_dict(self) -> dict[str, Any]:
        days = []
        for day in self.days:
            item = asdict(day)
            item.update(used_amount=str(day.used_amount), successful_amount=str(day.successful_amount))
            item.update(differences=day.differences, matches=day.matches)
            days.append(item)
        return {
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
            "matches": self.matches,
            "days": days,
            "differences": [asdict(d) for d in self.differences],
            "rows_read": self.rows_read,
            "lookups": self.lookups,
            "seconds": round(self.seconds, 4),
        }


def day_of(created_at: Any) -> str:
    """The UTC date of an app row's `created_at` (text or datetime) as YYYY-MM-DD, or `undated`."""
    if created_at is None:
        return UNDATED
    try:
        moment = created_at if isinstance(created_at, datetime) else datetime.fromisoformat(str(created_at).strip())
    except ValueError:
        return UNDATED
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.date().isoformat()


def _amount(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value is not None else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


class _Tally:
    def __init__(self, date_from: date | None, date_to: date | None) -> None:
        self.date_from, self.date_to = date_from, date_to
        self.days: dict[str, Day] = {}
        self.differences: list[Difference] = []
        self.to_look_up: list[tuple[str, Any, bool]] = []  # (day, row, is it USED) of rows the store does not know

    def wanted(self, day: str) -> bool:
        if day == UNDATED:
            return self.date_from is None and self.date_to is None
        return (self.date_from is None or day >= self.date_from.isoformat()) and (
            self.date_to is None or day <= self.date_to.isoformat()
        )

    def day(self, name: str) -> Day:
        return self.days.setdefault(name, Day(name))

    def used_row(self, row: Any, day: str, txn: StoredTxn | None, rejected: bool) -> None:
        totals = self.day(day)
        totals.used += 1
        totals.used_amount += _amount(row.amount)
        if txn is not None and txn.state == SUCCESSFUL:
            totals.successful += 1
            totals.successful_amount += _amount(txn.amount)
            return
        if txn is not None:
            totals.states[txn.state] = totals.states.get(txn.state, 0) + 1
            self._differ(day, txn.state, row.tui_id, txn.txn_id, txn.amount)
        elif rejected:
            totals.rejected += 1
            self._differ(day, REJECTED, row.tui_id, row.txn_id, row.amount_raw, row.reject_reason or "")
        else:
            totals.not_sent += 1
            self.to_look_up.append((day, row, True))

    def orphan(self, txn: StoredTxn, day: str, detail: str) -> None:
        totals = self.day(day)
        if txn.state == SUCCESSFUL:
            totals.successful += 1
            totals.successful_amount += _amount(txn.amount)
        totals.no_used_row += 1
        self._differ(day, NO_USED_ROW, txn.tui_id, txn.txn_id, txn.amount, f"{detail}; txn {txn.state}")

    def looked_up(self, day: str, row: Any, used: bool, orders: list[Any] | None) -> None:
        """A row the store does not know, with the work orders LUNA holds for it (None: not looked up)."""
        held = ", ".join(f"{order.id} ({order.status or 'no status'})" for order in orders or ())
        if used:
            detail = f"already at LUNA as {held}" if held else ""
            self._differ(day, NOT_SENT, row.tui_id, row.txn_id, row.amount_raw, detail)
        elif held:
            self.day(day).luna_only += 1
            detail = f"app row is {row.status or 'empty'}; at LUNA as {held}"
            self._differ(day, LUNA_ONLY, row.tui_id, row.txn_id, row.amount_raw, detail)

    def _differ(self, day: str, kind: str, tui_id: int, txn_id: str | None, amount: Any, detail: str = "") -> None:
        self.differences.append(Difference(day, kind, tui_id, txn_id, None if amount is None else str(amount), detail))


def reconcile(
    store: Store,
    source: SourceLike,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    batch_size: int = 5000,
    lookup: Lookup | None = None,
    lookup_threads: int = 8,
) -> ReconcileReport:
    """Compare the app DB's USED rows with the store's txns and rejects, day by day, and with `lookup` LUNA's
    work orders for the rows the store does not know (see the module doc)."""
    started = time.perf_counter()
    tally = _Tally(date_from, date_to)
    rows_read, after = 0, 0
    for group in groups(source.scan(after_id=0, batch_size=batch_size), batch_size):
        upto = max(after, group[-1].tui_id)
        rows_read += len(group)
        with store.session() as session:
            txns = {t.tui_id: t for t in luna_sweep.txns_in_range(session, after=after, upto=upto)}
            rejects = luna_sweep.reject_tui_ids(session, after=after, upto=upto, unresolved=True)
        _compare(tally, group, txns, rejects)
        after = upto
    with store.session() as session:
        _orphans(tally, luna_sweep.txns_in_range(session, after=after, upto=None))
    lookups = _look_up(tally, lookup, lookup_threads)
    days = [tally.days[name] for name in sorted(tally.days)]
    seconds = time.perf_counter() - started
    differences = sorted(tally.differences, key=lambda d: (d.day, d.tui_id or 0))
    return ReconcileReport(date_from, date_to, days, differences, rows_read, seconds, lookups)


def _look_up(tally: _Tally, lookup: Lookup | None, threads: int) -> int:
    """Settle the rows the store does not know: with LUNA's answers when `lookup` is given (in app-row order,
    several lookups at a time; a lookup that fails fails the reconcile), else as plain not_sent rows."""
    wanted = [row for _, row, _ in tally.to_look_up if row.txn_id] if lookup is not None else []
    found: dict[int, list[Any]] = {}  # id(row) -> LUNA's work orders, for the rows looked up
    if lookup is not None and wanted:
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            answers = list(pool.map(lambda row: lookup(row.txn_id), wanted))
        found = {id(row): orders for row, orders in zip(wanted, answers, strict=True)}
    for day, row, used in tally.to_look_up:
        tally.looked_up(day, row, used, found.get(id(row)))
    return len(wanted)


def _compare(tally: _Tally, group: list[Any], txns: dict[int, StoredTxn], rejects: set[int]) -> None:
    for row in group:
        txn = txns.pop(row.tui_id, None)
        day = day_of(row.created_at)
        if not tally.wanted(day):
            continue
        if (row.status or "").strip().upper() == PUSHABLE:
            tally.used_row(row, day, txn, row.tui_id in rejects)
        elif txn is not None:
            tally.orphan(txn, day, f"app row is {row.status or 'empty'}")
        else:
            tally.to_look_up.append((day, row, False))
    _orphans(tally, txns.values())  # their app rows are gone


def _orphans(tally: _Tally, txns: Iterable[StoredTxn]) -> None:
    for txn in txns:
        day = day_of(txn.discovered_at)
        if tally.wanted(day):
            tally.orphan(txn, day, "no app row (dated by its discovery)")


def reconcile_app_db(
    settings: Settings, store: Store, *, date_from: date | None, date_to: date | None, lookup: bool = False
) -> Any:
    """`reconcile` against the app DB of APP_DB_URL; with `lookup`, LUNA (of the LUNA_* settings) is asked too."""
    from camsync.sync.luna.push import open_source
    from camsync.sync.luna.target import open_target

    source = open_source(settings)
    target = open_target(settings, settings.luna_concurrency) if lookup else None
    try:
        if target is not None and not target.lookup_available:
            raise UsageError(
                "luna reconcile --lookup needs LUNA's lookup by client reference, which is off (LUNA_LOOKUP_URL=none)",
                "Set LUNA_LOOKUP_URL to the lookup template of your LUNA, or reconcile without --lookup",
            )
        return reconcile(
            store,
            source,
            date_from=date_from,
            date_to=date_to,
            lookup=target.lookup if target is not None else None,
            lookup_threads=settings.luna_concurrency,
        )
    finally:
        if target is not None:
            target.close()
        source.close()
