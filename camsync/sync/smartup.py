"""The SmartUp pull: products and orders into the store, change-aware, in windows, inside the daily call budget.

What is committed when: items are written in batches of at most `BATCH_SIZE` items or `BATCH_BYTES` of JSON, one
transaction per batch (an order and its lines always in the same one), so a failure never leaves a batch
half-written; batches already committed stay, and since every write is an idempotent upsert a replay of them
changes nothing. On PostgreSQL `WRITERS` connections write batches side by side while the next ones are decoded
(keys repeated within an answer are dropped before, so the order of the writes does not matter). A run's cursor
(`cursor_after`) is only set when the whole run succeeded, so a failed or partial run is re-done next time.

Products: incremental by `begin_modified_on` from the last successful run's start minus a day; a full refresh
(no filter, then prices, then products not seen are flagged `missing_upstream`) on `--full`, on the first run,
and when the last full refresh is more than a day old. Orders: by modified date from the last successful run's
cursor minus a day up to today (or `SYNC_ORDERS_DAYS_BACK` days back on the first run), cut into windows of at
most `day_range_limit` days; `since`/`until` run a bounded window that leaves the cursor alone.

Before each call the newest `left_limit_quant` of its budget class is checked against `SMARTUP_CALL_RESERVE`;
a run that would go below it stops before calling. A dry run fetches and classifies but writes nothing; its
run row is still recorded (`details.dry_run`), with the would-be counts in `details` and no cursor.
"""

from __future__ import annotations

import gc
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from camsync.clients.smartup import BudgetClass, Export, Limits, SmartupBudgetError, SmartupClient
from camsync.errors import CamsyncError, NotFoundError, UsageError
from camsync.logs import get_logger
from camsync.settings import Settings
from camsync.store import smartup_upsert as upserts
from camsync.store.base import utcnow
from camsync.store.engine import Store
from camsync.store.locks import job_lock
from camsync.store.smartup import Order, OrderLine, Product, ProductPrice, text_limits
from camsync.sync.ledger import RunHandle, recorded_run
from camsync.sync.smartup_map import (
    STATUS_LABELS,
    Fingerprint,
    ItemError,
    OrderMapper,
    PriceMapper,
    ProductMapper,
    fingerprint_raw,
)

log = get_logger(__name__)

JOB = "smartup"
PRODUCTS_LOCK = "smartup-products"  # the names run-all locks the two jobs by
ORDERS_LOCK = "smartup-orders"
BATCH_SIZE = 3000
BATCH_BYTES = 6 * 1024 * 1024
WRITERS = 3  # PostgreSQL connections writing batches side by side (SQLite and dry runs: one, in order)
PRODUCTS_OVERLAP = timedelta(days=1)
ORDERS_OVERLAP_DAYS = 1
FULL_REFRESH_EVERY = timedelta(hours=24)
FAILURES_KEPT = 20
BULK_GC_THRESHOLD = 50_000  # allocations between two young-generation collections during a sync (default 700)
ANALYZE_FROM = 10_000  # a run that inserts this many rows into a table refreshes its planner statistics
LINK_CACHE_FROM = 500  # a batch this big loads every product's code and barcodes once, instead of lookups
_PRODUCT_LIMITS = text_limits(Product)
_ORDER_LIMITS = text_limits(Order)
_LINE_LIMITS = text_limits(OrderLine)
_PRICE_LIMITS = {**text_limits(ProductPrice), "inventory_code": text_limits(ProductPrice)["product_code"]}


class ExportSource(Protocol):
    """What the job needs of a SmartUp client (`SmartupClient`, or a fake in tests)."""

    calls: dict[BudgetClass, int]
    last_limits: dict[BudgetClass, Limits]

    def export_products(
        self, *, begin_modified_on: date | None = None, end_modified_on: date | None = None, code: str = ""
    ) -> Export: ...

    def export_orders(
        self, *, begin_modified_on: date | None = None, end_modified_on: date | None = None, deal_id: str = ""
    ) -> Export: ...

    def export_prices(self) -> Export: ...


class BudgetStop(CamsyncError):
    """A call would take a daily budget class below the reserve (or SmartUp says it is spent)."""


