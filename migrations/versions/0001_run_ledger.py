"""run ledger: sync_runs and the smartup_sync_runs view of the old worker

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)

# The old SmartUp worker's readers keep working. Its rows were run_type='full' passes with both counts; here they
# are (a) every SmartUp run (a `camsync smartup sync` is run_type 'full' and sums its products and orders children),
# and (b) every run-all pass that ran a SmartUp job, shown as run_type 'full' with the SmartUp children's outcome.
SMARTUP_SYNC_RUNS_VIEW = """
CREATE VIEW smartup_sync_runs AS
SELECT r.id, r.run_type, r.status, r.started_at, r.finished_at, r.error_message,
  CASE WHEN r.run_type = 'products' THEN r.inserted + r.updated + r.unchanged
       ELSE COALESCE((SELECT SUM(c.inserted + c.updated + c.unchanged) FROM sync_runs c
                      WHERE c.parent_id = r.id AND c.run_type = 'products'), 0) END AS synced_products_count,
  CASE WHEN r.run_type = 'orders' THEN r.inserted + r.updated + r.unchanged
       ELSE COALESCE((SELECT SUM(c.inserted + c.updated + c.unchanged) FROM sync_runs c
                      WHERE c.parent_id = r.id AND c.run_type = 'orders'), 0) END AS synced_orders_count
FROM sync_runs r
WHERE r.job = 'smartup'
UNION ALL
SELECT p.id, 'full' AS run_type,
  CASE WHEN SUM(CASE WHEN c.status = 'RUNNING' THEN 1 ELSE 0 END) > 0 THEN 'RUNNING'
       WHEN SUM(CASE WHEN c.status = 'SUCCESS' THEN 1 ELSE 0 END) = COUNT(*) THEN 'SUCCESS'
       WHEN SUM(CASE WHEN c.status = 'FAILED' THEN 1 ELSE 0 END) = COUNT(*) THEN 'FAILED'
       ELSE 'PARTIAL' END AS status,
  MIN(c.started_at) AS started_at, MAX(c.finished_at) AS finished_at, MAX(c.error_message) AS error_message,
  SUM(CASE WHEN c.run_type = 'products' THEN c.inserted + c.updated + c.unchanged ELSE 0 END)
    AS synced_products_count,
  SUM(CASE WHEN c.run_type = 'orders' THEN c.inserted + c.updated + c.unchanged ELSE 0 END) AS synced_orders_count
FROM sync_runs p
JOIN sync_runs c ON c.parent_id = p.id AND c.job = 'smartup'
WHERE p.job = 'run-all'
GROUP BY p.id
"""


def upgrade() -> None:
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job", sa.String(32), nullable=False),
        sa.Column("run_type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("heartbeat_at", TS, nullable=True),
        sa.Column("fetched", sa.Integer(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("window_start", TS, nullable=True),
        sa.Column("window_end", TS, nullable=True),
        sa.Column("cursor_before", sa.String(64), nullable=True),
        sa.Column("cursor_after", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("details", JSON, nullable=True),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["sync_runs.id"], name="fk_sync_runs_parent_id_sync_runs", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sync_runs"),
    )
    op.create_index("ix_sync_runs_job_status_started", "sync_runs", ["job", "status", "started_at"])
    op.create_index("ix_sync_runs_parent_id", "sync_runs", ["parent_id"])
    op.execute(SMARTUP_SYNC_RUNS_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS smartup_sync_runs")
    op.drop_index("ix_sync_runs_parent_id", table_name="sync_runs")
    op.drop_index("ix_sync_runs_job_status_started", table_name="sync_runs")
    op.drop_table("sync_runs")
