"""What the LUNA sweep and reconcile read from the store: the txns and rejects of a range of app DB ids, and
when the last sweep ran.

Both walk the app DB in id order and compare each batch with the store through one indexed range query per
table (`luna_txns.tui_id`, `luna_rejects.tui_id`), so memory stays flat however large the app DB is. The time of
the last sweep is a `luna_cursor` row of its own (`sweep`: its `last_id` is the highest id the sweep read).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from camsync.store.luna_tables import LunaCursor, LunaReject, LunaTxn

SWEEP_CURSOR = "sweep"


@dataclass(frozen=True)
class StoredTxn:
    """What reconcile needs of one txn."""

    txn_id: str
    tui_id: int
    state: str
    amount: str | None
    discovered_at: datetime


def txn_tui_ids(session: Session, *, after: int, upto: int) -> set[int]:
    """The app DB ids in (`after`, `upto`] the store holds a txn for."""
    query = select(LunaTxn.tui_id).where(LunaTxn.tui_id > after, LunaTxn.tui_id <= upto)
    return {int(i) for i in session.scalars(query) if i is not None}


def reject_tui_ids(session: Session, *, after: int, upto: int | None, unresolved: bool = False) -> set[int]:
    """The app DB ids in (`after`, `upto`] recorded as rejected (only those not resolved, with `unresolved`)."""
    query = select(LunaReject.tui_id).where(LunaReject.tui_id > after)
    if upto is not None:
        query = query.where(LunaReject.tui_id <= upto)
    if unresolved:
        query = query.where(LunaReject.resolved_at.is_(None))
    return {int(i) for i in session.scalars(query)}


def txns_in_range(session: Session, *, after: int, upto: int | None) -> list[StoredTxn]:
    """The txns whose app DB id is in (`after`, `upto`] (`upto` None: no upper bound), in id order."""
    query = select(LunaTxn.txn_id, LunaTxn.tui_id, LunaTxn.state, LunaTxn.amount, LunaTxn.discovered_at).where(
        LunaTxn.tui_id > after
    )
    if upto is not None:
        query = query.where(LunaTxn.tui_id <= upto)
    rows = session.execute(query.order_by(LunaTxn.tui_id))
    return [StoredTxn(txn_id, int(tui_id or 0), state, amount, at) for txn_id, tui_id, state, amount, at in rows]


def last_sweep(session: Session) -> datetime | None:
    """When the last full sweep finished (None: never)."""
    return session.scalar(select(LunaCursor.updated_at).where(LunaCursor.name == SWEEP_CURSOR))


def record_sweep(session: Session, *, now: datetime, last_id: int) -> None:
    """Remember that a sweep up to `last_id` finished at `now` (call it inside the writer that holds the scan
    cursor's lock, so two pushes never both create the row)."""
    row = session.get(LunaCursor, SWEEP_CURSOR)
    if row is None:
        session.add(LunaCursor(name=SWEEP_CURSOR, last_id=last_id, updated_at=now))
    else:
        row.last_id, row.updated_at = last_id, now
    session.flush()