@dataclass
class SyncResult:
    """What a SmartUp run did: its ledger row's content, for rendering."""

    run_id: int
    run_type: str
    status: str
    error: str | None
    counts: dict[str, int]
    details: dict[str, Any]
    window_start: datetime | None = None
    window_end: datetime | None = None
    cursor_before: str | None = None
    cursor_after: str | None = None
    dry_run: bool = False
    children: list[SyncResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (for `--json`)."""
        return {
            "run_id": self.run_id,
            "run_type": self.run_type,
            "status": self.status,
            "error": self.error,
            **self.counts,
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "window_end": self.window_end.isoformat() if self.window_end else None,
            "cursor_before": self.cursor_before,
            "cursor_after": self.cursor_after,
            "dry_run": self.dry_run,
            "details": self.details,
            "children": [child.as_dict() for child in self.children],
        }


Clock = Callable[[], datetime]


# --- public entry points -------------------------------------------------------------------------------------


def sync_products(
    store: Store,
    settings: Settings,
    *,
    full: bool = False,
    dry_run: bool = False,
    trigger: str = "cli",
    client: ExportSource | None = None,
    clock: Clock = utcnow,
    parent_id: int | None = None,
    lock: bool = False,
) -> SyncResult:
    """Pull products (incremental, or a full refresh that also pulls prices and flags vanished products).

    `lock` takes the job's lock (`smartup-products`) for the run; run-all holds it already and leaves it False.
    """
    with _job_locks(store, (PRODUCTS_LOCK,), lock), _client_scope(settings, client) as source, _bulk_gc():
        job = _ProductsJob(store, settings, source, clock, dry_run)
        with job.writer:
            return job.run(full=full, trigger=trigger, parent_id=parent_id)


def sync_orders(
    store: Store,
    settings: Settings,
    *,
    days_back: int | None = None,
    since: date | None = None,
    until: date | None = None,
    dry_run: bool = False,
    trigger: str = "cli",
    client: ExportSource | None = None,
    clock: Clock = utcnow,
    parent_id: int | None = None,
    lock: bool = False,
) -> SyncResult:
    """Pull orders modified since the last successful sync (or `days_back` days, or the bounded since..until).

    `lock` takes the job's lock (`smartup-orders`) for the run; run-all holds it already and leaves it False.
    """
    _check_window_options(days_back, since, until)
    with _job_locks(store, (ORDERS_LOCK,), lock), _client_scope(settings, client) as source, _bulk_gc():
        job = _OrdersJob(store, settings, source, clock, dry_run)
        with job.writer:
            return job.run(days_back=days_back, since=since, until=until, trigger=trigger, parent_id=parent_id)


def sync_order(
    store: Store,
    settings: Settings,
    *,
    deal_id: str,
    dry_run: bool = False,
    trigger: str = "cli",
    client: ExportSource | None = None,
    clock: Clock = utcnow,
    lock: bool = False,
) -> SyncResult:
    """Pull and upsert one order by its deal_id; the orders cursor does not move."""
    if not deal_id.strip():
        raise UsageError("DEAL_ID is empty", "Pass the SmartUp deal_id of the order")
    with _job_locks(store, (ORDERS_LOCK,), lock), _client_scope(settings, client) as source:
        job = _OrdersJob(store, settings, source, clock, dry_run)
        with job.writer:
            return job.run_one(deal_id=deal_id.strip(), trigger=trigger)


def sync_all(
    store: Store,
    settings: Settings,
    *,
    full: bool = False,
    dry_run: bool = False,
    trigger: str = "cli",
    client: ExportSource | None = None,
    clock: Clock = utcnow,
    lock: bool = False,
) -> SyncResult:
    """Products, then orders, as one run_type=full run with two child runs (one failing makes it PARTIAL)."""
    with (
        _job_locks(store, (PRODUCTS_LOCK, ORDERS_LOCK), lock),
        _client_scope(settings, client) as source,
        recorded_run(store, job=JOB, run_type="full", trigger=trigger) as run,
    ):
        products = sync_products(
            store, settings, full=full, dry_run=dry_run, trigger=trigger, client=source, clock=clock, parent_id=run.id
        )
        orders = sync_orders(
            store, settings, dry_run=dry_run, trigger=trigger, client=source, clock=clock, parent_id=run.id
        )
        children = [products, orders]
        for child in children:
            run.add(**child.counts)
            for key in ("would_insert", "would_update"):
                if key in child.details:
                    run.details[key] = run.details.get(key, 0) + child.details[key]
        run.details.update(children=[c.run_id for c in children], dry_run=dry_run)
        run.details["budget"] = _merge_budgets([c.details.get("budget", {}) for c in children])
        bad = [c for c in children if c.status != "SUCCESS"]
        if bad:
            message = "; ".join(f"{c.run_type}: {c.status} ({c.error})" for c in bad)
            run.fail(message, partial=len(bad) < len(children) or any(c.status == "PARTIAL" for c in bad))
        result = _result(run, dry_run=dry_run)
        result.children = children
    result.status = run.status
    return result


# --- the jobs ------------------------------------------------------------------------------------------------


class _Job:
    """What the products and orders jobs share: the budget, the failure list, the result."""

    run_type = ""

    def __init__(self, store: Store, settings: Settings, source: ExportSource, clock: Clock, dry_run: bool) -> None:
        self.store = store
        self.settings = settings
        self.source = source
        self.clock = clock
        self.dry_run = dry_run
        self.tz = ZoneInfo(settings.smartup_timezone)
        self.budget = _Budget(store, settings, source, clock)
        self.writer = _BatchWriter(WRITERS if store.dialect == "postgresql" and not dry_run else 1)
        self.fresh: set[str] = set()
        self.lock = threading.Lock()
        # PostgreSQL: hash, look up and map on this thread and only write on the writer thread (its unique keys
        # keep the counts exact whatever the lookup saw). SQLite: all of a batch inside one BEGIN IMMEDIATE.
        self.split = store.dialect == "postgresql" and not dry_run
        self.failures: list[dict[str, Any]] = []
        self.side_failures = 0
        self.cursor_before: str | None = None
        self.handle: RunHandle | None = None

    def note_fresh_tables(self, *names: str) -> None:
        """Remember which tables are empty as the run starts: on PostgreSQL their batches skip the lookup of
        stored rows (the unique keys still catch a row that exists after all, and the counts stay exact)."""
        if self.store.dialect != "postgresql" or self.dry_run:
            return
        with self.store.session() as session:
            self.fresh = {name for name in names if upserts.is_empty(session, table_name=name)}

    def today(self) -> date:
        return self.clock().astimezone(self.tz).date()

    def local_midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(), tzinfo=self.tz).astimezone(UTC)

    def count(self, **counts: int) -> None:
        """Add to the run's counters (from either thread)."""
        assert self.handle is not None
        with self.lock:
            self.handle.add(**counts)

    def beat(self) -> None:
        assert self.handle is not None
        with self.lock:
            self.handle.beat()

    def fail_item(self, error: ItemError, *, counted: bool = True) -> None:
        """Count a bad item failed (or as a side failure, for items outside the run's counters) and keep why."""
        with self.lock:
            if counted:
                assert self.handle is not None
                self.handle.add(failed=1)
            else:
                self.side_failures += 1
            if len(self.failures) >= FAILURES_KEPT:  # the first ones are kept and logged; the rest only counted
                return
            self.failures.append(error.as_dict())
        log.warning("item_failed", f"{self.run_type} item {error.item_id or '?'} not stored: {error.reason}")

    def finish(self, run: RunHandle, stopped: CamsyncError | None) -> SyncResult:
        """Settle the run's status from what happened, and write its details."""
        self.writer.close()
        self._analyze(run)
        synced = sum(run.counts[k] for k in ("inserted", "updated", "unchanged"))
        run.details.update(self.budget.details())
        run.details["dry_run"] = self.dry_run
        if self.failures:
            run.details["failures"] = self.failures
        bad_items = run.counts["failed"] + self.side_failures
        if stopped is not None:
            budget_stop = isinstance(stopped, BudgetStop)
            run.fail(str(stopped), partial=budget_stop and (synced > 0 or self.budget.completed > 0))
        elif bad_items:
            noun = "item" if bad_items == 1 else "items"
            run.fail(f"{bad_items} {noun} could not be stored (see details.failures)", partial=synced > 0)
        if run.status != "SUCCESS" or self.dry_run:
            run.cursor_after = None
        result = _result(run, dry_run=self.dry_run)
        result.cursor_before = self.cursor_before
        return result

    def loaded_tables(self, run: RunHandle) -> list[str]:
        """The tables this run filled with many new rows."""
        return []

    def _analyze(self, run: RunHandle) -> None:
        """After a large load, refresh the planner's statistics (the next run's lookups depend on them)."""
        tables = self.loaded_tables(run) if self.split else []
        if not tables:
            return
        try:
            with self.store.writer() as session:
                upserts.analyze(session, tables=tables)
        except Exception as exc:  # statistics are an optimisation: the run stands without them
            log.warning("analyze_failed", f"ANALYZE {', '.join(tables)} failed: {exc}")

    def settle(self, stopped: CamsyncError | None) -> CamsyncError | None:
        """Wait for the writes handed to the writer (dropping the rest once one failed); the first error wins.

        Batches of answers fetched before a failed call are whole and are written; a write error is returned."""
        if self.writer.failed:
            self.writer.abandon()
            return stopped
        try:
            self.writer.drain()
        except CamsyncError as error:
            return stopped or error
        return stopped

    def batches(self, export: Export) -> Iterator[list[Any]]:
        """Batches of the items as the raw JSON SmartUp sent (decoded only when they must be): at most
        `BATCH_SIZE` items and about `BATCH_BYTES` of JSON, so that large items (orders with many lines) come in
        smaller batches and the batches in flight stay within a bounded memory."""
        batch: list[Any] = []
        size = 0
        for item in export.raw_items():
            batch.append(item)
            size += len(item)
            if len(batch) >= BATCH_SIZE or size >= BATCH_BYTES:
                yield batch
                batch, size = [], 0
        if batch:
            yield batch

    def fingerprints(self, batch: list[Any], key_field: str, seen: dict[str, str]) -> list[Fingerprint]:
        """Each item's key and hash; bad items are counted failed.

        `seen` maps the keys of the answer so far to their hashes. A key that comes again is not written twice
        (batches may be written in any order): the same item again counts unchanged, a different one failed,
        and the first is kept.
        """
        self.count(fetched=len(batch))
        kept = []
        repeated = 0
        for source in batch:
            try:
                fp = fingerprint_raw(source, key_field=key_field)
            except ItemError as error:
                self.fail_item(error)
                continue
            first = seen.get(fp.key)
            if first is None:
                seen[fp.key] = fp.content_hash
                kept.append(fp)
            elif first == fp.content_hash:
                repeated += 1
            else:
                reason = f"{key_field} appears twice in one answer with different content; the first item is kept"
                self.fail_item(ItemError(fp.key, reason))
        self.count(unchanged=repeated)
        return kept


class _ProductsJob(_Job):
    run_type = "products"

    def __init__(self, store: Store, settings: Settings, source: ExportSource, clock: Clock, dry_run: bool) -> None:
        super().__init__(store, settings, source, clock, dry_run)
        self.mapper = ProductMapper(_PRODUCT_LIMITS)
        self.price_mapper = PriceMapper(_PRICE_LIMITS)
        self.all_known: dict[str, tuple[str, bool]] | None = None
        self.code_ids: dict[str, int] | None = None

    def run(self, *, full: bool, trigger: str, parent_id: int | None) -> SyncResult:
        with self.store.session() as session:
            previous = upserts.last_cursor_run(session, job=JOB, run_type="products")
            last_full = upserts.last_full_refresh(session, job=JOB, run_type="products")
        started = self.clock()
        full = full or previous is None or last_full is None or started - last_full.started_at > FULL_REFRESH_EVERY
        since = None if full or previous is None else _products_since(previous.cursor_after, self.tz)
        self.cursor_before = previous.cursor_after if previous else None
        with recorded_run(
            self.store,
            job=JOB,
            run_type="products",
            trigger=trigger,
            parent_id=parent_id,
            cursor_before=self.cursor_before,
        ) as run:
            self.handle = run
            run.window_start = self.local_midnight(since) if since else None
            run.window_end = started
            run.cursor_after = started.isoformat()
            run.details.update(full_refresh=full and not self.dry_run, mode="full" if full else "incremental")
            self.note_fresh_tables("products", "product_prices")
            stopped = self._pull(full=full, since=since, started=started)
            result = self.finish(run, stopped)
            if run.status != "SUCCESS" or self.dry_run:
                run.details["full_refresh"] = False
            log.info("products_synced", f"products: {_summary(run)}", mode=run.details["mode"], **run.counts)
        result.status = run.status
        return result

    def _pull(self, *, full: bool, since: date | None, started: datetime) -> CamsyncError | None:
        assert self.handle is not None
        seen: dict[str, str] = {}
        stopped = self._fetch_products(full=full, since=since, started=started, seen=seen)
        stopped = self.settle(stopped)
        if stopped is None and full and not self.dry_run:
            with self.store.writer() as session:
                flagged = upserts.flag_missing_products(session, seen_ids=seen.keys(), now=started)
            self.handle.details["flagged_missing"] = flagged
        return stopped

    def _fetch_products(
        self, *, full: bool, since: date | None, started: datetime, seen: dict[str, str]
    ) -> CamsyncError | None:
        """Fetch the products (and on a full refresh the prices) and hand their batches to the writer."""
        try:
            self.budget.check(BudgetClass.REFERENCE)
            with self.source.export_products(begin_modified_on=since) as export:
                if full and self.split and "products" not in self.fresh:
                    # The answer holds every product: one read of the stored hashes beats a lookup per batch.
                    with self.store.session() as session:
                        self.all_known = upserts.all_known_products(session)
                for batch in self.batches(export):
                    self._products_batch(batch, seen, started)
                self.budget.saw(export)
            if full:
                self._prices(started)  # fetched while the writer still writes products; written after them
        except (BudgetStop, SmartupBudgetError) as stop:
            return self.budget.stopped(stop)
        except CamsyncError as error:
            return error
        return None

    def loaded_tables(self, run: RunHandle) -> list[str]:
        prices = run.details.get("prices") or {}
        return [
            name
            for name, inserted in (("products", run.counts["inserted"]), ("product_prices", prices.get("inserted", 0)))
            if inserted >= ANALYZE_FROM
        ]

    def _products_batch(self, batch: list[Any], seen: dict[str, str], now: datetime) -> None:
        """Hash, look up, map and write one batch: on PostgreSQL the writer thread only writes (see `split`)."""
        prints = self.fingerprints(batch, "product_id", seen)
        if not self.split:
            self.writer.submit(self._products_in_one_transaction, prints, now)
            return
        with self.store.session() as session:
            known = self._known_products(session, prints)
        self.writer.submit(self._write_products, self._product_rows(prints, known), set(known), now)

    def _known_products(self, session: Any, prints: list[Fingerprint]) -> dict[str, Any]:
        if "products" in self.fresh:
            return {}
        if self.all_known is not None:
            return {fp.key: self.all_known[fp.key] for fp in prints if fp.key in self.all_known}
        return upserts.known_products(session, external_ids=[fp.key for fp in prints])

    def _product_rows(self, prints: list[Fingerprint], known: dict[str, Any]) -> list[dict[str, Any]]:
        rows = []
        unchanged = 0
        for fp in prints:
            if known.get(fp.key) == (fp.content_hash, False):
                unchanged += 1
                continue
            try:
                rows.append(self.mapper(fp))
            except ItemError as error:
                self.fail_item(error)
        self.count(unchanged=unchanged)
        return rows

    def _products_in_one_transaction(self, prints: list[Fingerprint], now: datetime) -> None:
        with self.store.session() if self.dry_run else self.store.writer() as session:
            known = self._known_products(session, prints)
            rows = self._product_rows(prints, known)
            if self.dry_run:
                self._would(rows, known, "external_id")
                return
            self._write_products(rows, set(known), now, session)

    def _write_products(
        self, rows: list[dict[str, Any]], existing: set[str], now: datetime, session: Any = None
    ) -> None:
        with _same_or_new(self.store, session) as writing:
            counts = upserts.upsert_products(writing, rows=rows, now=now, existing=existing)
        written = counts.inserted + counts.updated
        self.count(inserted=counts.inserted, updated=counts.updated, unchanged=len(rows) - written)
        self.beat()

    def _would(self, rows: list[dict[str, Any]], known: dict[str, Any], key: str) -> None:
        assert self.handle is not None
        details = self.handle.details
        new = sum(1 for row in rows if row[key] not in known)
        details["would_insert"] = details.get("would_insert", 0) + new
        details["would_update"] = details.get("would_update", 0) + len(rows) - new

    def _prices(self, now: datetime) -> None:
        assert self.handle is not None
        self.budget.check(BudgetClass.REFERENCE)
        tally = {"fetched": 0, "inserted": 0, "updated": 0, "failed": 0}
        with self.source.export_prices() as export:
            # Prices link to products by code: the products handed to the writer are written first.
            self.writer.drain()
            if self.split:
                with self.store.session() as session:
                    self.code_ids = upserts.all_product_ids_by_code(session)
            seen: dict[str, Any] = {}
            for batch in self.batches(export):
                rows = self._price_rows(batch, tally, seen)
                if rows and not self.dry_run:
                    self.writer.submit(self._prices_batch, rows, tally, now)
            self.budget.saw(export)
        self.handle.details["prices"] = tally

    def _prices_batch(self, rows: list[dict[str, Any]], tally: dict[str, int], now: datetime) -> None:
        with self.store.writer() as session:
            counts = upserts.upsert_prices(
                session,
                rows=rows,
                now=now,
                assume_new="product_prices" in self.fresh,
                product_ids=self.code_ids,
            )
        with self.lock:
            tally["inserted"] += counts.inserted
            tally["updated"] += counts.updated

    def _price_rows(self, batch: list[Any], tally: dict[str, int], seen: dict[str, Any]) -> list[dict[str, Any]]:
        """The price rows of a batch. A (product, price type) seen before in the answer is written once: the same
        price again is dropped quietly, a different one is counted failed and the first is kept."""
        rows = []
        for item in batch:
            tally["fetched"] += 1
            try:
                mapped = self.price_mapper(item)
            except ItemError as error:
                tally["failed"] += 1
                self.fail_item(error, counted=False)
                continue
            for row in mapped:
                key = f"{row['product_code']}\x00{row['price_type_code']}"
                first = seen.get(key)
                if first is None:
                    seen[key] = row["price"]
                    rows.append(row)
                elif first != row["price"]:
                    tally["failed"] += 1
                    reason = f"price type {row['price_type_code']} has two prices; the first is kept"
                    self.fail_item(ItemError(row["product_code"], reason), counted=False)
        return rows


class _OrdersJob(_Job):
    run_type = "orders"
    links: upserts.ProductLinks | None = None

    def __init__(self, store: Store, settings: Settings, source: ExportSource, clock: Clock, dry_run: bool) -> None:
        super().__init__(store, settings, source, clock, dry_run)
        self.mapper = OrderMapper(tz=self.tz, limits=_ORDER_LIMITS, line_limits=_LINE_LIMITS)
        self.handed: set[str] = set()  # deal_ids handed to the writers in this run

    def run(
        self, *, days_back: int | None, since: date | None, until: date | None, trigger: str, parent_id: int | None
    ) -> SyncResult:
        with self.store.session() as session:
            previous = upserts.last_cursor_run(session, job=JOB, run_type="orders")
        today = self.today()
        bounded = since is not None and until is not None
        if bounded:
            assert since is not None and until is not None
            start, end = since, until
        elif days_back is not None:
            start, end = today - timedelta(days=days_back - 1), today
        elif previous is not None and previous.cursor_after:
            start, end = date.fromisoformat(previous.cursor_after) - timedelta(days=ORDERS_OVERLAP_DAYS), today
            start = min(start, today)
        else:
            start, end = today - timedelta(days=self.settings.sync_orders_days_back - 1), today
        self.cursor_before = previous.cursor_after if previous else None
        with recorded_run(
            self.store,
            job=JOB,
            run_type="orders",
            trigger=trigger,
            parent_id=parent_id,
            cursor_before=self.cursor_before,
        ) as run:
            self.handle = run
            run.window_start = self.local_midnight(start)
            run.window_end = self.local_midnight(end + timedelta(days=1))
            run.cursor_after = None if bounded else end.isoformat()
            run.details["mode"] = "bounded" if bounded else "back-fill" if days_back is not None else "incremental"
            self.note_fresh_tables("orders")
            stopped = self._pull_windows(start, end)
            result = self.finish(run, stopped)
            self._log(run)
        result.status = run.status
        return result

    def run_one(self, *, deal_id: str, trigger: str) -> SyncResult:
        with recorded_run(self.store, job=JOB, run_type="orders", trigger=trigger) as run:
            self.handle = run
            run.details.update(mode="one", deal_id=deal_id)
            stopped = self._pull(deal_id=deal_id)
            if stopped is None and run.counts["fetched"] == 0:
                stopped = NotFoundError(f"SmartUp has no order with deal_id {deal_id}", "Check the deal_id")
            result = self.finish(run, stopped)
            self._log(run)
        result.status = run.status
        return result

    def _log(self, run: RunHandle) -> None:
        log.info(
            "orders_synced",
            f"orders: {_summary(run)}, {run.details.get('lines_written', 0)} lines written",
            mode=run.details.get("mode"),
            **run.counts,
        )

    def loaded_tables(self, run: RunHandle) -> list[str]:
        counts = (("orders", run.counts["inserted"]), ("order_lines", run.details.get("lines_written", 0)))
        return [name for name, count in counts if count >= ANALYZE_FROM]

    def _pull_windows(self, start: date, end: date) -> CamsyncError | None:
        """Fetch window after window while the writer writes the ones before; the windows are recorded once
        everything handed to the writer is written."""
        assert self.handle is not None
        windows = self.handle.details.setdefault("windows", [])
        fetched = []
        stopped = None
        for begin, finish in _windows(start, end, self.budget.day_range_limit()):
            stopped = self._fetch(begin=begin, end=finish)
            if stopped is not None:
                break
            fetched.append([begin.isoformat(), finish.isoformat()])
        stopped = self.settle(stopped)
        if not self.writer.failed:
            windows.extend(fetched)
        return stopped

    def _pull(self, *, deal_id: str) -> CamsyncError | None:
        return self.settle(self._fetch(deal_id=deal_id))

    def _fetch(self, *, begin: date | None = None, end: date | None = None, deal_id: str = "") -> CamsyncError | None:
        """Fetch one export of orders and hand its batches to the writer."""
        try:
            self.budget.check(BudgetClass.DOCUMENTS)
            with self.source.export_orders(begin_modified_on=begin, end_modified_on=end, deal_id=deal_id) as export:
                seen: dict[str, str] = {}
                for batch in self.batches(export):
                    self._orders_batch(batch, seen)
                self.budget.saw(export)
        except (BudgetStop, SmartupBudgetError) as stop:
            return self.budget.stopped(stop)
        except CamsyncError as error:
            return error
        return None

    def _orders_batch(self, batch: list[Any], seen: dict[str, str]) -> None:
        """Hash, look up, map and write one batch: on PostgreSQL the writer thread only writes (see `split`)."""
        prints = self.fingerprints(batch, "deal_id", seen)
        if not self.split:
            self.writer.submit(self._orders_in_one_transaction, prints)
            return
        if any(fp.key in self.handed for fp in prints):
            # An order an earlier window had as well (it changed meanwhile): its earlier write lands first, so
            # the later version wins and no two writers hold the same order.
            self.writer.drain()
        self.handed.update(fp.key for fp in prints)
        with self.store.session() as session:
            known = self._known_orders(session, prints)
            orders, lines = self._order_rows(prints, known)
            if orders and self.links is None and len(prints) >= LINK_CACHE_FROM:
                self.links = upserts.load_product_links(session)
        self.writer.submit(self._write_orders, orders, lines, set(known))

    def _known_orders(self, session: Any, prints: list[Fingerprint]) -> dict[str, str]:
        if "orders" in self.fresh:
            return {}
        return upserts.known_orders(session, deal_ids=[fp.key for fp in prints])

    def _order_rows(
        self, prints: list[Fingerprint], known: dict[str, str]
    ) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
        orders, lines = [], {}
        unchanged = 0
        for fp in prints:
            if known.get(fp.key) == fp.content_hash:
                unchanged += 1
                continue
            try:
                order, order_lines = self.mapper(fp)
            except ItemError as error:
                self.fail_item(error)
                continue
            self._count_status(order["status"])
            orders.append(order)
            lines[fp.key] = order_lines
        self.count(unchanged=unchanged)
        return orders, lines

    def _orders_in_one_transaction(self, prints: list[Fingerprint]) -> None:
        with self.store.session() if self.dry_run else self.store.writer() as session:
            known = self._known_orders(session, prints)
            orders, lines = self._order_rows(prints, known)
            if self.dry_run:
                new = sum(1 for order in orders if order["source_external_id"] not in known)
                self._bump("would_insert", new)
                self._bump("would_update", len(orders) - new)
                return
            if orders and self.links is None and len(prints) >= LINK_CACHE_FROM:
                self.links = upserts.load_product_links(session)
            self._write_orders(orders, lines, set(known), session)

    def _write_orders(
        self,
        orders: list[dict[str, Any]],
        lines: dict[str, list[dict[str, Any]]],
        existing: set[str],
        session: Any = None,
    ) -> None:
        with _same_or_new(self.store, session) as writing:
            counts = upserts.upsert_orders(
                writing, orders=orders, lines=lines, now=self.clock(), links=self.links, existing=existing
            )
        written = counts.inserted + counts.updated
        self.count(inserted=counts.inserted, updated=counts.updated, unchanged=len(orders) - written)
        self._bump("lines_written", counts.lines_written)
        self._bump("lines_unlinked", counts.lines_unlinked)
        self.beat()

    def _bump(self, key: str, value: int) -> None:
        assert self.handle is not None
        with self.lock:
            self.handle.details[key] = self.handle.details.get(key, 0) + value

    def _count_status(self, status: str) -> None:
        if status not in STATUS_LABELS:
            assert self.handle is not None
            with self.lock:
                unknown = self.handle.details.setdefault("unknown_statuses", {})
                unknown[status] = unknown.get(status, 0) + 1


# --- the batch writer ---------------------------------------------------------------------------------------


class _BatchWriter:
    """Writes batches on `workers` background threads, so the database works while the next batch is read.

    Each batch is its own transaction, exactly as when written inline; with one worker they are written in order.
    At most `IN_FLIGHT` batches wait besides those being written, which bounds memory. `drain` waits for all and
    raises the first error; once a batch failed (`failed`), `abandon` drops the batches not started yet and waits
    for those being written.
    """

    IN_FLIGHT = 2

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="smartup-writer")
        self._pending: deque[Future[None]] = deque()
        self.failed = False  # a batch failed: the rest is dropped

    def submit(self, work: Callable[..., None], *args: Any) -> None:
        if self.failed:
            raise RuntimeError("the writer stopped after a failed batch")
        self._pending.append(self._pool.submit(work, *args))
        while len(self._pending) > self.IN_FLIGHT + self.workers - 1:
            self._wait(self._pending.popleft())

    def drain(self) -> None:
        try:
            while self._pending:
                self._wait(self._pending.popleft())
        except BaseException:
            self.abandon()
            raise

    def _wait(self, future: Future[None]) -> None:
        try:
            future.result()
        except BaseException:
            self.failed = True
            raise

    def abandon(self) -> None:
        for future in self._pending:
            future.cancel()
        wait(self._pending)
        self._pending.clear()

    def close(self) -> None:
        self.abandon()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> _BatchWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        """Whatever ended the run (an unexpected error included), no batch is written after it."""
        self.close()


