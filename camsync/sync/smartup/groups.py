"""The product groups export: every classification with its values, in one call of the reference budget.

Groups are change-aware like products (an unchanged group is neither mapped nor written); a written group's
values are replaced with it, and a group the export no longer lists is flagged `missing_upstream`. A products
run calls for a groups run after a full refresh, and whenever a product names a classification value the store
does not hold yet (so a new brand is known before the shop shows it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from camsync.clients.smartup_errors import SmartupBudgetError
from camsync.clients.smartup_limits import BudgetClass
from camsync.errors import CamsyncError
from camsync.logs import get_logger
from camsync.store import smartup_catalog_writes as catalog
from camsync.sync.ledger import recorded_run
from camsync.sync.smartup.budget import BudgetStop
from camsync.sync.smartup.catalog_mapping import map_group
from camsync.sync.smartup.items import Fingerprint, ItemError
from camsync.sync.smartup.result import SyncResult, summary
from camsync.sync.smartup.run import JOB, PullRun

log = get_logger(__name__)


class GroupsRun(PullRun):
    """One product groups run (`run_type=groups`)."""

    run_type = "groups"

    def run(self, *, trigger: str, parent_id: int | None, reason: str = "asked") -> SyncResult:
        started = self.clock()
        with recorded_run(self.store, job=JOB, run_type="groups", trigger=trigger, parent_id=parent_id) as run:
            self.handle = run
            run.details["reason"] = reason
            stopped = self._pull(started)
            result = self.finish(run, stopped)
            log.info(
                "groups_synced",
                f"product groups: {summary(run)}, {run.details.get('values_written', 0)} values written",
                **run.counts,
            )
        result.status = run.status
        return result

    def _pull(self, now: datetime) -> CamsyncError | None:
        try:
            self.budget.check(BudgetClass.REFERENCE)
            with self.source.export_groups() as export:
                self.budget.saw(export)
                seen: dict[str, str] = {}
                prints = self.fingerprints(list(export.raw_items()), "product_group_id", seen)
        except (BudgetStop, SmartupBudgetError) as stop:
            return self.budget.stopped(stop)
        except CamsyncError as error:
            return error
        with self.store.session() as session:
            known = catalog.known_groups(session)
        rows, values = self._rows(prints, known)
        if self.dry_run:
            self.would_write(rows, known, "product_group_id")
            return None
        with self.store.writer() as session:
            inserted, updated, written = catalog.upsert_groups(
                session, groups=rows, types=values, now=now, existing=set(known)
            )
            flagged = catalog.flag_missing_groups(session, seen_ids=seen.keys(), now=now)
        self.count(inserted=inserted, updated=updated, unchanged=len(rows) - inserted - updated)
        assert self.handle is not None
        self.handle.details.update(values_written=written, flagged_missing=flagged)
        return None

    def _rows(
        self, prints: list[Fingerprint], known: dict[str, tuple[str, bool]]
    ) -> tuple[list[dict[str, Any]], dict[str, list[tuple[Any, ...]]]]:
        rows, values = [], {}
        for fp in self.changed(prints, known):
            try:
                row, group_values, reasons = map_group(fp)
            except ItemError as error:
                self.fail_item(error)
                continue
            self.warn_item(fp.key, reasons)
            rows.append(row)
            values[fp.key] = group_values
        return rows, values
