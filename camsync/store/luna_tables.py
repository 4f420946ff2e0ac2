"""The LUNA push tables: txns, their append-only history, rejects, the watch list and the source cursor.

A txn row holds the state the sync layer's state machine (`camsync/sync/luna/states.py`) decided; this layer
never decides a state. Claims are leases (`claimed_by` = host:pid:token:namespace, `claimed_until`). Rows of the
app DB that cannot be pushed live in `luna_rejects`, keyed by the app's tuis id (their txn_id may be NULL or
shared).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from camsync.store.base import Base, UTCDateTime

SCAN_CURSOR = "tuis"


class HistoryKind(StrEnum):
    """What a history line (`luna_events.kind`) records."""

    DISCOVERED = "discovered"  # not a txn state: a history kind
    INTENT = "intent"
    REQUEST = "request"
    LOOKUP = "lookup"
    ANSWER = "answer"
    POLL = "poll"
    EXPIRED = "expired"  # not a txn state: a history kind
    ORPHAN = "orphan"
    DUPLICATE_WORK_ORDERS = "duplicate_work_orders"
    RESEND = "resend"  # sent again after an outcome nobody could settle (LUNA_UNKNOWN_OUTCOME=resend)
    RECOVERED = "recovered"
    OPERATOR = "operator"
    IMPORT = "import"


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
