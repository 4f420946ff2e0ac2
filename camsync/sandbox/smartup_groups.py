"""The product groups of the SmartUp simulator: the tenant's classifications and their values.

A product group is a classification the tenant set up (category, brand, packaging); its `product_group_types`
are the values of that classification. An inventory item's `groups[]` entry says: in classification `group_id`,
this product's value is `type_id`. Ids are 5-digit numbers drawn from the seed, never derived from a code; a few
values are passive (`P`), a legacy classification has no values at all, and about one product in a thousand
carries a value that was deleted from the reference (its `type_id` is in no export).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _q
from typing import Any

CATEGORY, BRAND, PACKAGING = "CATEGORY", "BRAND", "PACKAGING"
DELETED_CHANCE = 0.001  # a product whose value in one classification is no longer in the reference
NO_GROUPS_CHANCE = 0.03
NO_BRAND_CHANCE = 0.05
PACKAGING_CHANCE = 0.6
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_PACKAGINGS = (
    ("PET", "ПЭТ бутылка"), ("GLASS", "Стеклянная бутылка"), ("CAN", "Жестяная банка"), ("TETRA", "Тетрапак"),
    ("BAG", "Пакет"), ("SACK", "Мешок"), ("BOX", "Картонная коробка"),
)  # fmt: skip
# per category (in the order of the generator's product kinds): its code and the packagings it comes in
_CATEGORIES = (
    ("WATER", (0, 1)), ("MINERAL", (0, 1)), ("SODA", (0, 1, 2)), ("JUICE", (3, 1)), ("ICE-TEA", (0, 2)),
    ("MILK", (3, 4)), ("KEFIR", (3, 4)), ("OIL", (0, 1)), ("RICE", (4, 5)), ("FLOUR", (4, 5)), ("SUGAR", (4, 5)),
    ("COOKIES", (4, 6)), ("PASTA", (4, 6)),
)  # fmt: skip


@dataclass
class GroupValue:
    """One value of a classification (a `product_group_types` item)."""

    type_id: str
    code: str
    name: str
    state: str = "A"
    order_no: int = 1

    def item(self) -> dict[str, str]:
        """The export item."""
        return {
            "product_type_id": self.type_id,
            "code": self.code,
            "name": self.name,
            "state": self.state,
            "order_no": str(self.order_no),
        }


@dataclass
class Classification:
    """One product group: a classification and its values."""

    group_id: str
    code: str
    name: str
    values: list[GroupValue]
    state: str = "A"
    product_kind: str = ""  # sent only when set

    def item(self) -> dict[str, Any]:
        """The export item."""
        item: dict[str, Any] = {"product_group_id": self.group_id, "code": self.code, "name": self.name}
        item["state"] = self.state
        if self.product_kind:
            item["product_kind"] = self.product_kind
        item["product_group_types"] = [value.item() for value in self.values]
        return item

    def member(self, value: GroupValue) -> str:
        """An inventory item's `groups[]` entry for `value`, as JSON text."""
        return (
            f'{{"group_id":"{self.group_id}","group_code":{_q(self.code)},'
            f'"type_id":"{value.type_id}","type_code":{_q(value.code)}}}'
        )


@dataclass
class ProductGroups:
    """The tenant's classifications, the values deleted from them, and how products are given values."""

    classifications: list[Classification]
    deleted: dict[str, GroupValue]  # per classification code: a value no longer in the reference
    seed: int
    _encoded: list[bytes] | None = field(default=None, compare=False, repr=False)

    def items(self) -> list[bytes]:
        """The encoded export items (compact UTF-8 JSON), cached until an edit."""
        if self._encoded is None:
            self._encoded = [_ENCODER.encode(c.item()).encode("utf-8") for c in self.classifications]
        return self._encoded

    def classification(self, code: str) -> Classification:
        """The classification of a code (KeyError when there is none)."""
        for candidate in self.classifications:
            if candidate.code == code:
                return candidate
        raise KeyError(code)

    def value(self, type_id: str) -> tuple[Classification, GroupValue]:
        """The value of a `product_type_id` and its classification (KeyError when the reference has none)."""
        for candidate in self.classifications:
            for value in candidate.values:
                if value.type_id == type_id:
                    return candidate, value
        raise KeyError(type_id)

    def value_of_code(self, group_code: str, type_code: str) -> tuple[Classification, GroupValue]:
        """The value of a classification by their codes (KeyError when there is none)."""
        group = self.classification(group_code)
        for value in group.values:
            if value.code == type_code:
                return group, value
        raise KeyError(f"{group_code}/{type_code}")

    def edit_value(self, type_id: str, **changes: Any) -> dict[str, str]:
        """Change a value's `name`, `state` or `order_no` in the reference; returns its new export item."""
        unknown = set(changes) - {"name", "state", "order_no"}
        if unknown:
            raise ValueError(f"a group value's {', '.join(sorted(unknown))} cannot be edited")
        if changes.get("state", "A") not in ("A", "P"):
            raise ValueError("state is A or P")
        _group, value = self.value(type_id)
        for name, new in changes.items():
            setattr(value, name, int(new) if name == "order_no" else str(new))
        self._encoded = None
        return value.item()

    def remove_value(self, type_id: str) -> None:
        """Delete a value from the reference; products that carry it keep pointing at it."""
        group, value = self.value(type_id)
        group.values.remove(value)
        self._encoded = None

    def assigner(self) -> GroupAssigner:
        """Hands out each product's `groups[]`, from its own draws so the rest of the data does not depend on it."""
        return GroupAssigner(self, random.Random(f"smartup-product-groups:{self.seed}"))


