"""The LUNA push state machine in the store: txns, their append-only history, rejects and the source cursor.

A txn moves discovered → sending (the intent, committed before the POST) → created (work-order id) →
successful | failed | expired | cancelled, or to unknown when a create's outcome cannot be settled. Rows of the
app DB that cannot be pushed live in `luna_rejects`, keyed by the app's tuis id (their txn_id may be NULL or
shared). Claims are leases (`claimed_by` = host:pid, `claimed_until`) taken with `FOR UPDATE SKIP LOCKED` on
PostgreSQL and inside a `Store.writer()` (BEGIN IMMEDIATE) on SQLite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Boolean, Index, Integer, String, Text, delete, func, insert, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from camsync.store.base import Base, UTCDateTime

STATES = ("discovered", "sending", "created", "successful", "failed", "expired", "cancelled", "unknown")
TERMINAL = ("successful", "failed", "expired", "cancelled")
IN_FLIGHT = ("sending", "created")
SCAN_CURSOR = "tuis"
_CHUNK = 500
T = TypeVar("T")


class LunaTxn(Base):
    """One top-up (txn_id) on its way to one LUNA work order."""

    __tablename__ = "luna_txns"
    __table_args__ = (
        Index("ix_luna_txns_state_next_attempt", "state", "next_attempt_at"),
        Index("ix_luna_txns_claimed_by", "claimed_by"),
        Index("ix_luna_txns_tui_id", "tui_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    txn_id: Mapped[str] = mapped_column(String(64), unique=True)
    tui_id: Mapped[int | None] = mapped_column(Integer)
    meter: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[str | None] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(8))
    origin: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    work_order_id: Mapped[str | None] = mapped_column(String(128))
    remote_status: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer)
    polls: Mapped[int] = mapped_column(Integer)
    lookup_first: Mapped[bool] = mapped_column(Boolean)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    discovered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    first_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    work_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def as_dict(self) -> dict[str, Any]:
        """The row as plain JSON-ready values."""
        out: dict[str, Any] = {}
        for column in self.__table__.columns:
            value = getattr(self, column.key)
            out[column.key] = value.isoformat() if isinstance(value, datetime) else value
        return out


class LunaEvent(Base):
    """The append-only history of a txn: every request, answer, poll, lookup, transition and operator action."""

    __tablename__ = "luna_events"
    __table_args__ = (Index("ix_luna_events_txn_id_id", "txn_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    txn_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str | None] = mapped_column(String(16))
    http_status: Mapped[int | None] = mapped_column(Integer)
    work_order_id: Mapped[str | None] = mapped_column(String(128))
    message: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))


class LunaReject(Base):
    """An app DB row that cannot be pushed, with the reason: recorded, shown, never sent."""

    __tablename__ = "luna_rejects"
    __table_args__ = (Index("ix_luna_rejects_txn_id", "txn_id"),)

    tui_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    txn_id: Mapped[str | None] = mapped_column(String(64))
    tui_status: Mapped[str | None] = mapped_column(String(24))
    meter: Mapped[str | None] = mapped_column(String(64))
    amount_raw: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LunaWatch(Base):
    """An app DB row seen before it was USED (READY): re-checked by every scan until it is USED or EXPIRED."""

    __tablename__ = "luna_watch"

    tui_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tui_status: Mapped[str | None] = mapped_column(String(24))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LunaCursor(Base):
    """The highest app DB id scanned (one row, `tuis`, created by the migration)."""

    __tablename__ = "luna_cursor"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# --- plain values handed to and from the sync layer ---------------------------------------------------------


@dataclass(frozen=True)
class NewTxn:
    """A pushable USED row found in the app DB."""

    txn_id: str
    tui_id: int
    meter: str
    amount: Decimal
    currency: str


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
class ClaimedTxn:
    """A snapshot of a claimed txn: what the job needs to send or poll it."""

    txn_id: str
    tui_id: int | None
    meter: str | None
    amount: Decimal | None
    currency: str
    state: str
    work_order_id: str | None
    attempts: int
    polls: int
    lookup_first: bool
    next_attempt_at: datetime | None
    work_order_at: datetime | None


@dataclass(frozen=True)
class ImportCounts:
    created: int
    done: int
    already_known: int


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _snapshot(row: LunaTxn) -> ClaimedTxn:
    return ClaimedTxn(
        txn_id=row.txn_id,
        tui_id=row.tui_id,
        meter=row.meter,
        amount=Decimal(row.amount) if row.amount is not None else None,
        currency=row.currency,
        state=row.state,
        work_order_id=row.work_order_id,
        attempts=row.attempts,
        polls=row.polls,
        lookup_first=row.lookup_first,
        next_attempt_at=row.next_attempt_at,
        work_order_at=row.work_order_at,
    )


# --- history -------------------------------------------------------------------------------------------------


def add_event(
    session: Session,
    *,
    txn_id: str,
    kind: str,
    message: str,
    actor: str,
    now: datetime,
    state: str | None = None,
    http_status: int | None = None,
    work_order_id: str | None = None,
) -> None:
    """Append one line to a txn's history."""
    event = event_row(
        txn_id, kind, message, actor, now, state=state, http_status=http_status, work_order_id=work_order_id
    )
    _insert_events(session, [event])


