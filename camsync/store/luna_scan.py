"""What a scan of the PAY+ app DB records: new txns, rejected rows, the watch list and the cursor.

A new txn starts as the caller decided (`TxnStarts`, from the sync layer's transition table): this module only
finds the facts that choose between the starts — whether the txn's history (kept when a txn is forgotten) holds
an intent or an import, and which work order it names.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import delete, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from camsync.store import bulk
from camsync.store.luna_tables import SCAN_CURSOR, HistoryKind, LunaCursor, LunaEvent, LunaReject, LunaTxn, LunaWatch
from camsync.store.luna_txns import chunks

_WRITE_CHUNK = 20000  # rows per executemany


class NewTxn(NamedTuple):
    """A pushable USED row found in the app DB (a tuple: a first scan makes one per row)."""

    txn_id: str
    tui_id: int
    meter: str
    amount: Decimal
    currency: str
    hold_reason: str | None = None  # the money checks failed: recorded held for review, never sent until released


@dataclass(frozen=True)
class NewReject:
    """An app DB row that cannot be pushed."""

    tui_id: int
    txn_id: str | None
    tui_status: str | None
    meter: str | None
    amount_raw: str | None
    reason: str


@dataclass(frozen=True)
class ScanOutcome:
    discovered: list[str]
    rejected: int
    already_known: int


@dataclass(frozen=True)
class TxnStart:
    """How a txn found in the app DB starts: the values of its row and the kind of its first history line, whose
    message ends with `note` (where `{order}` names the work order its history holds)."""

    values: Mapping[str, Any]
    kind: str
    note: str = ""


@dataclass(frozen=True)
class TxnStarts:
    """The starts the caller decided, one per fact found in a new txn's history."""

    fresh: TxnStart  # nothing in its history
    sent_before: TxnStart  # an intent or an import in its history, no work order: LUNA may hold one
    followed: TxnStart  # its history names a work order (written as its work_order_id)
    held: TxnStart  # its money checks failed (its reason written as its last_error)
    held_sent_before: TxnStart  # held, and its history holds an intent or an import


@dataclass(frozen=True)
class ScanStart:
    """Where a scan starts: the cursor, the window below it read again, and the ids to re-check or to skip."""

    last_id: int
    from_id: int
    watched: list[int]
    rejected: list[int]
    known: set[int]


def lock_scan_cursor(session: Session) -> tuple[int, list[int]]:
    """The highest app DB id scanned and the ids still watched; locks the cursor row until the commit."""
    cursor = session.scalars(select(LunaCursor).where(LunaCursor.name == SCAN_CURSOR).with_for_update()).first()
    if cursor is None:
        cursor = LunaCursor(name=SCAN_CURSOR, last_id=0, updated_at=None)
        session.add(cursor)
        session.flush()
    return cursor.last_id, watched_ids(session)


def scan_start(session: Session, *, lookback: int) -> ScanStart:
    """The scan position, without locking: rows above `last_id - lookback` are read again (ids of an app DB on
    PostgreSQL commit out of order), the watched and the unresolved rejected rows are re-checked, and the ids of
    the window already known as txns are skipped."""
    last_id = int(session.scalar(select(LunaCursor.last_id).where(LunaCursor.name == SCAN_CURSOR)) or 0)
    from_id = max(0, last_id - lookback)
    known = set(session.scalars(select(LunaTxn.tui_id).where(LunaTxn.tui_id > from_id)))
    rejected = list(session.scalars(select(LunaReject.tui_id).where(LunaReject.resolved_at.is_(None))))
    return ScanStart(last_id, from_id, watched_ids(session), sorted(rejected), {int(i) for i in known if i})


def apply_scan(
    session: Session,
    *,
    now: datetime,
    actor: str,
    last_id: int,
    found: Sequence[NewTxn],
    rejects: Sequence[NewReject],
    watch: Sequence[tuple[int, str | None]],
    unwatch: Sequence[int],
    starts: TxnStarts,
    resolved: Sequence[int] = (),
) -> ScanOutcome:
    """Record one scan: new txns (known ones are left alone) as `starts` says, rejects (and those now
    `resolved`), the watch list and the cursor."""
    discovered, known = _insert_new_txns(session, found=found, now=now, actor=actor, starts=starts)
    rejected = _upsert_rejects(session, rejects=rejects, now=now)
    for chunk in chunks(list(resolved)):
        session.execute(
            update(LunaReject)
            .where(LunaReject.tui_id.in_(chunk), LunaReject.resolved_at.is_(None))
            .values(resolved_at=now, last_seen_at=now)
        )
    for chunk in chunks(list(unwatch)):
        session.execute(delete(LunaWatch).where(LunaWatch.tui_id.in_(chunk)))
    add_watch(session, watch=watch, now=now)
    session.execute(
        update(LunaCursor)
        .where(LunaCursor.name == SCAN_CURSOR, LunaCursor.last_id < last_id)
        .values(last_id=last_id, updated_at=now)
    )
    return ScanOutcome(discovered=discovered, rejected=rejected, already_known=known)


