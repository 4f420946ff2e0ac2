"""The SmartUp tables: products, their prices, orders and order lines.

Every row keeps the raw item it came from (JSON, jsonb on PostgreSQL) and a `content_hash` of that item, so a
sync can tell an unchanged row from a changed one without comparing columns. Products are never deleted: a
passive product has `active` false, and one that a full refresh no longer sees has `missing_upstream` true.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from camsync.store.base import Base, JSONType, UTCDateTime

SOURCE = "smartup"
Money = Numeric(20, 4)
Quantity = Numeric(20, 6)
HASH_LENGTH = 32


class UpstreamItem:
    """The columns of a row kept from one SmartUp item: the raw item, its hash, whether SmartUp still lists it."""

    raw: Mapped[dict[str, Any]] = mapped_column(JSONType)
    content_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    missing_upstream: Mapped[bool] = mapped_column(Boolean, server_default=false())
    missing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Product(UpstreamItem, Base):
    """A SmartUp inventory item, unique on (external_source, external_id=product_id)."""

    __tablename__ = "products"
    __table_args__ = (
        UniqueConstraint("external_source", "external_id"),
        Index("ix_products_code", "code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    external_source: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(1000))
    short_name: Mapped[str | None] = mapped_column(String(1000))
    article_code: Mapped[str | None] = mapped_column(String(255))
    measure_code: Mapped[str | None] = mapped_column(String(64))
    barcodes: Mapped[list[str]] = mapped_column(JSONType)
    state: Mapped[str] = mapped_column(String(1))
    active: Mapped[bool] = mapped_column(Boolean)
    group_codes: Mapped[list[str]] = mapped_column(JSONType)
    weight_netto: Mapped[Decimal | None] = mapped_column(Quantity)
    weight_brutto: Mapped[Decimal | None] = mapped_column(Quantity)
    litr: Mapped[Decimal | None] = mapped_column(Quantity)
    box_type_code: Mapped[str | None] = mapped_column(String(255))
    box_quant: Mapped[Decimal | None] = mapped_column(Quantity)
    producer_code: Mapped[str | None] = mapped_column(String(255))
    gtin: Mapped[str | None] = mapped_column(String(255))
    ikpu: Mapped[str | None] = mapped_column(String(255))


class ProductPrice(Base):
    """One price of a product for one price type, from the prices export (keyed by product code)."""

    __tablename__ = "product_prices"
    __table_args__ = (UniqueConstraint("product_code", "price_type_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    product_id: Mapped[int | None] = mapped_column(Integer)  # a soft link by code: products are never deleted
    product_code: Mapped[str] = mapped_column(String(255))
    price_type_code: Mapped[str] = mapped_column(String(255))
    price: Mapped[Decimal] = mapped_column(Money)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Order(Base):
    """A SmartUp order (deal), unique on source_external_id=deal_id; its lines are in `order_lines`."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("source_external_id"),
        Index("ix_orders_deal_time", "deal_time"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_external_id: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(255))
    filial_id: Mapped[str | None] = mapped_column(String(64))
    filial_code: Mapped[str | None] = mapped_column(String(255))
    subfilial_code: Mapped[str | None] = mapped_column(String(255))
    deal_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivery_date: Mapped[date | None] = mapped_column(Date)
    booked_date: Mapped[date | None] = mapped_column(Date)
    delivery_number: Mapped[str | None] = mapped_column(String(255))
    invoice_number: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    status_label: Mapped[str] = mapped_column(String(32))
    currency_code: Mapped[str | None] = mapped_column(String(16))
    total_amount: Mapped[Decimal | None] = mapped_column(Money)
    person_id: Mapped[str | None] = mapped_column(String(64))
    person_code: Mapped[str | None] = mapped_column(String(255))
    person_name: Mapped[str | None] = mapped_column(String(1000))
    person_tin: Mapped[str | None] = mapped_column(String(64))
    room_code: Mapped[str | None] = mapped_column(String(255))
    sales_manager_code: Mapped[str | None] = mapped_column(String(255))
    payment_type_code: Mapped[str | None] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(Text)
    line_count: Mapped[int] = mapped_column(Integer)
    raw: Mapped[dict[str, Any]] = mapped_column(JSONType)
    content_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OrderLine(Base):
    """A line of an order (`order_products[]`), unique per (order, product_unit_id); linked to a product by code.

    The line's raw item is inside its order's `raw`.
    """

    __tablename__ = "order_lines"
    __table_args__ = (UniqueConstraint("order_id", "product_unit_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    product_unit_id: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[int | None] = mapped_column(Integer)  # a soft link by code or barcode, NULL when unmatched
    external_id: Mapped[str | None] = mapped_column(String(255))
    product_code: Mapped[str | None] = mapped_column(String(255))
    product_name: Mapped[str | None] = mapped_column(String(1000))
    product_barcode: Mapped[str | None] = mapped_column(String(255))
    inventory_kind: Mapped[str | None] = mapped_column(String(8))
    warehouse_code: Mapped[str | None] = mapped_column(String(255))
    order_quant: Mapped[Decimal | None] = mapped_column(Quantity)
    sold_quant: Mapped[Decimal | None] = mapped_column(Quantity)
    return_quant: Mapped[Decimal | None] = mapped_column(Quantity)
    product_price: Mapped[Decimal | None] = mapped_column(Money)
    price_type_code: Mapped[str | None] = mapped_column(String(255))
    vat_percent: Mapped[Decimal | None] = mapped_column(Quantity)
    vat_amount: Mapped[Decimal | None] = mapped_column(Money)
    sold_amount: Mapped[Decimal | None] = mapped_column(Money)
    expiry_date: Mapped[date | None] = mapped_column(Date)


PRODUCT_COLUMNS = tuple(
    c.key for c in Product.__table__.columns if c.key not in ("id", "missing_upstream", "missing_since")
)
ORDER_COLUMNS = tuple(c.key for c in Order.__table__.columns if c.key != "id")
LINE_COLUMNS = tuple(c.key for c in OrderLine.__table__.columns if c.key not in ("id", "product_id"))


def text_limits(model: type[Base]) -> dict[str, int]:
    """Column name → the most characters its String column holds, for validating rows before writing."""
    return {
        c.key: int(c.type.length)
        for c in model.__table__.columns
        if isinstance(c.type, String) and c.type.length is not None
    }
