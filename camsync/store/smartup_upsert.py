"""Batched, change-aware writes of SmartUp rows, and the ledger queries the SmartUp job needs.

A batch is written inside the caller's transaction (one transaction per batch). Rows whose `content_hash` is
unchanged are never rewritten. On PostgreSQL a batch is COPYed into a temporary table and merged with
`INSERT … ON CONFLICT … DO UPDATE … WHERE content_hash IS DISTINCT FROM … RETURNING (xmax = 0)`, which counts
inserted and updated rows exactly even with another writer about; on SQLite the same upsert runs through
executemany inside the writer's `BEGIN IMMEDIATE`, where the earlier lookup of known hashes cannot go stale.

Rows come in as dicts keyed by column name: JSON columns hold JSON text (`raw`) or lists (`barcodes`,
`group_codes`); money and quantities are `Decimal`; times are timezone-aware.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any, cast

import orjson
from sqlalchemy import JSON, Text, column, delete, select, table, text, update
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import TableClause

from camsync.store.models import SyncRun
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

LOOKUP_CHUNK = 5000
SMARTUP_TABLES = ("products", "product_prices", "orders", "order_lines")
_JSON_LIST_COLUMNS = ("barcodes", "group_codes")
_LINE_WRITE_COLUMNS = (*LINE_COLUMNS, "product_id")


@dataclass
class ProductLinks:
    """Where order lines point: product code → id and barcode → id of every SmartUp product, loaded once."""

    by_code: dict[str, int]
    by_barcode: dict[str, int]


@dataclass
class WriteCounts:
    """What one batch write did."""

    inserted: int = 0
    updated: int = 0
    lines_written: int = 0
    lines_unlinked: int = 0


# --- lookups -------------------------------------------------------------------------------------------------


def _chunks(values: Sequence[Any], size: int = LOOKUP_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def known_products(session: Session, *, external_ids: Collection[str]) -> dict[str, tuple[str, bool]]:
    """external_id → (content_hash, missing_upstream) of the SmartUp products among `external_ids`."""
    sql = (
        "SELECT external_id, content_hash, missing_upstream FROM products"
        " WHERE external_source = {source} AND external_id {among}"
    )
    rows = _lookup(session, sql, [SOURCE], list(external_ids))
    return {key: (digest, bool(missing)) for key, digest, missing in rows}


def all_known_products(session: Session) -> dict[str, tuple[str, bool]]:
    """external_id → (content_hash, missing_upstream) of every SmartUp product (for a full refresh)."""
    sql = "SELECT external_id, content_hash, missing_upstream FROM products WHERE external_source = {mark}"
    mark = "%s" if _is_postgres(session) else "?"
    rows = _driver(session).execute(sql.format(mark=mark), (SOURCE,)).fetchall()
    return {key: (digest, bool(missing)) for key, digest, missing in rows}


def known_orders(session: Session, *, deal_ids: Collection[str]) -> dict[str, str]:
    """deal_id → content_hash of the orders among `deal_ids`."""
    sql = "SELECT source_external_id, content_hash FROM orders WHERE source_external_id {among}"
    return dict(_lookup(session, sql, [], list(deal_ids)))


def known_prices(session: Session, *, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], Decimal]:
    """(product_code, price_type_code) → price of the prices among `keys`."""
    sql = "SELECT product_code, price_type_code, price FROM product_prices WHERE product_code {among}"
    rows = _lookup(session, sql, [], sorted({code for code, _ in keys}))
    return {(code, kind): Decimal(str(price)) for code, kind, price in rows}


def product_ids_by_code(session: Session, *, codes: Collection[str]) -> dict[str, int]:
    """product code → id of the SmartUp products with those codes (the lowest id when a code repeats)."""
    sql = "SELECT code, id FROM products WHERE external_source = {source} AND code {among} ORDER BY id DESC"
    return dict(_lookup(session, sql, [SOURCE], sorted(codes)))


def is_empty(session: Session, *, table_name: str) -> bool:
    """Whether one of the SmartUp tables holds no row at all."""
    if table_name not in SMARTUP_TABLES:
        raise ValueError(f"not a SmartUp table: {table_name}")
    return session.execute(text(f"SELECT 1 FROM {table_name} LIMIT 1")).first() is None  # noqa: S608


def all_product_ids_by_code(session: Session) -> dict[str, int]:
    """product code → id of every SmartUp product (the lowest id when a code repeats)."""
    sql = "SELECT code, id FROM products WHERE external_source = {mark} ORDER BY id DESC"
    mark = "%s" if _is_postgres(session) else "?"
    return dict(_driver(session).execute(sql.format(mark=mark), (SOURCE,)).fetchall())


def load_product_links(session: Session) -> ProductLinks:
    """Every SmartUp product's code and barcodes, for linking many order lines without a query per batch."""
    if _is_postgres(session):
        barcode_sql = (
            "SELECT b.value, p.id FROM products p CROSS JOIN LATERAL jsonb_array_elements_text(p.barcodes) AS b(value)"
            " WHERE p.external_source = %s ORDER BY p.id DESC"
        )
    else:
        barcode_sql = (
            "SELECT b.value, p.id FROM products p, json_each(p.barcodes) AS b"
            " WHERE p.external_source = ? ORDER BY p.id DESC"
        )
    by_barcode = dict(_driver(session).execute(barcode_sql, (SOURCE,)).fetchall())
    return ProductLinks(all_product_ids_by_code(session), by_barcode)


