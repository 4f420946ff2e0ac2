"""SmartUp pull benchmark: a first full sync and an unchanged re-sync into PostgreSQL, next to a parse + COPY floor.

The sandbox runs in its own process (`camsync sandbox smartup`), so its memory does not count; every phase runs
in a child process of its own, whose peak RSS (`ru_maxrss`) is reported, after a CHECKPOINT. The reference,
measured in the same run, fetches the same answers (products, prices and the same order windows), parses each
with `json.loads` and COPYs the flattened rows (products, prices, orders, order lines: their typed columns) into
empty tables with no indexes and no change detection; a second reference also writes each product's and order's
raw JSON, as camsync's tables do. Every phase runs `--repeat` times (3) and the medians are compared. Targets:
first sync ≤ 2.5 × reference, unchanged re-sync ≤ 1.5 × reference, peak RSS ≤ 400 MB. The schemas are dropped
and the sandbox stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/test"
ORDERS_DAYS_BACK = 45
FIRST_FACTOR = 2.5
RESYNC_FACTOR = 1.5
RSS_LIMIT_MB = 400.0
PRODUCTS_PATH = "/b/anor/mxsx/mr/inventory$export"
ORDERS_PATH = "/b/trade/txs/tdeal/order$export"
PRICES_PATH = "/b/anor/api/v2/mkf/product_price$export"
REFERENCE_TABLES = ("products", "product_prices", "orders", "order_lines")


# --- the sandbox and the schema ------------------------------------------------------------------------------


def start_sandbox(products: int, orders: int) -> tuple[subprocess.Popen[str], str]:
    """`camsync sandbox smartup` in a child process; returns it and its base URL."""
    command = [sys.executable, "-m", "camsync", "-q", "sandbox", "smartup", "--port", "0"]
    command += ["--products", str(products), "--orders", str(orders), "--reference-budget", "1000"]
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("SMARTUP_BASE_URL="):
            return child, line.split("=", 1)[1].strip()
    child.kill()
    raise RuntimeError("the SmartUp sandbox did not start")


def stop(child: subprocess.Popen[str]) -> None:
    child.terminate()
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()


def new_schema(base_url: str) -> tuple[str, str]:
    import psycopg

    schema = f"bench_smartup_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_libpq(base_url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base_url else "?"
    return schema, f"{base_url}{sep}options={quote(f'-csearch_path={schema}')}"


def drop_schema(base_url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(_libpq(base_url), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


# --- the phases (each in a child process) --------------------------------------------------------------------


def _settings(sandbox_url: str, db_url: str) -> Any:
    from camsync.settings import load_settings

    return load_settings(
        {
            "DATABASE_URL": db_url,
            "SMARTUP_BASE_URL": sandbox_url,
            "SMARTUP_BASIC_USER": "sandbox",
            "SMARTUP_BASIC_PASS": "sandbox",
            "SMARTUP_FILIAL_ID": "100",
            "SMARTUP_CALL_RESERVE": "0",
            "TIMEOUT_SECONDS": "300",
        },
        env_file=None,
    )


def phase_sync(sandbox_url: str, db_url: str) -> dict[str, Any]:
    """A full product refresh (with prices) and an orders back-fill, as camsync runs them."""
    from camsync.store.engine import open_store
    from camsync.sync.smartup.pull import sync_orders, sync_products

    settings = _settings(sandbox_url, db_url)
    store = open_store(settings.store_url)
    started = time.perf_counter()
    products = sync_products(store, settings, full=True, trigger="cli")
    orders = sync_orders(store, settings, days_back=ORDERS_DAYS_BACK, trigger="cli")
    seconds = time.perf_counter() - started
    store.dispose()
    return {
        "seconds": seconds,
        "status": [products.status, orders.status],
        "errors": [e for e in (products.error, orders.error) if e],
        "products": products.counts,
        "orders": orders.counts,
        "lines": orders.details.get("lines_written", 0),
        "prices": products.details.get("prices", {}),
        "windows": orders.details.get("windows", []),
    }


def phase_reference(sandbox_url: str, db_url: str, windows: list[list[str]], raw: bool = True) -> dict[str, Any]:
    """Fetch the same answers, `json.loads` each, COPY the flattened rows into empty tables.

    With `raw`, each product and order row also carries its item as JSON, as camsync's tables do; without it
    (the plain reference) only the typed columns are written.
    """
    import httpx
    import psycopg

    started = time.perf_counter()
    rows = 0
    with (
        httpx.Client(base_url=sandbox_url, auth=("sandbox", "sandbox"), timeout=300) as http,
        psycopg.connect(_libpq(db_url)) as conn,
    ):
        http.headers.update({"project_code": "trade", "filial_id": "100"})
        conn.execute("SET datestyle = 'ISO, DMY'; SET TIME ZONE 'Asia/Tashkent'")
        prefix = "ref_" if raw else "plain_"
        for table in REFERENCE_TABLES:
            conn.execute(f"CREATE TABLE {prefix}{table} (LIKE {table} INCLUDING COMPRESSION INCLUDING STORAGE)")
        for table in ("products", "orders"):
            conn.execute(f"ALTER TABLE {prefix}{table} ALTER COLUMN raw DROP NOT NULL")
        products = json.loads(http.post(PRODUCTS_PATH, json={}).content)["inventory"]
        rows += _copy(
            conn, f"{prefix}products", _PRODUCT_COLUMNS, (_product_row(i, p, raw) for i, p in enumerate(products))
        )
        del products
        prices = json.loads(http.post(PRICES_PATH, json={}).content)["inventory"]
        rows += _copy(conn, f"{prefix}product_prices", _PRICE_COLUMNS, _price_rows(prices))
        del prices
        order_id = 0
        for begin, end in windows:
            body = {"begin_modified_on": _dmy(begin), "end_modified_on": _dmy(end), "filial_code": ""}
            orders = json.loads(http.post(ORDERS_PATH, json=body).content)["order"]
            first = order_id
            rows += _copy(
                conn, f"{prefix}orders", _ORDER_COLUMNS, (_order_row(first + i, o, raw) for i, o in enumerate(orders))
            )
            lines = (_line_row(first + i, line) for i, o in enumerate(orders) for line in o["order_products"])
            rows += _copy(conn, f"{prefix}order_lines", _LINE_COLUMNS, lines)
            order_id += len(orders)
            conn.commit()
    return {"seconds": time.perf_counter() - started, "rows": rows}


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


_PRODUCT_COLUMNS = (
    "id", "external_source", "external_id", "code", "name", "short_name", "barcodes", "state", "active",
    "group_codes", "weight_netto", "weight_brutto", "box_quant", "raw", "content_hash", "missing_upstream",
    "created_at", "updated_at",
)  # fmt: skip
_PRICE_COLUMNS = ("id", "product_code", "price_type_code", "price", "updated_at")
_ORDER_COLUMNS = (
    "id", "source_external_id", "filial_code", "deal_time", "delivery_date", "status", "status_label",
    "total_amount", "person_name", "line_count", "raw", "content_hash", "created_at", "updated_at",
)  # fmt: skip
_LINE_COLUMNS = (
    "id", "order_id", "product_unit_id", "product_code", "product_name", "product_barcode", "order_quant",
    "product_price", "sold_amount",
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


def _price_rows(items: list[dict[str, Any]]) -> Any:
    index = 0
    for item in items:
        for price in item["price_type"]:
            index += 1
            yield (index, item["inventory_code"], price["price_type_code"], price["price"], "now")


def _order_row(index: int, o: dict[str, Any], raw: bool) -> tuple[Any, ...]:
    return (
        index, o["deal_id"], o["filial_code"], o["deal_time"], o["delivery_date"] or None, o["status"], o["status"],
        _number(o["total_amount"]), o["person_name"], len(o["order_products"]),
        json.dumps(o, ensure_ascii=False) if raw else None,
        "-", "now", "now",
    )  # fmt: skip


_line_ids = iter(range(1, 1 << 62))


def _line_row(order_id: int, line: dict[str, Any]) -> tuple[Any, ...]:
    return (
        next(_line_ids), order_id, line["product_unit_id"], line["product_code"], line["product_name"],
        line["product_barcode"], _number(line["order_quant"]), _number(line["product_price"]),
        _number(line["sold_amount"]),
    )  # fmt: skip


def run_child() -> None:
    """Entry of a phase's child process: run it, print its figures (with peak RSS) as one JSON line."""
    phase, sandbox_url, db_url, extra = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
    if phase == "sync":
        result = phase_sync(sandbox_url, db_url)
    else:
        result = phase_reference(sandbox_url, db_url, json.loads(extra), raw=phase == "reference")
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def in_child(phase: str, sandbox_url: str, db_url: str, extra: Any = None) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.smartup", "--child", phase, sandbox_url, db_url, json.dumps(extra)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the {phase} phase failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the report ----------------------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(name: str, result: dict[str, Any], reference: dict[str, Any], factor: float, rows: int) -> bool:
    """Print one phase's figures next to the reference and its target; True when every figure passes."""
    limit = reference["seconds"] * factor
    fast = result["seconds"] <= limit
    small = result["rss_mb"] <= RSS_LIMIT_MB
    print(f"{name}")
    print(
        f"  wall time   {result['seconds']:8.2f} s    reference {reference['seconds']:6.2f} s   "
        f"= {result['seconds'] / reference['seconds']:.2f} ×   target ≤ {factor} × = {limit:6.2f} s   {_verdict(fast)}"
    )
    print(
        f"  rows/s      {rows / result['seconds']:10,.0f}    reference {rows / reference['seconds']:8,.0f}"
        f"   ({rows:,} rows: products, prices, orders, lines)"
    )
    print(
        f"  peak RSS    {result['rss_mb']:8.1f} MB   reference {reference['rss_mb']:6.1f} MB  "
        f"target ≤ {RSS_LIMIT_MB:.0f} MB            {_verdict(small)}"
    )
    print(f"  counts      products {result['products']}  orders {result['orders']}  lines written {result['lines']}")
    return fast and small


