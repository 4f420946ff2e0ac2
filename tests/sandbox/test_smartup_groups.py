"""The SmartUp simulator's product groups: classifications and their values, and each product's values in them."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from itertools import pairwise
from typing import Any

import httpx
from test_smartup_sandbox import INVENTORY, NOW, Tenant, day, scalars

GROUPS = "/b/anor/mxsx/mr/product_group$export"
GROUP_KEYS = {"product_group_id", "code", "name", "state", "product_group_types"}
VALUE_KEYS = {"product_type_id", "code", "name", "state", "order_no"}


def groups_of(tenant: Tenant) -> list[dict[str, Any]]:
    answer = tenant.export(GROUPS)
    assert answer.status_code == 200, answer.text
    groups: list[dict[str, Any]] = answer.json()["product_group"]
    return groups


def public_lookup(doc: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """How a public client reads the export: each value's name and classification id, by product_type_id."""
    lookup: dict[str, tuple[str, str]] = {}
    for group in doc["product_group"]:
        gid = group["product_group_id"]
        for value in group["product_group_types"]:
            lookup[value["product_type_id"]] = (value["name"], gid)
    return lookup


def test_the_export_is_classifications_with_their_values(tenant: Tenant) -> None:
    answer = tenant.export(GROUPS).json()
    assert set(answer) == {"product_group", "limits"}
    assert all(isinstance(value, str) for value in scalars(answer["product_group"]))
    groups = answer["product_group"]
    assert {"CATEGORY", "BRAND", "PACKAGING"} <= {g["code"] for g in groups}
    ids: list[str] = []
    for group in groups:
        assert GROUP_KEYS <= set(group) <= GROUP_KEYS | {"product_kind"}
        assert group["state"] in ("A", "P")
        ids.append(group["product_group_id"])
        for order_no, value in enumerate(group["product_group_types"], start=1):
            assert set(value) == VALUE_KEYS
            assert value["state"] in ("A", "P")
            assert value["order_no"] == str(order_no)
            ids.append(value["product_type_id"])
    assert all(len(i) == 5 and i.isdigit() for i in ids)
    assert len(ids) == len(set(ids))
    states = Counter(v["state"] for g in groups for v in g["product_group_types"])
    assert states["P"] >= 1 and states["A"] > states["P"]
    assert any("product_kind" in g for g in groups) and not all("product_kind" in g for g in groups)


def test_ids_are_not_derived_from_the_codes_or_the_order(tenant: Tenant) -> None:
    groups = {g["code"]: g for g in groups_of(tenant)}
    for code in ("CATEGORY", "BRAND"):
        values = [int(v["product_type_id"]) for v in groups[code]["product_group_types"]]
        steps = {b - a for a, b in pairwise(values)}
        assert len(steps) > 1, f"{code} ids run in a sequence"
    assert [g["product_group_id"] for g in groups.values()] != sorted(g["product_group_id"] for g in groups.values())


def test_the_public_client_parse_finds_each_products_value_and_classification(tenant: Tenant) -> None:
    doc = tenant.export(GROUPS).json()
    lookup = public_lookup(doc)
    codes = {g["product_group_id"]: g["code"] for g in doc["product_group"]}
    products = tenant.items(INVENTORY)
    found = 0
    for product in products:
        for entry in product["groups"]:
            if entry["type_id"] not in lookup:
                continue  # a value deleted from the reference (about one product in a thousand)
            name, group_id = lookup[entry["type_id"]]
            assert group_id == entry["group_id"]
            assert codes[group_id] == entry["group_code"]
            if entry["group_code"] == "CATEGORY":
                assert product["name"].startswith(name)
            if entry["group_code"] == "BRAND":
                assert f" {name} " in product["name"]
            found += 1
    assert found > len(products)


def test_a_product_has_one_value_per_classification_it_carries_and_some_carry_none(make_tenant: Any) -> None:
    tenant = make_tenant(products=1500, orders=0)
    products = tenant.items(INVENTORY)
    carried = Counter[str]()
    for product in products:
        classes = [entry["group_code"] for entry in product["groups"]]
        assert len(classes) == len(set(classes))
        carried.update(classes)
    empty = sum(not product["groups"] for product in products)
    assert 0 < empty < len(products) * 0.1
    assert carried["CATEGORY"] == len(products) - empty
    assert 0.9 * len(products) < carried["BRAND"] < carried["CATEGORY"]
    assert 0.3 * len(products) < carried["PACKAGING"] < 0.8 * len(products)


