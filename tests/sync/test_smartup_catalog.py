"""Product groups, classifications, stock and the server's range limit, against scripted SmartUp answers (the real
client over httpx.MockTransport), on both databases."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from camsync.clients.smartup import SmartupClient
from camsync.settings import Settings, load_settings
from camsync.store.engine import Store
from camsync.store.smartup_catalog import (
    ProductClassification,
    ProductGroup,
    ProductGroupType,
    SmartupServerLimit,
    StockBalance,
)
from camsync.sync.smartup import pull

NOW = datetime(2026, 6, 25, 7, 0, tzinfo=UTC)
BRAND, CATEGORY = "31426", "31427"


def group(group_id: str, code: str, *values: tuple[str, str, str], state: str = "A") -> dict[str, Any]:
    return {
        "product_group_id": group_id,
        "code": code,
        "name": code.title(),
        "state": state,
        "product_group_types": [
            {"product_type_id": t, "code": c, "name": n, "state": "A", "order_no": str(i + 1)}
            for i, (t, c, n) in enumerate(values)
        ],
    }


def product(product_id: str, *pairs: tuple[str, str, str, str], **fields: Any) -> dict[str, Any]:
    return {
        "product_id": product_id,
        "code": f"C{product_id}",
        "name": f"Product {product_id}",
        "state": "A",
        "groups": [{"group_id": g, "group_code": gc, "type_id": t, "type_code": tc} for g, gc, t, tc in pairs],
        **fields,
    }


def batch(warehouse: str, product_id: str, quantity: str, price: str | None = "100") -> dict[str, Any]:
    row = {
        "warehouse_id": warehouse,
        "warehouse_code": f"WH-{warehouse}",
        "product_id": product_id,
        "product_code": f"C{product_id}",
        "inventory_kind": "G",
        "batch_number": "B1",
        "quantity": quantity,
    }
    if price is not None:
        row["input_price"] = price
    return row


@dataclass
class Tenant:
    """Scripted answers per export; `range_limit` narrower than the client's answers wider ranges empty."""

    groups: list[dict[str, Any]] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=list)
    balance: list[dict[str, Any]] = field(default_factory=list)
    orders: list[tuple[date, dict[str, Any]]] = field(default_factory=list)  # (modified day, order)
    range_limit: int = 7
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        path = request.url.path
        self.calls.append((path.rsplit("/", 1)[-1], body))
        limits = {"has_limit": "Y", "left_limit_quant": "90", "day_range_limit": str(self.range_limit)}
        if path.endswith("product_group$export"):
            return httpx.Response(200, json={"product_group": self.groups, "limits": limits})
        if path.endswith("inventory$export"):
            return httpx.Response(200, json={"inventory": self.products, "limits": limits})
        if path.endswith("product_price$export"):
            return httpx.Response(200, json={"inventory": [], "limits": limits})
        if path.endswith("balance$export"):
            return httpx.Response(200, json={"balance": self.balance, "limits": limits})
        if path.endswith("order$export"):
            return httpx.Response(200, json={"order": self._orders(body), "limits": limits})
        return httpx.Response(404, text="no route")

    def _orders(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        def day(text: str) -> date:
            return datetime.strptime(text, "%d.%m.%Y").date()

        first, last = day(body["begin_modified_on"]), day(body["end_modified_on"])
        if (last - first).days + 1 > self.range_limit:
            return []  # as a real tenant does: a too-wide range is answered empty, not refused
        return [order for modified, order in self.orders if first <= modified <= last]


@pytest.fixture
def tenant() -> Tenant:
    return Tenant()


def settings() -> Settings:
    return load_settings(
        {
            "SMARTUP_BASE_URL": "https://smartup.example.test",
            "SMARTUP_BASIC_USER": "u",
            "SMARTUP_BASIC_PASS": "p",
            "SMARTUP_CALL_RESERVE": "0",
            "SYNC_ORDERS_DAYS_BACK": "35",
        }
    )


def client(tenant: Tenant) -> SmartupClient:
    return SmartupClient.from_settings(settings(), transport=httpx.MockTransport(tenant), sleep=lambda _s: None)


def run(fn: Callable[..., Any], store: Store, tenant: Tenant, **kw: Any) -> Any:
    return fn(store, settings(), client=client(tenant), clock=lambda: NOW, **kw)


def rows(store: Store, model: Any, *columns: str) -> list[tuple[Any, ...]]:
    with store.session() as session:
        table = model.__table__
        query = select(*(table.c[name] for name in columns)).order_by(*(table.c[name] for name in columns))
        return [tuple(row) for row in session.execute(query)]


def brand_and_category() -> list[dict[str, Any]]:
    return [
        group(BRAND, "BRAND", ("5101", "NESTLE", "Nestle"), ("5102", "BONAQUA", "Bonaqua")),
        group(CATEGORY, "CATEGORY", ("6201", "WATER", "Water"), ("6202", "JUICE", "Juice")),
    ]


# --- product groups and classifications ----------------------------------------------------------------------


def test_groups_store_each_classification_and_its_values(store, tenant) -> None:
    tenant.groups = brand_and_category()
    result = run(pull.sync_groups, store, tenant)
    assert result.status == "SUCCESS", result.error
    assert (result.counts["inserted"], result.details["values_written"]) == (2, 4)
    assert rows(store, ProductGroup, "product_group_id", "code", "type_count") == [
        (BRAND, "BRAND", 2),
        (CATEGORY, "CATEGORY", 2),
    ]
    assert rows(store, ProductGroupType, "product_group_id", "product_type_id", "code", "order_no")[:2] == [
        (BRAND, "5101", "NESTLE", 1),
        (BRAND, "5102", "BONAQUA", 2),
    ]
    again = run(pull.sync_groups, store, tenant)
    assert (again.counts["unchanged"], again.counts["inserted"], again.counts["updated"]) == (2, 0, 0)


def test_a_changed_group_replaces_its_values_and_a_vanished_one_is_flagged(store, tenant) -> None:
    tenant.groups = brand_and_category()
    run(pull.sync_groups, store, tenant)
    tenant.groups = [group(BRAND, "BRAND", ("5101", "NESTLE", "Nestlé"), ("5103", "SAYHUN", "Sayhun"))]
    result = run(pull.sync_groups, store, tenant)
    assert (result.counts["updated"], result.details["flagged_missing"]) == (1, 1)
    assert rows(store, ProductGroupType, "product_group_id", "product_type_id", "name") == [
        (BRAND, "5101", "Nestlé"),
        (BRAND, "5103", "Sayhun"),
        (CATEGORY, "6201", "Water"),
        (CATEGORY, "6202", "Juice"),
    ]
    assert rows(store, ProductGroup, "product_group_id", "missing_upstream") == [(BRAND, False), (CATEGORY, True)]


def test_a_group_value_without_id_is_left_out_with_a_warning_and_a_bad_group_fails_alone(store, tenant) -> None:
    broken = group(CATEGORY, "CATEGORY", ("6201", "WATER", "Water"))
    broken["product_group_types"].append({"code": "NOID", "name": "No id"})
    tenant.groups = [broken, {"product_group_id": "777", "code": "X", "product_group_types": "not a list"}]
    result = run(pull.sync_groups, store, tenant)
    assert result.status == "PARTIAL" and result.counts["failed"] == 1
    assert result.details["warnings"] == 1 and "no product_type_id" in result.details["warning_items"][0]["reason"]
    assert rows(store, ProductGroupType, "product_type_id") == [("6201",)]


def test_products_keep_their_value_in_each_classification_and_pull_the_groups(store, tenant) -> None:
    tenant.groups = brand_and_category()
    tenant.products = [
        product("1", (BRAND, "BRAND", "5101", "NESTLE"), (CATEGORY, "CATEGORY", "6201", "WATER")),
        product("2", (BRAND, "BRAND", "5102", "BONAQUA")),
        product("3"),
    ]
    result = run(pull.sync_products, store, tenant, full=True)
    assert result.status == "SUCCESS", result.error
    assert [(c.run_type, c.status, c.details["reason"]) for c in result.children] == [
        ("groups", "SUCCESS", "full refresh")
    ]
    assert rows(store, ProductClassification, "product_id", "product_group_id", "product_type_id", "type_code") == [
        ("1", BRAND, "5101", "NESTLE"),
        ("1", CATEGORY, "6201", "WATER"),
        ("2", BRAND, "5102", "BONAQUA"),
    ]
    # the shop's question: what is product 2's brand?
    with store.session() as session:
        name = session.scalar(
            select(ProductGroupType.name)
            .join(
                ProductClassification,
                (ProductClassification.product_group_id == ProductGroupType.product_group_id)
                & (ProductClassification.product_type_id == ProductGroupType.product_type_id),
            )
            .where(ProductClassification.product_id == "2", ProductClassification.product_group_id == BRAND)
        )
    assert name == "Bonaqua"


def test_a_changed_product_replaces_its_classifications_and_new_values_bring_the_groups(store, tenant) -> None:
    tenant.groups = brand_and_category()
    tenant.products = [product("1", (BRAND, "BRAND", "5101", "NESTLE"), (CATEGORY, "CATEGORY", "6201", "WATER"))]
    run(pull.sync_products, store, tenant, full=True)
    tenant.products = [product("1", (BRAND, "BRAND", "5109", "NEWBRAND"))]
    tenant.groups[0]["product_group_types"].append({"product_type_id": "5109", "code": "NEWBRAND", "name": "New"})
    result = run(pull.sync_products, store, tenant)
    assert result.details["mode"] == "incremental" and result.counts["updated"] == 1
    assert rows(store, ProductClassification, "product_id", "product_group_id", "product_type_id") == [
        ("1", BRAND, "5109")
    ]
    assert [c.details["reason"] for c in result.children] == ["1 classification value not known yet"]
    assert ("5109",) in rows(store, ProductGroupType, "product_type_id")
    quiet = run(pull.sync_products, store, tenant)
    assert quiet.children == []  # nothing new named: the groups are not pulled again


def test_two_values_in_one_classification_keep_the_first_with_a_warning(store, tenant) -> None:
    tenant.products = [product("1", (BRAND, "BRAND", "5101", "A"), (BRAND, "BRAND", "5102", "B"), ("", "", "1", "X"))]
    result = run(pull.sync_products, store, tenant, full=True)
    assert result.status == "SUCCESS" and result.details["warnings"] == 2
    reasons = [w["reason"] for w in result.details["warning_items"]]
    assert any("two values in classification" in r for r in reasons) and any("no group_id" in r for r in reasons)
    assert rows(store, ProductClassification, "product_id", "product_type_id") == [("1", "5101")]


def test_odd_product_numbers_are_stored_as_given_and_warned_about(store, tenant) -> None:
    tenant.products = [product("1", weight_netto="-2.5"), product("2", weight_brutto="5000000")]
    result = run(pull.sync_products, store, tenant, full=True)
    assert result.status == "SUCCESS" and result.details["warnings"] == 2
    assert {w["id"] for w in result.details["warning_items"]} == {"1", "2"}


# --- stock -----------------------------------------------------------------------------------------------------


def test_stock_sums_batches_per_warehouse_and_product(store, tenant) -> None:
    tenant.balance = [
        batch("10", "1", "12.500", "100"),
        batch("10", "1", "0.250", "140"),
        batch("10", "2", "3", None),
        batch("30", "1", "1.000", "90"),  # the returns warehouse: kept apart
    ]
    result = run(pull.sync_stock, store, tenant)
    assert result.status == "SUCCESS", result.error
    assert (result.counts["fetched"], result.counts["inserted"], result.details["rows"]) == (4, 3, 3)
    stored = rows(store, StockBalance, "warehouse_id", "product_id", "quantity", "batches", "cost", "stock_value")
    assert [(w, p, Decimal(str(q)), b) for w, p, q, b, _, _ in stored] == [
        ("10", "1", Decimal("12.75"), 2),
        ("10", "2", Decimal("3"), 1),
        ("30", "1", Decimal("1"), 1),
    ]
    first = stored[0]
    assert Decimal(str(first[5])) == Decimal("1285") and Decimal(str(first[4])).quantize(Decimal("0.01")) == Decimal(
        "100.78"
    )
    assert stored[1][4] is None and stored[1][5] is None  # no input_price: no cost
    assert tenant.calls[-1] == ("balance$export", {"begin_date": "25.06.2026", "end_date": "25.06.2026"})


def test_a_new_snapshot_replaces_the_old_and_counts_what_changed(store, tenant) -> None:
    tenant.balance = [batch("10", "1", "5"), batch("10", "2", "7"), batch("10", "3", "1")]
    run(pull.sync_stock, store, tenant)
    tenant.balance = [batch("10", "1", "5"), batch("10", "2", "6"), batch("20", "4", "2")]
    result = run(pull.sync_stock, store, tenant)
    counts = result.counts
    assert (counts["inserted"], counts["updated"], counts["unchanged"], result.details["removed"]) == (1, 1, 1, 1)
    assert rows(store, StockBalance, "warehouse_id", "product_id") == [("10", "1"), ("10", "2"), ("20", "4")]
    with store.session() as session:
        assert {s for (s,) in session.execute(select(StockBalance.synced_at))} == {NOW}


def test_a_stock_answer_that_fails_writes_nothing(store, tenant) -> None:
    tenant.balance = [batch("10", "1", "5")]
    run(pull.sync_stock, store, tenant)
    tenant.balance = [batch("10", "1", "6")] * 3 + ["truncated"]  # type: ignore[list-item]

    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b'{"balance":[{"warehouse_id":"10","product_id":"1","quantity":"9"},')

    failing = SmartupClient.from_settings(settings(), transport=httpx.MockTransport(broken), sleep=lambda _s: None)
    result = pull.sync_stock(store, settings(), client=failing, clock=lambda: NOW)
    assert result.status == "FAILED" and "malformed" in (result.error or "")
    assert [Decimal(str(q)) for _, _, q in rows(store, StockBalance, "warehouse_id", "product_id", "quantity")] == [
        Decimal("5")
    ]


