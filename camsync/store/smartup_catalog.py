"""The SmartUp catalogue tables beside the products: product groups and their values, each product's
classifications, the stock per warehouse, and what the server said about its own limits.

A product group is a *classification* the tenant set up (brand, category …); its `product_group_types` are the
classification's *values*. A product's `groups[]` says, per classification, which value it has: one
`product_classifications` row per product and classification, replaced with the product. Product groups are
never deleted: one that a groups sync no longer sees has `missing_upstream` true; its values are replaced with
the group. `stock_balances` holds the last stock snapshot, one row per warehouse and product (the sum of the
batches SmartUp lists), replaced as a whole by each stock sync.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Index, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from camsync.store.base import Base, UTCDateTime
from camsync.store.smartup import Money, Quantity, UpstreamItem

StockValue = Numeric(26, 4)


class ProductGroup(UpstreamItem, Base):
    """A classification of the products (SmartUp's product group), unique on product_group_id."""

    __tablename__ = "product_groups"
    __table_args__ = (UniqueConstraint("product_group_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    product_group_id: Mapped[str] = mapped_column(String(64))
    code: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(1000))
    state: Mapped[str | None] = mapped_column(String(8))
    product_kind: Mapped[str | None] = mapped_column(String(64))
    type_count: Mapped[int] = mapped_column(Integer)


class ProductGroupType(Base):
    """A value of a classification (SmartUp's product type within a product group)."""

    __tablename__ = "product_group_types"
    __table_args__ = (Index("ix_product_group_types_product_type_id", "product_type_id"),)

    product_group_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_type_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    code: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(1000))
    state: Mapped[str | None] = mapped_column(String(8))
    order_no: Mapped[int | None] = mapped_column(Integer)


class ProductClassification(Base):
    """A product's value in one classification, as its inventory item's `groups[]` gives it."""

    __tablename__ = "product_classifications"
    __table_args__ = (Index("ix_product_classifications_product_group_id", "product_group_id", "product_type_id"),)

    product_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SmartUp's product_id
    product_group_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_type_id: Mapped[str | None] = mapped_column(String(64))
    group_code: Mapped[str | None] = mapped_column(String(255))
    type_code: Mapped[str | None] = mapped_column(String(255))


class StockBalance(Base):
    """A product's stock in one warehouse: the sum of the batches of the last stock snapshot."""

    __tablename__ = "stock_balances"
    __table_args__ = (
        Index("ix_stock_balances_product_id", "product_id"),
        {"postgresql_with": {"fillfactor": 45}},  # room for heap-only updates: migration 0006
    )

    warehouse_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SmartUp's product_id
    warehouse_code: Mapped[str | None] = mapped_column(String(255))
    product_code: Mapped[str | None] = mapped_column(String(255))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    batches: Mapped[int] = mapped_column(Integer)
    cost: Mapped[Decimal | None] = mapped_column(Money)  # unit cost: the batches' input_price, weighted by quantity
    stock_value: Mapped[Decimal | None] = mapped_column(StockValue)  # sum of quantity × input_price
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SmartupServerLimit(Base):
    """A limit the SmartUp server announced (`day_range_limit` …), kept for the next run."""

    __tablename__ = "smartup_server_limits"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


GROUP_COLUMNS = tuple(
    c.key for c in ProductGroup.__table__.columns if c.key not in ("id", "missing_upstream", "missing_since")
)
TYPE_COLUMNS = tuple(c.key for c in ProductGroupType.__table__.columns)
CLASSIFICATION_COLUMNS = tuple(c.key for c in ProductClassification.__table__.columns)
STOCK_COLUMNS = tuple(c.key for c in StockBalance.__table__.columns if c.key != "synced_at")