# --- the call budget -----------------------------------------------------------------------------------------


class _Budget:
    """The daily call budgets as this run sees them: checked before each call, recorded in the run's details."""

    def __init__(self, store: Store, settings: Settings, source: ExportSource, clock: Clock) -> None:
        self.settings = settings
        self.source = source
        self.clock = clock
        self.tz = ZoneInfo(settings.smartup_timezone)
        self.calls_at_start = dict(source.calls)
        self.left: dict[str, int] = {}
        self.seen_at: dict[str, str] = {}
        self.range_limit: int | None = None
        self.completed = 0
        self._store = store
        self._earlier: dict[str, int] | None = None

    def calls_made(self) -> int:
        return sum(self._calls().values())

    def _calls(self) -> dict[str, int]:
        return {
            budget.value: count - self.calls_at_start.get(budget, 0)
            for budget, count in self.source.calls.items()
            if count - self.calls_at_start.get(budget, 0)
        }

    def reset_at(self) -> datetime:
        """When the daily budgets start again: the next midnight in the tenant's time zone."""
        local = self.clock().astimezone(self.tz)
        return datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=self.tz)

    def newest_left(self, budget: BudgetClass) -> int | None:
        limits = self.source.last_limits.get(budget)
        if limits is not None:
            return limits.left_limit_quant if limits.has_limit else None
        return self._earlier_left().get(budget.value)

    def _earlier_left(self) -> dict[str, int]:
        """What earlier runs saw left today (since the last reset), newest first wins."""
        if self._earlier is None:
            since = self.reset_at() - timedelta(days=1)
            with self._store.session() as session:
                history = upserts.recent_run_details(session, job=JOB)
            self._earlier = {}
            for details in reversed(history):
                budget = details.get("budget") or {}
                for name, left in (budget.get("left") or {}).items():
                    seen = (budget.get("seen_at") or {}).get(name)
                    if isinstance(left, int) and seen and datetime.fromisoformat(seen) >= since:
                        self._earlier[name] = left
        return self._earlier

    def check(self, budget: BudgetClass) -> None:
        """Raise BudgetStop when one more call of this class would go below the reserve."""
        left = self.newest_left(budget)
        reserve = self.settings.smartup_call_reserve
        if left is not None and left - 1 < reserve:
            raise BudgetStop(
                f"SmartUp {budget.value} budget: {left} calls left today, reserve {reserve}; stopped before calling",
                f"The budget resets at {self.reset_at().strftime('%Y-%m-%d %H:%M')} {self.settings.smartup_timezone}"
                " (midnight); lower SMARTUP_CALL_RESERVE or sync less often",
            )

    def saw(self, export: Export) -> None:
        """Note the limits block of a finished export."""
        self.completed += 1
        limits = export.limits or self.source.last_limits.get(export.budget_class)
        if limits is None:
            return
        if limits.left_limit_quant is not None:
            self.left[export.budget_class.value] = limits.left_limit_quant
            self.seen_at[export.budget_class.value] = self.clock().isoformat()
        if limits.day_range_limit:
            self.range_limit = limits.day_range_limit

    def day_range_limit(self) -> int:
        """The widest date range of one call: the API's own value when seen, else SMARTUP_DAY_RANGE_LIMIT."""
        limits = self.source.last_limits.get(BudgetClass.DOCUMENTS)
        if limits is not None and limits.day_range_limit:
            return limits.day_range_limit
        return self.range_limit or self.settings.smartup_day_range_limit

    def stopped(self, stop: CamsyncError) -> CamsyncError:
        if isinstance(stop, SmartupBudgetError):
            stop = BudgetStop(
                stop.reason,
                f"{stop.hint}. It resets at {self.reset_at().strftime('%Y-%m-%d %H:%M')} "
                f"{self.settings.smartup_timezone}",
            )
        log.error("budget_stop", str(stop))
        return stop

    def details(self) -> dict[str, Any]:
        for budget, limits in self.source.last_limits.items():
            if (
                limits.left_limit_quant is not None
                and budget.value not in self.left
                and self._calls().get(budget.value)
            ):
                self.left[budget.value] = limits.left_limit_quant
                self.seen_at[budget.value] = self.clock().isoformat()
        return {"budget": {"calls": self._calls(), "left": dict(self.left), "seen_at": dict(self.seen_at)}}


