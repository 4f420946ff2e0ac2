"""Fakes for the LUNA push tests (an in-memory LUNA, a PAY+ source, a clock), and checks of the fakes themselves."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from camsync.clients.http import OutcomeUnknown
from camsync.clients.luna_target import LookupUnavailable, LunaBusy, LunaEndpointError, LunaRejected, WorkOrder
from camsync.errors import UpstreamError


@dataclass(frozen=True)
class Row:
    """A SourceRow look-alike."""

    tui_id: int
    txn_id: str | None
    status: str = "USED"
    meter_number: str | None = "M-1"
    amount: Decimal | None = Decimal("1500")
    amount_raw: str | None = "1500"
    currency: str = "XAF"
    created_at: str | None = None
    reject_reason: str | None = None
    topup_amount: Decimal | None = None
    has_topup_amount: bool = False


class FakeSource:
    """Rows in memory; `scan` answers like PayplusSource.scan and records what it was asked."""

    def __init__(self, rows: list[Row] | None = None) -> None:
        self.rows = {row.tui_id: row for row in rows or []}
        self.scans: list[tuple[int, list[int], int]] = []

    def put(self, row: Row) -> None:
        self.rows[row.tui_id] = row

    def scan(self, *, after_id: int = 0, ids: Collection[int] = (), batch_size: int = 5000) -> Iterator[Row]:
        wanted = set(ids)
        picked = [r for i, r in sorted(self.rows.items()) if i > after_id or i in wanted]
        self.scans.append((after_id, sorted(wanted), len(picked)))
        return iter(picked)

    def close(self) -> None:
        pass


@dataclass
class FakeLuna:
    """An in-memory LUNA without idempotency: a second create for one reference makes a second work order.

    `create_faults[txn]` is a list consumed one per create: "commit_lost" (stored, answer lost), "lost" (not
    stored, answer lost), "busy", "reject", "unavailable" (429 after retries: not stored). `statuses[wo]` is a
    list of statuses answered one per poll (the last repeats); `txn_statuses[txn]` does the same for the work
    order of a txn, whatever id it was given (creates run concurrently); default Successful.
    """

    lookup_on: bool = True
    down: bool = False  # every request fails before reaching LUNA (connection refused)
    no_route: bool = False  # every request answers 404 NOT_FOUND, as a wrong base path does
    create_faults: dict[str, list[str]] = field(default_factory=dict)
    statuses: dict[str, list[str]] = field(default_factory=dict)
    txn_statuses: dict[str, list[str]] = field(default_factory=dict)
    default_statuses: list[str] = field(default_factory=lambda: ["Successful"])
    orders: dict[str, str] = field(default_factory=dict)  # work order id -> reference
    calls: dict[str, int] = field(default_factory=lambda: {"create": 0, "get": 0, "lookup": 0})
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def lookup_available(self) -> bool:
        return self.lookup_on

    def by_reference(self, ref: str) -> list[str]:
        return [wo for wo, r in self.orders.items() if r == ref]

    def duplicates(self) -> list[str]:
        refs = list(self.orders.values())
        return sorted({r for r in refs if refs.count(r) > 1})

    amounts: dict[str, Decimal] = field(default_factory=dict)  # reference -> amount of its last create

    def _endpoint(self) -> None:
        if self.down:
            raise UpstreamError("LUNA at http://127.0.0.1:9 is unreachable: refused", service="LUNA", retryable=True)
        if self.no_route:
            raise LunaEndpointError("LUNA POST /api/v9/workorders answered HTTP 404 NOT_FOUND", status=404)

    def create_work_order(self, *, txn_id: str, meter: str, amount: Decimal, currency: str) -> WorkOrder:
        with self.lock:
            self.calls["create"] += 1
            self._endpoint()
            self.amounts[txn_id] = amount
            faults = self.create_faults.get(txn_id) or []
            fault = faults.pop(0) if faults else None
            if fault == "busy":
                raise LunaBusy("409 WORK_ORDER_IN_PROGRESS", status=409, retryable=True)
            if fault == "reject":
                raise LunaRejected("HTTP 400 VALIDATION: amount", status=400, code="VALIDATION")
            if fault == "unavailable":
                raise UpstreamError("HTTP 429", service="LUNA", status=429, retryable=True)
            if fault == "lost":
                raise OutcomeUnknown("answer lost (timeout)", service="LUNA")
            work_order_id = f"WO-{len(self.orders) + 1:04d}"
            self.orders[work_order_id] = txn_id
            if fault == "commit_lost":
                raise OutcomeUnknown("answer lost (connection dropped)", service="LUNA")
            return WorkOrder(work_order_id, "Waiting", None, {}, txn_id)

    def get_work_order(self, work_order_id: str) -> WorkOrder:
        with self.lock:
            self.calls["get"] += 1
            self._endpoint()
            first = self.txn_statuses.get(self.orders.get(work_order_id, ""), self.default_statuses)
            queue = self.statuses.setdefault(work_order_id, list(first))
            status = queue.pop(0) if len(queue) > 1 else queue[0]
            reason = "meter offline" if status == "Failed" else None
            return WorkOrder(work_order_id, status, reason, {}, self.orders.get(work_order_id))

    def lookup(self, txn_id: str) -> list[WorkOrder]:
        with self.lock:
            self.calls["lookup"] += 1
            self._endpoint()
            if not self.lookup_on:
                raise LookupUnavailable("LUNA_LOOKUP_URL=none")
            return [WorkOrder(wo, "Waiting", None, {}, txn_id) for wo in self.by_reference(txn_id)]

    def close(self) -> None:
        pass


class FakeClock:
    """A clock that only moves when `sleep` is called (or `advance`)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0.01))

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_fake_luna_without_idempotency_counts_duplicates() -> None:
    luna = FakeLuna()
    for _ in range(2):
        luna.create_work_order(txn_id="T1", meter="M", amount=Decimal(1), currency="XAF")
    assert luna.duplicates() == ["T1"]
    assert [o.id for o in luna.lookup("T1")] == ["WO-0001", "WO-0002"]


def test_fake_luna_commit_lost_stores_then_raises() -> None:
    luna = FakeLuna(create_faults={"T1": ["commit_lost"]})
    with pytest.raises(OutcomeUnknown):
        luna.create_work_order(txn_id="T1", meter="M", amount=Decimal(1), currency="XAF")
    assert luna.by_reference("T1") == ["WO-0001"]


def test_fake_source_scans_after_id_and_watched_ids() -> None:
    source = FakeSource([Row(1, "A"), Row(2, "B"), Row(3, "C")])
    assert [r.tui_id for r in source.scan(after_id=2, ids=[1])] == [1, 3]