def existing_txns(session: Session, txn_ids: Sequence[str]) -> dict[str, LunaTxn]:
    """The rows of those of `txn_ids` the store knows."""
    rows: dict[str, LunaTxn] = {}
    for chunk in chunks(txn_ids):
        rows.update((r.txn_id, r) for r in session.scalars(select(LunaTxn).where(LunaTxn.txn_id.in_(chunk))))
    return rows


def _insert_new_txns(
    session: Session, *, found: Sequence[NewTxn], now: datetime, actor: str, starts: TxnStarts
) -> tuple[list[str], int]:
    store_is_empty = _empty(session, LunaTxn) and _empty(session, LunaEvent)  # a first scan: nothing to look up
    existing = {} if store_is_empty else _existing_tui_ids(session, [f.txn_id for f in found])
    fresh = list({f.txn_id: f for f in found if f.txn_id not in existing}.values())
    for item in found:
        if item.txn_id in existing and existing[item.txn_id] is None:  # imported from the old agent: learn where
            session.execute(  # it lives
                update(LunaTxn)
                .where(LunaTxn.txn_id == item.txn_id, LunaTxn.tui_id.is_(None))
                .values(tui_id=item.tui_id, meter=item.meter, amount=str(item.amount))
            )
            existing[item.txn_id] = item.tui_id
    resent = set() if store_is_empty else _sent_before(session, [f.txn_id for f in fresh])
    orders = _known_work_orders(session, sorted(resent))
    by_start: dict[int, tuple[TxnStart, list[tuple[NewTxn, str | None]]]] = {}  # keyed by id(): one per start
    for item in fresh:
        order = orders.get(item.txn_id)
        start = _start_of(item, order=order, resent=item.txn_id in resent, starts=starts)
        by_start.setdefault(id(start), (start, []))[1].append((item, order))
    for start, items in by_start.values():
        _insert_started(session, items, start=start, now=now, actor=actor)
    return [f.txn_id for f in fresh], len(found) - len(fresh)


_TXN_COLUMNS = ("txn_id", "tui_id", "meter", "amount", "currency", "work_order_id", "last_error")
_EVENT_COLUMNS = ("txn_id", "work_order_id", "message")


def _insert_started(
    session: Session, items: Sequence[tuple[NewTxn, str | None]], *, start: TxnStart, now: datetime, actor: str
) -> None:
    """Insert the new txns that start alike, and the first line of each one's history."""
    shared = {"origin": "app", "attempts": 0, "polls": 0, "discovered_at": now, "updated_at": now}
    shared.update((k, v) for k, v in start.values.items() if k not in ("work_order_id", "last_error"))
    keeps_reason = "last_error" in start.values  # a held txn's reason is its last_error
    txns = [
        (
            item.txn_id,
            item.tui_id,
            item.meter,
            str(item.amount),
            item.currency,
            order,
            item.hold_reason if keeps_reason else None,
        )
        for item, order in items
    ]
    bulk.insert_tuples(session, LunaTxn, columns=_TXN_COLUMNS, rows=txns, constants=shared)
    events = ((item.txn_id, order, _discovered_message(item, start=start, order=order)) for item, order in items)
    event_shared = {"at": now, "kind": start.kind, "state": start.values["state"], "http_status": None, "actor": actor}
    bulk.insert_tuples(session, LunaEvent, columns=_EVENT_COLUMNS, rows=events, constants=event_shared)


def _empty(session: Session, model: type[Any]) -> bool:
    return session.scalar(select(literal(1)).select_from(model).limit(1)) is None


