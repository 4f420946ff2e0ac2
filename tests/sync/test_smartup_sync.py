"""The SmartUp pull against the real sandbox server (and a scripted source for bad items), on both databases."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from camsync.clients.smartup import SmartupClient
from camsync.clients.smartup_errors import SmartupApiError
from camsync.clients.smartup_limits import BudgetClass, Limits
from camsync.errors import LockedError, UsageError
from camsync.sandbox.smartup import SmartupSandboxConfig, start_smartup_sandbox
from camsync.settings import Settings, load_settings
from camsync.store import smartup_writes
from camsync.store.engine import Store
from camsync.store.locks import job_lock
from camsync.store.models import SyncRun
from camsync.store.smartup import Order, OrderLine, Product, ProductPrice
from camsync.sync.smartup import pull as job
from camsync.sync.smartup import run as pull_run
from camsync.sync.smartup.items import ItemError, fingerprint
from camsync.sync.smartup.mapping import map_order, map_product, split_barcodes
from camsync.sync.smartup.result import SyncResult

NOW = datetime(2026, 6, 25, 7, 0, tzinfo=UTC)  # 12:00 in Tashkent
TASHKENT = ZoneInfo("Asia/Tashkent")


@dataclass
class Tenant:
    sandbox: Any
    settings: Settings
    store: Store
    now: list[datetime] = field(default_factory=lambda: [NOW])

    @property
    def app(self) -> Any:
        return self.sandbox.app

    def clock(self) -> datetime:
        return self.now[0]

    def client(self) -> SmartupClient:
        return SmartupClient.from_settings(self.settings, sleep=lambda _s: None)

    def products(self, **kw: Any) -> SyncResult:
        return job.sync_products(self.store, self.settings, client=self.client(), clock=self.clock, **kw)

    def orders(self, **kw: Any) -> SyncResult:
        return job.sync_orders(self.store, self.settings, client=self.client(), clock=self.clock, **kw)

    def count(self, model: Any) -> int:
        with self.store.session() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


def make_tenant(store: Store, **options: Any) -> Iterator[Tenant]:
    env = options.pop("env", {})
    now = [NOW]
    config = SmartupSandboxConfig(**{"products": 40, "orders": 60, "seed": 3, **options}, clock=lambda: now[0])
    sandbox = start_smartup_sandbox(config)
    settings = load_settings(
        {
            "SMARTUP_BASE_URL": sandbox.url,
            "SMARTUP_BASIC_USER": "sandbox",
            "SMARTUP_BASIC_PASS": "sandbox",
            "SMARTUP_FILIAL_ID": "100",
            "SMARTUP_CALL_RESERVE": "0",
            "SYNC_ORDERS_DAYS_BACK": "45",
            **env,
        }
    )
    try:
        yield Tenant(sandbox, settings, store, now)
    finally:
        sandbox.stop()


@pytest.fixture
def tenant(store: Store) -> Iterator[Tenant]:
    yield from make_tenant(store)


def run_row(store: Store, run_id: int) -> SyncRun:
    with store.session() as session:
        row = session.get(SyncRun, run_id)
        assert row is not None
        return row


# --- idempotency and exact counts ----------------------------------------------------------------------------


def test_first_sync_fills_the_tables_and_a_second_is_all_unchanged(tenant: Tenant) -> None:
    first = tenant.products()
    assert first.status == "SUCCESS", first.error
    assert first.counts == {"fetched": 40, "inserted": 40, "updated": 0, "unchanged": 0, "failed": 0}
    assert first.details["mode"] == "full" and first.details["prices"]["fetched"] == 40
    orders = tenant.orders()
    assert orders.status == "SUCCESS", orders.error
    assert orders.counts["fetched"] == orders.counts["inserted"] == tenant.count(Order) == 60
    assert orders.details["lines_written"] == tenant.count(OrderLine) > 60
    assert orders.details["lines_unlinked"] == 0
    assert tenant.count(ProductPrice) >= 40

    tenant.now[0] = NOW + timedelta(hours=1)
    again = tenant.products(full=True)
    orders_again = tenant.orders(days_back=45)
    assert again.counts == {"fetched": 40, "inserted": 0, "updated": 0, "unchanged": 40, "failed": 0}
    assert orders_again.counts == {"fetched": 60, "inserted": 0, "updated": 0, "unchanged": 60, "failed": 0}
    assert orders_again.details["lines_written"] == 0
    assert again.details["prices"]["inserted"] == again.details["prices"]["updated"] == 0


def test_many_small_batches_across_the_writers_give_the_same_tables(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pull_run, "BATCH_SIZE", 3)  # on PostgreSQL two writers take the batches as they come
    monkeypatch.setattr(pull_run, "ANALYZE_FROM", 10)
    first = tenant.products()
    orders = tenant.orders()
    assert first.status == orders.status == "SUCCESS", (first.error, orders.error)
    assert first.counts["inserted"] == tenant.count(Product) == 40
    assert orders.counts["inserted"] == tenant.count(Order) == 60
    assert orders.details["lines_written"] == tenant.count(OrderLine)
    assert first.details["prices"]["inserted"] == tenant.count(ProductPrice)
    assert len(orders.details["windows"]) == 7  # 45 days in 7-day windows, all recorded once all is written
    with tenant.store.session() as session:
        unlinked = session.scalars(select(ProductPrice.product_code).where(ProductPrice.product_id.is_(None))).all()
        line_orders = session.execute(
            select(Order.line_count, func.count(OrderLine.id)).join(OrderLine).group_by(Order.id)
        )
        assert all(expected == written for expected, written in line_orders)
    assert unlinked == []  # every price found its product: products were written before any price
    tenant.now[0] = NOW + timedelta(hours=1)
    assert tenant.products(full=True).counts["unchanged"] == 40
    assert tenant.orders(days_back=45).counts["unchanged"] == 60


def test_batches_are_cut_by_item_count_and_by_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pull_run, "BATCH_SIZE", 3)
    monkeypatch.setattr(pull_run, "BATCH_BYTES", 100)
    items = [{"deal_id": str(i), "note": "n" * (60 if i in (3, 4) else 1)} for i in range(8)]
    sizes = [len(batch) for batch in pull_run.batches(ScriptedExport(items))]  # type: ignore[arg-type]
    assert sizes == [3, 2, 3]  # 3 small ones; 2 large ones reach 100 bytes; the rest


def test_a_price_repeated_in_the_answer_is_written_once_and_a_different_one_is_failed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pull_run, "BATCH_SIZE", 1)  # the repeats come in later batches
    source = ScriptedSource(
        products=[{"product_id": "1", "code": "P1", "name": "Water", "state": "A"}],
        prices=[
            {"inventory_code": "P1", "price_type": [price("R", "9.5"), price("W", "8")]},
            {"inventory_code": "P1", "price_type": [price("R", "9.50")]},  # the same price again
            {"inventory_code": "P1", "price_type": [price("W", "7")]},  # another price
        ],
    )
    result = job.sync_products(store, load_settings({}), client=source, clock=lambda: NOW)
    assert result.details["prices"] == {"fetched": 3, "inserted": 2, "updated": 0, "failed": 1}
    assert result.status == "PARTIAL"
    assert result.details["failures"] == [{"id": "P1", "reason": "price type W has two prices; the first is kept"}]
    with store.session() as session:
        stored = {p.price_type_code: p.price for p in session.scalars(select(ProductPrice))}
    assert stored == {"R": Decimal("9.5"), "W": Decimal("8")}


def test_an_order_changed_during_the_run_comes_again_in_a_later_window_and_its_later_version_wins(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant.products()
    monkeypatch.setattr(pull_run, "BATCH_SIZE", 2)
    client = tenant.client()
    real = client.export_orders
    edited: list[str] = []

    def export_orders(**kwargs: Any) -> Any:
        export = real(**kwargs)
        if not edited and export.count:
            edited.append(json.loads(bytes(export.raw_items()[0]))["deal_id"])
            tenant.app.edit_order(edited[0], status="B#S")  # now modified today: the last window has it too
        return export

    client.export_orders = export_orders  # type: ignore[method-assign]
    result = job.sync_orders(tenant.store, tenant.settings, client=client, clock=tenant.clock, days_back=45)
    assert result.status == "SUCCESS", result.error
    assert result.counts == {"fetched": 61, "inserted": 60, "updated": 1, "unchanged": 0, "failed": 0}
    with tenant.store.session() as session:
        assert session.scalars(select(Order.status).where(Order.source_external_id == edited[0])).one() == "B#S"


def test_a_call_failing_after_earlier_windows_keeps_their_orders_written(tenant: Tenant) -> None:
    tenant.products()
    client = tenant.client()
    real = client.export_orders
    calls: list[dict[str, Any]] = []

    def export_orders(**kwargs: Any) -> Any:
        calls.append(kwargs)
        if len(calls) == 3:
            tenant.app.set_faults(malformed_next=1)
        return real(**kwargs)

    client.export_orders = export_orders  # type: ignore[method-assign]
    result = job.sync_orders(tenant.store, tenant.settings, client=client, clock=tenant.clock, days_back=45)
    assert result.status == "FAILED" and "malformed" in (result.error or "")
    assert len(result.details["windows"]) == 2 and result.cursor_after is None
    assert 0 < result.counts["inserted"] == tenant.count(Order) < 60


def test_a_failed_write_stops_the_run_and_drops_the_batches_after_it(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant.products()
    monkeypatch.setattr(pull_run, "BATCH_SIZE", 5)
    real = smartup_writes.upsert_orders
    writes: list[int] = []

    def upsert_orders(session: Any, **kwargs: Any) -> Any:
        writes.append(len(kwargs["orders"]))
        if len(writes) == 2:
            raise LockedError("the store refused the batch", "try again")
        return real(session, **kwargs)

    monkeypatch.setattr(smartup_writes, "upsert_orders", upsert_orders)
    result = tenant.orders(days_back=45)
    assert result.status == "FAILED" and "refused the batch" in (result.error or "")
    assert result.details["windows"] == [] and result.cursor_after is None
    assert tenant.count(Order) == result.counts["inserted"] < 60
    assert len(writes) < 12  # 60 orders in batches of 5: the rest was dropped, not written


def test_an_unexpected_write_error_fails_the_run_and_nothing_is_written_after_it(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant.products()
    monkeypatch.setattr(pull_run, "BATCH_SIZE", 5)
    real = smartup_writes.upsert_orders
    writes: list[int] = []

    def upsert_orders(session: Any, **kwargs: Any) -> Any:
        writes.append(1)
        if len(writes) == 2:
            raise RuntimeError("disk on fire")
        return real(session, **kwargs)

    monkeypatch.setattr(smartup_writes, "upsert_orders", upsert_orders)
    with pytest.raises(RuntimeError, match="disk on fire"):
        tenant.orders(days_back=45)
    assert not [t for t in threading.enumerate() if t.name.startswith("smartup-writer")]  # stopped with the run
    with tenant.store.session() as session:
        row = session.scalars(select(SyncRun).where(SyncRun.run_type == "orders")).one()
    assert row.status == "FAILED" and "disk on fire" in (row.error_message or "")
    assert len(writes) < 12


def test_one_upstream_edit_gives_exactly_one_update_and_its_lines(tenant: Tenant) -> None:
    tenant.products()
    tenant.orders()
    deal_id = tenant.app.data.orders[5].deal_id
    product_id = tenant.app.data.products[3].product_id
    with tenant.store.session() as session:
        lines_before = {
            (o, u): i
            for o, u, i in session.execute(
                select(Order.source_external_id, OrderLine.product_unit_id, OrderLine.id).join(Order)
            )
        }
    tenant.app.edit_order(deal_id, status="B#S")
    tenant.app.edit_product(product_id, name="Edited name", state="P")
    products = tenant.products()
    orders = tenant.orders()
    assert (products.counts["updated"], products.counts["inserted"]) == (1, 0)
    assert products.counts["unchanged"] == products.counts["fetched"] - 1
    assert (orders.counts["updated"], orders.counts["inserted"]) == (1, 0)
    assert orders.counts["unchanged"] == orders.counts["fetched"] - 1
    with tenant.store.session() as session:
        edited = session.scalars(select(Product).where(Product.external_id == product_id)).one()
        assert (edited.name, edited.state, edited.active) == ("Edited name", "P", False)
        status = session.scalar(select(Order.status_label).where(Order.source_external_id == deal_id))
        assert status == "shipped"
        lines_after = {
            (o, u): i
            for o, u, i in session.execute(
                select(Order.source_external_id, OrderLine.product_unit_id, OrderLine.id).join(Order)
            )
        }
    assert lines_after.keys() == lines_before.keys()
    changed = {key for key in lines_after if lines_after[key] != lines_before[key]}
    assert changed and {o for o, _ in changed} == {deal_id}
    assert orders.details["lines_written"] == len(changed)


def test_a_product_gone_upstream_is_kept_and_flagged_on_full_refresh(tenant: Tenant) -> None:
    tenant.products()
    gone = tenant.app.data.products[0].product_id
    tenant.app.remove_product(gone)
    result = tenant.products(full=True)
    assert result.status == "SUCCESS" and result.details["flagged_missing"] == 1
    assert tenant.count(Product) == 40
    with tenant.store.session() as session:
        assert session.scalar(select(Product.missing_upstream).where(Product.external_id == gone)) is True


# --- windows -------------------------------------------------------------------------------------------------


def test_products_go_incremental_after_a_full_refresh_and_full_again_after_a_day(tenant: Tenant) -> None:
    assert tenant.products().details["mode"] == "full"
    tenant.now[0] = NOW + timedelta(hours=2)
    second = tenant.products()
    assert second.details["mode"] == "incremental" and second.counts["fetched"] < 40
    assert second.cursor_before == run_row(tenant.store, second.run_id).cursor_before
    since = run_row(tenant.store, second.run_id).window_start
    assert since is not None and since.astimezone(TASHKENT).date() == date(2026, 6, 24)
    with tenant.store.session() as session:  # the last full refresh is more than a day old: full again
        session.execute(SyncRun.__table__.update().values(started_at=NOW - timedelta(days=2)))
    assert tenant.products().details["mode"] == "full"


def test_orders_are_cut_into_day_range_windows_and_bounded_runs_keep_the_cursor(tenant: Tenant) -> None:
    first = tenant.orders(days_back=20)
    assert first.details["windows"] == [
        ["2026-06-06", "2026-06-12"],
        ["2026-06-13", "2026-06-19"],
        ["2026-06-20", "2026-06-25"],
    ]
    assert first.details["budget"]["calls"] == {"documents": 3}
    assert first.cursor_after == "2026-06-25"
    bounded = tenant.orders(since=date(2026, 5, 1), until=date(2026, 5, 3))
    assert bounded.status == "SUCCESS" and bounded.cursor_after is None
    assert bounded.details["windows"] == [["2026-05-01", "2026-05-03"]]
    tenant.now[0] = NOW + timedelta(days=2)
    incremental = tenant.orders()
    assert incremental.cursor_before == "2026-06-25"
    assert incremental.details["windows"] == [["2026-06-24", "2026-06-27"]]
    assert incremental.cursor_after == "2026-06-27"


def test_window_options_are_checked(tenant: Tenant) -> None:
    with pytest.raises(UsageError):
        tenant.orders(since=date(2026, 6, 1))
    with pytest.raises(UsageError):
        tenant.orders(since=date(2026, 6, 5), until=date(2026, 6, 1))
    with pytest.raises(UsageError):
        tenant.orders(days_back=3, since=date(2026, 6, 1), until=date(2026, 6, 2))


def test_windows_follow_the_apis_own_day_range_limit(store: Store) -> None:
    for tenant in make_tenant(store, day_range_limit=3):
        tenant.orders(days_back=1)  # learns day_range_limit=3 from the limits block
        client = tenant.client()
        client.last_limits[BudgetClass.DOCUMENTS] = Limits(True, 500, 1, 400, 10, 3)
        result = job.sync_orders(store, tenant.settings, days_back=7, client=client, clock=tenant.clock)
        assert [w[0] for w in result.details["windows"]] == ["2026-06-19", "2026-06-22", "2026-06-25"]


# --- budget --------------------------------------------------------------------------------------------------


def test_budget_reserve_stops_before_calling_and_names_the_budget(store: Store) -> None:
    for tenant in make_tenant(store, reference_budget=3, env={"SMARTUP_CALL_RESERVE": "2"}):
        first = tenant.products()  # products call leaves 2: the prices call would go below the reserve
        assert first.status == "PARTIAL"
        assert "SmartUp reference budget: 2 calls left today, reserve 2" in first.error
        assert "resets at 2026-06-26 00:00 Asia/Tashkent" in first.error
        assert first.counts["inserted"] == 40
        assert first.details["budget"] == {
            "calls": {"reference": 1},
            "left": {"reference": 2},
            "seen_at": {"reference": NOW.isoformat()},
        }
        assert run_row(store, first.run_id).cursor_after is None
        calls = tenant.app.stats()["calls"]["reference"]
        second = tenant.products()  # a new client knows nothing: the last run's details stop it
        assert second.status == "FAILED" and "2 calls left today" in second.error
        assert tenant.app.stats()["calls"]["reference"] == calls
        tenant.now[0] = NOW + timedelta(days=1)  # after midnight in Tashkent the old figure no longer counts
        assert tenant.products().details["budget"]["calls"] == {"reference": 1}


def test_a_spent_budget_answer_is_handled_like_the_reserve(store: Store) -> None:
    for tenant in make_tenant(store, documents_budget=1):
        with tenant.client() as other_user:  # someone else spends the account's last documents call
            list(other_user.export_orders())
        result = tenant.orders(days_back=14)
        assert result.status == "FAILED"
        assert "A02-00-999" in (result.error or "") and "resets at 2026-06-26 00:00" in (result.error or "")
        assert result.details["windows"] == [] and result.cursor_after is None


# --- bad answers and bad items -------------------------------------------------------------------------------


def test_error_json_under_200_fails_the_run_with_the_code(tenant: Tenant) -> None:
    tenant.app.set_faults(error_json_next=1, error_code="A02-24-042", error_message="filial code not found")
    result = tenant.products()
    assert result.status == "FAILED" and "A02-24-042" in result.error
    assert tenant.count(Product) == 0
    assert run_row(tenant.store, result.run_id).status == "FAILED"


def test_malformed_json_fails_the_run_and_writes_nothing(tenant: Tenant) -> None:
    tenant.app.set_faults(malformed_next=1)
    result = tenant.orders(days_back=3)
    assert result.status == "FAILED" and "malformed" in result.error
    assert tenant.count(Order) == tenant.count(OrderLine) == 0


@dataclass
class ScriptedExport:
    items: list[Any]
    budget_class: BudgetClass = BudgetClass.DOCUMENTS
    limits: Limits | None = None

    def __iter__(self) -> Iterator[Any]:
        yield from self.items

    def raw_items(self) -> list[bytes]:
        return [json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode() for item in self.items]

    def close(self) -> None:
        pass

    def __enter__(self) -> ScriptedExport:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@dataclass
class ScriptedSource:
    orders: list[Any] = field(default_factory=list)
    products: list[Any] = field(default_factory=list)
    fail_orders: Exception | None = None
    prices: list[Any] = field(default_factory=list)
    groups: list[Any] = field(default_factory=list)
    balance: list[Any] = field(default_factory=list)
    calls: dict[BudgetClass, int] = field(default_factory=lambda: dict.fromkeys(BudgetClass, 0))
    last_limits: dict[BudgetClass, Limits] = field(default_factory=dict)

    def export_orders(self, **_kw: Any) -> ScriptedExport:
        self.calls[BudgetClass.DOCUMENTS] += 1
        if self.fail_orders:
            raise self.fail_orders
        return ScriptedExport(self.orders)

    def export_products(self, **_kw: Any) -> ScriptedExport:
        self.calls[BudgetClass.REFERENCE] += 1
        return ScriptedExport(self.products, BudgetClass.REFERENCE)

    def export_prices(self) -> ScriptedExport:
        self.calls[BudgetClass.REFERENCE] += 1
        return ScriptedExport(self.prices or [{"inventory_code": "P1", "price_type": [price("R", "9.5")]}])

    def export_groups(self) -> ScriptedExport:
        self.calls[BudgetClass.REFERENCE] += 1
        return ScriptedExport(self.groups, BudgetClass.REFERENCE)

    def export_balance(self, **_kw: Any) -> ScriptedExport:
        self.calls[BudgetClass.DOCUMENTS] += 1
        return ScriptedExport(self.balance)


def price(kind: str, amount: str) -> dict[str, str]:
    return {"price_type_code": kind, "price": amount}


def good_order(deal_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "deal_id": deal_id,
        "deal_time": "25.06.2026 09:10:00",
        "delivery_date": "26.06.2026",
        "status": "B#N",
        "total_amount": "15000",
        "order_products": [{"product_unit_id": f"{deal_id}-1", "product_code": "P1", "order_quant": "2"}],
        **fields,
    }


def test_bad_items_are_counted_failed_with_reasons_and_the_run_is_partial(store: Store) -> None:
    source = ScriptedSource(
        orders=[
            good_order("1"),
            good_order("2", status="ZZ"),
            {"deal_time": "25.06.2026 09:10:00", "status": "B#N"},
            good_order("4", total_amount="12,5"),
            good_order("5", delivery_date="2026-06-26"),
            good_order("6", note="x" * 10_000_000),
            good_order("7", status=["B#N"]),
            "not an object",
            good_order("9", order_products=[{"product_code": "P1"}]),
        ]
    )
    settings = load_settings({"SMARTUP_CALL_RESERVE": "0"})
    result = job.sync_orders(store, settings, days_back=1, client=source, clock=lambda: NOW)
    assert result.status == "PARTIAL"
    assert result.counts == {"fetched": 9, "inserted": 2, "updated": 0, "unchanged": 0, "failed": 7}
    reasons = {f["id"]: f["reason"] for f in result.details["failures"]}
    assert reasons["4"] == "total_amount is '12,5', not a number"
    assert reasons["5"] == "delivery_date is '2026-06-26', not a dd.mm.yyyy date"
    assert reasons["6"].startswith("item is 10,000,") and "bytes of JSON, more than 1,000,000" in reasons["6"]
    assert reasons["7"] == "status is a list, expected a string"
    assert reasons["9"] == "line product_unit_id is missing"
    assert reasons[None] in ("deal_id is missing", "item is a string, not an object")
    assert result.details["unknown_statuses"] == {"ZZ": 1}
    with store.session() as session:
        labels = dict(session.execute(select(Order.source_external_id, Order.status_label)).all())
    assert labels == {"1": "new", "2": "unknown"}
    assert "7 items could not be stored" in (result.error or "")


def test_nothing_storable_is_failed(store: Store) -> None:
    source = ScriptedSource(orders=[{"deal_id": ""}, good_order("2", deal_time="yesterday")])
    result = job.sync_orders(store, load_settings({}), days_back=1, client=source, clock=lambda: NOW)
    assert result.status == "FAILED" and result.counts["failed"] == 2


def test_dry_run_writes_nothing_and_reports_would_be_counts(tenant: Tenant) -> None:
    dry = tenant.products(dry_run=True)
    assert dry.status == "SUCCESS" and dry.dry_run
    assert dry.details["would_insert"] == 40 and dry.details["dry_run"] is True
    assert tenant.count(Product) == tenant.count(ProductPrice) == 0
    assert run_row(tenant.store, dry.run_id).cursor_after is None
    assert tenant.products().details["mode"] == "full"  # the dry run did not count as a sync
    dry_orders = tenant.orders(dry_run=True, days_back=3)
    assert dry_orders.details["would_insert"] == dry_orders.counts["fetched"] > 0
    assert tenant.count(Order) == 0


def test_sync_all_is_partial_when_orders_fail_between_products_and_stock(store: Store) -> None:
    source = ScriptedSource(
        products=[{"product_id": "1", "code": "P1", "name": "Water", "state": "A"}],
        fail_orders=SmartupApiError("SmartUp orders export failed: A02-24-048", status=200, code="A02-24-048"),
    )
    result = job.sync_all(store, load_settings({}), client=source, clock=lambda: NOW)
    assert result.status == "PARTIAL" and "orders: FAILED" in (result.error or "")
    assert [(c.run_type, c.status) for c in result.children] == [
        ("products", "SUCCESS"),
        ("groups", "SUCCESS"),  # a first run is a full refresh: the groups come with it
        ("orders", "FAILED"),
        ("stock", "SUCCESS"),
    ]
    parent = run_row(store, result.run_id)
    assert (parent.run_type, parent.status, parent.inserted) == ("full", "PARTIAL", 1)
    assert all(run_row(store, c.run_id).parent_id == result.run_id for c in result.children)


def test_one_order_by_deal_id_does_not_move_the_cursor(tenant: Tenant) -> None:
    deal_id = tenant.app.data.orders[0].deal_id
    result = job.sync_order(tenant.store, tenant.settings, deal_id=deal_id, client=tenant.client(), clock=tenant.clock)
    assert result.status == "SUCCESS" and result.counts["inserted"] == 1 and result.cursor_after is None
    missing = job.sync_order(tenant.store, tenant.settings, deal_id="nope", client=tenant.client())
    assert missing.status == "FAILED" and "no order with deal_id nope" in (missing.error or "")


# --- mapping -------------------------------------------------------------------------------------------------


def test_mapping_types_and_timezone() -> None:
    item = good_order(
        "1",
        booked_date="",
        order_products=[
            {"product_unit_id": "u1", "order_quant": "1.500", "product_price": "7500.25", "expiry_date": "01.01.2027"}
        ],
    )
    order, lines = map_order(item, fp=fingerprint(item, key_field="deal_id"), tz=TASHKENT, limits={}, line_limits={})
    assert order["deal_time"] == datetime(2026, 6, 25, 9, 10, tzinfo=TASHKENT)
    assert order["deal_time"].astimezone(UTC) == datetime(2026, 6, 25, 4, 10, tzinfo=UTC)
    assert order["booked_date"] is None and order["total_amount"] == Decimal("15000")
    assert lines[0]["order_quant"] == Decimal("1.500") and lines[0]["expiry_date"] == date(2027, 1, 1)
    product = {"product_id": "7", "code": "C", "name": "N", "state": "P", "barcodes": "1, 2|2||3"}
    row = map_product(product, fp=fingerprint(product, key_field="product_id"), limits={"code": 255})
    assert (row["active"], row["barcodes"]) == (False, ["1", "2", "3"])
    assert split_barcodes("") == []
    with pytest.raises(ItemError, match="state is 'X'"):
        bad = {**product, "state": "X"}
        map_product(bad, fp=fingerprint(bad, key_field="product_id"), limits={})


def test_the_hash_changes_with_the_content_and_only_with_it() -> None:
    a = fingerprint(good_order("1"), key_field="deal_id")
    assert a == fingerprint(good_order("1"), key_field="deal_id")
    assert a.content_hash != fingerprint(good_order("1", status="B#S"), key_field="deal_id").content_hash
    changed_line = good_order("1", order_products=[{"product_unit_id": "1-1", "order_quant": "3"}])
    assert a.content_hash != fingerprint(changed_line, key_field="deal_id").content_hash


def test_a_held_job_lock_refuses_a_second_run(tenant: Tenant) -> None:
    with job_lock(tenant.store, "smartup-orders"), pytest.raises(LockedError):
        job.sync_orders(tenant.store, tenant.settings, client=tenant.client(), lock=True)
    assert tenant.count(SyncRun) == 0


def test_a_product_repeated_in_a_later_batch_is_written_once_and_a_different_repeat_is_failed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pull_run, "BATCH_SIZE", 2)
    water = {"product_id": "1", "code": "P1", "name": "Water", "state": "A"}
    juice = {"product_id": "2", "code": "P2", "name": "Juice", "state": "A"}
    source = ScriptedSource(products=[water, juice, {**water, "name": "Water 2"}, juice])
    result = job.sync_products(store, load_settings({}), client=source, clock=lambda: NOW)
    assert result.counts == {"fetched": 4, "inserted": 2, "updated": 0, "unchanged": 1, "failed": 1}
    assert result.status == "PARTIAL"
    assert result.details["failures"] == [
        {"id": "1", "reason": "product_id appears twice in one answer with different content; the first item is kept"}
    ]
    with store.session() as session:
        assert sorted(session.scalars(select(Product.name))) == ["Juice", "Water"]