# The columns the sync's own lookups filter on: their statistics are cheap to take (a full ANALYZE of the raw
# JSON costs seconds) and keep the lookups on their indexes; autovacuum takes the rest in its own time.
LOOKUP_COLUMNS = {
    "products": "external_source, external_id, code",
    "product_prices": "product_code, price_type_code",
    "orders": "source_external_id",
    "order_lines": "order_id",
}


def analyze(session: Session, *, tables: Collection[str]) -> None:
    """Refresh the planner statistics of the lookup columns of SmartUp tables after a large load (PostgreSQL)."""
    unknown = [name for name in tables if name not in SMARTUP_TABLES]
    if unknown:
        raise ValueError(f"not a SmartUp table: {', '.join(unknown)}")
    if _is_postgres(session):
        for name in tables:
            _driver(session).execute(f"ANALYZE {name} ({LOOKUP_COLUMNS[name]})")


def _lookup(session: Session, sql: str, params: list[Any], keys: list[str]) -> list[tuple[Any, ...]]:
    """Run `sql` for `keys` (`{among}` becomes `= ANY(…)` on PostgreSQL, chunked `IN (…)` on SQLite)."""
    if not keys:
        return []
    driver = _driver(session)
    if _is_postgres(session):
        with driver.cursor() as cursor:
            # A table filled within this run has stale statistics (and a plan prepared while it was empty would
            # stick): a seq scan would test every row against the whole key array. Every lookup column is
            # indexed, so plan afresh each time and steer the planner to the index.
            cursor.execute("SET LOCAL enable_seqscan = off")
            query = sql.format(source="%s", among="= ANY(%s)")
            found = cursor.execute(query, (*params, keys), prepare=False).fetchall()
            cursor.execute("SET LOCAL enable_seqscan = on")
            return found
    rows: list[tuple[Any, ...]] = []
    for chunk in _chunks(keys, 900):
        among = "IN (" + ",".join("?" * len(chunk)) + ")"
        rows.extend(driver.execute(sql.format(source="?", among=among), (*params, *chunk)).fetchall())
    return rows


def product_ids_by_barcode(session: Session, *, barcodes: Collection[str]) -> dict[str, int]:
    """barcode → id of the SmartUp products whose barcode list holds it."""
    if not barcodes:
        return {}
    wanted = sorted(barcodes)
    if session.get_bind().dialect.name == "postgresql":
        sql = (
            "SELECT b.value, p.id FROM products p CROSS JOIN LATERAL jsonb_array_elements_text(p.barcodes) AS b(value)"
            " WHERE p.barcodes ?| %s AND p.external_source = %s AND b.value = ANY(%s) ORDER BY p.id DESC"
        )
        with _driver(session).cursor() as cursor:
            cursor.execute(sql, (wanted, SOURCE, wanted))
            return dict(cursor.fetchall())
    found: dict[str, int] = {}
    for chunk in _chunks(wanted, 900):
        marks = ",".join("?" * len(chunk))
        sql = (
            "SELECT b.value, p.id FROM products p, json_each(p.barcodes) AS b"  # noqa: S608 - only ? marks
            f" WHERE p.external_source = ? AND b.value IN ({marks}) ORDER BY p.id DESC"
        )
        found.update(_driver(session).execute(sql, (SOURCE, *chunk)).fetchall())
    return found


# --- writes --------------------------------------------------------------------------------------------------