def txn_history(session: Session, *, txn_id: str) -> list[dict[str, Any]]:
    """Every history line of a txn, oldest first."""
    events = session.scalars(select(LunaEvent).where(LunaEvent.txn_id == txn_id).order_by(LunaEvent.id)).all()
    return [
        {
            "at": e.at.isoformat(),
            "kind": e.kind,
            "state": e.state,
            "http_status": e.http_status,
            "work_order_id": e.work_order_id,
            "message": e.message,
            "actor": e.actor,
        }
        for e in events
    ]


def _sent_before(session: Session, txn_ids: Sequence[str]) -> set[str]:
    """The txns whose history shows they may be in LUNA (an intent, an import, a work order): forgotten once,
    they must be looked up before any new send."""
    found: set[str] = set()
    maybe_in_luna = or_(LunaEvent.kind.in_(("intent", "import")), LunaEvent.work_order_id.is_not(None))
    for chunk in _chunks(txn_ids):
        query = select(LunaEvent.txn_id).where(LunaEvent.txn_id.in_(chunk), maybe_in_luna).distinct()
        found.update(session.scalars(query))
    return found


# --- source scanning ----------------------------------------------------------------------------------------


def lock_scan_cursor(session: Session) -> tuple[int, list[int]]:
    """The highest app DB id scanned and the ids still watched; locks the cursor row until the commit."""
    cursor = session.scalars(select(LunaCursor).where(LunaCursor.name == SCAN_CURSOR).with_for_update()).first()
    if cursor is None:
        cursor = LunaCursor(name=SCAN_CURSOR, last_id=0, updated_at=None)
        session.add(cursor)
        session.flush()
    return cursor.last_id, watched_ids(session)


@dataclass(frozen=True)
class ScanStart:
    """Where a scan starts: the cursor, the window below it read again, and the ids to re-check or to skip."""

    last_id: int
    from_id: int
    watched: list[int]
    rejected: list[int]
    known: set[int]


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
    resolved: Sequence[int] = (),
) -> ScanOutcome:
    """Record one scan: new txns (known ones are left alone), rejects (and those now `resolved`), the watch
    list and the cursor."""
    discovered, known = _insert_new_txns(session, found=found, now=now, actor=actor)
    rejected = _upsert_rejects(session, rejects=rejects, now=now)
    for chunk in _chunks(list(resolved)):
        session.execute(
            update(LunaReject)
            .where(LunaReject.tui_id.in_(chunk), LunaReject.resolved_at.is_(None))
            .values(resolved_at=now, last_seen_at=now)
        )
    for chunk in _chunks(list(unwatch)):
        session.execute(delete(LunaWatch).where(LunaWatch.tui_id.in_(chunk)))
    _add_watch(session, watch=watch, now=now)
    session.execute(
        update(LunaCursor)
        .where(LunaCursor.name == SCAN_CURSOR, LunaCursor.last_id < last_id)
        .values(last_id=last_id, updated_at=now)
    )
    return ScanOutcome(discovered=discovered, rejected=rejected, already_known=known)


