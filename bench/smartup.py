"""SmartUp pull benchmark: a first full sync and an unchanged re-sync into PostgreSQL, and a stock sync, each next
to a fetch + parse + COPY reference measured in the same run.

The sandbox runs in its own process (`camsync sandbox smartup`), so its memory does not count; every phase runs
in a child process of its own, whose peak RSS (`ru_maxrss`) is reported, after a CHECKPOINT. The pull's reference
fetches the same answers (products, prices, product groups and the same order windows), parses each with
`json.loads` and COPYs the flattened rows into empty tables with no indexes and no change detection: products,
their classifications (one row per product and classification: a full refresh writes them, so the reference
flattens and COPYs the same rows), prices, product groups with their values, orders and order lines, their typed
columns only. A second reference also writes each product's, group's and order's raw JSON, as camsync's tables
do (printed for scale). The stock part (`bench/smartup_stock.py`) syncs the balance of every product in 3
warehouses into an empty table and once more over that snapshot, next to a reference that fetches the same
answer, sums its batches per warehouse and product and COPYs the sums. Every phase runs `--repeat` times (3) and
the medians are compared. Targets: first sync ≤ 1.6 × reference, unchanged re-sync ≤ 0.6 × reference, peak RSS
≤ 350 MB, each stock sync ≤ 1.5 × its reference; the exit code is 1 when one is missed. The schemas are dropped
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

from bench.smartup_reference import libpq as _libpq
from bench.smartup_reference import phase_reference, phase_stock_reference
from bench.smartup_stock import phase_stock, stock_report, stock_rounds

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/test"
ORDERS_DAYS_BACK = 45
FIRST_FACTOR = 1.6
RESYNC_FACTOR = 0.6
RSS_LIMIT_MB = 350.0


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


def run_child() -> None:
    """Entry of a phase's child process: run it, print its figures (with peak RSS) as one JSON line."""
    phase, sandbox_url, db_url, extra = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
    if phase == "sync":
        result = phase_sync(sandbox_url, db_url)
    elif phase == "stock":
        result = phase_stock(_settings(sandbox_url, db_url))
    elif phase == "stock-reference":
        result = phase_stock_reference(sandbox_url, db_url)
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
        f"   ({rows:,} rows: products, classifications, prices, groups, values, orders, lines)"
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
    try:
        rounds = pull_rounds(args.repeat, base, url)
        stock = stock_rounds(
            args.repeat,
            lambda phase, db_url: measured(phase, base, url, db_url),
            lambda: new_schema(base),
            lambda schema: drop_schema(base, schema),
        )
    finally:
        stop(sandbox)
    ok = pull_report(rounds)
    stock_ok = stock_report({name: median_of(results) for name, results in stock.items()}, _verdict)
    print("ranges of the rounds (wall s): " + ", ".join(f"{name} {_span(median_of(rounds[name]))}" for name in rounds))
    print("ranges of the stock rounds (wall s): " + ", ".join(f"{n} {_span(median_of(r))}" for n, r in stock.items()))
    return 0 if ok and stock_ok else 1


def pull_rounds(repeat: int, base: str, url: str) -> dict[str, list[dict[str, Any]]]:
    """An unmeasured warm-up sync, then `repeat` rounds of: first sync, re-sync, the two references."""
    rounds: dict[str, list[dict[str, Any]]] = {"first": [], "again": [], "reference": [], "plain": []}
    # An unmeasured sync first, so that every measured phase (and the reference) finds the sandbox's answers
    # already encoded: the sandbox's own work is not what is measured.
    warm_schema, warm_url = new_schema(base)
    try:
        in_child("sync", url, warm_url)
    finally:
        drop_schema(base, warm_schema)
    for _ in range(repeat):
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
    return rounds


def pull_report(rounds: dict[str, list[dict[str, Any]]]) -> bool:
    """Print the pull's figures next to the plain reference; True when every one passes."""
    first, again, reference, plain = (median_of(rounds[name]) for name in ("first", "again", "reference", "plain"))
    rows = plain["rows"]
    print(
        "reference: the same answers parsed with json.loads and the flattened rows (products, classifications,"
        " prices, groups and values, orders, lines) COPYed into empty tables without indexes"
    )
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
    return ok and unchanged


def _span(result: dict[str, Any]) -> str:
    low, high = result["range"]
    return f"{low:.2f}–{high:.2f}"


if __name__ == "__main__":
    sys.exit(main())
