"""One SmartUp run as it goes: its counters and failures, the batches of an answer, and how the run ends.

What is committed when: items are written in batches of at most `BATCH_SIZE` items or `BATCH_BYTES` of JSON, one
transaction per batch (an order and its lines always in the same one), so a failure never leaves a batch
half-written; batches already committed stay, and since every write is an idempotent upsert a replay of them
changes nothing. The run hashes, looks up and maps each batch on its own thread and hands the write to the batch
writer (`WRITERS` connections side by side on PostgreSQL, one on SQLite) while it decodes the next ones; keys
repeated within an answer are dropped before, so the order of the writes does not matter. A run's cursor
(`cursor_after`) is only set when the whole run succeeded, so a failed or partial run is re-done next time. A
dry run fetches and classifies but writes nothing; its run row is still recorded (`details.dry_run`), with the
would-be counts in `details` and no cursor.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from camsync.clients.smartup import Export
from camsync.errors import CamsyncError
from camsync.logs import get_logger
from camsync.settings import Settings
from camsync.store import smartup_reads as reads
from camsync.store import smartup_writes as writes
from camsync.store.engine import Store
from camsync.sync.batches import BatchWriter, cut
from camsync.sync.ledger import RunHandle
from camsync.sync.smartup.budget import Budget, BudgetStop
from camsync.sync.smartup.items import Fingerprint, ItemError, fingerprint_raw
from camsync.sync.smartup.result import SyncResult, result_of
from camsync.sync.smartup.source import ExportSource

log = get_logger(__name__)

JOB = "smartup"  # the job's name in the run ledger
BATCH_SIZE = 3000
BATCH_BYTES = 6 * 1024 * 1024
WRITERS = 3  # PostgreSQL connections writing batches side by side (SQLite: one)
FAILURES_KEPT = 20
WARNINGS_LOGGED = 100  # odd items logged one by one per run; the rest are counted
ANALYZE_FROM = 10_000  # a run that inserts this many rows into a table refreshes its planner statistics

Clock = Callable[[], datetime]


def batches(export: Export) -> Iterator[list[Any]]:
    """Batches of the items as the raw JSON SmartUp sent (decoded only when they must be): at most
    `BATCH_SIZE` items and about `BATCH_BYTES` of JSON, so that large items (orders with many lines) come in
    smaller batches and the batches in flight stay within a bounded memory."""
    return cut(export.raw_items(), max_items=BATCH_SIZE, max_bytes=BATCH_BYTES)


class PullRun:
    """What the products and orders runs share: the budget, the writer, the counters and failures, the result."""

    run_type = ""

    def __init__(self, store: Store, settings: Settings, source: ExportSource, clock: Clock, dry_run: bool) -> None:
        self.store = store
        self.settings = settings
        self.source = source
        self.clock = clock
        self.dry_run = dry_run
        self.tz = ZoneInfo(settings.smartup_timezone)
        self.budget = Budget(store, settings, source, clock, job=JOB)
        self.writer = BatchWriter.for_store(store, workers=WRITERS, name="smartup-writer")
        self.fresh: set[str] = set()
        self.lock = threading.Lock()  # the counters are added to from the writer threads too
        self.failures: list[dict[str, Any]] = []
        self.side_failures = 0
        self.cursor_before: str | None = None
        self.handle: RunHandle | None = None

    def note_fresh_tables(self, *names: str) -> None:
        """Remember which tables are empty as the run starts: their batches skip the lookup of stored rows (the
        write still finds a row that exists after all, and the counts stay exact)."""
        if self.dry_run:
            return
        with self.store.session() as session:
            self.fresh = {name for name in names if reads.is_empty(session, table_name=name)}

    def today(self) -> date:
        return self.clock().astimezone(self.tz).date()

    def local_midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(), tzinfo=self.tz).astimezone(UTC)

    def count(self, **counts: int) -> None:
        """Add to the run's counters (from either thread)."""
        assert self.handle is not None
        with self.lock:
            self.handle.add(**counts)

    def bump(self, key: str, value: int) -> None:
        """Add to a counter in the run's details (from either thread)."""
        assert self.handle is not None
        with self.lock:
            self.handle.details[key] = self.handle.details.get(key, 0) + value

    def beat(self) -> None:
        assert self.handle is not None
        with self.lock:
            self.handle.beat()

    def would_write(self, rows: list[dict[str, Any]], known: Mapping[str, Any], key: str) -> None:
        """A dry run's batch: count the rows it would insert and those it would update."""
        new = sum(1 for row in rows if row[key] not in known)
        self.bump("would_insert", new)
        self.bump("would_update", len(rows) - new)

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

    def warn_item(self, item_id: str | None, reasons: list[str]) -> None:
        """Count an item stored as given but odd (a negative quantity …) as a warning, and say why."""
        if not reasons:
            return
        assert self.handle is not None
        with self.lock:
            details = self.handle.details
            before = details.get("warnings", 0)
            details["warnings"] = before + len(reasons)
            kept = details.setdefault("warning_items", [])
            kept.extend({"id": item_id, "reason": reason} for reason in reasons[: max(0, FAILURES_KEPT - len(kept))])
        if before >= WARNINGS_LOGGED:  # the run's summary line gives the total
            return
        for reason in reasons:
            log.warning("item_odd", f"{self.run_type} item {item_id or '?'}: {reason}; stored as given")

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

    def changed(self, prints: list[Fingerprint], known: Mapping[str, tuple[str, bool]]) -> list[Fingerprint]:
        """The items whose stored row differs (another hash, or flagged missing upstream) or is not stored; the
        others are counted unchanged."""
        fresh = [fp for fp in prints if known.get(fp.key) != (fp.content_hash, False)]
        self.count(unchanged=len(prints) - len(fresh))
        return fresh

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
        result = result_of(run, dry_run=self.dry_run)
        result.cursor_before = self.cursor_before
        return result

    def inserted(self, run: RunHandle) -> list[tuple[str, int]]:
        """How many rows this run inserted into each of its tables."""
        return []

    def _analyze(self, run: RunHandle) -> None:
        """After a large load, refresh the planner's statistics (the next run's lookups depend on them)."""
        tables = [name for name, inserted in self.inserted(run) if inserted >= ANALYZE_FROM]
        if not tables:
            return
        try:
            with self.store.writer() as session:
                writes.analyze(session, tables=tables)
        except Exception as exc:  # statistics are an optimisation: the run stands without them
            log.warning("analyze_failed", f"ANALYZE {', '.join(tables)} failed: {exc}")
