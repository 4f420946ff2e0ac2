"""The SmartUp simulator over real HTTP on loopback, with httpx as the client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from camsync.sandbox.server import RunningSandbox
from camsync.sandbox.smartup import SmartupSandbox, start_smartup_sandbox
from camsync.sandbox.smartup_config import (
    AUTH_TEXT,
    BUDGET_ERROR_CODE,
    RANGE_ERROR_CODE,
    SmartupFaults,
    SmartupSandboxConfig,
)
from camsync.sandbox.smartup_data import ORDER_STATUSES, Filial, generate_smartup_data

INVENTORY = "/b/anor/mxsx/mr/inventory$export"
ORDERS = "/b/trade/txs/tdeal/order$export"
PRICES = "/b/anor/api/v2/mkf/product_price$export"
NOW = datetime(2026, 6, 25, 5, 0, tzinfo=UTC)  # 10:00 in Tashkent
TODAY = date(2026, 6, 25)
REPO = Path(__file__).resolve().parents[2]


@dataclass
class FakeClock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Sleeps:
    seconds: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


@dataclass
class Tenant:
    running: RunningSandbox
    client: httpx.Client
    clock: FakeClock
    sleeps: Sleeps

    @property
    def app(self) -> SmartupSandbox:
        assert isinstance(self.running.app, SmartupSandbox)
        return self.running.app

    def export(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.client.post(path, json=body if body is not None else {})

    def items(self, path: str, body: dict[str, Any] | None = None, root: str = "") -> list[dict[str, Any]]:
        answer = self.export(path, body)
        assert answer.status_code == 200, answer.text
        data = answer.json()
        key = root or ("order" if path == ORDERS else "inventory")
        assert key in data, data
        items: list[dict[str, Any]] = data[key]
        return items


HEADERS = {"project_code": "trade", "filial_id": "100"}


def open_tenant(**options: Any) -> Tenant:
    clock, sleeps = FakeClock(), Sleeps()
    config = SmartupSandboxConfig(**{"products": 60, "orders": 120, "seed": 7, **options}, clock=clock, sleep=sleeps)
    running = start_smartup_sandbox(config)
    client = httpx.Client(base_url=running.url, auth=("sandbox", "sandbox"), headers=HEADERS, timeout=10)
    return Tenant(running, client, clock, sleeps)


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).strftime("%d.%m.%Y")


def scalars(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from scalars(item)
    else:
        yield value


# ----- transport, auth and headers


def test_both_spellings_of_the_path_and_both_methods_answer(tenant: Tenant) -> None:
    literal = tenant.client.post(INVENTORY, json={"code": ""})
    encoded = tenant.client.post(INVENTORY.replace("$", "%24"), json={"code": ""})
    plain_get = tenant.client.get(INVENTORY.replace("$", "%24"))
    assert [r.status_code for r in (literal, encoded, plain_get)] == [200, 200, 200]
    assert literal.json()["inventory"] == encoded.json()["inventory"] == plain_get.json()["inventory"]
    assert len(literal.json()["inventory"]) == 60
    assert tenant.app.stats()["paths"] == {INVENTORY: 3}


def test_unknown_path_is_404(tenant: Tenant) -> None:
    assert tenant.client.post("/b/anor/nothing$export", json={}).status_code == 404


@pytest.mark.parametrize(
    ("auth", "headers"),
    [
        (None, HEADERS),
        (("sandbox", "wrong"), HEADERS),
        (("someone", "sandbox"), HEADERS),
        (("sandbox", "sandbox"), {"project_code": "clinic", "filial_id": "100"}),
        (("sandbox", "sandbox"), {"filial_id": "100"}),
    ],
    ids=["no-auth", "wrong-password", "wrong-user", "wrong-project-code", "no-project-code"],
)
def test_refused_auth_is_401_in_russian_plain_text_and_costs_nothing(
    tenant: Tenant, auth: tuple[str, str] | None, headers: dict[str, str]
) -> None:
    with httpx.Client(base_url=tenant.running.url, auth=auth, headers=headers) as client:
        answer = client.post(INVENTORY, json={})
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.text == AUTH_TEXT == "Требуется авторизация"
    stats = tenant.app.stats()
    assert stats["calls"]["reference"] == 0
    assert stats["refused"]["auth"] == 1


def test_missing_filial_id_is_a_plain_400(tenant: Tenant) -> None:
    with httpx.Client(base_url=tenant.running.url, auth=("sandbox", "sandbox"), headers={"project_code": "trade"}) as c:
        answer = c.post(ORDERS, json={})
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/plain")
    assert "filial_id" in answer.text


def test_unknown_filial_id_is_error_json_under_200(tenant: Tenant) -> None:
    answer = tenant.client.post(ORDERS, json={}, headers={"filial_id": "999"})
    assert answer.status_code == 200
    assert answer.json()["error_code"] == "A02-24-042"


# ----- data shape


def test_every_scalar_of_every_answer_is_a_string(tenant: Tenant) -> None:
    for path in (INVENTORY, ORDERS, PRICES):
        data = tenant.export(path).json()
        values = list(scalars(data))
        assert values, path
        assert all(isinstance(value, str) for value in values), path


def test_products_carry_the_spec_fields(tenant: Tenant) -> None:
    products = tenant.items(INVENTORY)
    expected = {
        "product_id", "code", "name", "short_name", "article_code", "measure_code", "barcodes", "state",
        "weight_netto", "weight_brutto", "litr", "box_type_code", "box_quant", "producer_code", "order_no", "gtin",
        "ikpu", "tnved", "marking_group_code", "groups", "inventory_kinds", "sector_codes",
    }  # fmt: skip
    for product in products:
        assert set(product) == expected
        assert product["product_id"].isdigit()
        assert product["state"] in ("A", "P")
        codes = [c for c in product["barcodes"].replace("|", ",").split(",") if c]
        assert len(codes) <= 3
        for code in codes:
            digits = [int(d) for d in code]
            assert len(code) == 13
            assert (sum(digits[0:12:2]) + 3 * sum(digits[1:12:2]) + digits[12]) % 10 == 0
        for entry in product["groups"]:
            assert set(entry) == {"group_id", "group_code", "type_id", "type_code"}
    assert len({p["code"] for p in products}) == len(products)
    assert {p["state"] for p in products} == {"A", "P"}


def test_prices_have_one_to_three_types_per_product(tenant: Tenant) -> None:
    prices = tenant.items(PRICES)
    assert len(prices) == 60
    for item in prices:
        assert set(item) == {"inventory_code", "price_type"}
        assert 1 <= len(item["price_type"]) <= 3
        assert all(Decimal(p["price"]) > 0 for p in item["price_type"])


def test_orders_are_consistent_with_their_lines_and_the_products(make_tenant: Any) -> None:
    tenant = make_tenant(products=60, orders=600)
    products = tenant.items(INVENTORY)
    codes = {p["code"] for p in products}
    barcodes = {c for p in products for c in p["barcodes"].replace("|", ",").split(",") if c}
    orders = tenant.items(ORDERS)
    unit_ids = [line["product_unit_id"] for order in orders for line in order["order_products"]]
    assert len(unit_ids) == len(set(unit_ids))
    assert {order["status"] for order in orders} == set(ORDER_STATUSES)
    empty_codes = 0
    for order in orders:
        lines = order["order_products"]
        assert 1 <= len(lines) <= 9
        assert order["currency_code"] == "860"
        assert Decimal(order["total_amount"]) == sum(Decimal(line["sold_amount"]) for line in lines)
        datetime.strptime(order["deal_time"], "%d.%m.%Y %H:%M:%S")
        for line in lines:
            assert line["order_quant"].endswith(".000")
            if line["product_code"]:
                assert line["product_code"] in codes
            else:
                empty_codes += 1
                assert line["product_barcode"] in barcodes
    assert empty_codes > 0


def test_same_seed_same_data_and_another_seed_other_data() -> None:
    filials = [Filial("101", "TASH", "a")]
    first = generate_smartup_data(products=40, orders=40, seed=3, today=TODAY, filials=filials)
    again = generate_smartup_data(products=40, orders=40, seed=3, today=TODAY, filials=filials)
    other = generate_smartup_data(products=40, orders=40, seed=4, today=TODAY, filials=filials)
    assert first == again
    assert [p.body for p in first.products] != [p.body for p in other.products]
    assert [o.body for o in first.orders] != [o.body for o in other.orders]


# ----- filters


def test_empty_strings_mean_no_filter(tenant: Tenant) -> None:
    empty_inventory = dict.fromkeys(
        ("code", "begin_created_on", "end_created_on", "begin_modified_on", "end_modified_on"), ""
    )
    empty_orders = {
        **dict.fromkeys(("deal_id", "external_id", "filial_code", "begin_deal_date", "end_deal_date"), ""),
        **dict.fromkeys(("begin_created_on", "end_created_on", "begin_modified_on", "end_modified_on"), ""),
        "filial_codes": [],
        "statuses": [],
    }
    assert len(tenant.items(INVENTORY, empty_inventory)) == 60
    assert len(tenant.items(ORDERS, empty_orders)) == 120


def test_inventory_filters_by_code_and_by_modified_and_created_days(tenant: Tenant) -> None:
    records = tenant.app.data.products
    one = tenant.items(INVENTORY, {"code": records[5].code})
    assert [p["product_id"] for p in one] == [records[5].product_id]
    since = TODAY.toordinal() - 10
    modified = tenant.items(INVENTORY, {"begin_modified_on": day(-10)})
    assert {p["product_id"] for p in modified} == {r.product_id for r in records if r.modified >= since}
    window = tenant.items(INVENTORY, {"begin_created_on": day(-30), "end_created_on": day(-20)})
    expected = {r.product_id for r in records if since - 20 <= r.created <= since - 10}
    assert {p["product_id"] for p in window} == expected
    assert 0 < len(expected) < 60


def test_order_filters(tenant: Tenant) -> None:
    records = tenant.app.data.orders
    target = next(r for r in records if r.external_id)
    assert [o["deal_id"] for o in tenant.items(ORDERS, {"deal_id": target.deal_id})] == [target.deal_id]
    assert [o["deal_id"] for o in tenant.items(ORDERS, {"external_id": target.external_id})] == [target.deal_id]
    shipped = tenant.items(ORDERS, {"statuses": ["B#S", "B#V"]})
    assert {o["deal_id"] for o in shipped} == {r.deal_id for r in records if r.status in ("B#S", "B#V")}
    tash = tenant.items(ORDERS, {"filial_code": "TASH"})
    assert {o["filial_code"] for o in tash} == {"TASH"}
    assert len(tash) == sum(r.filial_code == "TASH" for r in records)
    two = tenant.items(ORDERS, {"filial_codes": [{"filial_code": "TASH"}, {"filial_code": "BUKH"}]})
    assert len(two) == sum(r.filial_code in ("TASH", "BUKH") for r in records)
    deals = tenant.items(ORDERS, {"begin_deal_date": day(-6), "end_deal_date": day(-3)})
    low, high = TODAY.toordinal() - 6, TODAY.toordinal() - 3
    assert {o["deal_id"] for o in deals} == {r.deal_id for r in records if low <= r.deal_day <= high}


@pytest.mark.parametrize("value", ["2026-06-01", "32.01.2026", "1.6.2026", 20260601])
def test_a_bad_date_is_a_plain_400(tenant: Tenant, value: Any) -> None:
    answer = tenant.export(ORDERS, {"begin_modified_on": value})
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/plain")


def test_filial_code_not_found_for_a_head_organisation(tenant: Tenant) -> None:
    answer = tenant.export(ORDERS, {"filial_code": "NOPE"})
    assert answer.status_code == 200
    assert answer.json()["error_code"] == "A02-24-042"


def test_a_single_organisation_refuses_a_foreign_filial_code(make_tenant: Any) -> None:
    tenant = make_tenant(single_organisation=True, filial_codes=("HQ",))
    assert len(tenant.items(ORDERS, {"filial_code": "HQ"})) == 120
    answer = tenant.export(ORDERS, {"filial_code": "TASH"})
    assert answer.status_code == 200
    assert answer.json()["error_code"] == "A02-24-048"


# ----- limits and budget


def test_limits_count_down_then_the_budget_is_exhausted(make_tenant: Any) -> None:
    tenant = make_tenant(reference_budget=3, documents_budget=5)
    lefts = [tenant.export(INVENTORY).json()["limits"] for _ in range(3)]
    assert [x["left_limit_quant"] for x in lefts] == ["2", "1", "0"]
    assert [x["request_quant"] for x in lefts] == ["1", "2", "3"]
    assert lefts[0] == {
        "has_limit": "Y", "limit_quant": "3", "request_quant": "1", "left_limit_quant": "2",
        "object_count": "60", "day_range_limit": "7",
    }  # fmt: skip
    spent = tenant.export(PRICES)
    assert spent.status_code == 200
    assert spent.json()["error_code"] == BUDGET_ERROR_CODE
    assert "Дневной лимит" in spent.json()["message"]
    assert tenant.export(ORDERS).json()["limits"]["left_limit_quant"] == "4"
    assert tenant.app.stats()["budget_left"] == {"reference": 0, "documents": 4, "rare": 300}
    tenant.clock.now = NOW + timedelta(hours=19)  # past midnight in Tashkent
    assert tenant.export(INVENTORY).json()["limits"]["left_limit_quant"] == "2"


def test_the_budget_day_is_the_tashkent_day(make_tenant: Any) -> None:
    tenant = make_tenant(reference_budget=1)
    tenant.clock.now = datetime(2026, 6, 25, 18, 30, tzinfo=UTC)  # 23:30 in Tashkent
    assert "limits" in tenant.export(INVENTORY).json()
    tenant.clock.now = datetime(2026, 6, 25, 18, 59, tzinfo=UTC)
    assert tenant.export(INVENTORY).json()["error_code"] == BUDGET_ERROR_CODE
    tenant.clock.now = datetime(2026, 6, 25, 19, 0, tzinfo=UTC)  # midnight in Tashkent, still 25.06 in UTC
    assert "limits" in tenant.export(INVENTORY).json()


def test_exhaustion_can_answer_429_and_reset_budget_restores_it(make_tenant: Any) -> None:
    tenant = make_tenant(reference_budget=1, budget_status=429)
    tenant.export(INVENTORY)
    assert tenant.export(INVENTORY).status_code == 429
    assert tenant.client.post("/_sandbox/reset-budget").json()["budget_left"]["reference"] == 1
    assert tenant.export(INVENTORY).status_code == 200


def test_limits_can_be_numbers_and_come_first(make_tenant: Any) -> None:
    tenant = make_tenant(limits_as_numbers=True, limits_first=True)
    answer = tenant.export(INVENTORY)
    assert answer.text.startswith('{"limits":')
    limits = answer.json()["limits"]
    assert limits["left_limit_quant"] == 99
    assert limits["object_count"] == 60
    assert limits["has_limit"] == "Y"


def test_stats_endpoint_counts_per_class_and_path(tenant: Tenant) -> None:
    tenant.export(INVENTORY)
    tenant.export(ORDERS)
    tenant.export(ORDERS)
    stats = httpx.get(f"{tenant.running.url}/_sandbox/stats").json()
    assert stats["calls"] == {"reference": 1, "documents": 2, "rare": 0}
    assert stats["paths"] == {INVENTORY: 1, ORDERS: 2}
    assert stats["budget_left"] == {"reference": 99, "documents": 498, "rare": 300}


# ----- day_range_limit


def test_a_wide_range_is_silently_clamped_to_its_first_days(tenant: Tenant) -> None:
    records = tenant.app.data.orders
    begin = TODAY.toordinal() - 30
    answer = tenant.items(ORDERS, {"begin_modified_on": day(-30), "end_modified_on": day(0)})
    expected = {r.deal_id for r in records if begin <= r.modified <= begin + 6}
    assert {o["deal_id"] for o in answer} == expected
    assert len(expected) < sum(r.modified >= begin for r in records)
    open_ended = tenant.items(ORDERS, {"begin_deal_date": day(-20), "end_deal_date": ""})
    assert {o["deal_id"] for o in open_ended} == {r.deal_id for r in records if begin + 10 <= r.deal_day <= begin + 16}


def test_a_range_within_the_limit_is_served_whole(tenant: Tenant) -> None:
    records = tenant.app.data.orders
    answer = tenant.items(ORDERS, {"begin_modified_on": day(-6)})
    assert {o["deal_id"] for o in answer} == {r.deal_id for r in records if r.modified >= TODAY.toordinal() - 6}


def test_a_wide_range_is_an_error_in_error_mode(make_tenant: Any) -> None:
    tenant = make_tenant(range_mode="error", day_range_limit=3)
    answer = tenant.export(ORDERS, {"begin_created_on": day(-3), "end_created_on": day(0)})
    assert answer.status_code == 200
    assert answer.json()["error_code"] == RANGE_ERROR_CODE
    assert tenant.export(ORDERS, {"begin_modified_on": day(-2)}).json()["limits"]["day_range_limit"] == "3"


# ----- faults


def test_server_errors_rotate_then_stop(tenant: Tenant) -> None:
    tenant.app.set_faults(server_error_next=3)
    statuses = [tenant.export(INVENTORY).status_code for _ in range(4)]
    assert statuses == [500, 502, 503, 200]
    assert tenant.app.stats()["calls"]["reference"] == 1


def test_rate_limit_answers_429_with_retry_after(tenant: Tenant) -> None:
    tenant.app.set_faults(rate_limit_next=1, retry_after=7)
    answer = tenant.export(ORDERS)
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "7"
    assert tenant.export(ORDERS).status_code == 200


def test_slow_answers_and_base_latency_sleep_through_the_injected_sleep(tenant: Tenant) -> None:
    tenant.app.set_faults(slow_next=1, slow_seconds=4.5)
    assert tenant.export(INVENTORY).status_code == 200
    assert tenant.sleeps.seconds == [4.5]
    tenant.app.set_faults(latency=0.25)
    tenant.export(INVENTORY)
    assert tenant.sleeps.seconds == [4.5, 0.25]


def test_malformed_json_is_a_truncated_body(tenant: Tenant) -> None:
    tenant.app.set_faults(malformed_next=1)
    answer = tenant.export(INVENTORY)
    assert answer.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        answer.json()
    assert answer.text.startswith('{"inventory":[')


def test_plain_text_400_fault(tenant: Tenant) -> None:
    tenant.app.set_faults(bad_request_next=1)
    answer = tenant.export(ORDERS)
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"


def test_dropped_connection(tenant: Tenant) -> None:
    tenant.app.set_faults(drop_next=1)
    with pytest.raises(httpx.TransportError):
        tenant.export(ORDERS)
    assert tenant.export(ORDERS).status_code == 200


def test_error_json_under_200_is_set_over_http(tenant: Tenant) -> None:
    url = f"{tenant.running.url}/_sandbox/faults"
    set_answer = httpx.post(url, json={"error_json": 1.0, "error_code": "A02-24-012", "error_message": "нет склада"})
    assert set_answer.json()["error_json"] == 1.0
    for _ in range(2):
        answer = tenant.export(ORDERS)
        assert answer.status_code == 200
        assert answer.json() == {"error_code": "A02-24-012", "message": "нет склада"}
    httpx.post(url, json={"error_json": 0})
    assert "order" in tenant.export(ORDERS).json()
    assert httpx.post(url, json={"nonsense": 1}).status_code == 400
    assert httpx.post(url, json={"slow": 2}).status_code == 400


def test_a_probability_of_one_strikes_every_time_and_zero_never() -> None:
    app = SmartupSandbox(SmartupSandboxConfig(products=5, orders=5, faults=SmartupFaults(server_error=1.0)))
    with (
        RunningSandbox(app) as running,
        httpx.Client(base_url=running.url, auth=("sandbox", "sandbox"), headers=HEADERS) as client,
    ):
        assert {client.post(INVENTORY, json={}).status_code for _ in range(5)} == {500, 502, 503}
        app.set_faults(server_error=0.0)
        assert {client.post(INVENTORY, json={}).status_code for _ in range(5)} == {200}
    assert app.stats()["faults_injected"] == {"server_error": 5}


# ----- edits


def test_an_edit_bumps_exactly_one_product_into_the_modified_since_window(tenant: Tenant) -> None:
    tenant.clock.now = NOW + timedelta(days=1)
    assert tenant.items(INVENTORY, {"begin_modified_on": day(1)}) == []
    target = tenant.app.data.products[10].product_id
    edited = httpx.post(f"{tenant.running.url}/_sandbox/edit", json={"product_id": target, "name": "Новое имя"})
    assert edited.json()["name"] == "Новое имя"
    window = tenant.items(INVENTORY, {"begin_modified_on": day(1)})
    assert [(p["product_id"], p["name"]) for p in window] == [(target, "Новое имя")]


def test_an_order_edit_bumps_exactly_one_order(tenant: Tenant) -> None:
    tenant.clock.now = NOW + timedelta(days=1)
    target = tenant.app.data.orders[3].deal_id
    tenant.app.edit_order(target, status="B#S")
    window = tenant.items(ORDERS, {"begin_modified_on": day(1)})
    assert [(o["deal_id"], o["status"]) for o in window] == [(target, "B#S")]
    assert target in {o["deal_id"] for o in tenant.items(ORDERS, {"statuses": ["B#S"]})}


def test_a_removed_product_disappears(tenant: Tenant) -> None:
    target = tenant.app.data.products[0]
    tenant.app.remove_product(target.product_id)
    assert tenant.items(INVENTORY, {"code": target.code}) == []
    assert tenant.items(PRICES, {"code": target.code}) == []
    assert len(tenant.items(INVENTORY)) == 59
    assert httpx.post(f"{tenant.running.url}/_sandbox/edit", json={"product_id": "0", "name": "x"}).status_code == 404


# ----- the command


def test_the_command_serves_and_exits_0_on_sigterm() -> None:
    code = "import typer; from camsync.commands.sandbox_smartup import smartup; typer.run(smartup)"
    args = ["--port", "0", "--products", "20", "--orders", "20", "--user", "u1", "--password", "p1"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(6)]
        env_lines = dict(line.strip().split("=", 1) for line in lines if "=" in line)
        assert env_lines["SMARTUP_BASIC_USER"] == "u1"
        assert env_lines["SMARTUP_FILIAL_ID"] == "100"
        answer = httpx.post(
            env_lines["SMARTUP_BASE_URL"] + INVENTORY,
            json={},
            auth=("u1", "p1"),
            headers={"project_code": "trade", "filial_id": env_lines["SMARTUP_FILIAL_ID"]},
        )
        assert len(answer.json()["inventory"]) == 20
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