def test_unreadable_batches_fail_their_pair_and_odd_ones_are_warned(store, tenant) -> None:
    tenant.balance = [
        batch("10", "1", "5"),
        batch("10", "1", "lots"),  # product 1 in warehouse 10 cannot be summed: left out
        batch("10", "2", "-3"),  # a negative batch and a negative total: stored, warned
        {"warehouse_id": "", "product_id": "9", "quantity": "1"},  # no warehouse: cannot be placed
        batch("20", "3", "4"),
    ]
    result = run(pull.sync_stock, store, tenant)
    assert result.status == "PARTIAL" and result.counts["failed"] == 2
    assert {f["id"] for f in result.details["failures"]} == {"1@10", "9@?"}
    assert result.details["warnings"] == 2 and {w["id"] for w in result.details["warning_items"]} == {"2@10"}
    assert rows(store, StockBalance, "warehouse_id", "product_id") == [("10", "2"), ("20", "3")]


def test_a_dry_run_of_stock_writes_nothing(store, tenant) -> None:
    tenant.balance = [batch("10", "1", "5")]
    result = run(pull.sync_stock, store, tenant, dry_run=True)
    assert result.status == "SUCCESS" and result.details["would_insert"] == 1
    assert rows(store, StockBalance, "product_id") == []


def test_a_snapshot_compares_numbers_as_numbers_and_a_changed_row_takes_its_new_values(store, tenant) -> None:
    tenant.balance = [batch("10", "1", "5", "100"), batch("10", "2", "7", "3.5")]
    run(pull.sync_stock, store, tenant)
    tenant.balance = [batch("10", "1", "5.000", "100.00"), batch("10", "2", "7", "4")]  # 1: written otherwise
    result = run(pull.sync_stock, store, tenant)
    assert (result.counts["unchanged"], result.counts["updated"], result.counts["inserted"]) == (1, 1, 0)
    stored = rows(store, StockBalance, "product_id", "quantity", "cost", "stock_value")
    assert [(p, Decimal(str(q)), Decimal(str(c)), Decimal(str(v))) for p, q, c, v in stored] == [
        ("1", Decimal(5), Decimal(100), Decimal(500)),
        ("2", Decimal(7), Decimal(4), Decimal(28)),
    ]


