"""SmartUp items → typed rows, the plain way: on the decoded item, with one clear reason when it cannot be stored.

Every scalar of a SmartUp answer arrives as a string. Money and quantities become `Decimal`, `deal_time`
(`dd.mm.yyyy HH:MM:SS`, tenant-local) a timezone-aware datetime, delivery and booked dates `date`s, barcodes
(one string, `,` or `|` separated) a list, state A/P the `active` flag. An item that does not fit (no id, a
wrong type, an unparseable number or date, a field longer than its column) raises `ItemError` naming the item and
the field. An unknown order status is kept, labelled "unknown".

This path is lenient where it can be (a number sent as a JSON number, a blank-padded id) and names the bad field
otherwise; the fast path (`fast_mapping`) gives the same rows for the items it takes as they are, and hands it
everything else. The plans (`PRODUCT_PLAN`, …) list each row's plain fields once, for both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from camsync.sync.smartup.items import Fingerprint, ItemError, item_key, kind_of

MAX_TEXT_CHARS = 4000
MAX_NUMBER = Decimal(10) ** 14
STATUS_LABELS = {
    "D": "draft",
    "B#N": "new",
    "B#E": "in processing",
    "B#W": "waiting",
    "B#S": "shipped",
    "B#V": "delivered",
    "A": "archived",
    "C": "cancelled",
}
UNKNOWN_STATUS = "unknown"
_DATE = re.compile(r"(\d{2})\.(\d{2})\.(\d{4})")
_DATE_TIME = re.compile(r"(\d{2})\.(\d{2})\.(\d{4})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?")
_BARCODE_SPLIT = re.compile(r"[,|]")


def map_product(item: Mapping[str, Any], *, fp: Fingerprint, limits: Mapping[str, int]) -> dict[str, Any]:
    """A `products` row (without timestamps) from an inventory item."""
    key = item_key(item, "product_id")
    fields = Fields(item, key, limits)
    state = fields.text("state", required=True)
    if state not in ("A", "P"):
        raise ItemError(key, f"state is {state!r}, expected A (active) or P (passive)")
    row = {"external_id": key, **_convert(item, PRODUCT_PLAN, key, limits)}
    row.update(
        barcodes=split_barcodes(fields.text("barcodes") or ""),
        state=state,
        active=state == "A",
        group_codes=fields.codes("groups", "group_code"),
        classifications=fields.classifications(),
        raw=fp.raw,
        content_hash=fp.content_hash,
    )
    return row


def map_order(
    item: Mapping[str, Any],
    *,
    fp: Fingerprint,
    tz: tzinfo,
    limits: Mapping[str, int],
    line_limits: Mapping[str, int],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An `orders` row (without timestamps) and its `order_lines` rows (without order_id) from an order item."""
    key = item_key(item, "deal_id")
    fields = Fields(item, key, limits)
    status = fields.text("status", required=True) or ""
    raw_lines = item.get("order_products") or []
    if not isinstance(raw_lines, list):
        raise ItemError(key, f"order_products is {kind_of(raw_lines)}, not a list")
    lines = [_map_line(line, key, line_limits) for line in raw_lines]
    units = [line["product_unit_id"] for line in lines]
    if len(set(units)) != len(units):
        raise ItemError(key, "two lines have the same product_unit_id")
    order = {"source_external_id": key, **_convert(item, ORDER_PLAN, key, limits)}
    order.update(
        deal_time=fields.timestamp("deal_time", tz),
        status=status,
        status_label=STATUS_LABELS.get(status, UNKNOWN_STATUS),
        line_count=len(lines),
        raw=fp.raw,
        content_hash=fp.content_hash,
    )
    return order, lines


