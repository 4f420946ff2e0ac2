"""The stock part of the SmartUp benchmark: a stock sync of the sandbox's balance (every product in 3 warehouses,
1–3 batches each) into an empty `stock_balances`, then once more over that snapshot, next to a reference that
fetches the same answer, parses it with `json.loads`, sums the batches per warehouse and product and COPYs the
sums into an index-less table. Target: each sync ≤ `STOCK_FACTOR` × the reference (medians of the rounds).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

STOCK_FACTOR = 1.5

Phase = Callable[..., dict[str, Any]]


def phase_stock(settings: Any) -> dict[str, Any]:
    """One stock sync, as camsync runs it."""
    from camsync.store.engine import open_store
    from camsync.sync.smartup.pull import sync_stock

    store = open_store(settings.store_url)
    started = time.perf_counter()
    result = sync_stock(store, settings, trigger="cli")
    seconds = time.perf_counter() - started
    store.dispose()
    return {
        "seconds": seconds,
        "status": [result.status],
        "errors": [result.error] if result.error else [],
        "counts": result.counts,
        "rows": result.details.get("rows", 0),
        "batches": result.details.get("batches", 0),
    }


def stock_rounds(
    repeat: int, measured: Phase, new_schema: Callable[[], tuple[str, str]], drop: Callable[[str], None]
) -> dict[str, list[dict[str, Any]]]:
    """An unmeasured warm-up stock sync, then `repeat` rounds of: a stock sync into a fresh schema, one over its
    snapshot, and the reference."""
    rounds: dict[str, list[dict[str, Any]]] = {"empty": [], "over": [], "reference": []}
    schema, db_url = new_schema()
    try:
        measured("stock", db_url)  # unmeasured: the sandbox encodes its balance answer once, before the rounds
    finally:
        drop(schema)
    for _ in range(repeat):
        schema, db_url = new_schema()
        try:
            for name in ("empty", "over"):
                result = measured("stock", db_url)
                if result["status"] != ["SUCCESS"]:
                    raise RuntimeError(f"stock sync ({name}) did not succeed: {result['status']} {result['errors']}")
                rounds[name].append(result)
            rounds["reference"].append(measured("stock-reference", db_url))
        finally:
            drop(schema)
    return rounds


def stock_report(results: dict[str, dict[str, Any]], verdict: Callable[[bool], str]) -> bool:
    """Print each stock sync next to the reference and the target; True when both pass."""
    reference = results["reference"]
    ok = True
    print(
        f"stock: {reference['batches']:,} batches → {reference['rows']:,} warehouse × product rows; reference: the"
        " same answer parsed with json.loads, summed per warehouse and product, COPYed into an index-less table"
    )
    for name, title in (("empty", "into an empty stock table"), ("over", "over the previous snapshot")):
        result = results[name]
        limit = reference["seconds"] * STOCK_FACTOR
        fast = result["seconds"] <= limit
        ok = ok and fast
        print(f"stock sync {title}")
        print(
            f"  wall time   {result['seconds']:8.2f} s    reference {reference['seconds']:6.2f} s   "
            f"= {result['seconds'] / reference['seconds']:.2f} ×   target ≤ {STOCK_FACTOR} × = {limit:6.2f} s"
            f"   {verdict(fast)}"
        )
        print(f"  peak RSS    {result['rss_mb']:8.1f} MB   reference {reference['rss_mb']:6.1f} MB")
        print(f"  counts      {result['counts']}  rows {result['rows']:,}")
    return ok