def _existing_txns(session: Session, txn_ids: Sequence[str]) -> dict[str, LunaTxn]:
    rows: dict[str, LunaTxn] = {}
    for chunk in _chunks(txn_ids):
        rows.update((r.txn_id, r) for r in session.scalars(select(LunaTxn).where(LunaTxn.txn_id.in_(chunk))))
    return rows


def _insert_new_txns(session: Session, *, found: Sequence[NewTxn], now: datetime, actor: str) -> tuple[list[str], int]:
    existing = _existing_txns(session, [f.txn_id for f in found])
    fresh = list({f.txn_id: f for f in found if f.txn_id not in existing}.values())
    for item in found:
        row = existing.get(item.txn_id)
        if row is not None and row.tui_id is None:  # imported from the old agent: learn where it lives
            row.tui_id, row.meter, row.amount = item.tui_id, item.meter, str(item.amount)
    resent = _sent_before(session, [f.txn_id for f in fresh])
    orders = _known_work_orders(session, sorted(resent))
    for chunk in _chunks(fresh):
        session.execute(
            insert(LunaTxn),
            [
                _new_txn_values(item, now=now, resent=item.txn_id in resent, order=orders.get(item.txn_id))
                for item in chunk
            ],
        )
        add_events(
            session,
            events=[
                _discovered_event(
                    item, actor=actor, now=now, resent=item.txn_id in resent, order=orders.get(item.txn_id)
                )
                for item in chunk
            ],
        )
    session.flush()
    return [f.txn_id for f in fresh], len(found) - len(fresh)


def _known_work_orders(session: Session, txn_ids: Sequence[str]) -> dict[str, str]:
    """The latest work-order id the history of each txn names (a forgotten txn's work order is still in LUNA)."""
    orders: dict[str, str] = {}
    for chunk in _chunks(txn_ids):
        query = (
            select(LunaEvent.txn_id, LunaEvent.work_order_id)
            .where(LunaEvent.txn_id.in_(chunk), LunaEvent.work_order_id.is_not(None))
            .order_by(LunaEvent.id)
        )
        orders.update({txn_id: str(order) for txn_id, order in session.execute(query)})
    return orders


def _discovered_event(item: NewTxn, *, actor: str, now: datetime, resent: bool, order: str | None) -> dict[str, Any]:
    if order is not None:
        note = f" (work order {order} is in its history: followed again, never sent again)"
    else:
        note = " (sent before it was forgotten: it will be looked up first)" if resent else ""
    message = f"tuis.id={item.tui_id} meter={item.meter} amount={item.amount} {item.currency}{note}"
    state = "created" if order is not None else "discovered"
    return event_row(item.txn_id, "discovered", message, actor, now, state=state, work_order_id=order)


def _new_txn_values(item: NewTxn, *, now: datetime, resent: bool, order: str | None) -> dict[str, Any]:
    values = {
        "txn_id": item.txn_id,
        "tui_id": item.tui_id,
        "meter": item.meter,
        "amount": str(item.amount),
        "currency": item.currency,
        "origin": "app",
        "state": "discovered",
        "attempts": 0,
        "polls": 0,
        "lookup_first": resent,
        "discovered_at": now,
        "updated_at": now,
        "work_order_id": None,
        "work_order_at": None,
        "next_attempt_at": None,
    }
    if order is not None:
        values.update(state="created", lookup_first=False, work_order_id=order, work_order_at=now, next_attempt_at=now)
    return values


def _upsert_rejects(session: Session, *, rejects: Sequence[NewReject], now: datetime) -> int:
    known: dict[int, LunaReject] = {}
    for chunk in _chunks([r.tui_id for r in rejects]):
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