def map_prices(item: Any, *, limits: Mapping[str, int]) -> list[dict[str, Any]]:
    """The `product_prices` rows (product_code, price_type_code, price) of one prices-export item."""
    if not isinstance(item, dict):
        raise ItemError(None, f"item is {kind_of(item)}, not an object")
    code = item_key(item, "inventory_code")
    fields = Fields(item, code, limits)
    kinds = item.get("price_type") or []
    if not isinstance(kinds, list):
        raise ItemError(code, f"price_type is {kind_of(kinds)}, not a list")
    rows = []
    for entry in kinds:
        if not isinstance(entry, dict):
            raise ItemError(code, f"a price_type entry is {kind_of(entry)}, not an object")
        price_fields = Fields(entry, code, limits)
        price = price_fields.number("price")
        price_type = price_fields.text("price_type_code", required=True)
        if price is None:
            continue
        rows.append(
            {
                "product_code": fields.text("inventory_code", required=True),
                "price_type_code": price_type,
                "price": price,
            }
        )
    return rows


def split_barcodes(value: str) -> list[str]:
    """`"a, b|c"` → `["a", "b", "c"]`: split on `,` and `|`, blanks dropped, duplicates once, order kept."""
    if "," not in value and "|" not in value:  # one barcode (or none): the common case
        value = value.strip()
        return [value] if value else []
    parts = (part.strip() for part in _BARCODE_SPLIT.split(value))
    return list(dict.fromkeys(part for part in parts if part))


def _map_line(line: Any, order_key: str, limits: Mapping[str, int]) -> dict[str, Any]:
    if not isinstance(line, dict):
        raise ItemError(order_key, f"a line of order_products is {kind_of(line)}, not an object")
    return _convert(line, LINE_PLAN, order_key, limits, "line ")


TEXT, NUMBER, DAY = 0, 1, 2
Plan = tuple[tuple[str, int, bool], ...]


def _plan(text: str = "", number: str = "", day: str = "", required: str = "") -> Plan:
    """(field, kind, required?) for the plain fields of an item, in the order given."""
    needed = set(required.split())
    kinds = ((text, TEXT), (number, NUMBER), (day, DAY))
    return tuple((name, kind, name in needed) for names, kind in kinds for name in names.split())


PRODUCT_PLAN = _plan(
    text="code name short_name article_code measure_code box_type_code producer_code gtin ikpu",
    number="weight_netto weight_brutto litr box_quant",
    required="code name",
)
ORDER_PLAN = _plan(
    text="external_id filial_id filial_code subfilial_code delivery_number invoice_number currency_code person_id "
    "person_code person_name person_tin room_code sales_manager_code payment_type_code note",
    number="total_amount",
    day="delivery_date booked_date",
)
LINE_PLAN = _plan(
    text="product_unit_id external_id product_code product_name product_barcode inventory_kind warehouse_code "
    "price_type_code",
    number="order_quant sold_quant return_quant product_price vat_percent vat_amount sold_amount",
    day="expiry_date",
    required="product_unit_id",
)


def _convert(
    item: Mapping[str, Any], plan: Plan, key: str, limits: Mapping[str, int], where: str = ""
) -> dict[str, Any]:
    """The plain fields of `plan` read from `item` in one pass (the hot path of a first sync)."""
    out: dict[str, Any] = {}
    get = item.get
    for name, kind, required in plan:
        value = get(name)
        if type(value) is not str:
            value = Fields(item, key, limits, where).scalar(name)
        if not value:
            if required:
                raise ItemError(key, f"{where}{name} is missing")
            out[name] = "" if value == "" and kind == TEXT else None
        elif kind == TEXT:
            limit = limits.get(name, MAX_TEXT_CHARS)
            if len(value) > limit:
                raise ItemError(key, f"{where}{name} is {len(value):,} characters long, more than {limit:,}")
            out[name] = value
        elif kind == NUMBER:
            out[name] = _number(value, name, key, where)
        else:
            out[name] = Fields(item, key, limits, where).day(name)
    return out


def to_day(value: str | None) -> date | None:
    """`dd.mm.yyyy` → date (None when blank); raises ValueError."""
    if value is None or not value.strip():
        return None
    match = _DATE.fullmatch(value.strip())
    if match is None:
        raise ValueError(value)
    return date(int(match[3]), int(match[2]), int(match[1]))