def test_a_dry_run_over_a_snapshot_counts_the_changes_and_writes_nothing(store, tenant) -> None:
    tenant.balance = [batch("10", "1", "5"), batch("10", "2", "7"), batch("10", "3", "1")]
    run(pull.sync_stock, store, tenant)
    before = rows(store, StockBalance, "warehouse_id", "product_id", "quantity", "synced_at")
    tenant.balance = [batch("10", "1", "5"), batch("10", "2", "8"), batch("20", "4", "2"), batch("20", "5", "2")]
    later = NOW + timedelta(minutes=15)
    result = pull.sync_stock(store, settings(), client=client(tenant), clock=lambda: later, dry_run=True)
    assert result.status == "SUCCESS", result.error
    details = result.details
    assert (details["would_insert"], details["would_update"], details["would_remove"]) == (2, 1, 1)
    assert rows(store, StockBalance, "warehouse_id", "product_id", "quantity", "synced_at") == before


# --- the server's range limit ----------------------------------------------------------------------------------


def order(deal_id: str) -> dict[str, Any]:
    return {"deal_id": deal_id, "status": "B#S", "deal_time": "20.06.2026 10:00:00", "order_products": []}


def test_a_narrower_server_range_refetches_every_window_and_is_remembered(store, tenant) -> None:
    tenant.range_limit = 3  # the client is set to 7: every 7-day window is answered empty
    today = NOW.date()
    tenant.orders = [(today - timedelta(days=n), order(f"D{n}")) for n in range(35)]
    result = run(pull.sync_orders, store, tenant)
    assert result.status == "SUCCESS", result.error
    assert result.counts["inserted"] == 35  # every order of the 35-day back-fill lands
    assert result.details["server_day_range_limit"] == 3 and result.details["windows_refetched"] == 1
    windows = result.details["windows"]
    assert all((date.fromisoformat(b) - date.fromisoformat(a)).days < 3 for a, b in windows)
    assert rows(store, SmartupServerLimit, "name", "value") == [("day_range_limit", 3)]
    tenant.calls.clear()
    run(pull.sync_orders, store, tenant)
    widths = [
        (
            datetime.strptime(b["end_modified_on"], "%d.%m.%Y") - datetime.strptime(b["begin_modified_on"], "%d.%m.%Y")
        ).days
        for path, b in tenant.calls
        if path == "order$export"
    ]
    assert widths and max(widths) < 3  # the next run starts at the remembered width


def test_an_empty_answer_to_a_too_wide_window_never_moves_the_cursor(store, tenant) -> None:
    tenant.range_limit = 2
    tenant.orders = [(NOW.date(), order("D1"))]
    result = run(pull.sync_orders, store, tenant, since=NOW.date() - timedelta(days=6), until=NOW.date())
    assert result.counts["inserted"] == 1 and result.cursor_after is None  # bounded: found, cursor untouched
    full = run(pull.sync_orders, store, tenant)
    assert full.status == "SUCCESS" and full.cursor_after == NOW.date().isoformat()


def test_a_cost_that_cannot_be_a_unit_cost_is_left_empty_and_the_snapshot_still_lands(store, tenant) -> None:
    # a negative batch nearly cancels a priced one: the weighted cost would not fit its column
    tenant.balance = [batch("10", "1", "1", "90000000000000"), batch("10", "1", "-0.999", "1")]
    result = run(pull.sync_stock, store, tenant)
    assert result.status == "SUCCESS" and result.details["warnings"] >= 1
    assert rows(store, StockBalance, "product_id", "cost") == [("1", None)]
