"""LUNA push benchmark: drain time of a backlog against the sandbox, and the no-new-rows scan of a big app DB.

The LUNA sandbox runs in another process (a child Python serving `start_luna_sandbox` on loopback) with a
latency per request and work orders Successful 1 s after creation; `luna push --wait` runs in this process, on
a fresh SQLite store (or `--database-url`). Printed: the drain time next to its floor
`2 × topups × latency / concurrency + 1 s` and the target (≤ 1.5 × floor), requests per top-up, duplicates on
the sandbox, the time of a scan of a 1,000,000-row app DB with nothing new, the first scan of that app DB into
an empty store (target ≤ 10 s) next to its floor on this machine (the same joined read and the same inserts done
by the bare sqlite3 module, nothing else, in the same run) and a full sweep of it once everything is known.

    python -m bench.luna [--topups 2000] [--concurrency 16] [--latency 0.05] [--scan-rows 1000000]
                         [--first-scan/--no-first-scan]  (--topups 0 skips the drain)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SANDBOX_SCRIPT = """
import sys, time
from camsync.sandbox.luna import LunaSandboxConfig, start_luna_sandbox
config = LunaSandboxConfig(latency={latency}, waiting_seconds=0.5, in_progress_seconds=0.5, idempotency=False,
                           auth="none")
sandbox = start_luna_sandbox(config)
print(sandbox.url, flush=True)
sys.stdin.read()
sandbox.stop()
"""


@dataclass
class DrainResult:
    topups: int
    concurrency: int
    latency: float
    seconds: float
    requests: dict[str, int]
    duplicates: list[str]
    successful: int
    sandbox_work_orders: int

    @property
    def floor(self) -> float:
        return 2 * self.topups * self.latency / self.concurrency + 1.0

    @property
    def per_topup(self) -> float:
        return sum(self.requests.get(k, 0) for k in ("create", "status", "lookup")) / max(self.topups, 1)


def _start_sandbox(latency: float) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-c", SANDBOX_SCRIPT.format(latency=latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    url = child.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1"):
        child.kill()
        raise RuntimeError("the sandbox process did not start")
    return child, url


def _stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_sandbox/stats", timeout=30) as answer:
        return json.loads(answer.read())


def _write_backlog(path: Path, topups: int) -> None:
    from camsync.source.payplus_sample import make_payplus_db

    make_payplus_db(path, ({"id": i, "status": "USED", "amount": "1500"} for i in range(1, topups + 1)))


def drain(*, topups: int, concurrency: int, latency: float, workdir: Path, database_url: str | None) -> DrainResult:
    """Push a backlog of `topups` USED rows to a sandbox in another process; time until all are successful."""
    from camsync.settings import load_settings
    from camsync.store import luna_admin
    from camsync.store.engine import open_store
    from camsync.sync.luna.options import PushOptions
    from camsync.sync.luna.push import push

    _write_backlog(workdir / "app.db", topups)
    child, url = _start_sandbox(latency)
    try:
        settings = load_settings(
            {
                "DATABASE_URL": database_url or f"sqlite:///{workdir / 'store.db'}",
                "APP_DB_URL": f"sqlite:///{workdir / 'app.db'}",
                "LUNA_BASE_URL": url,
                "LUNA_POLL_INITIAL_SECONDS": "1.0",
            }
        )
        store = open_store(settings.store_url)
        options = PushOptions.from_settings(settings, concurrency=concurrency, wait=True, timeout=600.0)
        started = time.perf_counter()
        push(settings, store, options=options)
        seconds = time.perf_counter() - started
        with store.session() as session:
            successful = luna_admin.count_by_state(session)["successful"]
        store.dispose()
        stats = _stats(url)
    finally:
        if child.stdin:
            child.stdin.close()
        child.wait(timeout=30)
    return DrainResult(
        topups, concurrency, latency, seconds, stats["requests"], stats["duplicates"], successful, stats["work_orders"]
    )


def scan_time(*, rows: int, workdir: Path) -> dict[str, float]:
    """Seconds of a no-new-rows discovery on a `rows`-row app DB whose older rows are already known."""
    from camsync.settings import load_settings
    from camsync.source.payplus import PayplusSource
    from camsync.source.payplus_sample import create_sample_app_db
    from camsync.store import luna_scan
    from camsync.store.base import utcnow
    from camsync.store.engine import open_store
    from camsync.sync.luna import moves
    from camsync.sync.luna.scan import discover

    path = workdir / "big.db"
    started = time.perf_counter()
    create_sample_app_db(path, topups=rows, seed=7, messy=False)
    build = time.perf_counter() - started
    ready = _age_ready_rows(path, keep=100)
    store = open_store(f"sqlite:///{workdir / 'scan-store.db'}")
    source = PayplusSource.from_settings(load_settings({"APP_DB_URL": f"sqlite:///{path}"}))
    try:
        source.check()
        with store.writer() as session:  # as after the first push: everything up to the last id is known
            luna_scan.lock_scan_cursor(session)
            moves.apply_scan(
                session,
                now=utcnow(),
                actor="bench",
                last_id=source.max_tui_id(),
                found=[],
                rejects=[],
                watch=[(i, "READY") for i in ready],
                unwatch=[],
            )
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            report = discover(store, source, actor="bench", now=utcnow())
            timings.append((report.seconds, time.perf_counter() - started, report.rows))
        scan, total, rows_read = min(timings)
    finally:
        source.close()
        store.dispose()
    return {"build": build, "scan": scan, "total": total, "rows_read": rows_read, "watched": len(ready)}


FIRST_SCAN_TARGET = 10.0  # seconds: the first scan of a 1,000,000-row app DB into an empty store


def first_scan_and_sweep(*, workdir: Path, database_url: str | None) -> dict[str, float]:
    """Seconds of the first discovery of the app DB built by `scan_time` into an empty store, and of a full sweep
    of it afterwards (every row compared with the store, nothing missed)."""
    from camsync.settings import load_settings
    from camsync.source.payplus import PayplusSource
    from camsync.store.base import utcnow
    from camsync.store.engine import open_store
    from camsync.sync.luna.scan import discover
    from camsync.sync.luna.sweep import sweep

    store = open_store(database_url or f"sqlite:///{workdir / 'first-store.db'}")
    source = PayplusSource.from_settings(load_settings({"APP_DB_URL": f"sqlite:///{workdir / 'big.db'}"}))
    try:
        source.check()
        started = time.perf_counter()
        report = discover(store, source, actor="bench", now=utcnow())
        first = time.perf_counter() - started
        started = time.perf_counter()
        swept = sweep(store, source, actor="bench", now=utcnow())
        sweep_seconds = time.perf_counter() - started
    finally:
        source.close()
        store.dispose()
    return {
        "first": first,
        "read": report.seconds,
        "discovered": report.discovered,
        "sweep": sweep_seconds,
        "sweep_rows": swept.rows,
        "missed": swept.missed,
    }


_FLOOR_READ = """
SELECT t.id, t.txn_id, t.status, t.amount, t.created_at, p.txn_id, p.meter_id, p.currency, p.amount, m.id,
       m.meter_number
