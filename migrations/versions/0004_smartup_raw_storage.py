"""SmartUp orders keep their raw item compressed inline

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# An order's raw item (with its lines) is a few kB of JSON. With the default EXTENDED storage PostgreSQL moves it
# to the TOAST table; MAIN keeps it in the row, compressed, and only moves it out when it still does not fit. That
# writes one heap tuple instead of a row plus TOAST chunks and their index: about a quarter less work per order.


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE orders ALTER COLUMN raw SET STORAGE MAIN")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE orders ALTER COLUMN raw SET STORAGE EXTENDED")