def _add_watch(session: Session, *, watch: Sequence[tuple[int, str | None]], now: datetime) -> None:
    known: set[int] = set()
    for chunk in _chunks([tui_id for tui_id, _ in watch]):
        known.update(session.scalars(select(LunaWatch.tui_id).where(LunaWatch.tui_id.in_(chunk))))
    for tui_id, status in watch:
        if tui_id not in known:
            session.add(LunaWatch(tui_id=tui_id, tui_status=status, seen_at=now))
            known.add(tui_id)
    session.flush()


# --- claims --------------------------------------------------------------------------------------------------


def _free(now: datetime) -> Any:
    return or_(LunaTxn.claimed_by.is_(None), LunaTxn.claimed_until.is_(None), LunaTxn.claimed_until < now)


def _claim(session: Session, query: Any, *, owner: str, lease_until: datetime) -> list[ClaimedTxn]:
    rows = session.scalars(query.with_for_update(skip_locked=True)).all()
    out = []
    for row in rows:
        row.claimed_by, row.claimed_until = owner, lease_until
        if row.state == "sending":  # an intent without a settled outcome: never resend blindly
            row.lookup_first = True
        out.append(_snapshot(row))
    session.flush()
    return out


def claim_sends(
    session: Session,
    *,
    owner: str,
    now: datetime,
    lease_until: datetime,
    due_before: datetime,
    limit: int,
    txn_id: str | None = None,
) -> list[ClaimedTxn]:
    """Lease up to `limit` txns to create (discovered, or sending whose claim lapsed), oldest first."""
    query = _due(LunaTxn.state.in_(("discovered", "sending")), now=now, due_before=due_before, txn_id=txn_id)
    return _claim(session, query.order_by(LunaTxn.id).limit(limit), owner=owner, lease_until=lease_until)


def claim_polls(
    session: Session,
    *,
    owner: str,
    now: datetime,
    lease_until: datetime,
    due_before: datetime,
    limit: int,
    txn_id: str | None = None,
) -> list[ClaimedTxn]:
    """Lease up to `limit` created work orders whose next poll is due before `due_before`."""
    query = _due(LunaTxn.state == "created", now=now, due_before=due_before, txn_id=txn_id)
    query = query.order_by(LunaTxn.next_attempt_at, LunaTxn.id).limit(limit)
    return _claim(session, query, owner=owner, lease_until=lease_until)


def _due(in_state: Any, *, now: datetime, due_before: datetime, txn_id: str | None) -> Any:
    """Unleased txns in a state whose next attempt is due before `due_before` (one txn when `txn_id` is given)."""
    query = (
        select(LunaTxn)
        .where(in_state, _free(now))
        .where(or_(LunaTxn.next_attempt_at.is_(None), LunaTxn.next_attempt_at <= due_before))
    )
    return query if txn_id is None else query.where(LunaTxn.txn_id == txn_id)


def renew_claims(session: Session, *, owner: str, lease_until: datetime) -> int:
    """Extend every lease `owner` holds."""
    result = session.execute(update(LunaTxn).where(LunaTxn.claimed_by == owner).values(claimed_until=lease_until))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def release_claims(session: Session, *, owner: str, txn_ids: Iterable[str] | None = None) -> int:
    """Give back the leases `owner` holds (all of them, or those of `txn_ids`)."""
    query = update(LunaTxn).where(LunaTxn.claimed_by == owner)
    if txn_ids is None:
        result = session.execute(query.values(claimed_by=None, claimed_until=None))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
    count = 0
    for chunk in _chunks(list(txn_ids)):
        result = session.execute(query.where(LunaTxn.txn_id.in_(chunk)).values(claimed_by=None, claimed_until=None))
        count += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return count


