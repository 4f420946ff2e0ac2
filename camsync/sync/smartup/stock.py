"""The stock export (`balance$export`): one call of the documents budget, one snapshot.

SmartUp lists one item per batch per warehouse, as of a day (today, in the tenant's time zone). The batches are
summed per warehouse and product (`StockTally`) and the snapshot replaces the stored one in one transaction:
a product absent from the answer has no row, and a run that fails half-way writes nothing. Counts compare
warehouse × product rows with the previous snapshot: inserted (new), updated (changed), unchanged, and
`details.removed` for rows the new snapshot no longer has. A batch that cannot be read fails its warehouse and
product (left out of the snapshot, the run PARTIAL); an odd value (a negative quantity …) is stored as given and
counted as a warning.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from camsync.clients.smartup_errors import SmartupBudgetError
from camsync.clients.smartup_limits import BudgetClass
from camsync.errors import CamsyncError
from camsync.logs import get_logger
from camsync.store import smartup_catalog_writes as catalog
from camsync.sync.ledger import RunHandle, recorded_run
from camsync.sync.smartup.budget import BudgetStop
from camsync.sync.smartup.catalog_mapping import StockTally
from camsync.sync.smartup.items import ItemError
from camsync.sync.smartup.result import SyncResult, summary
from camsync.sync.smartup.run import JOB, PullRun

log = get_logger(__name__)


class StockRun(PullRun):
    """One stock run (`run_type=stock`): the balance as of today, replacing the stored snapshot."""

    run_type = "stock"

    def run(self, *, trigger: str, parent_id: int | None, as_of: date | None = None) -> SyncResult:
        now, day = self.clock(), as_of or self.today()
        with recorded_run(self.store, job=JOB, run_type="stock", trigger=trigger, parent_id=parent_id) as run:
            self.handle = run
            run.window_start = run.window_end = now
            run.details["as_of"] = day.isoformat()
            stopped = self._pull(now, day)
            result = self.finish(run, stopped)
            log.info(
                "stock_synced",
                f"stock: {summary(run)}; {run.details.get('batches', 0)} batches, "
                f"{run.details.get('rows', 0)} warehouse × product rows, {run.details.get('removed', 0)} removed",
                **run.counts,
            )
        result.status = run.status
        return result

    def _pull(self, now: datetime, day: date) -> CamsyncError | None:
        tally = StockTally()
        try:
            self.budget.check(BudgetClass.DOCUMENTS)
            with self.source.export_balance(begin_date=day, end_date=day) as export:
                self.budget.saw(export)
                for raw in export.raw_items():
                    tally.add(raw)
        except (BudgetStop, SmartupBudgetError) as stop:
            return self.budget.stopped(stop)
        except CamsyncError as error:
            return error
        rows = self._settle(tally)
        if self.dry_run:
            with self.store.session() as session:
                changes = catalog.replace_stock(session, rows=rows, now=now, apply=False)
            self.bump("would_insert", changes.inserted)
            self.bump("would_update", changes.updated)
            self.bump("would_remove", changes.removed)
            return None
        with self.store.writer() as session:
            changes = catalog.replace_stock(session, rows=rows, now=now)
        self.count(inserted=changes.inserted, updated=changes.updated, unchanged=changes.unchanged)
        self._note(removed=changes.removed, emptied=not rows and bool(changes.removed))
        return None

    def _settle(self, tally: StockTally) -> list[tuple[Any, ...]]:
        """Count the answer's batches, fail the unreadable ones, warn about the odd ones; the snapshot's rows."""
        self.count(fetched=tally.batches)
        for error in tally.failures:
            self.fail_item(error)
        for item_id, reason in tally.unstorable():
            self.fail_item(ItemError(item_id, reason))
        for item_id, reason in (*tally.warnings, *tally.totals_out_of_range()):
            self.warn_item(item_id, [reason])
        rows = tally.rows()
        assert self.handle is not None
        self.handle.details.update(
            batches=tally.batches,
            rows=len(rows),
            warehouses=len({row[0] for row in rows}),
            left_out=len(tally.broken),
        )
        return rows

    def _note(self, *, removed: int, emptied: bool) -> None:
        handle: RunHandle | None = self.handle
        assert handle is not None
        handle.details["removed"] = removed
        if emptied:
            self.warn_item(None, ["SmartUp answered no stock at all: every stored stock row was removed"])