def _check(result: dict[str, Any], phase: str) -> None:
    if result["status"] != ["SUCCESS", "SUCCESS"]:
        raise RuntimeError(f"{phase}: the sync did not succeed: {result['status']} {result['errors']}")


def checkpoint(base_url: str) -> None:
    """Start a phase from a clean WAL state (a checkpoint mid-phase would land on whichever phase runs then)."""
    import psycopg

    try:
        with psycopg.connect(_libpq(base_url), autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.Error:
        pass  # not allowed for this role: the phases run without it


def measured(phase: str, base: str, url: str, db_url: str, extra: Any = None) -> dict[str, Any]:
    checkpoint(base)
    return in_child(phase, url, db_url, extra)


def median_of(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time (its other figures with it), plus the range of the wall times."""
    ranked = sorted(results, key=lambda result: result["seconds"])
    middle = dict(ranked[len(ranked) // 2])
    middle["range"] = (ranked[0]["seconds"], ranked[-1]["seconds"])
    middle["rss_mb"] = max(result["rss_mb"] for result in results)
    return middle


def main() -> int:
    """Run the SmartUp benchmark and print its figures; returns 1 on a MISS (0 when every figure passes)."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        run_child()
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.smartup", description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every phase; medians are compared")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DB)
    args = parser.parse_args(sys.argv[1:])
    base = args.database_url.replace("postgres://", "postgresql://", 1)
    print(
        f"SmartUp pull: {args.products:,} products, {args.orders:,} orders, into PostgreSQL "
        f"({args.repeat} rounds, medians)",
        flush=True,
    )
    sandbox, url = start_sandbox(args.products, args.orders)
    rounds: dict[str, list[dict[str, Any]]] = {"first": [], "again": [], "reference": [], "plain": []}
    try:
        # An unmeasured sync first, so that every measured phase (and the reference) finds the sandbox's answers
        # already encoded: the sandbox's own work is not what is measured.
        warm_schema, warm_url = new_schema(base)
        try:
            in_child("sync", url, warm_url)
        finally:
            drop_schema(base, warm_schema)
        for _ in range(args.repeat):
            schema, db_url = new_schema(base)
            try:
                first = measured("sync", base, url, db_url)
                _check(first, "first sync")
                again = measured("sync", base, url, db_url)
                _check(again, "re-sync")
                rounds["first"].append(first)
                rounds["again"].append(again)
                rounds["reference"].append(measured("reference", base, url, db_url, first["windows"]))
                rounds["plain"].append(measured("reference-plain", base, url, db_url, first["windows"]))
            finally:
                drop_schema(base, schema)
    finally:
        stop(sandbox)
    first, again, reference, plain = (median_of(rounds[name]) for name in ("first", "again", "reference", "plain"))
    rows = plain["rows"]
    print("reference: the same answers parsed with json.loads and the flattened rows COPYed into empty tables")
    ok = report("first full sync (fresh schema)", first, plain, FIRST_FACTOR, rows)
    ok = report("unchanged re-sync", again, plain, RESYNC_FACTOR, rows) and ok
    unchanged = all(
        result["products"]["unchanged"] == result["products"]["fetched"]
        and not result["orders"]["inserted"]
        and not result["orders"]["updated"]
        for result in rounds["again"]
    )
    print(f"  re-sync wrote nothing: {_verdict(unchanged)}")
    print(
        f"the reference with each item's raw JSON as well (as camsync's tables keep it): {reference['seconds']:.2f} s;"
        f" first sync {first['seconds'] / reference['seconds']:.2f} ×,"
        f" re-sync {again['seconds'] / reference['seconds']:.2f} ×"
    )
    print(
        "for scale (figures from the issue, not measured here): dlt merging the same data took ~50 s where the plain"
        f" parse + COPY took ~5 s, about 10 × it; the first sync here is {first['seconds'] / plain['seconds']:.2f} ×"
        f" the plain reference, so about {10 * plain['seconds'] / first['seconds']:.1f} × faster than dlt at that"
        f" ratio ({50 / first['seconds']:.1f} × against the 50 s as a plain number; this machine's plain reference"
        f" took {plain['seconds']:.1f} s, not 5)"
    )
    print("ranges of the rounds (wall s): " + ", ".join(f"{name} {_span(median_of(rounds[name]))}" for name in rounds))
    return 0 if ok and unchanged else 1


def _span(result: dict[str, Any]) -> str:
    low, high = result["range"]
    return f"{low:.2f}–{high:.2f}"


if __name__ == "__main__":
    sys.exit(main())
