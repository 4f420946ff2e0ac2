"""SmartUp tables (products, prices, orders, order lines)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)
MONEY = sa.Numeric(20, 4)
QUANTITY = sa.Numeric(20, 6)
HASH = sa.String(32)


def _products() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("external_source", sa.String(16), nullable=False),
        sa.Column("external_id", sa.String(64), nullable=False),
        sa.Column("code", sa.String(255), nullable=False),
        sa.Column("name", sa.String(1000), nullable=False),
        sa.Column("short_name", sa.String(1000), nullable=True),
        sa.Column("article_code", sa.String(255), nullable=True),
        sa.Column("measure_code", sa.String(64), nullable=True),
        sa.Column("barcodes", JSON, nullable=False),
        sa.Column("state", sa.String(1), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("group_codes", JSON, nullable=False),
        sa.Column("weight_netto", QUANTITY, nullable=True),
        sa.Column("weight_brutto", QUANTITY, nullable=True),
        sa.Column("litr", QUANTITY, nullable=True),
        sa.Column("box_type_code", sa.String(255), nullable=True),
        sa.Column("box_quant", QUANTITY, nullable=True),
        sa.Column("producer_code", sa.String(255), nullable=True),
        sa.Column("gtin", sa.String(255), nullable=True),
        sa.Column("ikpu", sa.String(255), nullable=True),
        sa.Column("raw", JSON, nullable=False),
        sa.Column("content_hash", HASH, nullable=False),
        sa.Column("missing_upstream", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("missing_since", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_products"),
        sa.UniqueConstraint("external_source", "external_id", name="uq_products_external_source_external_id"),
    )
    op.create_index("ix_products_code", "products", ["code"])


def _product_prices() -> None:
    op.create_table(
        "product_prices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.Column("product_code", sa.String(255), nullable=False),
        sa.Column("price_type_code", sa.String(255), nullable=False),
        sa.Column("price", MONEY, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_product_prices"),
        sa.UniqueConstraint("product_code", "price_type_code", name="uq_product_prices_product_code_price_type_code"),
    )


def _orders() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source_external_id", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=True),
        sa.Column("filial_id", sa.String(64), nullable=True),
        sa.Column("filial_code", sa.String(255), nullable=True),
        sa.Column("subfilial_code", sa.String(255), nullable=True),
        sa.Column("deal_time", TS, nullable=True),
        sa.Column("delivery_date", sa.Date(), nullable=True),
        sa.Column("booked_date", sa.Date(), nullable=True),
        sa.Column("delivery_number", sa.String(255), nullable=True),
        sa.Column("invoice_number", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_label", sa.String(32), nullable=False),
        sa.Column("currency_code", sa.String(16), nullable=True),
        sa.Column("total_amount", MONEY, nullable=True),
        sa.Column("person_id", sa.String(64), nullable=True),
        sa.Column("person_code", sa.String(255), nullable=True),
        sa.Column("person_name", sa.String(1000), nullable=True),
        sa.Column("person_tin", sa.String(64), nullable=True),
        sa.Column("room_code", sa.String(255), nullable=True),
        sa.Column("sales_manager_code", sa.String(255), nullable=True),
        sa.Column("payment_type_code", sa.String(255), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("raw", JSON, nullable=False),
        sa.Column("content_hash", HASH, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.UniqueConstraint("source_external_id", name="uq_orders_source_external_id"),
    )
    op.create_index("ix_orders_deal_time", "orders", ["deal_time"])


def _order_lines() -> None:
    op.create_table(
        "order_lines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("product_unit_id", sa.String(64), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.Column("external_id", sa.String(255), nullable=True),
        sa.Column("product_code", sa.String(255), nullable=True),
        sa.Column("product_name", sa.String(1000), nullable=True),
        sa.Column("product_barcode", sa.String(255), nullable=True),
        sa.Column("inventory_kind", sa.String(8), nullable=True),
        sa.Column("warehouse_code", sa.String(255), nullable=True),
        sa.Column("order_quant", QUANTITY, nullable=True),
        sa.Column("sold_quant", QUANTITY, nullable=True),
        sa.Column("return_quant", QUANTITY, nullable=True),
        sa.Column("product_price", MONEY, nullable=True),
        sa.Column("price_type_code", sa.String(255), nullable=True),
        sa.Column("vat_percent", QUANTITY, nullable=True),
        sa.Column("vat_amount", MONEY, nullable=True),
        sa.Column("sold_amount", MONEY, nullable=True),
        sa.Column("expiry_date", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_order_lines_order_id_orders", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_order_lines"),
        sa.UniqueConstraint("order_id", "product_unit_id", name="uq_order_lines_order_id_product_unit_id"),
    )


# lz4 compresses the large raw items several times faster than the default pglz (PostgreSQL 14+ built with lz4).
LZ4_RAW = """
DO $$ BEGIN
  ALTER TABLE products ALTER COLUMN raw SET COMPRESSION lz4;
  ALTER TABLE orders ALTER COLUMN raw SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR syntax_error OR invalid_parameter_value THEN NULL;
END $$
"""


def upgrade() -> None:
    _products()
    _product_prices()
    _orders()
    _order_lines()
    if op.get_bind().dialect.name == "postgresql":
        op.execute(LZ4_RAW)


def downgrade() -> None:
    op.drop_table("order_lines")
    op.drop_index("ix_orders_deal_time", table_name="orders")
    op.drop_table("orders")
    op.drop_table("product_prices")
    op.drop_index("ix_products_code", table_name="products")
    op.drop_table("products")