# --- helpers -------------------------------------------------------------------------------------------------


@contextmanager
def _same_or_new(store: Store, session: Any) -> Iterator[Any]:
    """The caller's session when it has one, else a new writer transaction (one per batch)."""
    if session is not None:
        yield session
        return
    with store.writer() as writing:
        yield writing


@contextmanager
def _bulk_gc() -> Iterator[None]:
    """Run the block with the cyclic garbage collector's first threshold raised.

    A sync allocates millions of short-lived rows, which reference counting frees; at the default thresholds the
    collector would still walk the whole heap (answers, caches) a dozen times in a large first sync (~10 % of it).
    Cycles made meanwhile are still collected, less often. The thresholds are restored afterwards.
    """
    before = gc.get_threshold()
    gc.set_threshold(BULK_GC_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


@contextmanager
def _job_locks(store: Store, names: tuple[str, ...], take: bool) -> Iterator[None]:
    """Hold the named job locks for the block when `take` (LockedError when another run holds one)."""
    with ExitStack() as stack:
        for name in names if take else ():
            stack.enter_context(job_lock(store, name))
        yield


@contextmanager
def _client_scope(settings: Settings, client: ExportSource | None) -> Iterator[ExportSource]:
    """The injected client as it is, or a new real one closed at the end."""
    if client is not None:
        yield client
        return
    with SmartupClient.from_settings(settings) as real:
        yield real


def _check_window_options(days_back: int | None, since: date | None, until: date | None) -> None:
    if (since is None) != (until is None):
        raise UsageError("--since and --until go together", "Pass both dates of the window")
    if since is not None and days_back is not None:
        raise UsageError("--days-back cannot be combined with --since/--until", "Pass one or the other")
    if since is not None and until is not None and until < since:
        raise UsageError(f"--until {until} is before --since {since}", "Swap the dates")
    if days_back is not None and not 1 <= days_back <= 90:
        raise UsageError(f"--days-back {days_back} is outside 1..90", "Pass a number of days from 1 to 90")


def _windows(start: date, end: date, limit: int) -> Iterable[tuple[date, date]]:
    """[start, end] cut into consecutive inclusive windows of at most `limit` days."""
    begin = start
    while begin <= end:
        finish = min(end, begin + timedelta(days=max(limit, 1) - 1))
        yield begin, finish
        begin = finish + timedelta(days=1)


def _products_since(cursor: str | None, tz: ZoneInfo) -> date | None:
    if not cursor:
        return None
    return (datetime.fromisoformat(cursor) - PRODUCTS_OVERLAP).astimezone(tz).date()


def _merge_budgets(budgets: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"calls": {}, "left": {}, "seen_at": {}}
    for budget in budgets:
        for name, count in (budget.get("calls") or {}).items():
            merged["calls"][name] = merged["calls"].get(name, 0) + count
        merged["left"].update(budget.get("left") or {})
        merged["seen_at"].update(budget.get("seen_at") or {})
    return merged


def _summary(run: RunHandle) -> str:
    c = run.counts
    return (
        f"{c['fetched']} fetched, {c['inserted']} inserted, {c['updated']} updated, "
        f"{c['unchanged']} unchanged, {c['failed']} failed"
    )


def _result(run: RunHandle, *, dry_run: bool) -> SyncResult:
    return SyncResult(
        run_id=run.id,
        run_type=run.run_type,
        status=run.status,
        error=run.error_message,
        counts=dict(run.counts),
        details=run.details,
        window_start=run.window_start,
        window_end=run.window_end,
        cursor_after=run.cursor_after,
        dry_run=dry_run,
    )
