"""Stock balances keep free room in their pages

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Every stock run rewrites every row of `stock_balances` (its values and `synced_at`). With pages filled to 45 %
# PostgreSQL finds room for the new version of a row on its own page and, since no indexed column changes, writes
# no index entry for it (a heap-only update); the page's dead versions are pruned as it is next used. Full pages
# would move every new version elsewhere and insert it into both indexes. Pages written before this change
# follow it once they are rewritten (a VACUUM FULL, or as the table turns over).
FILLFACTOR = 45


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE stock_balances SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE stock_balances RESET (fillfactor)")
