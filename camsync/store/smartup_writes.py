"""The SmartUp job's batched, change-aware writes: products, prices, orders with their lines, missing products.

Each table's plan (`PRODUCTS`, `PRICES`, `ORDERS`) says which columns a batch writes and when a stored row counts
as changed; `store.bulk` writes it (a batch inside the caller's transaction, one transaction per batch). Rows come
in as dicts keyed by column name: JSON columns hold JSON text (`raw`) or lists (`barcodes`, `group_codes`); money
and quantities are `Decimal`; times are timezone-aware. Order and price rows are the write's own: their
timestamps and links are set in place (no copy of 50,000 dicts).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import orjson
from sqlalchemy import column, delete, select, table, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from camsync.store import bulk
from camsync.store import smartup_catalog_writes as catalog
from camsync.store.smartup import (
    LINE_COLUMNS,
    ORDER_COLUMNS,
    PRODUCT_COLUMNS,
    SOURCE,
    Order,
    OrderLine,
    Product,
    ProductPrice,
)
from camsync.store.smartup_reads import (
    ProductLinks,
    check_tables,
    known_orders,
    known_prices,
    known_products,
    product_ids_by_barcode,
    product_ids_by_code,
)

ID_CHUNK = 5000
_JSON_LIST_COLUMNS = ("barcodes", "group_codes")
_LINE_WRITE_COLUMNS = (*LINE_COLUMNS, "product_id")

PRODUCTS = bulk.Upsert(
    model=Product,
    columns=PRODUCT_COLUMNS,
    key=("external_id",),
    conflict=("external_source", "external_id"),
    update=tuple(c for c in PRODUCT_COLUMNS if c != "created_at"),
    changed="products.content_hash IS DISTINCT FROM excluded.content_hash OR products.missing_upstream",
    reset={"missing_upstream": "false", "missing_since": "NULL"},  # a product seen again is no longer missing
)
ORDERS = bulk.Upsert(
    model=Order,
    columns=ORDER_COLUMNS,
    key=("source_external_id",),
    conflict=("source_external_id",),
    update=tuple(c for c in ORDER_COLUMNS if c != "created_at"),
    changed="orders.content_hash IS DISTINCT FROM excluded.content_hash",
)
PRICES = bulk.Upsert(
    model=ProductPrice,
    columns=("product_id", "product_code", "price_type_code", "price", "updated_at"),
    key=("product_code", "price_type_code"),
    conflict=("product_code", "price_type_code"),
    update=("product_id", "price", "updated_at"),
    changed="product_prices.price IS DISTINCT FROM excluded.price",
)

# The columns the sync's own lookups filter on: their statistics are cheap to take (a full ANALYZE of the raw
# JSON costs seconds) and keep the lookups on their indexes; autovacuum takes the rest in its own time.
LOOKUP_COLUMNS = {
    "products": "external_source, external_id, code",
    "product_prices": "product_code, price_type_code",
    "orders": "source_external_id",
    "order_lines": "order_id",
}


@dataclass
class WriteCounts:
    """What one batch write did."""

    inserted: int = 0
    updated: int = 0
    lines_written: int = 0
    lines_unlinked: int = 0

    @classmethod
    def of(cls, written: Sequence[bulk.Written]) -> WriteCounts:
        inserted = sum(1 for _, _, was_insert in written if was_insert)
        return cls(inserted=inserted, updated=len(written) - inserted)


def upsert_products(
    session: Session, *, rows: Sequence[Mapping[str, Any]], now: datetime, existing: Collection[str] | None = None
) -> WriteCounts:
    """Insert new products and rewrite changed ones (or ones flagged missing); unchanged rows are left alone.
    A written product's classifications are replaced by its row's `classifications` (tuples of product_group_id,
    product_type_id, group_code, type_code).

    `existing`: the external_ids among `rows` already stored, when the caller looked them up.
    """
    if not rows:
        return WriteCounts()
    values = [_product_values(row, now) for row in rows]
    classes = {v["external_id"]: v.pop("classifications", ()) for v in values}
    if existing is None:
        existing = set(known_products(session, external_ids=[v["external_id"] for v in values]))
    written = bulk.upsert(session, PRODUCTS, rows=values, existing=existing)
    catalog.replace_classifications(
        session,
        stale=[key for key, _, was_insert in written if not was_insert],
        rows=((key, *entry) for key, _, _ in written for entry in classes.get(key, ())),
    )
    return WriteCounts.of(written)


def upsert_orders(
    session: Session,
    *,
    orders: Sequence[dict[str, Any]],
    lines: Mapping[str, Sequence[dict[str, Any]]],
    now: datetime,
    links: ProductLinks | None = None,
    existing: Collection[str] | None = None,
) -> WriteCounts:
    """Insert new orders and rewrite changed ones; a written order's lines are replaced by `lines[deal_id]`.

    Lines are linked to products by code, else by barcode: through `links` when given, else by lookups.
    `existing`: the deal_ids among `orders` already stored, when the caller looked them up.
    The row dicts are the write's own: their timestamps (and the lines' links) are set in place.
    """
    if not orders:
        return WriteCounts()
    for row in orders:
        row["created_at"] = row["updated_at"] = now
    if existing is None:
        existing = set(known_orders(session, deal_ids=[row["source_external_id"] for row in orders]))
    returned = bulk.upsert(session, ORDERS, rows=orders, existing=existing)
    written = {deal_id: (order_id, was_insert) for deal_id, order_id, was_insert in returned}
    counts = WriteCounts.of(returned)
    _replace_lines(session, written=written, lines=lines, counts=counts, links=links)
    return counts


def upsert_prices(
    session: Session,
    *,
    rows: Sequence[dict[str, Any]],
    now: datetime,
    assume_new: bool = False,
    product_ids: Mapping[str, int] | None = None,
) -> WriteCounts:
    """Insert new prices and rewrite changed ones, linked to the product with the same code.

    `assume_new` skips the lookup of stored prices: right for a table that was empty when the run began; a price
    that exists after all is merged, still counted exactly.
    `product_ids`: code → product id of every product (`all_product_ids_by_code`), instead of a lookup per batch.
    The row dicts are the write's own: the product link and the time are set in place.
    """
    if not rows:
        return WriteCounts()
    if assume_new:
        known: dict[tuple[str, str], Decimal] = {}
    else:
        known = known_prices(session, keys=[(row["product_code"], row["price_type_code"]) for row in rows])
    changed = [row for row in rows if known.get((row["product_code"], row["price_type_code"])) != row["price"]]
    if not changed:
        return WriteCounts()
    if product_ids is None:
        product_ids = product_ids_by_code(session, codes={row["product_code"] for row in changed})
    for row in changed:
        row["product_id"] = product_ids.get(row["product_code"])
        row["updated_at"] = now
    return WriteCounts.of(bulk.upsert(session, PRICES, rows=changed, existing=set(known)))


def flag_missing_products(session: Session, *, seen_ids: Collection[str], now: datetime) -> int:
    """Flag as missing_upstream every SmartUp product a full refresh did not see; returns how many."""
    with bulk.temporary_keys(session, name="seen_products", key="external_id", length=64, values=seen_ids):
        seen = table("seen_products", column("external_id"))
        statement = (
            update(Product)
            .where(
                Product.external_source == SOURCE,
                Product.missing_upstream.is_(False),
                ~select(seen.c.external_id).where(seen.c.external_id == Product.external_id).exists(),
            )
            .values(missing_upstream=True, missing_since=now)
            .execution_options(synchronize_session=False)
        )
        flagged = cast(CursorResult[Any], session.execute(statement)).rowcount
    return int(flagged)


def analyze(session: Session, *, tables: Collection[str]) -> None:
    """Refresh the planner statistics of the lookup columns of SmartUp tables after a large load (PostgreSQL)."""
    check_tables(tables)
    bulk.analyze(session, columns={name: LOOKUP_COLUMNS[name] for name in tables})


def _product_values(row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    values = {**row, "external_source": SOURCE, "created_at": now, "updated_at": now}
    for name in _JSON_LIST_COLUMNS:
        values[name] = orjson.dumps(values[name]).decode()
    return values


def _replace_lines(
    session: Session,
    *,
    written: Mapping[str, tuple[int, bool]],
    lines: Mapping[str, Sequence[dict[str, Any]]],
    counts: WriteCounts,
    links: ProductLinks | None,
) -> None:
    """Delete the lines of the rewritten orders and insert the new lines of every written order, linked."""
    stale = [order_id for order_id, was_insert in written.values() if not was_insert]
    for chunk in bulk.chunks(stale, ID_CHUNK):
        session.execute(
            delete(OrderLine).where(OrderLine.order_id.in_(chunk)).execution_options(synchronize_session=False)
        )
    new_lines = []
    for deal_id, (order_id, _) in written.items():
        for line in lines.get(deal_id, ()):
            line["order_id"] = order_id  # the caller's line dicts are this write's own
            new_lines.append(line)
    if not new_lines:
        return
    _link_products(session, new_lines, links)
    counts.lines_written = len(new_lines)
    counts.lines_unlinked = sum(1 for line in new_lines if line["product_id"] is None)
    bulk.insert(session, OrderLine, columns=_LINE_WRITE_COLUMNS, rows=new_lines)


def _link_products(session: Session, lines: list[dict[str, Any]], links: ProductLinks | None) -> None:
    """Set each line's product_id from its product code, else from its barcode; NULL when neither matches."""
    if links is not None:
        by_code, by_barcode = links.by_code, links.by_barcode
    else:
        by_code = product_ids_by_code(session, codes={line["product_code"] for line in lines if line["product_code"]})
        unresolved = {
            line["product_barcode"]
            for line in lines
            if line["product_barcode"] and by_code.get(line["product_code"] or "") is None
        }
        by_barcode = product_ids_by_barcode(session, barcodes=unresolved)
    for line in lines:
        product_id = by_code.get(line["product_code"] or "")
        if product_id is None and line["product_barcode"]:
            product_id = by_barcode.get(line["product_barcode"])
        line["product_id"] = product_id
