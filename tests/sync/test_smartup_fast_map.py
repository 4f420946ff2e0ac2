"""The fast mapping path (msgspec structs) gives the plain path's rows, and hands it whatever it cannot take."""

from __future__ import annotations

import json
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from camsync.sandbox.smartup_data import Filial, generate_smartup_data
from camsync.store.smartup import Order, OrderLine, Product, ProductPrice, text_limits
from camsync.sync.smartup import fast_mapping
from camsync.sync.smartup.fast_mapping import OrderMapper, PriceMapper, ProductMapper
from camsync.sync.smartup.items import ItemError, fingerprint, fingerprint_raw
from camsync.sync.smartup.mapping import map_order, map_prices, map_product

TASHKENT = ZoneInfo("Asia/Tashkent")
PRODUCT_LIMITS = text_limits(Product)
ORDER_LIMITS = text_limits(Order)
LINE_LIMITS = text_limits(OrderLine)
PRICE_LIMITS = {**text_limits(ProductPrice), "inventory_code": text_limits(ProductPrice)["product_code"]}


def raw(item: Any) -> bytes:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()


def plain_product(source: bytes) -> dict[str, Any]:
    fp = fingerprint_raw(source, key_field="product_id")
    return map_product(json.loads(source), fp=fp, limits=PRODUCT_LIMITS)


