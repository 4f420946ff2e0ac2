"""The orders export: the orders modified in a range of days, window after window, or one order by its deal_id."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from camsync.clients.smartup_errors import SmartupBudgetError
from camsync.clients.smartup_limits import BudgetClass
from camsync.errors import CamsyncError, NotFoundError
from camsync.logs import get_logger
from camsync.settings import Settings
from camsync.store import smartup_catalog_writes as catalog
from camsync.store import smartup_reads as reads
from camsync.store import smartup_writes as writes
from camsync.store.engine import Store
from camsync.store.runs import last_cursor_run
from camsync.store.smartup import Order, OrderLine, text_limits
from camsync.sync.ledger import RunHandle, recorded_run
from camsync.sync.smartup.budget import BudgetStop
from camsync.sync.smartup.fast_mapping import OrderMapper
from camsync.sync.smartup.items import Fingerprint, ItemError
from camsync.sync.smartup.mapping import STATUS_LABELS
from camsync.sync.smartup.odd import LINE_RANGES, out_of_range
from camsync.sync.smartup.result import SyncResult, summary
from camsync.sync.smartup.run import JOB, Clock, PullRun, batches
from camsync.sync.smartup.source import ExportSource
from camsync.sync.smartup.windows import orders_range

log = get_logger(__name__)

RANGE_LIMIT = "day_range_limit"  # the server limit remembered in the store
LINK_CACHE_FROM = 500  # a batch this big loads every product's code and barcodes once, instead of lookups
_ORDER_LIMITS = text_limits(Order)
_LINE_LIMITS = text_limits(OrderLine)


class OrdersRun(PullRun):
    """One orders run (`run_type=orders`): a range of days in windows, or one order."""

    run_type = "orders"
    links: reads.ProductLinks | None = None
    server_limit: int | None = None  # the day_range_limit the last answer announced

    def __init__(self, store: Store, settings: Settings, source: ExportSource, clock: Clock, dry_run: bool) -> None:
        super().__init__(store, settings, source, clock, dry_run)
        self.mapper = OrderMapper(tz=self.tz, limits=_ORDER_LIMITS, line_limits=_LINE_LIMITS)

    def run(
        self, *, days_back: int | None, since: date | None, until: date | None, trigger: str, parent_id: int | None
    ) -> SyncResult:
        with self.store.session() as session:
            previous = last_cursor_run(session, job=JOB, run_type="orders")
        self.cursor_before = previous.cursor_after if previous else None
        days = orders_range(
            today=self.today(),
            cursor=self.cursor_before,
            days_back=days_back,
            since=since,
            until=until,
            first_days_back=self.settings.sync_orders_days_back,
        )
        with recorded_run(
            self.store,
            job=JOB,
            run_type="orders",
            trigger=trigger,
            parent_id=parent_id,
            cursor_before=self.cursor_before,
        ) as run:
            self.handle = run
            run.window_start = self.local_midnight(days.start)
            run.window_end = self.local_midnight(days.end + timedelta(days=1))
            run.cursor_after = None if days.bounded else days.end.isoformat()
            run.details["mode"] = days.mode
            self.note_fresh_tables("orders")
            stopped = self._pull_windows(days.start, days.end)
            result = self.finish(run, stopped)
            self._log(run)
        result.status = run.status
        return result

    def run_one(self, *, deal_id: str, trigger: str) -> SyncResult:
        with recorded_run(self.store, job=JOB, run_type="orders", trigger=trigger) as run:
            self.handle = run
            run.details.update(mode="one", deal_id=deal_id)
            stopped = self.writer.settle(self._fetch(deal_id=deal_id))
            if stopped is None and run.counts["fetched"] == 0:
                stopped = NotFoundError(f"SmartUp has no order with deal_id {deal_id}", "Check the deal_id")
            result = self.finish(run, stopped)
            self._log(run)
        result.status = run.status
        return result

    def _log(self, run: RunHandle) -> None:
        log.info(
            "orders_synced",
            f"orders: {summary(run)}, {run.details.get('lines_written', 0)} lines written",
            mode=run.details.get("mode"),
            **run.counts,
        )

    def inserted(self, run: RunHandle) -> list[tuple[str, int]]:
        return [("orders", run.counts["inserted"]), ("order_lines", run.details.get("lines_written", 0))]

    def _pull_windows(self, start: date, end: date) -> CamsyncError | None:
        """Fetch window after window while the writer writes the ones before; the windows are recorded once
        everything handed to the writer is written.

        A window wider than the server's own `day_range_limit` (announced in every answer) is not the whole of
        its days — a server may clamp it or answer it empty — so it is fetched again in windows of the server's
        width, and that width is remembered for the next runs."""
        assert self.handle is not None
        recorded = self.handle.details.setdefault("windows", [])
        fetched = []
        stopped = None
        remembered = self._remembered_limit()
        width = self.budget.day_range_limit(remembered)
        begin = start
        while begin <= end:
            finish = min(begin + timedelta(days=width - 1), end)
            stopped = self._fetch(begin=begin, end=finish)
            if stopped is not None:
                break
            allowed = self.server_limit
            if allowed is not None and allowed < (finish - begin).days + 1:
                self._narrower(allowed, (finish - begin).days + 1)
                width = allowed
                continue  # the same first day again, in the server's width
            fetched.append([begin.isoformat(), finish.isoformat()])
            begin = finish + timedelta(days=1)
        stopped = self.writer.settle(stopped)
        if not self.writer.failed:
            recorded.extend(fetched)
        if self.server_limit is not None and self.server_limit != remembered and not self.dry_run:
            with self.store.writer() as session:
                catalog.remember_server_limit(session, name=RANGE_LIMIT, value=self.server_limit, now=self.clock())
        return stopped

    def _remembered_limit(self) -> int | None:
        with self.store.session() as session:
            return catalog.server_limit(session, name=RANGE_LIMIT)

    def _narrower(self, allowed: int, asked: int) -> None:
        """The server allows fewer days than a window asked for: note it on the run (the store learns it at the
        end of the windows)."""
        assert self.handle is not None
        self.handle.details["server_day_range_limit"] = allowed
        self.bump("windows_refetched", 1)
        log.warning(
            "smartup_range",
            f"SmartUp allows {allowed}-day ranges (its limits.day_range_limit), a window asked for {asked}: "
            f"fetching those days again in {allowed}-day windows",
            allowed=allowed,
            asked=asked,
        )

    def _fetch(self, *, begin: date | None = None, end: date | None = None, deal_id: str = "") -> CamsyncError | None:
        """Fetch one export of orders and hand its batches to the writer."""
        try:
            self.budget.check(BudgetClass.DOCUMENTS)
            with self.source.export_orders(begin_modified_on=begin, end_modified_on=end, deal_id=deal_id) as export:
                limit = export.limits.day_range_limit if export.limits is not None else None
                self.server_limit = limit if limit is not None and limit >= 1 else None
                seen: dict[str, str] = {}
                for batch in batches(export):
                    self._batch(batch, seen)
                self.budget.saw(export)
        except (BudgetStop, SmartupBudgetError) as stop:
            return self.budget.stopped(stop)
        except CamsyncError as error:
            return error
        return None

    def _batch(self, batch: list[Any], seen: dict[str, str]) -> None:
        """Hash, look up and map one batch here; the writer only writes it (an order and its lines together)."""
        prints = self.fingerprints(batch, "deal_id", seen)
        # An order an earlier window had as well (it changed meanwhile): its earlier write lands first, so the
        # later version wins and no two writers hold the same order.
        self.writer.wait_for([fp.key for fp in prints])
        with self.store.session() as session:
            known = self._known(session, prints)
            orders, lines = self._rows(prints, known)
            if not self.dry_run and orders and self.links is None and len(prints) >= LINK_CACHE_FROM:
                self.links = reads.load_product_links(session)
        if self.dry_run:
            self.would_write(orders, known, "source_external_id")
            return
        self.writer.submit(self._write, orders, lines, set(known))

    def _known(self, session: Any, prints: list[Fingerprint]) -> dict[str, str]:
        if "orders" in self.fresh:
            return {}
        return reads.known_orders(session, deal_ids=[fp.key for fp in prints])

    def _rows(
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
            odd = [
                f"line {line['product_unit_id']}: {why}"
                for line in order_lines
                if _may_be_odd(line)
                for why in out_of_range(line, LINE_RANGES)
            ]
            if odd:
                self.warn_item(fp.key, odd)
            orders.append(order)
            lines[fp.key] = order_lines
        self.count(unchanged=unchanged)
        return orders, lines

    def _write(self, orders: list[dict[str, Any]], lines: dict[str, list[dict[str, Any]]], existing: set[str]) -> None:
        with self.store.writer() as session:
            counts = writes.upsert_orders(
                session, orders=orders, lines=lines, now=self.clock(), links=self.links, existing=existing
            )
        written = counts.inserted + counts.updated
        self.count(inserted=counts.inserted, updated=counts.updated, unchanged=len(orders) - written)
        self.bump("lines_written", counts.lines_written)
        self.bump("lines_unlinked", counts.lines_unlinked)
        self.beat()

    def _count_status(self, status: str) -> None:
        if status not in STATUS_LABELS:
            assert self.handle is not None
            with self.lock:
                unknown = self.handle.details.setdefault("unknown_statuses", {})
                unknown[status] = unknown.get(status, 0) + 1


_LINE_BOUNDS = tuple((name, low, high) for name, (low, high) in LINE_RANGES.items())


def _may_be_odd(line: dict[str, Any]) -> bool:
    """Whether `out_of_range` could find a reason in the line (a quick test of its numbers against the bounds)."""
    for name, low, high in _LINE_BOUNDS:
        value = line.get(name)
        if value is not None and (value < low or value > high or value < 0):
            return True
    return False
