"""SmartUp raw items → typed rows, the fast way: straight from the JSON SmartUp sent into typed msgspec structs.

The struct's C decoder checks the types, required fields and text lengths, and numbers and dates are converted
through small caches (the same values repeat across items). Whatever it does not take as it is (a number sent as a
JSON number, a blank-padded id, a bad value of any kind) goes down the plain path (`mapping`: `map_product`,
`map_order`, `map_prices` on the decoded item), which gives the same rows or raises the `ItemError` that names the
field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Annotated, Any

import msgspec

from camsync.sync.smartup.items import Fingerprint, NotFast, decoded, decoded_object, fast_key
from camsync.sync.smartup.mapping import (
    DAY,
    LINE_PLAN,
    MAX_NUMBER,
    MAX_TEXT_CHARS,
    NUMBER,
    ORDER_PLAN,
    PRODUCT_PLAN,
    STATUS_LABELS,
    TEXT,
    UNKNOWN_STATUS,
    Plan,
    map_order,
    map_prices,
    map_product,
    split_barcodes,
    to_day,
    to_timestamp,
)

CACHE_SIZE = 100_000  # distinct numbers or dates remembered by a mapper

_MISSING = object()


class _Values:
    """Numbers and dates converted once per distinct text (bounded), for the fast path; `NotFast` when unsure."""

    def __init__(self) -> None:
        self.numbers: dict[str, Decimal | None] = {}
        self.days: dict[str, date | None] = {}

    def number(self, value: str | None) -> Decimal | None:
        if not value:
            return None
        got = self.numbers.get(value, _MISSING)
        if got is _MISSING:
            got = self._number(value)
            if len(self.numbers) < CACHE_SIZE:
                self.numbers[value] = got
        return got  # type: ignore[return-value]

    def day(self, value: str | None) -> date | None:
        if not value:
            return None
        got = self.days.get(value, _MISSING)
        if got is _MISSING:
            try:
                got = to_day(value)
            except ValueError:
                raise NotFast from None
            if len(self.days) < CACHE_SIZE:
                self.days[value] = got
        return got  # type: ignore[return-value]

    @staticmethod
    def _number(value: str) -> Decimal | None:
        if value.isspace():
            return None
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise NotFast from None
        if not number.is_finite() or abs(number) >= MAX_NUMBER:
            raise NotFast
        return number


def _text_type(limit: int, required: bool) -> Any:
    meta = msgspec.Meta(max_length=limit, min_length=1) if required else msgspec.Meta(max_length=limit)
    return Annotated[str, meta]


def _struct(name: str, plan: Plan, limits: Mapping[str, int], extra: list[tuple[Any, ...]]) -> Any:
    """A msgspec struct of the plan's fields (text length-checked, numbers and days as text) plus `extra`."""
    fields: list[tuple[Any, ...]] = list(extra)
    for field, kind, required in plan:
        kind_type = _text_type(limits.get(field, MAX_TEXT_CHARS), required) if kind == TEXT else str
        fields.append((field, kind_type) if required else (field, kind_type | None, None))
    return msgspec.defstruct(name, fields, kw_only=True, gc=False, omit_defaults=False)


def _kinds(plan: Plan, kind: int) -> tuple[str, ...]:
    return tuple(name for name, field_kind, _ in plan if field_kind == kind)


def _frozen(limits: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(limits.items()))


class _Group(msgspec.Struct, gc=False):
    group_id: str | None = None
    group_code: str | None = None
    type_id: str | None = None
    type_code: str | None = None


def _classification(group: _Group) -> tuple[str | None, ...]:
    """As `mapping._scalar_text` reads them: text stripped, blank as None."""
    return tuple(
        (value.strip() or None) if value else None
        for value in (group.group_id, group.type_id, group.group_code, group.type_code)
    )


class _FastMapper:
    """What the three fast mappers share: the value caches and the plain-path fallback."""

    def __init__(self) -> None:
        self.values = _Values()

    def _typed(self, fields: dict[str, Any], numbers: tuple[str, ...], days: tuple[str, ...]) -> dict[str, Any]:
        """Convert the `numbers` and `days` among a struct's fields in place."""
        number, day = self.values.number, self.values.day
        known = self.values.numbers.get
        for name in numbers:
            value = fields[name]
            if value:  # the cache inline: most numbers repeat, and this runs for every number of every row
                got = known(value, _MISSING)
                fields[name] = number(value) if got is _MISSING else got
            else:
                fields[name] = None
        for name in days:
            fields[name] = day(fields[name])
        return fields


class ProductMapper(_FastMapper):
    """`products` rows from raw inventory items: the fast path, else `map_product`."""

    def __init__(self, limits: Mapping[str, int]) -> None:
        super().__init__()
        self.limits = limits
        self._decoder = _product_decoder(_frozen(limits))
        self._numbers = _kinds(PRODUCT_PLAN, NUMBER)
        self._days = _kinds(PRODUCT_PLAN, DAY)

    def __call__(self, fp: Fingerprint) -> dict[str, Any]:
        try:
            return self._fast(fp)
        except (msgspec.DecodeError, NotFast):
            return map_product(decoded_object(fp.source), fp=fp, limits=self.limits)

    def _fast(self, fp: Fingerprint) -> dict[str, Any]:
        item = self._decoder.decode(fp.source)
        row = self._typed(msgspec.structs.asdict(item), self._numbers, self._days)
        state = row.pop("state")
        if state not in ("A", "P"):
            raise NotFast
        del row["product_id"]
        barcodes = row.pop("barcodes")
        groups = row.pop("groups")
        row["external_id"] = fp.key
        row.update(
            barcodes=split_barcodes(barcodes or ""),
            state=state,
            active=state == "A",
            group_codes=[group.group_code for group in groups or () if group.group_code],
            classifications=[_classification(group) for group in groups or ()],
            raw=fp.raw,
            content_hash=fp.content_hash,
        )
        return row