def test_about_one_product_in_a_thousand_carries_a_value_deleted_from_the_reference(make_tenant: Any) -> None:
    first = make_tenant(products=6000, orders=0, seed=11)
    again = make_tenant(products=6000, orders=0, seed=11)

    def dangling(tenant: Tenant) -> list[tuple[str, str]]:
        lookup = public_lookup(tenant.export(GROUPS).json())
        return [
            (product["product_id"], entry["type_id"])
            for product in tenant.items(INVENTORY)
            for entry in product["groups"]
            if entry["type_id"] not in lookup
        ]

    found = dangling(first)
    assert 1 <= len(found) <= 20
    assert found == dangling(again)


def test_same_seed_same_groups_other_seed_other_ids(make_tenant: Any) -> None:
    first, again, other = make_tenant(seed=5), make_tenant(seed=5), make_tenant(seed=6)
    assert first.export(GROUPS).json()["product_group"] == again.export(GROUPS).json()["product_group"]
    assert [p["groups"] for p in first.items(INVENTORY)] == [p["groups"] for p in again.items(INVENTORY)]
    ids = {g["product_group_id"] for g in groups_of(first)}
    assert ids.isdisjoint(g["product_group_id"] for g in groups_of(other))


def test_the_groups_do_not_change_the_rest_of_a_product(make_tenant: Any) -> None:
    first, other = make_tenant(seed=5), make_tenant(seed=5, products=61)
    assert [p["name"] for p in first.items(INVENTORY)] == [p["name"] for p in other.items(INVENTORY)][:60]


# ----- control hooks


def test_a_products_value_is_changed_and_taken_away_between_two_syncs(tenant: Tenant) -> None:
    doc = tenant.export(GROUPS).json()
    brands = next(g for g in doc["product_group"] if g["code"] == "BRAND")
    target = next(p for p in tenant.items(INVENTORY) if any(e["group_code"] == "BRAND" for e in p["groups"]))
    current = next(e["type_code"] for e in target["groups"] if e["group_code"] == "BRAND")
    new = next(v for v in brands["product_group_types"] if v["code"] != current)
    tenant.clock.now = NOW + timedelta(days=1)
    url = f"{tenant.running.url}/_sandbox/product-group"
    body = {"product_id": target["product_id"], "group_code": "BRAND", "type_code": new["code"]}
    edited = httpx.post(url, json=body).json()
    entry = next(e for e in edited["groups"] if e["group_code"] == "BRAND")
    assert entry == {
        "group_id": brands["product_group_id"], "group_code": "BRAND",
        "type_id": new["product_type_id"], "type_code": new["code"],
    }  # fmt: skip
    assert [e["group_code"] for e in edited["groups"]] == [e["group_code"] for e in target["groups"]]
    window = tenant.items(INVENTORY, {"begin_modified_on": day(1)})
    assert [p["product_id"] for p in window] == [target["product_id"]]
    assert public_lookup(doc)[entry["type_id"]] == (new["name"], brands["product_group_id"])
    taken = httpx.post(url, json={**body, "type_code": None}).json()
    assert "BRAND" not in {e["group_code"] for e in taken["groups"]}
    assert httpx.post(url, json={**body, "type_code": "NO-SUCH"}).status_code == 404
    assert httpx.post(url, json={**body, "group_code": "NOPE"}).status_code == 404
    assert httpx.post(url, json={**body, "product_id": "0"}).status_code == 404


def test_a_value_of_the_reference_is_renamed_made_passive_and_deleted(tenant: Tenant) -> None:
    url = f"{tenant.running.url}/_sandbox/group-value"
    category = next(g for g in groups_of(tenant) if g["code"] == "CATEGORY")
    value = category["product_group_types"][0]
    edited = httpx.post(url, json={"type_id": value["product_type_id"], "name": "Вода", "state": "P"})
    assert edited.json() == {**value, "name": "Вода", "state": "P"}
    again = next(g for g in groups_of(tenant) if g["code"] == "CATEGORY")["product_group_types"][0]
    assert (again["name"], again["state"]) == ("Вода", "P")
    assert httpx.post(url, json={"type_id": value["product_type_id"], "code": "X"}).status_code == 400
    assert httpx.post(url, json={"type_id": value["product_type_id"], "state": "Z"}).status_code == 400
    assert httpx.post(url, json={"type_id": value["product_type_id"], "remove": True}).json() == {
        "removed": value["product_type_id"]
    }
    lookup = public_lookup(tenant.export(GROUPS).json())
    assert value["product_type_id"] not in lookup
    carriers = [
        p for p in tenant.items(INVENTORY) if any(e["type_id"] == value["product_type_id"] for e in p["groups"])
    ]
    assert carriers, "products keep pointing at a deleted value"
    assert httpx.post(url, json={"type_id": "00000", "name": "x"}).status_code == 404
