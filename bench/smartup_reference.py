"""The references of the SmartUp benchmark: the same answers fetched, parsed with `json.loads`, flattened into
typed rows and COPYed into tables shaped like camsync's but with no indexes, no keys and no change detection.

The pull's reference writes what the tables hold: products, their classifications (one row per product and
classification, as `groups[]` gives them), prices, the product groups with their values, orders and their lines.
The stock's reference fetches the same balance answer, sums its batches per warehouse and product (quantity,
batches, cost weighted by quantity, stock value) and COPYs the sums.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

PRODUCTS_PATH = "/b/anor/mxsx/mr/inventory$export"
ORDERS_PATH = "/b/trade/txs/tdeal/order$export"
PRICES_PATH = "/b/anor/api/v2/mkf/product_price$export"
GROUPS_PATH = "/b/anor/mxsx/mr/product_group$export"
BALANCE_PATH = "/b/anor/mxsx/mkw/balance$export"
REFERENCE_TABLES = (
    "products", "product_classifications", "product_prices", "product_groups", "product_group_types", "orders",
    "order_lines",
)  # fmt: skip
_RAW_TABLES = ("products", "product_groups", "orders")
_FOUR_PLACES = Decimal("0.0001")
TENANT_TIMEZONE = "Asia/Tashkent"  # SMARTUP_TIMEZONE's default, which the benchmark's settings keep


def libpq(url: str) -> str:
    """A SQLAlchemy URL as libpq takes it."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def _http(sandbox_url: str) -> Any:
    import httpx

    http = httpx.Client(base_url=sandbox_url, auth=("sandbox", "sandbox"), timeout=300)
    http.headers.update({"project_code": "trade", "filial_id": "100"})
    return http


def _connect(db_url: str) -> Any:
    import psycopg

    conn = psycopg.connect(libpq(db_url))
    conn.execute("SET datestyle = 'ISO, DMY'; SET TIME ZONE 'Asia/Tashkent'")
    return conn


def _like(conn: Any, prefix: str, table: str) -> str:
    """An index-less copy of `table` named `prefix` + `table` (raw may be NULL); returns its name."""
    name = f"{prefix}{table}"
    conn.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING COMPRESSION INCLUDING STORAGE)")
    if table in _RAW_TABLES:
        conn.execute(f"ALTER TABLE {name} ALTER COLUMN raw DROP NOT NULL")
    return name


def phase_reference(sandbox_url: str, db_url: str, windows: list[list[str]], raw: bool = True) -> dict[str, Any]:
    """Fetch the same answers, `json.loads` each, COPY the flattened rows into empty tables.

    With `raw`, each product, group and order row also carries its item as JSON, as camsync's tables do; without
    it (the plain reference) only the typed columns are written.
    """
    started = time.perf_counter()
    rows = 0
    prefix = "ref_" if raw else "plain_"
    with _http(sandbox_url) as http, _connect(db_url) as conn:
        names = {table: _like(conn, prefix, table) for table in REFERENCE_TABLES}
        products = json.loads(http.post(PRODUCTS_PATH, json={}).content)["inventory"]
        rows += _copy(
            conn, names["products"], PRODUCT_COLUMNS, (_product_row(i, p, raw) for i, p in enumerate(products))
        )
        rows += _copy(conn, names["product_classifications"], CLASSIFICATION_COLUMNS, _classification_rows(products))
        del products
        prices = json.loads(http.post(PRICES_PATH, json={}).content)["inventory"]
        rows += _copy(conn, names["product_prices"], PRICE_COLUMNS, _price_rows(prices))
        del prices
        groups = json.loads(http.post(GROUPS_PATH, json={}).content)["product_group"]
        rows += _copy(
            conn, names["product_groups"], GROUP_COLUMNS, (_group_row(i, g, raw) for i, g in enumerate(groups))
        )
        rows += _copy(conn, names["product_group_types"], TYPE_COLUMNS, _type_rows(groups))
        rows += _orders(http, conn, names, windows, raw)
    return {"seconds": time.perf_counter() - started, "rows": rows}


def _orders(http: Any, conn: Any, names: dict[str, str], windows: list[list[str]], raw: bool) -> int:
    rows = order_id = 0
    line_ids = iter(range(1, 1 << 62))
    for begin, end in windows:
        body = {"begin_modified_on": _dmy(begin), "end_modified_on": _dmy(end), "filial_code": ""}
        orders = json.loads(http.post(ORDERS_PATH, json=body).content)["order"]
        first = order_id
        rows += _copy(
            conn, names["orders"], ORDER_COLUMNS, (_order_row(first + i, o, raw) for i, o in enumerate(orders))
        )
        lines = (
            _line_row(next(line_ids), first + i, line) for i, o in enumerate(orders) for line in o["order_products"]
        )
        rows += _copy(conn, names["order_lines"], LINE_COLUMNS, lines)
        order_id += len(orders)
    return rows


def phase_stock_reference(sandbox_url: str, db_url: str) -> dict[str, Any]:
    """Fetch the same balance answer, `json.loads` it, sum the batches per warehouse and product, COPY the sums."""
    started = time.perf_counter()
    today = datetime.now(ZoneInfo(TENANT_TIMEZONE)).strftime("%d.%m.%Y")  # "today" as the stock sync asks it
    with _http(sandbox_url) as http, _connect(db_url) as conn:
        name = _like(conn, "plain_", "stock_balances")
        answer = http.post(BALANCE_PATH, json={"begin_date": today, "end_date": today})
        batches = json.loads(answer.content)["balance"]
        rows = _copy(conn, name, STOCK_COLUMNS, stock_sums(batches))
    return {"seconds": time.perf_counter() - started, "rows": rows, "batches": len(batches)}


