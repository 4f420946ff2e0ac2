"""The products export: a full refresh (every product, then the prices, then the missing flags) or the products
changed since a day before the last run."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from camsync.clients.smartup_errors import SmartupBudgetError
from camsync.clients.smartup_limits import BudgetClass
from camsync.errors import CamsyncError
from camsync.logs import get_logger
from camsync.settings import Settings
from camsync.store import smartup_reads as reads
from camsync.store import smartup_writes as writes
from camsync.store.engine import Store
from camsync.store.runs import last_cursor_run, last_full_refresh
from camsync.store.smartup import Product, text_limits
from camsync.sync.ledger import RunHandle, recorded_run
from camsync.sync.smartup.budget import BudgetStop
from camsync.sync.smartup.fast_mapping import ProductMapper
from camsync.sync.smartup.items import Fingerprint, ItemError
from camsync.sync.smartup.odd import PRODUCT_RANGES, out_of_range, settle_classifications
from camsync.sync.smartup.prices import PricesPull
from camsync.sync.smartup.result import SyncResult, summary
from camsync.sync.smartup.run import JOB, Clock, PullRun, batches
from camsync.sync.smartup.source import ExportSource
from camsync.sync.smartup.windows import products_window

log = get_logger(__name__)

_PRODUCT_LIMITS = text_limits(Product)


class ProductsRun(PullRun):
    """One products run (`run_type=products`), with the prices on a full refresh."""

    run_type = "products"

    def __init__(self, store: Store, settings: Settings, source: ExportSource, clock: Clock, dry_run: bool) -> None:
        super().__init__(store, settings, source, clock, dry_run)
        self.mapper = ProductMapper(_PRODUCT_LIMITS)
        self.prices = PricesPull(self)
        self.all_known: dict[str, tuple[str, bool]] | None = None
        self.values_named: set[tuple[str, str]] = set()  # (product_group_id, product_type_id) the written rows name

    def run(self, *, full: bool, trigger: str, parent_id: int | None) -> SyncResult:
        with self.store.session() as session:
            previous = last_cursor_run(session, job=JOB, run_type="products")
            last_full = last_full_refresh(session, job=JOB, run_type="products")
        started = self.clock()
        self.cursor_before = previous.cursor_after if previous else None
        full, since = products_window(
            full=full,
            cursor=self.cursor_before,
            last_full_at=last_full.started_at if last_full else None,
            started=started,
            tz=self.tz,
        )
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
            log.info("products_synced", f"products: {summary(run)}", mode=run.details["mode"], **run.counts)
        result.status = run.status
        return result

    def groups_wanted(self, result: SyncResult) -> str | None:
        """Why the product groups should be pulled after this run (None: they need not be): a full refresh, or
        products naming classification values the store does not hold."""
        if result.status == "FAILED":
            return None
        if result.details.get("mode") == "full":
            return "full refresh"
        if not self.values_named:
            return None
        with self.store.session() as session:
            missing = reads.missing_group_values(session, values=self.values_named)
        if not missing:
            return None
        return f"{missing} classification {'value' if missing == 1 else 'values'} not known yet"

    def inserted(self, run: RunHandle) -> list[tuple[str, int]]:
        prices = run.details.get("prices") or {}
        return [("products", run.counts["inserted"]), ("product_prices", prices.get("inserted", 0))]

    def _pull(self, *, full: bool, since: date | None, started: datetime) -> CamsyncError | None:
        assert self.handle is not None
        seen: dict[str, str] = {}
        stopped = self._fetch(full=full, since=since, started=started, seen=seen)
        stopped = self.writer.settle(stopped)
        if stopped is None and full and not self.dry_run:
            with self.store.writer() as session:
                flagged = writes.flag_missing_products(session, seen_ids=seen.keys(), now=started)
            self.handle.details["flagged_missing"] = flagged
        return stopped

    def _fetch(self, *, full: bool, since: date | None, started: datetime, seen: dict[str, str]) -> CamsyncError | None:
        """Fetch the products (and on a full refresh the prices) and hand their batches to the writer."""
        try:
            self.budget.check(BudgetClass.REFERENCE)
            with self.source.export_products(begin_modified_on=since) as export:
                if full and not self.dry_run and "products" not in self.fresh:
                    # The answer holds every product: one read of the stored hashes beats a lookup per batch.
                    with self.store.session() as session:
                        self.all_known = reads.all_known_products(session)
                for batch in batches(export):
                    self._batch(batch, seen, started)
                self.budget.saw(export)
            if full:
                self.prices.pull(started)  # fetched while the writer still writes products; written after them
        except (BudgetStop, SmartupBudgetError) as stop:
            return self.budget.stopped(stop)
        except CamsyncError as error:
            return error
        return None

    def _batch(self, batch: list[Any], seen: dict[str, str], now: datetime) -> None:
        """Hash, look up and map one batch here; the writer only writes it."""
        prints = self.fingerprints(batch, "product_id", seen)
        with self.store.session() as session:
            known = self._known(session, prints)
        rows = self._rows(prints, known)
        if self.dry_run:
            self.would_write(rows, known, "external_id")
            return
        self.writer.submit(self._write, rows, set(known), now)

    def _known(self, session: Any, prints: list[Fingerprint]) -> dict[str, Any]:
        if "products" in self.fresh:
            return {}
        if self.all_known is not None:
            return {fp.key: self.all_known[fp.key] for fp in prints if fp.key in self.all_known}
        return reads.known_products(session, external_ids=[fp.key for fp in prints])

    def _rows(self, prints: list[Fingerprint], known: dict[str, Any]) -> list[dict[str, Any]]:
        rows = []
        for fp in self.changed(prints, known):
            try:
                row = self.mapper(fp)
                row["classifications"], reasons = settle_classifications(fp.key, row["classifications"])
            except ItemError as error:
                self.fail_item(error)
                continue
            self.warn_item(fp.key, reasons + out_of_range(row, PRODUCT_RANGES))
            self.values_named.update((entry[0], entry[1]) for entry in row["classifications"] if entry[1])
            rows.append(row)
        return rows

    def _write(self, rows: list[dict[str, Any]], existing: set[str], now: datetime) -> None:
        with self.store.writer() as session:
            counts = writes.upsert_products(session, rows=rows, now=now, existing=existing)
        written = counts.inserted + counts.updated
        self.count(inserted=counts.inserted, updated=counts.updated, unchanged=len(rows) - written)
        self.beat()
