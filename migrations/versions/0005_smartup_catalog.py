"""SmartUp product groups and their values, product classifications, stock balances, server limits

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)
MONEY = sa.Numeric(20, 4)
QUANTITY = sa.Numeric(20, 6)
STOCK_VALUE = sa.Numeric(26, 4)
HASH = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "product_groups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("product_group_id", sa.String(64), nullable=False),
        sa.Column("code", sa.String(255), nullable=True),
        sa.Column("name", sa.String(1000), nullable=True),
        sa.Column("state", sa.String(8), nullable=True),
        sa.Column("product_kind", sa.String(64), nullable=True),
        sa.Column("type_count", sa.Integer(), nullable=False),
        sa.Column("raw", JSON, nullable=False),
        sa.Column("content_hash", HASH, nullable=False),
        sa.Column("missing_upstream", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("missing_since", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_product_groups"),
        sa.UniqueConstraint("product_group_id", name="uq_product_groups_product_group_id"),
    )
    op.create_table(
        "product_group_types",
        sa.Column("product_group_id", sa.String(64), nullable=False),
        sa.Column("product_type_id", sa.String(64), nullable=False),
        sa.Column("code", sa.String(255), nullable=True),
        sa.Column("name", sa.String(1000), nullable=True),
        sa.Column("state", sa.String(8), nullable=True),
        sa.Column("order_no", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("product_group_id", "product_type_id", name="pk_product_group_types"),
    )
    op.create_index("ix_product_group_types_product_type_id", "product_group_types", ["product_type_id"])
    op.create_table(
        "product_classifications",
        sa.Column("product_id", sa.String(64), nullable=False),
        sa.Column("product_group_id", sa.String(64), nullable=False),
        sa.Column("product_type_id", sa.String(64), nullable=True),
        sa.Column("group_code", sa.String(255), nullable=True),
        sa.Column("type_code", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("product_id", "product_group_id", name="pk_product_classifications"),
    )
    op.create_index(
        "ix_product_classifications_product_group_id",
        "product_classifications",
        ["product_group_id", "product_type_id"],
    )
    op.create_table(
        "stock_balances",
        sa.Column("warehouse_id", sa.String(64), nullable=False),
        sa.Column("product_id", sa.String(64), nullable=False),
        sa.Column("warehouse_code", sa.String(255), nullable=True),
        sa.Column("product_code", sa.String(255), nullable=True),
        sa.Column("quantity", QUANTITY, nullable=False),
        sa.Column("batches", sa.Integer(), nullable=False),
        sa.Column("cost", MONEY, nullable=True),
        sa.Column("stock_value", STOCK_VALUE, nullable=True),
        sa.Column("synced_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("warehouse_id", "product_id", name="pk_stock_balances"),
    )
    op.create_index("ix_stock_balances_product_id", "stock_balances", ["product_id"])
    op.create_table(
        "smartup_server_limits",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("seen_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_smartup_server_limits"),
    )


def downgrade() -> None:
    op.drop_table("smartup_server_limits")
    op.drop_index("ix_stock_balances_product_id", table_name="stock_balances")
    op.drop_table("stock_balances")
    op.drop_index("ix_product_classifications_product_group_id", table_name="product_classifications")
    op.drop_table("product_classifications")
    op.drop_index("ix_product_group_types_product_type_id", table_name="product_group_types")
    op.drop_table("product_group_types")
    op.drop_table("product_groups")