def release_dead_claims(
    session: Session, *, host: str, owner: str, alive: Callable[[int], bool], now: datetime
) -> list[str]:
    """Free the leases of this process's dead predecessors; returns their txn ids.

    Owners are `host:pid:token:namespace`, the namespace naming the boot and the pid namespace. Only a claim of
    the same host AND the same namespace can be proved dead: its pid is not alive, or it is our own pid under
    another token (an earlier process that had our pid). A claim of another namespace (a container sharing
    the host name) is never freed here, only its lease can lapse.
    """
    own_pid, own_namespace = _owner_pid(owner), _owner_namespace(owner)
    if own_pid is None or not own_namespace:
        return []
    rows = session.scalars(select(LunaTxn).where(LunaTxn.claimed_by.like(f"{host}:%")).with_for_update()).all()
    freed = []
    for row in rows:
        claimer = row.claimed_by or ""
        pid = _owner_pid(claimer)
        if claimer.split(":")[0] != host or claimer == owner or pid is None:
            continue
        if _owner_namespace(claimer) != own_namespace or (pid != own_pid and alive(pid)):
            continue
        add_event(
            session,
            txn_id=row.txn_id,
            kind="recovered",
            state=row.state,
            actor=owner,
            now=now,
            message=f"claim of {row.claimed_by} released: that process is gone"
            + (" (its intent will be looked up before any resend)" if row.state == "sending" else ""),
        )
        row.claimed_by, row.claimed_until = None, None
        if row.state == "sending":
            row.lookup_first = True
        freed.append(row.txn_id)
    session.flush()
    return freed


# --- transitions ---------------------------------------------------------------------------------------------


def _owner_pid(owner: str) -> int | None:
    parts = owner.split(":")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def _owner_namespace(owner: str) -> str:
    parts = owner.split(":")
    return parts[3] if len(parts) > 3 else ""


def mark_sending(session: Session, *, owner: str, txn_ids: Sequence[str], now: datetime) -> list[str]:
    """Commit the intent to send (state sending, one more attempt) for the txns `owner` still holds."""
    query = (
        update(LunaTxn)
        .where(
            LunaTxn.txn_id.in_(txn_ids),
            LunaTxn.claimed_by == owner,
            LunaTxn.state.in_(("discovered", "sending", "unknown")),
        )
        .values(
            state="sending",
            attempts=LunaTxn.attempts + 1,
            updated_at=now,
            first_sent_at=func.coalesce(LunaTxn.first_sent_at, now),
        )
        .returning(LunaTxn.txn_id, LunaTxn.attempts, LunaTxn.lookup_first)
        .execution_options(synchronize_session=False)
    )
    marked = session.execute(query).all()
    events = []
    for txn_id, attempts, lookup_first in marked:
        how = "look the reference up, then send if LUNA has none" if lookup_first else "send the create"
        events.append(event_row(txn_id, "intent", f"attempt {attempts}: {how}", owner, now, state="sending"))
    _insert_events(session, events)
    return [row[0] for row in marked]


def event_row(
    txn_id: str,
    kind: str,
    message: str,
    actor: str,
    now: datetime,
    *,
    state: str | None = None,
    http_status: int | None = None,
    work_order_id: str | None = None,
) -> dict[str, Any]:
    """One history line as values for `add_events`."""
    return {
        "txn_id": txn_id,
        "at": now,
        "kind": kind,
        "state": state,
        "http_status": http_status,
        "work_order_id": work_order_id,
        "message": message,
        "actor": actor,
    }


def add_events(session: Session, *, events: list[dict[str, Any]]) -> None:
    """Append many history lines (from `event_row`) in one statement."""
    if events:
        session.execute(insert(LunaEvent), events)


def _insert_events(session: Session, events: list[dict[str, Any]]) -> None:
    add_events(session, events=events)