def chunks_of(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """`items` in slices of `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _existing_tui_ids(session: Session, txn_ids: Sequence[str]) -> dict[str, int | None]:
    """The app DB id of each of `txn_ids` the store knows (None for a txn imported from the old agent)."""
    found: dict[str, int | None] = {}
    for chunk in chunks(txn_ids):
        query = select(LunaTxn.txn_id, LunaTxn.tui_id).where(LunaTxn.txn_id.in_(chunk))
        found.update((txn_id, tui_id) for txn_id, tui_id in session.execute(query))
    return found


def _start_of(item: NewTxn, *, order: str | None, resent: bool, starts: TxnStarts) -> TxnStart:
    """The start the facts choose: a work order in its history is followed (LUNA holds it already, whatever the
    row says); otherwise a txn whose money checks failed is held."""
    if order is not None:
        return starts.followed
    if item.hold_reason is not None:
        return starts.held_sent_before if resent else starts.held
    return starts.sent_before if resent else starts.fresh


def _sent_before(session: Session, txn_ids: Sequence[str]) -> set[str]:
    """The txns whose history shows they may be in LUNA (an intent, an import, a work order): forgotten once,
    they must be looked up before any new send."""
    found: set[str] = set()
    kinds = (HistoryKind.INTENT.value, HistoryKind.IMPORT.value)
    maybe_in_luna = or_(LunaEvent.kind.in_(kinds), LunaEvent.work_order_id.is_not(None))
    for chunk in chunks(txn_ids):
        query = select(LunaEvent.txn_id).where(LunaEvent.txn_id.in_(chunk), maybe_in_luna).distinct()
        found.update(session.scalars(query))
    return found


def _known_work_orders(session: Session, txn_ids: Sequence[str]) -> dict[str, str]:
    """The latest work-order id the history of each txn names (a forgotten txn's work order is still in LUNA)."""
    orders: dict[str, str] = {}
    for chunk in chunks(txn_ids):
        query = (
            select(LunaEvent.txn_id, LunaEvent.work_order_id)
            .where(LunaEvent.txn_id.in_(chunk), LunaEvent.work_order_id.is_not(None))
            .order_by(LunaEvent.id)
        )
        orders.update({txn_id: str(order) for txn_id, order in session.execute(query)})
    return orders


def _discovered_message(item: NewTxn, *, start: TxnStart, order: str | None) -> str:
    note = start.note.format(order=order, reason=item.hold_reason) if start.note else ""
    return f"tuis.id={item.tui_id} meter={item.meter} amount={item.amount} {item.currency}{note}"


def _upsert_rejects(session: Session, *, rejects: Sequence[NewReject], now: datetime) -> int:
    known: dict[int, LunaReject] = {}
    for chunk in chunks([r.tui_id for r in rejects]):
        known.update((r.tui_id, r) for r in session.scalars(select(LunaReject).where(LunaReject.tui_id.in_(chunk))))
    new = 0
    for item in rejects:
        row = known.get(item.tui_id)
        if row is None:
            new += 1
            row = LunaReject(tui_id=item.tui_id, first_seen_at=now, reason=item.reason)
            session.add(row)
            known[item.tui_id] = row
        row.txn_id, row.tui_status, row.meter = item.txn_id, item.tui_status, item.meter
        row.amount_raw, row.reason, row.last_seen_at, row.resolved_at = item.amount_raw, item.reason, now, None
    session.flush()
    return new


def add_watch(session: Session, *, watch: Sequence[tuple[int, str | None]], now: datetime) -> None:
    """Watch the app DB rows of `watch` (tui id, status) not watched yet."""
    known: set[int] = set()
    for chunk in chunks([tui_id for tui_id, _ in watch]):
        known.update(session.scalars(select(LunaWatch.tui_id).where(LunaWatch.tui_id.in_(chunk))))
    rows = []
    for tui_id, status in watch:
        if tui_id not in known:
            rows.append({"tui_id": tui_id, "tui_status": status, "seen_at": now})
            known.add(tui_id)
    for part in chunks_of(rows, _WRITE_CHUNK):
        session.connection().execute(insert(LunaWatch), list(part))


def scan_position(session: Session) -> tuple[int, int]:
    """(highest app DB id scanned, ids still watched)."""
    last = session.scalar(select(LunaCursor.last_id).where(LunaCursor.name == SCAN_CURSOR)) or 0
    watched = session.scalar(select(func.count()).select_from(LunaWatch)) or 0
    return int(last), int(watched)


def watched_ids(session: Session) -> list[int]:
    """The app DB ids watched until they are USED or EXPIRED."""
    return list(session.scalars(select(LunaWatch.tui_id).order_by(LunaWatch.tui_id)))


def known_txn_ids(session: Session, *, txn_ids: Sequence[str]) -> set[str]:
    """Those of `txn_ids` the store already knows."""
    return set(existing_txns(session, txn_ids))
