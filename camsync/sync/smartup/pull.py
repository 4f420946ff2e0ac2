"""The SmartUp pull's entry points: products (with their groups), orders, one order, product groups, stock, and
all of them as one run (`smartup sync`).

Each takes the job's lock when asked (run-all holds it already), opens the client (or takes the one injected),
and runs with the writer stopping with the run whatever ends it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date

from camsync.errors import UsageError
from camsync.settings import Settings
from camsync.store.base import utcnow
from camsync.store.engine import Store
from camsync.store.locks import job_lock
from camsync.sync.ledger import recorded_run
from camsync.sync.smartup.budget import merge_budgets
from camsync.sync.smartup.groups import GroupsRun
from camsync.sync.smartup.orders import OrdersRun
from camsync.sync.smartup.products import ProductsRun
from camsync.sync.smartup.result import SyncResult, result_of
from camsync.sync.smartup.run import JOB, Clock
from camsync.sync.smartup.source import ExportSource, client_scope
from camsync.sync.smartup.stock import StockRun
from camsync.sync.smartup.windows import check_window_options

PRODUCTS_LOCK = "smartup-products"  # the names run-all locks the jobs by (product groups go with products)
ORDERS_LOCK = "smartup-orders"
STOCK_LOCK = "smartup-stock"
BULK_GC_THRESHOLD = 50_000  # allocations between two young-generation collections during a sync (default 700)


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
    """Pull products (incremental, or a full refresh that also pulls prices and flags vanished products), then
    the product groups when the run calls for them (a full refresh, or values the store does not know): their run
    is the result's child.

    `lock` takes the job's lock (`smartup-products`) for the run; run-all holds it already and leaves it False.
    """
    with _job_locks(store, (PRODUCTS_LOCK,), lock), client_scope(settings, client) as source, _bulk_gc():
        job = ProductsRun(store, settings, source, clock, dry_run)
        with job.writer:
            result = job.run(full=full, trigger=trigger, parent_id=parent_id)
        reason = job.groups_wanted(result)
        if reason is not None:
            groups = GroupsRun(store, settings, source, clock, dry_run)
            with groups.writer:
                result.children.append(groups.run(trigger=trigger, parent_id=parent_id, reason=reason))
        return result


def sync_groups(
    store: Store,
    settings: Settings,
    *,
    dry_run: bool = False,
    trigger: str = "cli",
    client: ExportSource | None = None,
    clock: Clock = utcnow,
    parent_id: int | None = None,
    lock: bool = False,
) -> SyncResult:
    """Pull the product groups (every classification and its values); under the products lock."""
    return _one_call(GroupsRun, PRODUCTS_LOCK, store, settings, dry_run, trigger, client, clock, parent_id, lock)


def sync_stock(
    store: Store,
    settings: Settings,
    *,
    dry_run: bool = False,
    trigger: str = "cli",
    client: ExportSource | None = None,
    clock: Clock = utcnow,
    parent_id: int | None = None,
    lock: bool = False,
) -> SyncResult:
    """Pull the stock as of today and replace the stored snapshot; under the `smartup-stock` lock."""
    return _one_call(StockRun, STOCK_LOCK, store, settings, dry_run, trigger, client, clock, parent_id, lock)


def _one_call(
    kind: type[GroupsRun] | type[StockRun],
    lock_name: str,
    store: Store,
    settings: Settings,
    dry_run: bool,
    trigger: str,
    client: ExportSource | None,
    clock: Clock,
    parent_id: int | None,
    lock: bool,
) -> SyncResult:
    """Run an export that is one call and one write (groups, stock) under its job's lock."""
    with _job_locks(store, (lock_name,), lock), client_scope(settings, client) as source, _bulk_gc():
        job = kind(store, settings, source, clock, dry_run)
        with job.writer:
            return job.run(trigger=trigger, parent_id=parent_id)


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
    check_window_options(days_back, since, until)
    with _job_locks(store, (ORDERS_LOCK,), lock), client_scope(settings, client) as source, _bulk_gc():
        job = OrdersRun(store, settings, source, clock, dry_run)
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
    with _job_locks(store, (ORDERS_LOCK,), lock), client_scope(settings, client) as source:
        job = OrdersRun(store, settings, source, clock, dry_run)
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
    """Products (with their groups), orders and stock as one run_type=full run with a child run each (one failing
    makes it PARTIAL)."""
    with (
        _job_locks(store, (PRODUCTS_LOCK, ORDERS_LOCK, STOCK_LOCK), lock),
        client_scope(settings, client) as source,
        recorded_run(store, job=JOB, run_type="full", trigger=trigger) as run,
    ):
        products = sync_products(
            store, settings, full=full, dry_run=dry_run, trigger=trigger, client=source, clock=clock, parent_id=run.id
        )
        orders = sync_orders(
            store, settings, dry_run=dry_run, trigger=trigger, client=source, clock=clock, parent_id=run.id
        )
        stock = sync_stock(
            store, settings, dry_run=dry_run, trigger=trigger, client=source, clock=clock, parent_id=run.id
        )
        children = [products, *products.children, orders, stock]
        products.children = []
        for child in children:
            run.add(**child.counts)
            for key in ("would_insert", "would_update"):
                if key in child.details:
                    run.details[key] = run.details.get(key, 0) + child.details[key]
        run.details.update(children=[c.run_id for c in children], dry_run=dry_run)
        run.details["budget"] = merge_budgets([c.details.get("budget", {}) for c in children])
        bad = [c for c in children if c.status != "SUCCESS"]
        if bad:
            message = "; ".join(f"{c.run_type}: {c.status} ({c.error})" for c in bad)
            run.fail(message, partial=len(bad) < len(children) or any(c.status == "PARTIAL" for c in bad))
        result = result_of(run, dry_run=dry_run)
        result.children = children
    result.status = run.status
    return result


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
