"""The SmartUp simulator's stock: `balance$export` rows per batch per warehouse, as of `end_date`."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from test_smartup_sandbox import INVENTORY, TODAY, Tenant, day, scalars

from camsync.sandbox.smartup_stock import make_warehouses, signed_quantity

BALANCE = "/b/anor/mxsx/mkw/balance$export"
ROW_KEYS = {
    "warehouse_id",
    "warehouse_code",
    "product_id",
    "product_code",
    "inventory_kind",
    "batch_number",
    "quantity",
}
QUANTITY = re.compile(r"-?\d+\.\d{3}")


def balance(tenant: Tenant, end: str | None = None, begin: str | None = None) -> list[dict[str, Any]]:
    body = {"begin_date": begin if begin is not None else (end or ""), "end_date": end or ""}
    return tenant.items(BALANCE, body, root="balance")


def totals(rows: list[dict[str, Any]]) -> dict[tuple[str, str], Decimal]:
    summed: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in rows:
        summed[(row["warehouse_code"], row["product_id"])] += Decimal(row["quantity"])
    return dict(summed)


def test_rows_are_one_per_batch_per_warehouse_all_strings(tenant: Tenant) -> None:
    answer = tenant.export(BALANCE, {"begin_date": day(0), "end_date": day(0)}).json()
    assert set(answer) == {"balance", "limits"}
    rows = answer["balance"]
    assert answer["limits"]["object_count"] == str(len(rows))
    assert all(isinstance(value, str) for value in scalars(rows))
    products = {p["product_id"]: p["code"] for p in tenant.items(INVENTORY)}
    batches: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in rows:
        assert ROW_KEYS <= set(row) <= ROW_KEYS | {"input_price"}
        assert QUANTITY.fullmatch(row["quantity"]), row
        assert row["inventory_kind"] == "G"
        assert products[row["product_id"]] == row["product_code"]
        batches[(row["warehouse_code"], row["product_id"])].append(row["batch_number"])
    assert all(1 <= len(numbers) <= 3 and len(set(numbers)) == len(numbers) for numbers in batches.values())
    assert Counter(len(numbers) for numbers in batches.values()).keys() == {1, 2, 3}
    warehouses = {(row["warehouse_id"], row["warehouse_code"]) for row in rows}
    assert {code for _id, code in warehouses} == {"WH-MAIN", "WH-NORTH", "WH-DEFECT"}
    assert all(len(wid) == 5 and wid.isdigit() for wid, _code in warehouses)
    assert tenant.app.stats()["calls"]["documents"] == 1


def test_a_products_stock_is_the_sum_of_its_rows_and_none_means_no_row(tenant: Tenant) -> None:
    rows = balance(tenant)
    summed = totals(rows)
    held = Counter(code for code, _product in summed)
    assert held["WH-MAIN"] > held["WH-NORTH"] > held["WH-DEFECT"] > 0
    assert held["WH-MAIN"] < 60
    for record in tenant.app.data.products[:20]:
        for code, own in tenant.app.stock_of(record.product_id).items():
            if not own:
                assert (code, record.product_id) not in summed
                continue
            assert summed[(code, record.product_id)] == sum(Decimal(r["quantity"]) for r in own)


def test_quantities_costs_and_the_odd_negative_look_like_a_real_erp(make_tenant: Any) -> None:
    rows = balance(make_tenant(products=8000, orders=0))
    quantities = [Decimal(row["quantity"]) for row in rows]
    assert sum(q != q.to_integral_value() for q in quantities) > len(rows) * 0.2
    assert any(Decimal(0) < q < 1 for q in quantities)
    negative = sum(q < 0 for q in quantities)
    assert 1 <= negative <= len(rows) / 500
    prices = Counter("absent" if "input_price" not in r else "empty" if not r["input_price"] else "set" for r in rows)
    assert prices["set"] > len(rows) * 0.8
    assert prices["empty"] > prices["absent"] > 0
    assert all(Decimal(r["input_price"]) > 0 for r in rows if r.get("input_price"))
    defect = [q for row, q in zip(rows, quantities, strict=True) if row["warehouse_code"] == "WH-DEFECT"]
    assert max(defect) < 10 < max(quantities)


def test_the_stock_is_as_of_end_date(tenant: Tenant) -> None:
    today = balance(tenant, day(0))
    assert balance(tenant) == today == balance(tenant, "", "") == tenant.items(BALANCE, {}, root="balance")
    assert balance(tenant, day(30)) == today
    month_ago = balance(tenant, day(-30))
    assert 0 < len(month_ago) < len(today)
    received = {}
    for record in tenant.app.data.products:
        for own in tenant.app.stock_of(record.product_id).values():
            for row in own:
                received[(row["warehouse_code"], row["product_id"], row["batch_number"])] = row["received"]
    cut = TODAY.toordinal() - 30

    def day_of(text: str) -> int:
        return datetime.strptime(text, "%d.%m.%Y").date().toordinal()

    expected = [r for r in today if day_of(received[(r["warehouse_code"], r["product_id"], r["batch_number"])]) <= cut]
    assert month_ago == expected
    assert balance(tenant, day(-200)) == []


@pytest.mark.parametrize("field", ["begin_date", "end_date"])
@pytest.mark.parametrize("value", ["2026-06-25", "31.02.2026", "1.6.2026", 25062026])
def test_a_bad_date_is_a_plain_400(tenant: Tenant, field: str, value: Any) -> None:
    answer = tenant.export(BALANCE, {"begin_date": day(0), "end_date": day(0), field: value})
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/plain")
    assert field in answer.text or "31.02.2026" in answer.text


def test_the_count_of_warehouses_is_configurable(make_tenant: Any) -> None:
    one = {row["warehouse_code"] for row in balance(make_tenant(warehouses=1))}
    assert one == {"WH-MAIN"}
    five = [w.code for w in make_warehouses(5, 42)]
    assert five == ["WH-MAIN", "WH-NORTH", "WH-03", "WH-04", "WH-DEFECT"]
    assert [w.code for w in make_warehouses(2, 42)] == ["WH-MAIN", "WH-NORTH"]
    assert {row["warehouse_code"] for row in balance(make_tenant(warehouses=5, products=200))} == set(five)
    with pytest.raises(ValueError, match="warehouses"):
        make_tenant(warehouses=0)


def test_same_seed_same_stock_and_edits_before_the_first_call_touch_only_their_product(make_tenant: Any) -> None:
    first, again, other = make_tenant(seed=3), make_tenant(seed=3), make_tenant(seed=4)
    assert first.export(BALANCE).json()["balance"] == again.export(BALANCE).json()["balance"]
    assert balance(first) != balance(other)
    removed = again.app.data.products[0].product_id
    again.app.remove_product(removed)
    assert balance(again) == [row for row in balance(first) if row["product_id"] != removed]


def test_signed_quantities() -> None:
    assert [signed_quantity(n) for n in (12500, 250, 0, -250, -3000)] == [
        "12.500", "0.250", "0.000", "-0.250", "-3.000",
    ]  # fmt: skip


# ----- control hooks


def test_stock_is_set_over_http_between_two_syncs(tenant: Tenant) -> None:
    record = tenant.app.data.products[4]
    url = f"{tenant.running.url}/_sandbox/stock"
    batches = [
        {"quantity": "12.500", "batch_number": "L-1", "input_price": "15000.00", "received": day(-40)},
        {"quantity": 0.25, "input_price": ""},
        {"quantity": -2, "received": day(-1)},
        {"quantity": 7, "received": day(3)},
    ]
    set_answer = httpx.post(
        url, json={"product_id": record.product_id, "warehouse_code": "WH-NORTH", "batches": batches}
    )
    assert set_answer.status_code == 200, set_answer.text
    rows = [r for r in balance(tenant) if (r["product_id"], r["warehouse_code"]) == (record.product_id, "WH-NORTH")]
    assert [(r["batch_number"], r["quantity"], r.get("input_price")) for r in rows] == [
        ("L-1", "12.500", "15000.00"), ("20260624-3", "-2.000", None), ("20260625-2", "0.250", ""),
    ]  # fmt: skip
    assert totals(rows)[("WH-NORTH", record.product_id)] == Decimal("10.750")
    future = [r for r in balance(tenant, day(3)) if r["product_id"] == record.product_id and r["quantity"] == "7.000"]
    assert len(future) == 1
    assert httpx.get(f"{url}/{record.product_id}").json()["WH-NORTH"][0]["received"] == day(-40)
    httpx.post(url, json={"product_id": record.product_id, "warehouse_code": "WH-NORTH", "batches": []})
    assert ("WH-NORTH", record.product_id) not in totals(balance(tenant))


def test_stock_hooks_refuse_what_does_not_exist(tenant: Tenant) -> None:
    url = f"{tenant.running.url}/_sandbox/stock"
    pid = tenant.app.data.products[0].product_id
    good = {"product_id": pid, "warehouse_code": "WH-MAIN", "batches": [{"quantity": 1}]}
    assert httpx.post(url, json=good).status_code == 200
    assert httpx.post(url, json={**good, "warehouse_code": "WH-NOPE"}).status_code == 404
    assert httpx.post(url, json={**good, "product_id": "0"}).status_code == 404
    assert httpx.post(url, json={**good, "batches": [{"quantity": "много"}]}).status_code == 400
    assert httpx.post(url, json={**good, "batches": [{}]}).status_code == 400
    assert httpx.post(url, json={**good, "batches": [{"quantity": 1, "received": "2026-06-01"}]}).status_code == 400
    assert httpx.post(url, json={**good, "batches": "x"}).status_code == 400
    assert httpx.get(f"{url}/0").status_code == 404


def test_a_new_product_code_shows_in_its_stock_rows(tenant: Tenant) -> None:
    record = next(r for r in tenant.app.data.products if any(tenant.app.stock_of(r.product_id).values()))
    balance(tenant)
    tenant.app.edit_product(record.product_id, code="NEW-1")
    own = [r for r in balance(tenant) if r["product_id"] == record.product_id]
    assert own and {r["product_code"] for r in own} == {"NEW-1"}