def upsert_products(
    session: Session, *, rows: Sequence[Mapping[str, Any]], now: datetime, existing: Collection[str] | None = None
) -> WriteCounts:
    """Insert new products and rewrite changed ones (or ones flagged missing); unchanged rows are left alone.

    `existing`: the external_ids among `rows` already stored, when the caller looked them up in this transaction.
    """
    if not rows:
        return WriteCounts()
    values = [_product_values(row, now) for row in rows]
    set_columns = [c for c in PRODUCT_COLUMNS if c != "created_at"]
    extra_set = {"missing_upstream": "false", "missing_since": "NULL"}
    where = "products.content_hash IS DISTINCT FROM excluded.content_hash OR products.missing_upstream"
    if _is_postgres(session):
        written = _pg_upsert(
            session,
            target="products",
            key=("external_id",),
            existing=_existing(
                existing, lambda: known_products(session, external_ids=[v["external_id"] for v in values])
            ),
            columns=PRODUCT_COLUMNS,
            values=values,
            conflict=("external_source", "external_id"),
            set_columns=set_columns,
            extra_set=extra_set,
            where=where,
        )
        inserted = sum(1 for _, _, was_insert in written if was_insert)
        return WriteCounts(inserted=inserted, updated=len(written) - inserted)
    known = known_products(session, external_ids=[row["external_id"] for row in rows])
    changed = [
        v for v in values if v["external_id"] not in known or known[v["external_id"]] != (v["content_hash"], False)
    ]
    _sqlite_upsert(
        session,
        target=_write_table(Product, (*PRODUCT_COLUMNS, "missing_upstream", "missing_since")),
        values=changed,
        conflict=("external_source", "external_id"),
        set_columns=set_columns,
        extra_set={"missing_upstream": False, "missing_since": None},
        where=where,
    )
    inserted = sum(1 for v in changed if v["external_id"] not in known)
    return WriteCounts(inserted=inserted, updated=len(changed) - inserted)


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
    `existing`: the deal_ids among `orders` already stored, when the caller looked them up in this transaction.
    The row dicts are the write's own: their timestamps (and the lines' links) are set in place.
    """
    if not orders:
        return WriteCounts()
    values = orders
    for row in values:  # the rows are this write's: the timestamps go in place (no copy of 50,000 dicts)
        row["created_at"] = row["updated_at"] = now
    set_columns = [c for c in ORDER_COLUMNS if c != "created_at"]
    where = "orders.content_hash IS DISTINCT FROM excluded.content_hash"
    if _is_postgres(session):
        returned = _pg_upsert(
            session,
            target="orders",
            key=("source_external_id",),
            existing=_existing(
                existing, lambda: known_orders(session, deal_ids=[v["source_external_id"] for v in values])
            ),
            columns=ORDER_COLUMNS,
            values=values,
            conflict=("source_external_id",),
            set_columns=set_columns,
            extra_set={},
            where=where,
        )
        written = {deal_id: (order_id, was_insert) for deal_id, order_id, was_insert in returned}
    else:
        known = known_orders(session, deal_ids=[row["source_external_id"] for row in orders])
        changed = [v for v in values if known.get(v["source_external_id"]) != v["content_hash"]]
        _sqlite_upsert(
            session,
            target=_write_table(Order, ORDER_COLUMNS),
            values=changed,
            conflict=("source_external_id",),
            set_columns=set_columns,
            extra_set={},
            where=where,
        )
        ids = _order_ids(session, deal_ids=[v["source_external_id"] for v in changed])
        written = {
            v["source_external_id"]: (ids[v["source_external_id"]], v["source_external_id"] not in known)
            for v in changed
        }
    counts = WriteCounts(inserted=sum(1 for _, was_insert in written.values() if was_insert))
    counts.updated = len(written) - counts.inserted
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

    `assume_new` (PostgreSQL only) skips the lookup of stored prices: right for a table that was empty when the
    run began; a price that exists after all is caught by the unique key and merged, still counted exactly.
    `product_ids`: code → product id of every product (`all_product_ids_by_code`), instead of a lookup per batch.
    The row dicts are the write's own: the product link and the time are set in place.
    """
    if not rows:
        return WriteCounts()
    if assume_new and _is_postgres(session):
        known: dict[tuple[str, str], Decimal] = {}
    else:
        known = known_prices(session, keys=[(row["product_code"], row["price_type_code"]) for row in rows])
    changed = [row for row in rows if known.get((row["product_code"], row["price_type_code"])) != row["price"]]
    if not changed:
        return WriteCounts()
    if product_ids is None:
        product_ids = product_ids_by_code(session, codes={row["product_code"] for row in changed})
    values = changed
    for row in values:  # the rows are this write's: the link and the time go in place
        row["product_id"] = product_ids.get(row["product_code"])
        row["updated_at"] = now
    columns = ("product_id", "product_code", "price_type_code", "price", "updated_at")
    where = "product_prices.price IS DISTINCT FROM excluded.price"
    if _is_postgres(session):
        written = _pg_upsert(
            session,
            target="product_prices",
            key=("product_code", "price_type_code"),
            existing=set(known),
            columns=columns,
            values=values,
            conflict=("product_code", "price_type_code"),
            set_columns=("product_id", "price", "updated_at"),
            extra_set={},
            where=where,
        )
        inserted = sum(1 for _, _, was_insert in written if was_insert)
        return WriteCounts(inserted=inserted, updated=len(written) - inserted)
    _sqlite_upsert(
        session,
        target=_write_table(ProductPrice, columns),
        values=values,
        conflict=("product_code", "price_type_code"),
        set_columns=("product_id", "price", "updated_at"),
        extra_set={},
        where=where,
    )
    inserted = sum(1 for row in changed if (row["product_code"], row["price_type_code"]) not in known)
    return WriteCounts(inserted=inserted, updated=len(changed) - inserted)