FROM tuis t LEFT JOIN topups p ON p.txn_id = t.txn_id LEFT JOIN meters m ON m.id = p.meter_id
WHERE t.id > ? ORDER BY t.id LIMIT ?"""
_FLOOR_TXN = """INSERT INTO luna_txns (txn_id, tui_id, meter, amount, currency, origin, state, attempts, polls,
lookup_first, discovered_at, updated_at) VALUES (?, ?, ?, ?, ?, 'app', 'created', 0, 0, 0, ?, ?)"""
_FLOOR_EVENT = """INSERT INTO luna_events (txn_id, at, kind, state, message, actor)
VALUES (?, ?, 'discovered', 'created', ?, 'bench')"""


def first_scan_floor(*, workdir: Path, batch_size: int = 5000) -> dict[str, float]:
    """Seconds the bare sqlite3 module takes for the work of a first scan: the joined read of every row in
    batches, the shared-txn_id query, and one insert per USED row into luna_txns and into luna_events (same
    schema, indexes and pragmas as the store), in one transaction. No parsing, no checks: a floor, not a scan."""
    import sqlite3

    from camsync.store.engine import open_store

    store_path = workdir / "floor-store.db"
    open_store(f"sqlite:///{store_path}").dispose()  # the store's schema and indexes, by its migrations
    app = sqlite3.connect(workdir / "big.db")
    store = sqlite3.connect(store_path, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "cache_size = -65536"):
        store.execute(f"PRAGMA {pragma}")
    started = time.perf_counter()
    shared = "SELECT txn_id FROM tuis WHERE txn_id != '' GROUP BY txn_id HAVING count(*) > 1"
    app.execute(f"SELECT txn_id, id FROM tuis WHERE txn_id IN ({shared})").fetchall()  # noqa: S608 - constant
    cursor, used = 0, []
    while batch := app.execute(_FLOOR_READ, (cursor, batch_size)).fetchall():
        used.extend(r for r in batch if r[2] == "USED")
        cursor = batch[-1][0]
    read = time.perf_counter() - started
    now = "2026-01-01 00:00:00.000000"
    store.execute("BEGIN")
    store.executemany(_FLOOR_TXN, ((r[1], r[0], r[10], r[3], r[7] or "XAF", now, now) for r in used))
    store.executemany(_FLOOR_EVENT, ((r[1], now, f"tuis.id={r[0]} meter={r[10]} amount={r[3]}") for r in used))
    store.execute("COMMIT")
    total = time.perf_counter() - started
    app.close()
    store.close()
    return {"floor": total, "floor_read": read, "floor_rows": len(used)}


def _print_first_scan(rows: int, figures: dict[str, float]) -> bool:
    ok = figures["first"] <= FIRST_SCAN_TARGET
    print(f"LUNA first scan and full sweep: {rows:,} rows, empty store")
    print(
        f"  first scan            {figures['first']:8.2f} s   target ≤ {FIRST_SCAN_TARGET:.0f} s "
        f"{'PASS' if ok else 'MISS'}  ({figures['discovered']:,} txns; reading the app DB "
        f"{figures['read']:.2f} s, the rest writing the store)"
    )
    if "floor" in figures:
        print(
            f"  floor (bare sqlite3)  {figures['floor']:8.2f} s   (the same read and inserts, nothing else: "
            f"reading {figures['floor_read']:.2f} s, {figures['floor_rows']:,} rows; first scan "
            f"{figures['first'] / figures['floor']:.1f} × floor)"
        )
    print(
        f"  full sweep            {figures['sweep']:8.2f} s   ({figures['sweep_rows']:,} rows compared, "
        f"{figures['missed']} missed)"
    )
    return ok


def _age_ready_rows(path: Path, *, keep: int) -> list[int]:
    """Expire all READY rows but the newest `keep` (old card writes expire); returns the READY ids left."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        newest = [
            r[0] for r in conn.execute("SELECT id FROM tuis WHERE status='READY' ORDER BY id DESC LIMIT ?", (keep,))
        ]
        if newest:
            conn.execute("UPDATE tuis SET status='EXPIRED' WHERE status='READY' AND id < ?", (min(newest),))
        conn.commit()
        return sorted(newest)
    finally:
        conn.close()


