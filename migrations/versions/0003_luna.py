"""LUNA push state machine (txns and their history)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _txns() -> None:
    op.create_table(
        "luna_txns",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("txn_id", sa.String(64), nullable=False),
        sa.Column("tui_id", sa.Integer(), nullable=True),
        sa.Column("meter", sa.String(64), nullable=True),
        sa.Column("amount", sa.String(32), nullable=True),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("work_order_id", sa.String(128), nullable=True),
        sa.Column("remote_status", sa.String(64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("polls", sa.Integer(), nullable=False),
        sa.Column("lookup_first", sa.Boolean(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("claimed_until", TS, nullable=True),
        sa.Column("discovered_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("first_sent_at", TS, nullable=True),
        sa.Column("work_order_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_luna_txns"),
        sa.UniqueConstraint("txn_id", name="uq_luna_txns_txn_id"),
    )
    op.create_index("ix_luna_txns_state_next_attempt", "luna_txns", ["state", "next_attempt_at"])
    op.create_index("ix_luna_txns_claimed_by", "luna_txns", ["claimed_by"])
    op.create_index("ix_luna_txns_tui_id", "luna_txns", ["tui_id"])


def _events() -> None:
    op.create_table(
        "luna_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("txn_id", sa.String(64), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("work_order_id", sa.String(128), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_luna_events"),
    )
    op.create_index("ix_luna_events_txn_id_id", "luna_events", ["txn_id", "id"])


def _source() -> None:
    op.create_table(
        "luna_rejects",
        sa.Column("tui_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("txn_id", sa.String(64), nullable=True),
        sa.Column("tui_status", sa.String(24), nullable=True),
        sa.Column("meter", sa.String(64), nullable=True),
        sa.Column("amount_raw", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("resolved_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("tui_id", name="pk_luna_rejects"),
    )
    op.create_index("ix_luna_rejects_txn_id", "luna_rejects", ["txn_id"])
    op.create_table(
        "luna_watch",
        sa.Column("tui_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tui_status", sa.String(24), nullable=True),
        sa.Column("seen_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tui_id", name="pk_luna_watch"),
    )
    cursor = op.create_table(
        "luna_cursor",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_luna_cursor"),
    )
    op.bulk_insert(cursor, [{"name": "tuis", "last_id": 0, "updated_at": None}])


def upgrade() -> None:
    _txns()
    _events()
    _source()


def downgrade() -> None:
    op.drop_table("luna_cursor")
    op.drop_table("luna_watch")
    op.drop_index("ix_luna_rejects_txn_id", table_name="luna_rejects")
    op.drop_table("luna_rejects")
    op.drop_index("ix_luna_events_txn_id_id", table_name="luna_events")
    op.drop_table("luna_events")
    op.drop_index("ix_luna_txns_tui_id", table_name="luna_txns")
    op.drop_index("ix_luna_txns_claimed_by", table_name="luna_txns")
    op.drop_index("ix_luna_txns_state_next_attempt", table_name="luna_txns")
    op.drop_table("luna_txns")