def flag_missing_products(session: Session, *, seen_ids: Collection[str], now: datetime) -> int:
    """Flag as missing_upstream every SmartUp product a full refresh did not see; returns how many."""
    driver = _driver(session)
    if _is_postgres(session):
        with driver.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE seen_products (external_id varchar(64) PRIMARY KEY) ON COMMIT DROP")
            with cursor.copy("COPY seen_products (external_id) FROM STDIN") as copy:
                for external_id in seen_ids:
                    copy.write_row((external_id,))
    else:
        driver.execute("CREATE TEMP TABLE IF NOT EXISTS seen_products (external_id TEXT PRIMARY KEY)")
        driver.execute("DELETE FROM seen_products")
        driver.executemany("INSERT OR IGNORE INTO seen_products VALUES (?)", ((i,) for i in seen_ids))
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
    if not _is_postgres(session):
        driver.execute("DROP TABLE seen_products")
    return int(flagged)


# --- ledger queries ------------------------------------------------------------------------------------------


def last_cursor_run(session: Session, *, job: str, run_type: str) -> SyncRun | None:
    """The newest successful run of `job`/`run_type` that moved the cursor."""
    query = (
        select(SyncRun)
        .where(
            SyncRun.job == job,
            SyncRun.run_type == run_type,
            SyncRun.status == "SUCCESS",
            SyncRun.cursor_after.is_not(None),
        )
        .order_by(SyncRun.id.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def last_full_refresh(session: Session, *, job: str, run_type: str) -> SyncRun | None:
    """The newest successful run whose details say it was a full refresh."""
    query = (
        select(SyncRun)
        .where(
            SyncRun.job == job,
            SyncRun.run_type == run_type,
            SyncRun.status == "SUCCESS",
            SyncRun.details["full_refresh"].as_boolean().is_(True),
        )
        .order_by(SyncRun.id.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def recent_run_details(session: Session, *, job: str, limit: int = 50) -> list[dict[str, Any]]:
    """The details of the newest finished runs of `job`, newest first."""
    query = (
        select(SyncRun.details)
        .where(SyncRun.job == job, SyncRun.status != "RUNNING", SyncRun.details.is_not(None))
        .order_by(SyncRun.id.desc())
        .limit(limit)
    )
    return [details for details in session.scalars(query) if isinstance(details, dict)]


# --- helpers -------------------------------------------------------------------------------------------------


def _existing(given: Collection[Any] | None, look_up: Callable[[], Collection[Any]]) -> Collection[Any]:
    return set(look_up()) if given is None else given


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _driver(session: Session) -> Any:
    """The DBAPI connection under the session's transaction (psycopg or sqlite3)."""
    return session.connection().connection.driver_connection


def _dialect_insert(session: Session) -> Any:
    if _is_postgres(session):
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    return sqlite_dialect.insert


def _product_values(row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    values = {**row, "external_source": SOURCE, "created_at": now, "updated_at": now}
    for name in _JSON_LIST_COLUMNS:
        values[name] = orjson.dumps(values[name]).decode()
    return values


def _write_table(model: type[Any], columns: Sequence[str]) -> TableClause:
    """The model's table for writing, with JSON columns taking JSON text as it is."""
    model_columns = model.__table__.columns
    return table(
        model.__tablename__,
        *(
            column(name, Text() if isinstance(model_columns[name].type, JSON) else model_columns[name].type)
            for name in columns
        ),
    )


def _sqlite_upsert(
    session: Session,
    *,
    target: TableClause,
    values: Sequence[Mapping[str, Any]],
    conflict: Sequence[str],
    set_columns: Sequence[str],
    extra_set: Mapping[str, Any],
    where: str,
) -> None:
    if not values:
        return
    insert = sqlite_dialect.insert(target)
    statement = insert.on_conflict_do_update(
        index_elements=list(conflict),
        set_={**{name: insert.excluded[name] for name in set_columns}, **extra_set},
        where=text(where),
    )
    session.execute(statement, list(values))


def _pg_upsert(
    session: Session,
    *,
    target: str,
    key: tuple[str, ...],
    existing: Collection[Any],
    columns: Sequence[str],
    values: Sequence[Mapping[str, Any]],
    conflict: Sequence[str],
    set_columns: Sequence[str],
    extra_set: Mapping[str, str],
    where: str,
) -> list[tuple[Any, int, bool]]:
    """Write `values`; returns (key, id, inserted?) of every row written (unchanged rows are not).

    Rows whose key is not in `existing` are COPYed straight into `target` with ids drawn from its sequence
    (inside a savepoint: should another writer have inserted one of them meanwhile, they join the merge);
    the others are merged through a temporary table.
    """
    import psycopg

    key_of = itemgetter(*key)
    row_of = itemgetter(*columns)

    new = [v for v in values if key_of(v) not in existing]
    old = [v for v in values if key_of(v) in existing]
    written: list[tuple[Any, int, bool]] = []
    driver = _driver(session)
    # A batch need not wait for its WAL flush: the run's cursor only moves in the ledger write at the end of the
    # run, which is flushed (with every batch before it); a batch lost to a crash is re-done by the next run.
    driver.execute("SET LOCAL synchronous_commit = off")
    if new:
        try:
            with driver.transaction(), driver.cursor() as cursor:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", (target, len(new))
                )
                ids = [row[0] for row in cursor.fetchall()]
                names = ", ".join(("id", *columns))
                with cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
                    for row_id, value in zip(ids, new, strict=True):
                        copy.write_row((row_id, *row_of(value)))
            written = [(key_of(value), row_id, True) for row_id, value in zip(ids, new, strict=True)]
        except psycopg.errors.UniqueViolation:
            old = list(values)
    if old:
        returned = _pg_merge(
            session,
            target=target,
            columns=columns,
            values=old,
            conflict=conflict,
            set_columns=set_columns,
            extra_set=extra_set,
            where=where,
            returning=f"{', '.join(key)}, id, (xmax = 0)",
        )
        width = len(key)
        written.extend((row[0] if width == 1 else tuple(row[:width]), row[width], row[width + 1]) for row in returned)
    return written


def _pg_merge(
    session: Session,
    *,
    target: str,
    columns: Sequence[str],
    values: Sequence[Mapping[str, Any]],
    conflict: Sequence[str],
    set_columns: Sequence[str],
    extra_set: Mapping[str, str],
    where: str,
    returning: str,
) -> list[tuple[Any, ...]]:
    """COPY `values` into a temporary table shaped like `target`, then merge it; returns the RETURNING rows."""
    stage = f"stage_{target}"
    row_of = itemgetter(*columns)
    names = ", ".join(columns)
    assignments = ", ".join(
        [*(f"{c} = excluded.{c}" for c in set_columns), *(f"{c} = {v}" for c, v in extra_set.items())]
    )
    with _driver(session).cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{stage}")
        cursor.execute(
            f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {names} FROM {target} WITH NO DATA"  # noqa: S608
        )
        with cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
            for value in values:
                copy.write_row(row_of(value))
        cursor.execute(
            f"INSERT INTO {target} ({names}) SELECT {names} FROM {stage} "  # noqa: S608 - names are ours
            f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {assignments} WHERE {where} RETURNING {returning}"
        )
        return cursor.fetchall()


def _order_ids(session: Session, *, deal_ids: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(list(deal_ids)):
        query = select(Order.source_external_id, Order.id).where(Order.source_external_id.in_(chunk))
        found.update(session.execute(query).all())
    return found


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
    for chunk in _chunks(stale):
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
    if _is_postgres(session):
        names = ", ".join(_LINE_WRITE_COLUMNS)
        row_of = itemgetter(*_LINE_WRITE_COLUMNS)
        with _driver(session).cursor() as cursor, cursor.copy(f"COPY order_lines ({names}) FROM STDIN") as copy:
            for line in new_lines:
                copy.write_row(row_of(line))
        return
    session.execute(_write_table(OrderLine, _LINE_WRITE_COLUMNS).insert(), new_lines)


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
