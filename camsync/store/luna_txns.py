"""Writes to LUNA txns: claims (leases), intents, decided moves, the history, imported rows.

Persistence only: every state written and every set of states queried is handed in by the sync layer, which
decides them from its transition table (`camsync/sync/luna/states.py`). Claims are taken with
`FOR UPDATE SKIP LOCKED` on PostgreSQL and inside a `Store.writer()` (BEGIN IMMEDIATE) on SQLite; every write is
fenced by the states it may move from (and by the lease owner when given), so a txn that moved on meanwhile is
left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.orm import Session

from camsync.store.luna_tables import LunaEvent, LunaTxn

CHUNK = 500
T = TypeVar("T")
Values = Mapping[str, Any]


def chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """`items` in slices small enough for one IN list."""
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


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


def _in_states(states: Sequence[str]) -> Any:
    return LunaTxn.state == states[0] if len(states) == 1 else LunaTxn.state.in_(states)


# --- history -------------------------------------------------------------------------------------------------


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
    add_events(session, events=[event])


# --- claims --------------------------------------------------------------------------------------------------


def _free(now: datetime) -> Any:
    return or_(LunaTxn.claimed_by.is_(None), LunaTxn.claimed_until.is_(None), LunaTxn.claimed_until < now)


def _claim(
    session: Session, query: Any, *, owner: str, lease_until: datetime, on_claim: Mapping[str, Values]
) -> list[ClaimedTxn]:
    # SKIP LOCKED: a claim never waits on a row another transaction holds, so it can never be one link of a
    # deadlock, whatever the order it locks its rows in (sends by id; polls by when they are due, then id)
    rows = session.scalars(query.with_for_update(skip_locked=True)).all()
    out = []
    for row in rows:
        row.claimed_by, row.claimed_until = owner, lease_until
        for key, value in on_claim.get(row.state, {}).items():
            setattr(row, key, value)
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
    states: Sequence[str],
    on_claim: Mapping[str, Values],
    txn_id: str | None = None,
) -> list[ClaimedTxn]:
    """Lease up to `limit` txns of `states` to create, oldest first; a row in a state of `on_claim` takes those
    values with its lease."""
    query = _due(_in_states(states), now=now, due_before=due_before, txn_id=txn_id)
    query = query.order_by(LunaTxn.id).limit(limit)
    return _claim(session, query, owner=owner, lease_until=lease_until, on_claim=on_claim)


def claim_polls(
    session: Session,
    *,
    owner: str,
    now: datetime,
    lease_until: datetime,
    due_before: datetime,
    limit: int,
    states: Sequence[str],
    on_claim: Mapping[str, Values],
    txn_id: str | None = None,
) -> list[ClaimedTxn]:
    """Lease up to `limit` txns of `states` (work orders to poll) whose next poll is due before `due_before`."""
    query = _due(_in_states(states), now=now, due_before=due_before, txn_id=txn_id)
    query = query.order_by(LunaTxn.next_attempt_at, LunaTxn.id).limit(limit)
    return _claim(session, query, owner=owner, lease_until=lease_until, on_claim=on_claim)


def _due(in_state: Any, *, now: datetime, due_before: datetime, txn_id: str | None) -> Any:
    """Unleased txns in a state whose next attempt is due before `due_before` (one txn when `txn_id` is given)."""
    query = (
        select(LunaTxn)
        .where(in_state, _free(now))
        .where(or_(LunaTxn.next_attempt_at.is_(None), LunaTxn.next_attempt_at <= due_before))
    )
    return query if txn_id is None else query.where(LunaTxn.txn_id == txn_id)


def _lock_held(session: Session, *, owner: str) -> None:
    """Lock the rows `owner` holds in id order before an UPDATE of many of them, which would lock them in the
    order of whatever index it scans: the one lock order of many rows is by id."""
    session.execute(select(LunaTxn.id).where(LunaTxn.claimed_by == owner).order_by(LunaTxn.id).with_for_update())


def renew_claims(session: Session, *, owner: str, lease_until: datetime) -> int:
    """Extend every lease `owner` holds."""
    _lock_held(session, owner=owner)
    result = session.execute(update(LunaTxn).where(LunaTxn.claimed_by == owner).values(claimed_until=lease_until))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def release_claims(session: Session, *, owner: str, txn_ids: Iterable[str] | None = None) -> int:
    """Give back the leases `owner` holds (all of them, or those of `txn_ids`)."""
    _lock_held(session, owner=owner)
    query = update(LunaTxn).where(LunaTxn.claimed_by == owner)
    if txn_ids is None:
        result = session.execute(query.values(claimed_by=None, claimed_until=None))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
    count = 0
    for chunk in chunks(list(txn_ids)):
        result = session.execute(query.where(LunaTxn.txn_id.in_(chunk)).values(claimed_by=None, claimed_until=None))
        count += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return count


def release_dead_claims(
    session: Session,
    *,
    host: str,
    owner: str,
    alive: Callable[[int], bool],
    now: datetime,
    on_release: Mapping[str, Values],
    kind: str,
) -> list[str]:
    """Free the leases of this process's dead predecessors, each row taking the values `on_release` names for
    its state (the lease given back, and what else the caller decided); returns their txn ids.

    Owners are `host:pid:token:namespace`, the namespace naming the boot and the pid namespace. Only a claim of
    the same host AND the same namespace can be proved dead: its pid is not alive, or it is our own pid under
    another token (an earlier process that had our pid). A claim of another namespace (a container sharing
    the host name) is never freed here, only its lease can lapse.
    """
    own_pid, own_namespace = _owner_pid(owner), _owner_namespace(owner)
    if own_pid is None or not own_namespace:
        return []
    # In id order and skipping rows another transaction holds (their owner is alive and at work): a plain FOR
    # UPDATE here waited on rows a live pusher was updating while it held others, and deadlocked with it.
    query = select(LunaTxn).where(LunaTxn.claimed_by.like(f"{host}:%")).order_by(LunaTxn.id)
    rows = session.scalars(query.with_for_update(skip_locked=True)).all()
    freed = []
    for row in rows:
        claimer = row.claimed_by or ""
        pid = _owner_pid(claimer)
        if claimer.split(":")[0] != host or claimer == owner or pid is None:
            continue
        if _owner_namespace(claimer) != own_namespace or (pid != own_pid and alive(pid)):
            continue
        values = on_release[row.state]
        add_event(
            session,
            txn_id=row.txn_id,
            kind=kind,
            state=values.get("state", row.state),
            actor=owner,
            now=now,
            message=f"claim of {row.claimed_by} released: that process is gone"
            + (" (its intent will be looked up before any resend)" if values.get("lookup_first") is True else ""),
        )
        for key, value in values.items():
            setattr(row, key, value)
        freed.append(row.txn_id)
    session.flush()
    return freed


def _owner_pid(owner: str) -> int | None:
    parts = owner.split(":")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def _owner_namespace(owner: str) -> str:
    parts = owner.split(":")
    return parts[3] if len(parts) > 3 else ""


# --- moves ---------------------------------------------------------------------------------------------------


def record_intents(
    session: Session,
    *,
    owner: str,
    txn_ids: Sequence[str],
    now: datetime,
    from_states: Sequence[str],
    values: Values,
    increment: Collection[str] = (),
    stamp_once: Collection[str] = (),
) -> list[tuple[str, int, bool]]:
    """Commit the intent to send the txns `owner` still holds in one of `from_states`: write `values`, add one
    to each column of `increment`, stamp each column of `stamp_once` unless already set. Returns (txn_id,
    attempts, lookup_first) of every txn marked."""
    counted = {column: getattr(LunaTxn, column) + 1 for column in increment}
    stamped = {column: func.coalesce(getattr(LunaTxn, column), now) for column in stamp_once}
    query = (
        update(LunaTxn)
        .where(LunaTxn.txn_id.in_(txn_ids), LunaTxn.claimed_by == owner, _in_states(from_states))
        .values(**values, **counted, updated_at=now, **stamped)
        .returning(LunaTxn.txn_id, LunaTxn.attempts, LunaTxn.lookup_first)
        .execution_options(synchronize_session=False)
    )
    return [(txn_id, attempts, lookup_first) for txn_id, attempts, lookup_first in session.execute(query)]


def transition(
    session: Session,
    *,
    txn_id: str,
    owner: str | None,
    from_states: Sequence[str],
    now: datetime,
    changes: Values,
    kind: str,
    message: str,
    http_status: int | None = None,
    work_order_id: str | None = None,
    events: list[dict[str, Any]] | None = None,
    unleased_at: datetime | None = None,
    actor: str | None = None,
    increment: Collection[str] = (),
    stamp_once: Collection[str] = (),
) -> bool:
    """Write `changes` (decided by the caller; plus one more in each column of `increment`, the time in each
    column of `stamp_once` not set yet) to a txn still in one of `from_states` (and held by `owner` when given,
    or with no live lease at `unleased_at` when given); log the event, by `actor` (default: the owner, else the
    operator).

    Returns False (and changes nothing) when the txn moved on or its lease was lost (or taken) meanwhile. With
    `events`, the history line is appended to that list (for `add_events` later in the same transaction) instead.
    """
    query = update(LunaTxn).where(LunaTxn.txn_id == txn_id, LunaTxn.state.in_(from_states))
    if owner is not None:
        query = query.where(LunaTxn.claimed_by == owner)
    if unleased_at is not None:
        query = query.where(_free(unleased_at))
    counted = {column: getattr(LunaTxn, column) + 1 for column in increment}
    stamped = {column: func.coalesce(getattr(LunaTxn, column), now) for column in stamp_once}
    values = {**changes, **counted, "updated_at": now, **stamped}
    result = session.execute(query.values(**values).execution_options(synchronize_session=False))
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    state = changes.get("state", from_states[0] if len(from_states) == 1 else None)
    wo = changes.get("work_order_id", work_order_id)
    by = actor or owner or "operator"
    event = event_row(txn_id, kind, message, by, now, state=state, http_status=http_status, work_order_id=wo)
    if events is None:
        add_events(session, events=[event])
    else:
        events.append(event)
    return True


# --- rows of the old agent's state ---------------------------------------------------------------------------


def txn_states(session: Session, *, txn_ids: Sequence[str], lock: bool = False) -> dict[str, str]:
    """The state of each of `txn_ids` the store knows; with `lock`, those rows are locked until the commit (in
    id order, the one lock order of many rows)."""
    ids: list[int] = []
    found: dict[str, str] = {}
    for chunk in chunks(txn_ids):
        query = select(LunaTxn.id, LunaTxn.txn_id, LunaTxn.state).where(LunaTxn.txn_id.in_(chunk))
        for row_id, txn_id, state in session.execute(query):
            ids.append(row_id)
            found[txn_id] = state
    if not lock:
        return found
    locked: dict[str, str] = {}
    for id_chunk in chunks(sorted(ids)):
        by_id = select(LunaTxn.txn_id, LunaTxn.state).where(LunaTxn.id.in_(id_chunk)).order_by(LunaTxn.id)
        locked.update((txn_id, state) for txn_id, state in session.execute(by_id.with_for_update()))
    return locked


def insert_txn(session: Session, *, txn_id: str, currency: str, origin: str, now: datetime, values: Values) -> None:
    """Add a txn the app DB never showed (tui_id, meter and amount unknown), with the values the caller decided."""
    session.add(
        LunaTxn(
            txn_id=txn_id,
            tui_id=None,
            currency=currency,
            origin=origin,
            attempts=0,
            polls=0,
            discovered_at=now,
            updated_at=now,
            **values,
        )
    )