def plain_order(source: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    fp = fingerprint_raw(source, key_field="deal_id")
    return map_order(json.loads(source), fp=fp, tz=TASHKENT, limits=ORDER_LIMITS, line_limits=LINE_LIMITS)


def outcome(call: Any, *args: Any, **kwargs: Any) -> Any:
    """The rows, or the ItemError's id and reason."""
    try:
        return call(*args, **kwargs)
    except ItemError as error:
        return ("ItemError", error.item_id, error.reason)


@pytest.fixture(scope="module")
def tenant() -> Any:
    return generate_smartup_data(
        products=400,
        orders=300,
        seed=11,
        today=date(2026, 6, 25),
        filials=[Filial("101", "TASH", "Филиал TASH"), Filial("102", "SAM", "Филиал SAM")],
    )


def test_sandbox_items_map_the_same_on_both_paths(tenant: Any) -> None:
    products = ProductMapper(PRODUCT_LIMITS)
    fast = [products(fingerprint_raw(record.body, key_field="product_id")) for record in tenant.products]
    assert fast == [plain_product(record.body) for record in tenant.products]
    orders = OrderMapper(tz=TASHKENT, limits=ORDER_LIMITS, line_limits=LINE_LIMITS)
    fast_orders = [orders(fingerprint_raw(record.body, key_field="deal_id")) for record in tenant.orders]
    assert fast_orders == [plain_order(record.body) for record in tenant.orders]
    prices = PriceMapper(PRICE_LIMITS)
    fast_prices = [prices(record.body) for record in tenant.prices]
    assert fast_prices == [map_prices(json.loads(record.body), limits=PRICE_LIMITS) for record in tenant.prices]


def test_sandbox_items_take_the_fast_path(tenant: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def plain(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the plain path was taken")

    for name in ("map_product", "map_order", "map_prices"):
        monkeypatch.setattr(fast_mapping, name, plain)
    products = ProductMapper(PRODUCT_LIMITS)
    orders = OrderMapper(tz=TASHKENT, limits=ORDER_LIMITS, line_limits=LINE_LIMITS)
    prices = PriceMapper(PRICE_LIMITS)
    assert all(products(fingerprint_raw(r.body, key_field="product_id")) for r in tenant.products)
    assert all(orders(fingerprint_raw(r.body, key_field="deal_id")) for r in tenant.orders)
    assert sum(len(prices(r.body)) for r in tenant.prices) >= len(tenant.prices)


def test_the_raw_hash_is_the_hash_of_the_text_as_sent(tenant: Any) -> None:
    body = tenant.orders[0].body
    fp = fingerprint_raw(body, key_field="deal_id")
    assert fp == fingerprint(json.loads(body), key_field="deal_id", text=body.decode())
    assert fp.raw == body.decode()


BASE_PRODUCT = {"product_id": "7", "code": "C1", "name": "Чай", "state": "A", "barcodes": "1|2", "weight_netto": "1.5"}


@pytest.mark.parametrize(
    "change",
    [
        {"weight_netto": 1.5},  # a number sent as a JSON number: the plain path takes it
        {"weight_netto": " 2 "},  # blank-padded number
        {"weight_netto": "   "},  # blank number
        {"weight_netto": "1e3"},
        {"weight_netto": "abc"},  # not a number
        {"weight_netto": "1" * 20},  # out of range
        {"product_id": 7},  # an id sent as a number
        {"product_id": " 7 "},  # a padded id
        {"product_id": "x" * 65},
        {"code": ""},  # required and empty
        {"code": None},
        {"name": "N" * 1001},  # longer than the column
        {"state": "X"},
        {"groups": [{"group_code": 5}, {"group_code": "G"}]},
        {"groups": ["G"]},
        {"groups": {"group_code": "G"}},
        {"barcodes": ", 1 ,1|| 2"},
    ],
)
def test_odd_products_go_the_plain_way_with_the_same_outcome(change: dict[str, Any]) -> None:
    source = raw({**BASE_PRODUCT, **change})
    mapper = ProductMapper(PRODUCT_LIMITS)
    try:
        fp = fingerprint_raw(source, key_field="product_id")
    except ItemError as error:
        assert ("ItemError", error.item_id, error.reason) == outcome(
            fingerprint, json.loads(source), key_field="product_id"
        )
        return
    assert outcome(mapper, fp) == outcome(plain_product, source)


BASE_ORDER = {
    "deal_id": "9",
    "deal_time": "25.06.2026 09:10:00",
    "delivery_date": "26.06.2026",
    "status": "B#N",
    "total_amount": "15000",
    "order_products": [{"product_unit_id": "9-1", "product_code": "P1", "order_quant": "2", "expiry_date": ""}],
}


@pytest.mark.parametrize(
    "change",
    [
        {"deal_time": "31.02.2026 10:00:00"},  # no such day
        {"deal_time": "2026-06-25T09:10:00"},
        {"deal_time": ""},
        {"delivery_date": "32.01.2026"},
        {"delivery_date": " 01.02.2026 "},
        {"status": ""},
        {"status": "Z"},  # unknown: kept, labelled
        {"total_amount": 15000},
        {"order_products": None},
        {"order_products": "none"},
        {"order_products": ["line"]},
        {"order_products": [{"product_code": "P1"}]},  # no product_unit_id
        {"order_products": [{"product_unit_id": "u"}, {"product_unit_id": "u"}]},
        {"order_products": [{"product_unit_id": "u", "expiry_date": "99.99.2026"}]},
        {"order_products": [{"product_unit_id": "u", "sold_amount": "NaN"}]},
        {"order_products": [{"product_unit_id": "u", "vat_percent": 12}]},
        {"note": "n" * 4001},
    ],
)
def test_odd_orders_go_the_plain_way_with_the_same_outcome(change: dict[str, Any]) -> None:
    source = raw({**BASE_ORDER, **change})
    mapper = OrderMapper(tz=TASHKENT, limits=ORDER_LIMITS, line_limits=LINE_LIMITS)
    fp = fingerprint_raw(source, key_field="deal_id")
    assert outcome(mapper, fp) == outcome(plain_order, source)


@pytest.mark.parametrize(
    "item",
    [
        {"inventory_code": "C1", "price_type": [{"price_type_code": "R", "price": "9.50"}]},
        {"inventory_code": "C1", "price_type": [{"price_type_code": "R", "price": ""}]},
        {"inventory_code": "C1", "price_type": [{"price_type_code": "R", "price": 9.5}]},
        {"inventory_code": " C1", "price_type": [{"price_type_code": "R", "price": "1"}]},
        {"inventory_code": "C1", "price_type": [{"price": "1"}]},
        {"inventory_code": "C1", "price_type": [{"price_type_code": "R", "price": "x"}]},
        {"inventory_code": "C1", "price_type": None},
        {"inventory_code": "C1", "price_type": "R"},
        {"price_type": []},
    ],
)
def test_odd_prices_go_the_plain_way_with_the_same_outcome(item: dict[str, Any]) -> None:
    source = raw(item)
    assert outcome(PriceMapper(PRICE_LIMITS), source) == outcome(map_prices, item, limits=PRICE_LIMITS)


def test_the_value_caches_never_change_a_result() -> None:
    mapper = OrderMapper(tz=TASHKENT, limits=ORDER_LIMITS, line_limits=LINE_LIMITS)
    lines = [{"product_unit_id": str(i), "order_quant": "2.000", "expiry_date": "01.01.2027"} for i in range(3)]
    for deal in range(3):
        source = raw({**BASE_ORDER, "deal_id": str(deal), "order_products": lines})
        assert mapper(fingerprint_raw(source, key_field="deal_id")) == plain_order(source)
    bad = raw({**BASE_ORDER, "order_products": [{"product_unit_id": "u", "order_quant": "2.0.0"}]})
    for _ in range(2):  # a failure is never remembered as a value
        with pytest.raises(ItemError, match=r"line order_quant is '2\.0\.0', not a number"):
            mapper(fingerprint_raw(bad, key_field="deal_id"))