def stock_sums(batches: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    """One row per warehouse and product: quantity, batches, cost (weighted by quantity), stock value."""
    sums: dict[tuple[str, str], list[Any]] = {}
    for batch in batches:
        key = (batch["warehouse_id"], batch["product_id"])
        pair = sums.get(key)
        if pair is None:
            pair = sums[key] = [batch["warehouse_code"], batch["product_code"], Decimal(0), 0, Decimal(0), None]
        quantity = Decimal(batch["quantity"])
        pair[2] += quantity
        pair[3] += 1
        price = batch.get("input_price")
        if price:
            pair[4] += quantity
            pair[5] = (pair[5] or Decimal(0)) + quantity * Decimal(price)
    for (warehouse_id, product_id), (warehouse_code, product_code, quantity, count, priced, value) in sums.items():
        cost = (value / priced).quantize(_FOUR_PLACES) if value is not None and priced > 0 else None
        value = value.quantize(_FOUR_PLACES) if value is not None else None
        yield (warehouse_id, product_id, warehouse_code, product_code, quantity, count, cost, value, "now")


def _dmy(iso: str) -> str:
    year, month, day = iso.split("-")
    return f"{day}.{month}.{year}"


def _copy(conn: Any, table: str, columns: tuple[str, ...], rows: Any) -> int:
    count = 0
    with conn.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    conn.commit()
    return count


PRODUCT_COLUMNS = (
    "id", "external_source", "external_id", "code", "name", "short_name", "barcodes", "state", "active",
    "group_codes", "weight_netto", "weight_brutto", "box_quant", "raw", "content_hash", "missing_upstream",
    "created_at", "updated_at",
)  # fmt: skip
CLASSIFICATION_COLUMNS = ("product_id", "product_group_id", "product_type_id", "group_code", "type_code")
PRICE_COLUMNS = ("id", "product_code", "price_type_code", "price", "updated_at")
GROUP_COLUMNS = (
    "id", "product_group_id", "code", "name", "state", "product_kind", "type_count", "raw", "content_hash",
    "missing_upstream", "created_at", "updated_at",
)  # fmt: skip
TYPE_COLUMNS = ("product_group_id", "product_type_id", "code", "name", "state", "order_no")
ORDER_COLUMNS = (
    "id", "source_external_id", "filial_code", "deal_time", "delivery_date", "status", "status_label",
    "total_amount", "person_name", "line_count", "raw", "content_hash", "created_at", "updated_at",
)  # fmt: skip
LINE_COLUMNS = (
    "id", "order_id", "product_unit_id", "product_code", "product_name", "product_barcode", "order_quant",
    "product_price", "sold_amount",
)  # fmt: skip
STOCK_COLUMNS = (
    "warehouse_id", "product_id", "warehouse_code", "product_code", "quantity", "batches", "cost", "stock_value",
    "synced_at",
)  # fmt: skip


def _number(value: str) -> str | None:
    return value or None


def _product_row(index: int, p: dict[str, Any], raw: bool) -> tuple[Any, ...]:
    barcodes = [b for b in p["barcodes"].replace("|", ",").split(",") if b]
    groups = [g["group_code"] for g in p.get("groups") or []]
    now = "now"
    return (
        index, "smartup", p["product_id"], p["code"], p["name"], p["short_name"], json.dumps(barcodes), p["state"],
        p["state"] == "A", json.dumps(groups), _number(p["weight_netto"]), _number(p["weight_brutto"]),
        _number(p["box_quant"]), json.dumps(p, ensure_ascii=False) if raw else None, "-", False, now, now,
    )  # fmt: skip


def _classification_rows(products: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    for p in products:
        for g in p.get("groups") or ():
            yield (p["product_id"], g["group_id"], g.get("type_id"), g.get("group_code"), g.get("type_code"))


def _price_rows(items: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    index = 0
    for item in items:
        for price in item["price_type"]:
            index += 1
            yield (index, item["inventory_code"], price["price_type_code"], price["price"], "now")


def _group_row(index: int, g: dict[str, Any], raw: bool) -> tuple[Any, ...]:
    return (
        index, g["product_group_id"], g["code"], g["name"], g["state"], g.get("product_kind"),
        len(g.get("product_group_types") or ()), json.dumps(g, ensure_ascii=False) if raw else None, "-", False,
        "now", "now",
    )  # fmt: skip


def _type_rows(groups: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    for g in groups:
        for t in g.get("product_group_types") or ():
            order_no = t.get("order_no")
            yield (g["product_group_id"], t["product_type_id"], t["code"], t["name"], t["state"], order_no or None)


def _order_row(index: int, o: dict[str, Any], raw: bool) -> tuple[Any, ...]:
    return (
        index, o["deal_id"], o["filial_code"], o["deal_time"], o["delivery_date"] or None, o["status"], o["status"],
        _number(o["total_amount"]), o["person_name"], len(o["order_products"]),
        json.dumps(o, ensure_ascii=False) if raw else None,
        "-", "now", "now",
    )  # fmt: skip


def _line_row(line_id: int, order_id: int, line: dict[str, Any]) -> tuple[Any, ...]:
    return (
        line_id, order_id, line["product_unit_id"], line["product_code"], line["product_name"],
        line["product_barcode"], _number(line["order_quant"]), _number(line["product_price"]),
        _number(line["sold_amount"]),
    )  # fmt: skip