def _print_drain(result: DrainResult) -> bool:
    target = 1.5 * result.floor
    ok = result.seconds <= target and not result.duplicates and result.successful == result.topups
    print(
        f"LUNA push drain: {result.topups} USED top-ups, concurrency {result.concurrency}, "
        f"sandbox latency {result.latency * 1000:.0f} ms (sandbox in another process), Successful 1 s after create"
    )
    print(f"  drain time            {result.seconds:8.2f} s   (all {result.successful} successful)")
    print(
        f"  floor                 {result.floor:8.2f} s   (2 × {result.topups} × {result.latency} / "
        f"{result.concurrency} + 1)"
    )
    print(f"  target (1.5 × floor)  {target:8.2f} s   {'PASS' if ok else 'MISS'}")
    print(f"  requests per top-up   {result.per_topup:8.2f}     {result.requests}")
    print(f"  duplicates on sandbox {len(result.duplicates):8d}     ({result.sandbox_work_orders} work orders)")
    return ok


def main(argv: list[str] | None = None) -> int:
    """Run the LUNA benchmark and print its figures (PASS or MISS next to the bound); 1 on a MISS."""
    return 0 if run(argv) else 1


def run(argv: list[str] | None = None) -> bool:
    """Run the LUNA benchmark; True when the drain met its target with no duplicate."""
    parser = argparse.ArgumentParser(prog="python -m bench.luna", description=__doc__.splitlines()[0])
    parser.add_argument("--topups", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--scan-rows", type=int, default=1_000_000, help="0 skips the scan benchmark")
    parser.add_argument("--first-scan", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="camsync-bench-") as tmp:
        workdir = Path(tmp)
        print(f"Store: {'PostgreSQL' if args.database_url else 'a SQLite file'}; push in this process.")
        ok = True
        if args.topups:
            result = drain(
                topups=args.topups,
                concurrency=args.concurrency,
                latency=args.latency,
                workdir=workdir,
                database_url=args.database_url,
            )
            ok = _print_drain(result)
        if args.scan_rows:
            scan = scan_time(rows=args.scan_rows, workdir=workdir)
            print(f"LUNA app DB scan, nothing new: {args.scan_rows:,} rows, {scan['watched']} READY rows watched")
            print(
                f"  scan time             {scan['scan'] * 1000:8.2f} ms  ({scan['rows_read']} rows read; "
                f"building the app DB took {scan['build']:.1f} s)"
            )
            print(f"  discovery in all      {scan['total'] * 1000:8.2f} ms  (the scan plus its store transaction)")
            if args.first_scan:
                figures = first_scan_and_sweep(workdir=workdir, database_url=args.database_url)
                if not args.database_url:  # the floor is the SQLite one
                    figures.update(first_scan_floor(workdir=workdir))
                ok = _print_first_scan(args.scan_rows, figures) and ok
    return ok


if __name__ == "__main__":
    sys.exit(0 if run() else 1)