def to_timestamp(value: str | None, tz: tzinfo) -> datetime | None:
    """`dd.mm.yyyy HH:MM[:SS]` in `tz` → aware datetime (None when blank); raises ValueError."""
    if value is None or not value.strip():
        return None
    match = _DATE_TIME.fullmatch(value.strip())
    if match is None:
        raise ValueError(value)
    day, month, year, hour, minute, second = (int(part or 0) for part in match.groups())
    return datetime(year, month, day, hour, minute, second, tzinfo=tz)


def _number(value: str, name: str, key: str, where: str) -> Decimal | None:
    if value.isspace():
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ItemError(key, f"{where}{name} is {value[:40]!r}, not a number") from None
    if not number.is_finite() or abs(number) >= MAX_NUMBER:
        raise ItemError(key, f"{where}{name} is {value[:40]!r}, out of range")
    return number


class Fields:
    """Typed reads of one item's fields; every failure names the item and the field."""

    def __init__(self, item: Mapping[str, Any], key: str, limits: Mapping[str, int], where: str = "") -> None:
        self.item = item
        self.key = key
        self.limits = limits
        self.where = where

    def fail(self, name: str, reason: str) -> ItemError:
        return ItemError(self.key, f"{self.where}{name} {reason}")

    def scalar(self, name: str) -> str | None:
        value = self.item.get(name)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise self.fail(name, f"is {kind_of(value)}, expected a string")

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.item.get(name)
        if type(value) is str and value and len(value) <= self.limits.get(name, MAX_TEXT_CHARS):
            return value  # the common case, checked first
        value = self.scalar(name)
        if value is None or value == "":
            if required:
                raise self.fail(name, "is missing")
            return None if value is None else ""
        limit = self.limits.get(name, MAX_TEXT_CHARS)
        if len(value) > limit:
            raise self.fail(name, f"is {len(value):,} characters long, more than {limit:,}")
        return value

    def number(self, name: str) -> Decimal | None:
        value = self.item.get(name)
        if type(value) is not str:
            value = self.scalar(name)
        if not value or value.isspace():
            return None
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise self.fail(name, f"is {value[:40]!r}, not a number") from None
        if not number.is_finite() or abs(number) >= MAX_NUMBER:
            raise self.fail(name, f"is {value[:40]!r}, out of range")
        return number

    def day(self, name: str) -> date | None:
        value = self.scalar(name)
        try:
            return to_day(value)
        except ValueError:
            raise self.fail(name, f"is {str(value)[:40]!r}, not a dd.mm.yyyy date") from None

    def timestamp(self, name: str, tz: tzinfo) -> datetime | None:
        value = self.scalar(name)
        try:
            return to_timestamp(value, tz)
        except ValueError:
            raise self.fail(name, f"is {str(value)[:40]!r}, not a dd.mm.yyyy HH:MM:SS time") from None

    def classifications(self) -> list[tuple[str | None, ...]]:
        """(group_id, type_id, group_code, type_code) of each `groups[]` entry, ids as text (numbers too)."""
        self.codes("groups", "group_code")  # the same checks of the list
        return [
            tuple(_scalar_text(entry.get(name)) for name in ("group_id", "type_id", "group_code", "type_code"))
            for entry in self.item.get("groups") or []
        ]

    def codes(self, name: str, field: str) -> list[str]:
        entries = self.item.get(name) or []
        if not isinstance(entries, list):
            raise self.fail(name, f"is {kind_of(entries)}, expected a list")
        codes = []
        for entry in entries:
            if not isinstance(entry, dict):
                raise self.fail(name, f"holds {kind_of(entry)}, expected objects")
            code = entry.get(field)
            if isinstance(code, str) and code:
                codes.append(code)
        return codes


def _scalar_text(value: Any) -> str | None:
    """A scalar as text (SmartUp sends ids as strings, sometimes as numbers); None for blank or not a scalar."""
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None