class OrderMapper(_FastMapper):
    """`orders` rows and their `order_lines` rows from raw order items: the fast path, else `map_order`."""

    def __init__(self, *, tz: tzinfo, limits: Mapping[str, int], line_limits: Mapping[str, int]) -> None:
        super().__init__()
        self.tz = tz
        self.limits = limits
        self.line_limits = line_limits
        self._decoder = _order_decoder(_frozen(limits), _frozen(line_limits))
        self._numbers = _kinds(ORDER_PLAN, NUMBER)
        self._days = _kinds(ORDER_PLAN, DAY)
        self._line_numbers = _kinds(LINE_PLAN, NUMBER)
        self._line_days = _kinds(LINE_PLAN, DAY)

    def __call__(self, fp: Fingerprint) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        try:
            return self._fast(fp)
        except (msgspec.DecodeError, NotFast):
            item = decoded_object(fp.source)
            return map_order(item, fp=fp, tz=self.tz, limits=self.limits, line_limits=self.line_limits)

    def _fast(self, fp: Fingerprint) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        item = self._decoder.decode(fp.source)
        lines = [
            self._typed(msgspec.structs.asdict(line), self._line_numbers, self._line_days)
            for line in item.order_products or ()
        ]
        if len({line["product_unit_id"] for line in lines}) != len(lines):
            raise NotFast
        order = self._typed(msgspec.structs.asdict(item), self._numbers, self._days)
        del order["deal_id"], order["order_products"]
        status = order["status"]
        try:
            deal_time = to_timestamp(order["deal_time"], self.tz)
        except ValueError:
            raise NotFast from None
        order.update(
            source_external_id=fp.key,
            deal_time=deal_time,
            status_label=STATUS_LABELS.get(status, UNKNOWN_STATUS),
            line_count=len(lines),
            raw=fp.raw,
            content_hash=fp.content_hash,
        )
        return order, lines


class PriceMapper(_FastMapper):
    """`product_prices` rows from raw prices-export items: the fast path, else `map_prices`."""

    def __init__(self, limits: Mapping[str, int]) -> None:
        super().__init__()
        self.limits = limits
        self._decoder = _price_decoder(_frozen(limits))

    def __call__(self, source: bytes | msgspec.Raw) -> list[dict[str, Any]]:
        try:
            return self._fast(source)
        except (msgspec.DecodeError, NotFast):
            return map_prices(decoded(source), limits=self.limits)

    def _fast(self, source: bytes | msgspec.Raw) -> list[dict[str, Any]]:
        item = self._decoder.decode(source)
        code = fast_key(item.inventory_code)
        rows = []
        for entry in item.price_type or ():
            price = self.values.number(entry.price)
            if price is not None:
                rows.append({"product_code": code, "price_type_code": entry.price_type_code, "price": price})
        return rows


@lru_cache(maxsize=4)
def _product_decoder(limits: tuple[tuple[str, int], ...]) -> msgspec.json.Decoder[Any]:
    given = dict(limits)
    extra = [
        ("product_id", str),
        ("state", str),
        ("barcodes", _text_type(given.get("barcodes", MAX_TEXT_CHARS), False) | None, None),
        ("groups", list[_Group] | None, None),
    ]
    return msgspec.json.Decoder(_struct("ProductItem", PRODUCT_PLAN, given, extra))


@lru_cache(maxsize=4)
def _order_decoder(
    limits: tuple[tuple[str, int], ...], line_limits: tuple[tuple[str, int], ...]
) -> msgspec.json.Decoder[Any]:
    given = dict(limits)
    line = _struct("OrderLineItem", LINE_PLAN, dict(line_limits), [])
    extra = [
        ("deal_id", str),
        ("status", _text_type(given.get("status", MAX_TEXT_CHARS), True)),
        ("deal_time", str | None, None),
        ("order_products", list[line] | None, None),  # type: ignore[valid-type]
    ]
    return msgspec.json.Decoder(_struct("OrderItem", ORDER_PLAN, given, extra))


@lru_cache(maxsize=4)
def _price_decoder(limits: tuple[tuple[str, int], ...]) -> msgspec.json.Decoder[Any]:
    given = dict(limits)
    entry = msgspec.defstruct(
        "PriceEntry",
        [
            ("price_type_code", _text_type(given.get("price_type_code", MAX_TEXT_CHARS), True)),
            ("price", str | None, None),
        ],
        kw_only=True,
        gc=False,
    )
    item = msgspec.defstruct(
        "PriceItem",
        [
            ("inventory_code", _text_type(given.get("inventory_code", MAX_TEXT_CHARS), True)),
            ("price_type", list[entry] | None, None),  # type: ignore[valid-type]
        ],
        kw_only=True,
        gc=False,
    )
    return msgspec.json.Decoder(item)