def transition(
    session: Session,
    *,
    txn_id: str,
    owner: str | None,
    from_states: Sequence[str],
    now: datetime,
    changes: dict[str, Any],
    kind: str,
    message: str,
    http_status: int | None = None,
    work_order_id: str | None = None,
    events: list[dict[str, Any]] | None = None,
    unleased_at: datetime | None = None,
) -> bool:
    """Apply `changes` to a txn still in one of `from_states` (and held by `owner` when given, or with no live
    lease at `unleased_at` when given); log the event.

    Returns False (and changes nothing) when the txn moved on or its lease was lost (or taken) meanwhile. With
    `events`, the history line is appended to that list (for `add_events` later in the same transaction) instead.
    """
    values = {**changes, "updated_at": now}
    if changes.get("state") in TERMINAL:
        values.setdefault("finished_at", now)
    query = update(LunaTxn).where(LunaTxn.txn_id == txn_id, LunaTxn.state.in_(from_states))
    if owner is not None:
        query = query.where(LunaTxn.claimed_by == owner)
    if unleased_at is not None:
        query = query.where(_free(unleased_at))
    result = session.execute(query.values(**values).execution_options(synchronize_session=False))
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    state = changes.get("state", from_states[0] if len(from_states) == 1 else None)
    wo = changes.get("work_order_id", work_order_id)
    event = event_row(
        txn_id, kind, message, owner or "operator", now, state=state, http_status=http_status, work_order_id=wo
    )
    if events is None:
        _insert_events(session, [event])
    else:
        events.append(event)
    return True


# --- reading -------------------------------------------------------------------------------------------------


def count_by_state(session: Session) -> dict[str, int]:
    """How many txns are in each state, plus `rejected` (app DB rows that cannot be pushed)."""
    counts = dict.fromkeys((*STATES, "rejected"), 0)
    for state, number in session.execute(select(LunaTxn.state, func.count()).group_by(LunaTxn.state)):
        counts[state] = int(number)
    unresolved = select(func.count()).select_from(LunaReject).where(LunaReject.resolved_at.is_(None))
    counts["rejected"] = int(session.scalar(unresolved) or 0)
    return counts


def count_duplicate_work_orders(session: Session) -> int:
    """How many txns LUNA was found to hold several work orders for (credited more than once)."""
    query = select(func.count(func.distinct(LunaEvent.txn_id))).where(LunaEvent.kind == "duplicate_work_orders")
    return int(session.scalar(query) or 0)


