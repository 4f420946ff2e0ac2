"""Reads of the LUNA push state for operators and metrics, and the operator's resets (forget a txn, or all)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from camsync.store.luna_scan import add_watch
from camsync.store.luna_tables import HistoryKind, LunaCursor, LunaEvent, LunaReject, LunaTxn, LunaWatch
from camsync.store.luna_txns import add_event, chunks

REJECTED = "rejected"  # the count of unresolved rejected app DB rows, beside the txn states


def count_by_state(session: Session, *, states: Iterable[str] = ()) -> dict[str, int]:
    """How many txns are in each state (each of `states` counted, zero or not), plus `rejected` (app DB rows
    that cannot be pushed)."""
    counts = dict.fromkeys((*(str(state) for state in states), REJECTED), 0)
    for state, number in session.execute(select(LunaTxn.state, func.count()).group_by(LunaTxn.state)):
        counts[state] = int(number)
    unresolved = select(func.count()).select_from(LunaReject).where(LunaReject.resolved_at.is_(None))
    counts[REJECTED] = int(session.scalar(unresolved) or 0)
    return counts


def count_duplicate_work_orders(session: Session) -> int:
    """How many txns LUNA was found to hold several work orders for (credited more than once)."""
    kind = HistoryKind.DUPLICATE_WORK_ORDERS.value
    query = select(func.count(func.distinct(LunaEvent.txn_id))).where(LunaEvent.kind == kind)
    return int(session.scalar(query) or 0)


def count_resent(session: Session) -> int:
    """How many txns were sent again after an unknown outcome without a lookup: each may be credited twice."""
    query = select(func.count(func.distinct(LunaEvent.txn_id))).where(LunaEvent.kind == HistoryKind.RESEND.value)
    return int(session.scalar(query) or 0)


def list_txns(session: Session, *, state: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Txns, newest first, optionally of one state."""
    query = select(LunaTxn).order_by(LunaTxn.id.desc()).limit(limit)
    if state:
        query = query.where(LunaTxn.state == state)
    return [row.as_dict() for row in session.scalars(query)]


def txns_to_replay(session: Session, *, state: str, since: datetime | None, limit: int) -> list[dict[str, Any]]:
    """The txns in `state` (last changed at or after `since`), oldest first: what a bulk replay would take."""
    query = select(LunaTxn).where(LunaTxn.state == state).order_by(LunaTxn.id).limit(limit)
    if since is not None:
        query = query.where(LunaTxn.updated_at >= since)
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


def leased(session: Session, *, now: datetime, txn_id: str | None = None, lock: bool = False) -> list[dict[str, Any]]:
    """Txns whose lease is live (a push is working on them). With `lock`, every txn in scope (one, or all) is
    locked until the commit first, so that no push claims one between this check and the caller's write.

    The locks are taken in id order and skip the rows another transaction holds: such a txn is being claimed,
    answered or released by a push right now, and is returned as leased. A plain `FOR UPDATE` over every txn
    waited on a row a push was updating while it held rows that push wanted next, and deadlocked with it.
    """
    scope = select(LunaTxn.id) if txn_id is None else select(LunaTxn.id).where(LunaTxn.txn_id == txn_id)
    busy: list[int] = []
    if lock:
        every = set(session.scalars(scope))
        locked = set(session.scalars(scope.order_by(LunaTxn.id).with_for_update(skip_locked=True)))
        busy = sorted(every - locked)
    query = select(LunaTxn).where(LunaTxn.claimed_by.is_not(None), LunaTxn.claimed_until >= now)
    if txn_id is not None:
        query = query.where(LunaTxn.txn_id == txn_id)
    rows = {row.id: row for row in session.scalars(query)}
    for chunk in chunks([i for i in busy if i not in rows]):
        rows.update((row.id, row) for row in session.scalars(select(LunaTxn).where(LunaTxn.id.in_(chunk))))
    return [rows[i].as_dict() for i in sorted(rows)]


# --- operator actions ----------------------------------------------------------------------------------------


def forget_txn(session: Session, *, txn_id: str, actor: str, now: datetime) -> dict[str, Any] | None:
    """Forget one txn: its row goes (history stays), and its app DB row is watched again to be rediscovered."""
    row = session.scalars(select(LunaTxn).where(LunaTxn.txn_id == txn_id)).first()
    rejects = session.scalars(select(LunaReject).where(LunaReject.txn_id == txn_id)).all()
    if row is None and not rejects:
        return None
    tui_ids = {r.tui_id for r in rejects} | ({row.tui_id} if row is not None and row.tui_id is not None else set())
    before = row.as_dict() if row is not None else {"txn_id": txn_id, "state": REJECTED}
    if row is not None:
        session.delete(row)
    for reject in rejects:
        session.delete(reject)
    add_watch(session, watch=[(tui_id, "reset") for tui_id in sorted(tui_ids)], now=now)
    add_event(
        session,
        txn_id=txn_id,
        kind=HistoryKind.OPERATOR,
        state=None,
        actor=actor,
        now=now,
        work_order_id=before.get("work_order_id"),
        message=f"state reset: forgot state {before['state']}"
        + (f" (work order {before['work_order_id']})" if before.get("work_order_id") else ""),
    )
    session.flush()
    return before


def forget_all(session: Session, *, actor: str, now: datetime, states: Iterable[str] = ()) -> dict[str, int]:
    """Forget every txn, reject, watched row and the scan cursor: the next push scans the app DB from the start.
    Returns what was forgotten, counted as `count_by_state` does."""
    counts = count_by_state(session, states=states)
    for row in session.scalars(select(LunaTxn)):
        add_event(
            session,
            txn_id=row.txn_id,
            kind=HistoryKind.OPERATOR,
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


def txn_work_orders(session: Session) -> dict[str, tuple[str, str | None]]:
    """Every txn the push knows: txn_id -> (state, LUNA work order id or None)."""
    rows = session.execute(select(LunaTxn.txn_id, LunaTxn.state, LunaTxn.work_order_id).order_by(LunaTxn.id))
    return {txn_id: (state, work_order_id) for txn_id, state, work_order_id in rows}
