"""The SmartUp job's reads of its tables: what is stored already (keys and hashes) and where order lines point.

Each batch looks up the hashes of its keys (`known_*`) so that unchanged items are neither mapped nor written; a
full refresh reads every stored product once instead (`all_known_products`). Order lines and prices link to
products by code (else by barcode): looked up per batch, or loaded once for a large run.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from camsync.store import bulk
from camsync.store.smartup import SOURCE, Order, OrderLine, Product, ProductPrice
from camsync.store.smartup_catalog import ProductGroupType

SMARTUP_TABLES = ("products", "product_prices", "orders", "order_lines")


@dataclass
class ProductLinks:
    """Where order lines point: product code → id and barcode → id of every SmartUp product, loaded once."""

    by_code: dict[str, int]
    by_barcode: dict[str, int]


def known_products(session: Session, *, external_ids: Collection[str]) -> dict[str, tuple[str, bool]]:
    """external_id → (content_hash, missing_upstream) of the SmartUp products among `external_ids`."""
    sql = (
        "SELECT external_id, content_hash, missing_upstream FROM products"
        " WHERE external_source = {mark} AND external_id {among}"
    )
    rows = bulk.rows_among(session, sql, [SOURCE], list(external_ids))
    return {key: (digest, bool(missing)) for key, digest, missing in rows}


def all_known_products(session: Session) -> dict[str, tuple[str, bool]]:
    """external_id → (content_hash, missing_upstream) of every SmartUp product (for a full refresh)."""
    sql = "SELECT external_id, content_hash, missing_upstream FROM products WHERE external_source = {mark}"
    rows = bulk.fetch_all(session, sql, [SOURCE])
    return {key: (digest, bool(missing)) for key, digest, missing in rows}


def known_orders(session: Session, *, deal_ids: Collection[str]) -> dict[str, str]:
    """deal_id → content_hash of the orders among `deal_ids`."""
    sql = "SELECT source_external_id, content_hash FROM orders WHERE source_external_id {among}"
    return dict(bulk.rows_among(session, sql, [], list(deal_ids)))


def known_prices(session: Session, *, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], Decimal]:
    """(product_code, price_type_code) → price of the prices among `keys`."""
    sql = "SELECT product_code, price_type_code, price FROM product_prices WHERE product_code {among}"
    rows = bulk.rows_among(session, sql, [], sorted({code for code, _ in keys}))
    return {(code, kind): Decimal(str(price)) for code, kind, price in rows}


def product_ids_by_code(session: Session, *, codes: Collection[str]) -> dict[str, int]:
    """product code → id of the SmartUp products with those codes (the lowest id when a code repeats)."""
    sql = "SELECT code, id FROM products WHERE external_source = {mark} AND code {among} ORDER BY id DESC"
    return dict(bulk.rows_among(session, sql, [SOURCE], sorted(codes)))


def all_product_ids_by_code(session: Session) -> dict[str, int]:
    """product code → id of every SmartUp product (the lowest id when a code repeats)."""
    sql = "SELECT code, id FROM products WHERE external_source = {mark} ORDER BY id DESC"
    return dict(bulk.fetch_all(session, sql, [SOURCE]))


def product_ids_by_barcode(session: Session, *, barcodes: Collection[str]) -> dict[str, int]:
    """barcode → id of the SmartUp products whose barcode list holds it."""
    if not barcodes:
        return {}
    wanted = sorted(barcodes)
    # The two databases spell "the elements of a JSON array" differently: the one read that differs.
    if bulk.is_postgres(session):
        sql = (
            "SELECT b.value, p.id FROM products p CROSS JOIN LATERAL jsonb_array_elements_text(p.barcodes) AS b(value)"
            " WHERE p.barcodes ?| %s AND p.external_source = %s AND b.value = ANY(%s) ORDER BY p.id DESC"
        )
        with bulk.driver(session).cursor() as cursor:
            cursor.execute(sql, (wanted, SOURCE, wanted))
            return dict(cursor.fetchall())
    sql = (
        "SELECT b.value, p.id FROM products p, json_each(p.barcodes) AS b"
        " WHERE p.external_source = {mark} AND b.value {among} ORDER BY p.id DESC"
    )
    return dict(bulk.rows_among(session, sql, [SOURCE], wanted))


def load_product_links(session: Session) -> ProductLinks:
    """Every SmartUp product's code and barcodes, for linking many order lines without a query per batch."""
    if bulk.is_postgres(session):
        barcode_sql = (
            "SELECT b.value, p.id FROM products p CROSS JOIN LATERAL jsonb_array_elements_text(p.barcodes) AS b(value)"
            " WHERE p.external_source = {mark} ORDER BY p.id DESC"
        )
    else:
        barcode_sql = (
            "SELECT b.value, p.id FROM products p, json_each(p.barcodes) AS b"
            " WHERE p.external_source = {mark} ORDER BY p.id DESC"
        )
    by_barcode = dict(bulk.fetch_all(session, barcode_sql, [SOURCE]))
    return ProductLinks(all_product_ids_by_code(session), by_barcode)


def missing_group_values(session: Session, *, values: Collection[tuple[str, str]]) -> int:
    """How many of the (product_group_id, product_type_id) pairs `values` no stored product group holds."""
    stored: set[tuple[str, str]] = set()
    wanted = sorted({type_id for _, type_id in values})
    for chunk in bulk.chunks(wanted, bulk.SQLITE_CHUNK):
        query = select(ProductGroupType.product_group_id, ProductGroupType.product_type_id).where(
            ProductGroupType.product_type_id.in_(chunk)
        )
        stored.update((group_id, type_id) for group_id, type_id in session.execute(query))
    return sum(1 for value in values if value not in stored)


def is_empty(session: Session, *, table_name: str) -> bool:
    """Whether one of the SmartUp tables holds no row at all."""
    if table_name not in SMARTUP_TABLES:
        raise ValueError(f"not a SmartUp table: {table_name}")
    return session.execute(text(f"SELECT 1 FROM {table_name} LIMIT 1")).first() is None  # noqa: S608


def check_tables(tables: Collection[str]) -> None:
    """Raise ValueError unless every name is a SmartUp table."""
    unknown = [name for name in tables if name not in SMARTUP_TABLES]
    if unknown:
        raise ValueError(f"not a SmartUp table: {', '.join(unknown)}")


DEMO_TABLES = {"products": Product, "product prices": ProductPrice, "orders": Order, "order lines": OrderLine}


def count_rows(session: Session) -> dict[str, int]:
    """How many products, prices, orders and order lines the store holds (what the demo shows)."""
    return {
        name: int(session.scalar(select(func.count()).select_from(model)) or 0) for name, model in DEMO_TABLES.items()
    }