def list_txns(session: Session, *, state: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Txns, newest first, optionally of one state."""
    query = select(LunaTxn).order_by(LunaTxn.id.desc()).limit(limit)
    if state:
        query = query.where(LunaTxn.state == state)
    return [row.as_dict() for row in session.scalars(query)]


def list_rejects(
    session: Session, *, txn_id: str | None = None, limit: int = 50, include_resolved: bool = False
) -> list[dict[str, Any]]:
    """Rejected app DB rows (of one txn_id when given), newest first; resolved ones only with `include_resolved`."""
    query = select(LunaReject).order_by(LunaReject.tui_id.desc()).limit(limit)
    if txn_id is not None:
        query = query.where(LunaReject.txn_id == txn_id)
    if not include_resolved:
        query = query.where(LunaReject.resolved_at.is_(None))
    return [
        {
            "tui_id": r.tui_id,
            "txn_id": r.txn_id,
            "tui_status": r.tui_status,
            "meter": r.meter,
            "amount_raw": r.amount_raw,
            "reason": r.reason,
            "first_seen_at": r.first_seen_at.isoformat(),
            "last_seen_at": r.last_seen_at.isoformat(),
            "resolved_at": r.resolved_at.isoformat() if r.resolved_at else None,
        }
        for r in session.scalars(query)
    ]


def get_txn(session: Session, *, txn_id: str) -> dict[str, Any] | None:
    """One txn as plain values, or None."""
    row = session.scalars(select(LunaTxn).where(LunaTxn.txn_id == txn_id)).first()
    return row.as_dict() if row else None


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
    return set(_existing_txns(session, txn_ids))


def leased(session: Session, *, now: datetime, txn_id: str | None = None, lock: bool = False) -> list[dict[str, Any]]:
    """Txns whose lease is live (a push is working on them). With `lock`, every txn in scope (one, or all) is
    locked until the commit first, so that no push claims one between this check and the caller's write."""
    scope = select(LunaTxn.id) if txn_id is None else select(LunaTxn.id).where(LunaTxn.txn_id == txn_id)
    if lock:
        session.execute(scope.with_for_update()).all()
    query = select(LunaTxn).where(LunaTxn.claimed_by.is_not(None), LunaTxn.claimed_until >= now)
    if txn_id is not None:
        query = query.where(LunaTxn.txn_id == txn_id)
    return [row.as_dict() for row in session.scalars(query)]


# --- operator actions ----------------------------------------------------------------------------------------


def forget_txn(session: Session, *, txn_id: str, actor: str, now: datetime) -> dict[str, Any] | None:
    """Forget one txn: its row goes (history stays), and its app DB row is watched again to be rediscovered."""
    row = session.scalars(select(LunaTxn).where(LunaTxn.txn_id == txn_id)).first()
    rejects = session.scalars(select(LunaReject).where(LunaReject.txn_id == txn_id)).all()
    if row is None and not rejects:
        return None
    tui_ids = {r.tui_id for r in rejects} | ({row.tui_id} if row is not None and row.tui_id is not None else set())
    before = row.as_dict() if row is not None else {"txn_id": txn_id, "state": "rejected"}
    if row is not None:
        session.delete(row)
    for reject in rejects:
        session.delete(reject)
    _add_watch(session, watch=[(tui_id, "reset") for tui_id in sorted(tui_ids)], now=now)
    add_event(
        session,
        txn_id=txn_id,
        kind="operator",
        state=None,
        actor=actor,
        now=now,
        work_order_id=before.get("work_order_id"),
        message=f"state reset: forgot state {before['state']}"
        + (f" (work order {before['work_order_id']})" if before.get("work_order_id") else ""),
    )
    session.flush()
    return before


def forget_all(session: Session, *, actor: str, now: datetime) -> dict[str, int]:
    """Forget every txn, reject, watched row and the scan cursor: the next push scans the app DB from the start."""
    counts = count_by_state(session)
    for row in session.scalars(select(LunaTxn)):
        add_event(
            session,
            txn_id=row.txn_id,
            kind="operator",
            actor=actor,
            now=now,
            work_order_id=row.work_order_id,
            message=f"state reset --all: forgot state {row.state}",
        )
    for table in (LunaTxn, LunaReject, LunaWatch):
        session.execute(delete(table))
    session.execute(update(LunaCursor).values(last_id=0, updated_at=now))
    session.flush()
    return counts


def import_old_state(
    session: Session, *, created: dict[str, str], done: Sequence[str], currency: str, actor: str, now: datetime
) -> ImportCounts:
    """Take over the old agent's state: created → state created with its work order (polled), done → successful.

    Txns already created or finished here are left alone; txns not sent yet (or not settled) take the imported
    work order, so nothing imported is ever sent again. Running it twice changes nothing the second time.
    """
    done_set = set(done)
    wanted = sorted(set(created) | done_set)
    existing = _existing_txns(session, wanted)
    counts = {"created": 0, "done": 0, "already_known": 0}
    for txn_id in wanted:
        state = "successful" if txn_id in done_set else "created"
        row = existing.get(txn_id)
        if row is not None and row.state not in ("discovered", "sending", "unknown"):
            counts["already_known"] += 1
            continue
        if row is None:
            row = _imported_row(txn_id, currency=currency, now=now)
            session.add(row)
        row.state, row.work_order_id, row.lookup_first = state, created.get(txn_id), False
        row.work_order_at = now if row.work_order_id else None
        row.next_attempt_at = now if state == "created" else None
        row.finished_at = now if state == "successful" else None
        row.updated_at = now
        counts["done" if state == "successful" else "created"] += 1
        add_event(
            session,
            txn_id=txn_id,
            kind="import",
            state=state,
            actor=actor,
            now=now,
            work_order_id=row.work_order_id,
            message="imported from the old agent's state file as " + ("done" if state == "successful" else "created"),
        )
    session.flush()
    return ImportCounts(**counts)


def _imported_row(txn_id: str, *, currency: str, now: datetime) -> LunaTxn:
    return LunaTxn(
        txn_id=txn_id,
        tui_id=None,
        currency=currency,
        origin="import",
        state="created",
        attempts=0,
        polls=0,
        lookup_first=False,
        discovered_at=now,
        updated_at=now,
    )