class GroupAssigner:
    """Gives products their values: a category always, a brand mostly, a packaging for some, none for a few."""

    def __init__(self, groups: ProductGroups, rng: random.Random) -> None:
        self._rng = rng
        self._category = groups.classification(CATEGORY)
        self._brand = groups.classification(BRAND)
        self._packaging = groups.classification(PACKAGING)
        self._deleted = groups.deleted

    def groups_text(self, kind_index: int, brand_index: int) -> str:
        """The `groups` array of one product, as JSON text (brackets included)."""
        rand = self._rng.random
        if rand() < NO_GROUPS_CHANCE:
            return "[]"
        chosen = [(self._category, self._category.values[kind_index])]
        if rand() >= NO_BRAND_CHANCE:
            chosen.append((self._brand, self._brand.values[brand_index]))
        if rand() < PACKAGING_CHANCE:
            options = _CATEGORIES[kind_index][1]
            packaging = options[int(rand() * len(options))]
            chosen.append((self._packaging, self._packaging.values[packaging]))
        if rand() < DELETED_CHANCE:
            at = int(rand() * len(chosen))
            group = chosen[at][0]
            chosen[at] = (group, self._deleted[group.code])
        return "[" + ",".join(group.member(value) for group, value in chosen) + "]"


def _values(rng: random.Random, ids: list[str], named: Sequence[tuple[str, str]], passive: int) -> list[GroupValue]:
    values = [GroupValue(ids.pop(), code, name, order_no=i + 1) for i, (code, name) in enumerate(named)]
    for value in rng.sample(values, passive):
        value.state = "P"
    return values


def _brand_code(brand: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in brand.upper())


def generate_groups(*, seed: int, kinds: Sequence[str], brands: Sequence[str]) -> ProductGroups:
    """The classifications of a tenant: categories (the product kinds), brands, packagings, and a legacy one."""
    if len(kinds) != len(_CATEGORIES):
        raise ValueError("one category per product kind")
    rng = random.Random(f"smartup-groups:{seed}")
    ids = [str(number) for number in rng.sample(range(10_000, 100_000), 8 + len(kinds) + len(brands) + 16)]
    categories = _values(rng, ids, [(code, kind) for (code, _p), kind in zip(_CATEGORIES, kinds, strict=True)], 1)
    brand_values = _values(rng, ids, [(_brand_code(brand), brand) for brand in brands], 2)
    packagings = _values(rng, ids, _PACKAGINGS, 1)
    classifications = [
        Classification(ids.pop(), CATEGORY, "Категория товара", categories, product_kind="G"),
        Classification(ids.pop(), BRAND, "Бренд", brand_values),
        Classification(ids.pop(), PACKAGING, "Вид упаковки", packagings),
        Classification(ids.pop(), "OLD-GROUP", "Старая группировка", [], state="P"),
    ]
    deleted = {
        CATEGORY: GroupValue(ids.pop(), "OLD-CATEGORY", "Удалённая категория", "P"),
        BRAND: GroupValue(ids.pop(), "OLD-BRAND", "Удалённый бренд", "P"),
        PACKAGING: GroupValue(ids.pop(), "OLD-PACK", "Удалённая упаковка", "P"),
    }
    return ProductGroups(classifications, deleted, seed)
