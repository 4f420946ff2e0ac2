"""SmartUp raw items → typed rows, with one clear reason when an item cannot be stored.

Every scalar of a SmartUp answer arrives as a string. Money and quantities become `Decimal`, `deal_time`
(`dd.mm.yyyy HH:MM:SS`, tenant-local) a timezone-aware datetime, delivery and booked dates `date`s, barcodes
(one string, `,` or `|` separated) a list, state A/P the `active` flag. An item that does not fit (no id, a
wrong type, an unparseable number or date, a field longer than its column, an item over 1 MB) raises
`ItemError` naming the item and the field. An unknown order status is kept, labelled "unknown".

Two paths give the same rows. The fast path (`ProductMapper`, `OrderMapper`, `PriceMapper`) decodes an item's raw
JSON straight into a typed msgspec struct, whose C decoder checks the types, required fields and text lengths, and
converts numbers and dates through small caches (the same values repeat across items). Whatever it does not take as
it is (a number sent as a JSON number, a blank-padded id, a bad value of any kind) goes down the plain path
(`map_product`, `map_order`, `map_prices` on the decoded item), which is lenient where it can be and otherwise
raises the `ItemError` that names the field.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Annotated, Any

import msgspec
import orjson

MAP_VERSION = b"camsync-map-1"  # part of every hash: a new mapping rewrites each row once
MAX_ITEM_BYTES = 1_000_000
MAX_TEXT_CHARS = 4000
MAX_NUMBER = Decimal(10) ** 14
MAX_KEY_CHARS = 64
CACHE_SIZE = 100_000  # distinct numbers or dates remembered by a mapper
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


class ItemError(ValueError):
    """One item that cannot be stored, with its id (when it has one) and why."""

    def __init__(self, item_id: str | None, reason: str) -> None:
        super().__init__(reason)
        self.item_id = item_id
        self.reason = reason

    def as_dict(self) -> dict[str, str | None]:
        return {"id": self.item_id, "reason": self.reason}


class Fingerprint:
    """An item's key, the hash of its JSON text, and that text (stored as `raw`), as SmartUp sent it."""

    __slots__ = ("content_hash", "key", "source")

    def __init__(self, key: str, content_hash: str, source: bytes | msgspec.Raw) -> None:
        self.key = key
        self.content_hash = content_hash
        self.source = source

    @property
    def raw(self) -> str:
        """The item's JSON text."""
        return str(self.source, "utf-8")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Fingerprint):
            return NotImplemented
        return (self.key, self.content_hash) == (other.key, other.content_hash)

    def __hash__(self) -> int:
        return hash((self.key, self.content_hash))

    def __repr__(self) -> str:
        return f"Fingerprint(key={self.key!r}, content_hash={self.content_hash!r})"


def canonical_json(value: Any) -> str:
    """The item as compact JSON text, the form stored as `raw`."""
    return orjson.dumps(value).decode()


def fingerprint(item: Any, *, key_field: str, text: str | None = None) -> Fingerprint:
    """The key (`key_field`) and content hash of a decoded item; raises ItemError for a non-object, a missing key
    or >1 MB. `text` is the item's JSON as sent (hashed as it is); without it the item is encoded compactly."""
    if not isinstance(item, dict):
        raise ItemError(None, f"item is {_kind(item)}, not an object")
    key = _key(item, key_field)
    if text is None:
        try:
            data = orjson.dumps(item)
        except (TypeError, orjson.JSONEncodeError) as exc:
            raise ItemError(key, f"item cannot be stored as JSON: {exc}") from None
    else:
        data = text.encode()
    return _sealed(key, data)


def fingerprint_raw(source: bytes | msgspec.Raw, *, key_field: str) -> Fingerprint:
    """The key and content hash of an item's raw JSON, reading only its key; raises ItemError like `fingerprint`.

    SmartUp answers the same item with the same text, so an unchanged item hashes the same from run to run.
    """
    try:
        key = _check_key(getattr(_key_decoder(key_field).decode(source), key_field))
    except (msgspec.DecodeError, _Slow):
        key = _key(_decoded_object(source), key_field)
    return _sealed(key, source)


def _sealed(key: str, data: bytes | msgspec.Raw) -> Fingerprint:
    size = len(memoryview(data))
    if size > MAX_ITEM_BYTES:
        raise ItemError(key, f"item is {size:,} bytes of JSON, more than {MAX_ITEM_BYTES:,}")
    digest = hashlib.blake2b(data, digest_size=16, person=MAP_VERSION).hexdigest()
    return Fingerprint(key, digest, data)


def _decoded(source: bytes | msgspec.Raw) -> Any:
    """An item's raw JSON decoded; ItemError when it is not JSON after all."""
    try:
        return msgspec.json.decode(source)
    except msgspec.DecodeError as exc:
        raise ItemError(None, f"item is not valid JSON: {exc}") from None


def _decoded_object(source: bytes | msgspec.Raw) -> dict[str, Any]:
    item = _decoded(source)
    if not isinstance(item, dict):
        raise ItemError(None, f"item is {_kind(item)}, not an object")
    return item


@lru_cache(maxsize=8)
def _key_decoder(key_field: str) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(msgspec.defstruct("Key", [(key_field, str)]))


def map_product(item: Mapping[str, Any], *, fp: Fingerprint, limits: Mapping[str, int]) -> dict[str, Any]:
    """A `products` row (without timestamps) from an inventory item."""
    key = _key(item, "product_id")
    fields = _Fields(item, key, limits)
    state = fields.text("state", required=True)
    if state not in ("A", "P"):
        raise ItemError(key, f"state is {state!r}, expected A (active) or P (passive)")
    row = {"external_id": key, **_convert(item, _PRODUCT_PLAN, key, limits)}
    row.update(
        barcodes=split_barcodes(fields.text("barcodes") or ""),
        state=state,
        active=state == "A",
        group_codes=fields.codes("groups", "group_code"),
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
    key = _key(item, "deal_id")
    fields = _Fields(item, key, limits)
    status = fields.text("status", required=True) or ""
    raw_lines = item.get("order_products") or []
    if not isinstance(raw_lines, list):
        raise ItemError(key, f"order_products is {_kind(raw_lines)}, not a list")
    lines = [_map_line(line, key, line_limits) for line in raw_lines]
    units = [line["product_unit_id"] for line in lines]
    if len(set(units)) != len(units):
        raise ItemError(key, "two lines have the same product_unit_id")
    order = {"source_external_id": key, **_convert(item, _ORDER_PLAN, key, limits)}
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
        raise ItemError(None, f"item is {_kind(item)}, not an object")
    code = _key(item, "inventory_code")
    fields = _Fields(item, code, limits)
    kinds = item.get("price_type") or []
    if not isinstance(kinds, list):
        raise ItemError(code, f"price_type is {_kind(kinds)}, not a list")
    rows = []
    for entry in kinds:
        if not isinstance(entry, dict):
            raise ItemError(code, f"a price_type entry is {_kind(entry)}, not an object")
        price_fields = _Fields(entry, code, limits)
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
        raise ItemError(order_key, f"a line of order_products is {_kind(line)}, not an object")
    return _convert(line, _LINE_PLAN, order_key, limits, "line ")


_TEXT, _NUMBER, _DAY = 0, 1, 2
Plan = tuple[tuple[str, int, bool], ...]


def _plan(text: str = "", number: str = "", day: str = "", required: str = "") -> Plan:
    """(field, kind, required?) for the plain fields of an item, in the order given."""
    needed = set(required.split())
    kinds = ((text, _TEXT), (number, _NUMBER), (day, _DAY))
    return tuple((name, kind, name in needed) for names, kind in kinds for name in names.split())


_PRODUCT_PLAN = _plan(
    text="code name short_name article_code measure_code box_type_code producer_code gtin ikpu",
    number="weight_netto weight_brutto litr box_quant",
    required="code name",
)
_ORDER_PLAN = _plan(
    text="external_id filial_id filial_code subfilial_code delivery_number invoice_number currency_code person_id "
    "person_code person_name person_tin room_code sales_manager_code payment_type_code note",
    number="total_amount",
    day="delivery_date booked_date",
)
_LINE_PLAN = _plan(
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
            value = _Fields(item, key, limits, where).scalar(name)
        if not value:
            if required:
                raise ItemError(key, f"{where}{name} is missing")
            out[name] = "" if value == "" and kind == _TEXT else None
        elif kind == _TEXT:
            limit = limits.get(name, MAX_TEXT_CHARS)
            if len(value) > limit:
                raise ItemError(key, f"{where}{name} is {len(value):,} characters long, more than {limit:,}")
            out[name] = value
        elif kind == _NUMBER:
            out[name] = _number(value, name, key, where)
        else:
            out[name] = _Fields(item, key, limits, where).day(name)
    return out


def _to_day(value: str | None) -> date | None:
    """`dd.mm.yyyy` → date (None when blank); raises ValueError."""
    if value is None or not value.strip():
        return None
    match = _DATE.fullmatch(value.strip())
    if match is None:
        raise ValueError(value)
    return date(int(match[3]), int(match[2]), int(match[1]))


def _to_timestamp(value: str | None, tz: tzinfo) -> datetime | None:
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


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", bool: "a boolean", str: "a string"}.get(type(value), "a number")


def _key(item: Mapping[str, Any], key_field: str) -> str:
    value = item.get(key_field)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        shown = "missing" if value in (None, "") else f"{_kind(value)}"
        raise ItemError(None, f"{key_field} is {shown}")
    value = value.strip()
    if len(value) > MAX_KEY_CHARS:
        raise ItemError(
            value[:MAX_KEY_CHARS] + "…", f"{key_field} is {len(value):,} characters long, more than {MAX_KEY_CHARS}"
        )
    return value


def _check_key(value: str) -> str:
    """A key the fast path takes as it is (non-blank, unpadded, short); anything else goes the plain way."""
    if not value or len(value) > MAX_KEY_CHARS or value[0].isspace() or value[-1].isspace():
        raise _Slow
    return value


class _Fields:
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
        raise self.fail(name, f"is {_kind(value)}, expected a string")

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
            return _to_day(value)
        except ValueError:
            raise self.fail(name, f"is {str(value)[:40]!r}, not a dd.mm.yyyy date") from None

    def timestamp(self, name: str, tz: tzinfo) -> datetime | None:
        value = self.scalar(name)
        try:
            return _to_timestamp(value, tz)
        except ValueError:
            raise self.fail(name, f"is {str(value)[:40]!r}, not a dd.mm.yyyy HH:MM:SS time") from None

    def codes(self, name: str, field: str) -> list[str]:
        entries = self.item.get(name) or []
        if not isinstance(entries, list):
            raise self.fail(name, f"is {_kind(entries)}, expected a list")
        codes = []
        for entry in entries:
            if not isinstance(entry, dict):
                raise self.fail(name, f"holds {_kind(entry)}, expected objects")
            code = entry.get(field)
            if isinstance(code, str) and code:
                codes.append(code)
        return codes


# --- the fast path -------------------------------------------------------------------------------------------


class _Slow(Exception):
    """The fast path does not take this item as it is."""


_MISSING = object()


class _Values:
    """Numbers and dates converted once per distinct text (bounded), for the fast path; `_Slow` when unsure."""

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
                got = _to_day(value)
            except ValueError:
                raise _Slow from None
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
            raise _Slow from None
        if not number.is_finite() or abs(number) >= MAX_NUMBER:
            raise _Slow
        return number


def _text_type(limit: int, required: bool) -> Any:
    meta = msgspec.Meta(max_length=limit, min_length=1) if required else msgspec.Meta(max_length=limit)
    return Annotated[str, meta]


def _struct(name: str, plan: Plan, limits: Mapping[str, int], extra: list[tuple[Any, ...]]) -> Any:
    """A msgspec struct of the plan's fields (text length-checked, numbers and days as text) plus `extra`."""
    fields: list[tuple[Any, ...]] = list(extra)
    for field, kind, required in plan:
        kind_type = _text_type(limits.get(field, MAX_TEXT_CHARS), required) if kind == _TEXT else str
        fields.append((field, kind_type) if required else (field, kind_type | None, None))
    return msgspec.defstruct(name, fields, kw_only=True, gc=False, omit_defaults=False)


def _kinds(plan: Plan, kind: int) -> tuple[str, ...]:
    return tuple(name for name, field_kind, _ in plan if field_kind == kind)


def _frozen(limits: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(limits.items()))


class _Group(msgspec.Struct, gc=False):
    group_code: str | None = None


class _FastMapper:
    """What the three fast mappers share: the value caches and the plain-path fallback."""

    def __init__(self) -> None:
        self.values = _Values()

    def _typed(self, fields: dict[str, Any], numbers: tuple[str, ...], days: tuple[str, ...]) -> dict[str, Any]:
        """Convert the `numbers` and `days` among a struct's fields in place."""
        number, day = self.values.number, self.values.day
        for name in numbers:
            fields[name] = number(fields[name])
        for name in days:
            fields[name] = day(fields[name])
        return fields


class ProductMapper(_FastMapper):
    """`products` rows from raw inventory items: the fast path, else `map_product`."""

    def __init__(self, limits: Mapping[str, int]) -> None:
        super().__init__()
        self.limits = limits
        self._decoder = _product_decoder(_frozen(limits))
        self._numbers = _kinds(_PRODUCT_PLAN, _NUMBER)
        self._days = _kinds(_PRODUCT_PLAN, _DAY)

    def __call__(self, fp: Fingerprint) -> dict[str, Any]:
        try:
            return self._fast(fp)
        except (msgspec.DecodeError, _Slow):
            return map_product(_decoded_object(fp.source), fp=fp, limits=self.limits)

    def _fast(self, fp: Fingerprint) -> dict[str, Any]:
        item = self._decoder.decode(fp.source)
        row = self._typed(msgspec.structs.asdict(item), self._numbers, self._days)
        state = row.pop("state")
        if state not in ("A", "P"):
            raise _Slow
        del row["product_id"]
        barcodes = row.pop("barcodes")
        groups = row.pop("groups")
        row["external_id"] = fp.key
        row.update(
            barcodes=split_barcodes(barcodes or ""),
            state=state,
            active=state == "A",
            group_codes=[group.group_code for group in groups or () if group.group_code],
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
        self._numbers = _kinds(_ORDER_PLAN, _NUMBER)
        self._days = _kinds(_ORDER_PLAN, _DAY)
        self._line_numbers = _kinds(_LINE_PLAN, _NUMBER)
        self._line_days = _kinds(_LINE_PLAN, _DAY)

    def __call__(self, fp: Fingerprint) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        try:
            return self._fast(fp)
        except (msgspec.DecodeError, _Slow):
            item = _decoded_object(fp.source)
            return map_order(item, fp=fp, tz=self.tz, limits=self.limits, line_limits=self.line_limits)

    def _fast(self, fp: Fingerprint) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        item = self._decoder.decode(fp.source)
        lines = [
            self._typed(msgspec.structs.asdict(line), self._line_numbers, self._line_days)
            for line in item.order_products or ()
        ]
        if len({line["product_unit_id"] for line in lines}) != len(lines):
            raise _Slow
        order = self._typed(msgspec.structs.asdict(item), self._numbers, self._days)
        del order["deal_id"], order["order_products"]
        status = order["status"]
        try:
            deal_time = _to_timestamp(order["deal_time"], self.tz)
        except ValueError:
            raise _Slow from None
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
        except (msgspec.DecodeError, _Slow):
            return map_prices(_decoded(source), limits=self.limits)

    def _fast(self, source: bytes | msgspec.Raw) -> list[dict[str, Any]]:
        item = self._decoder.decode(source)
        code = _check_key(item.inventory_code)
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
    return msgspec.json.Decoder(_struct("ProductItem", _PRODUCT_PLAN, given, extra))


@lru_cache(maxsize=4)
def _order_decoder(
    limits: tuple[tuple[str, int], ...], line_limits: tuple[tuple[str, int], ...]
) -> msgspec.json.Decoder[Any]:
    given = dict(limits)
    line = _struct("OrderLineItem", _LINE_PLAN, dict(line_limits), [])
    extra = [
        ("deal_id", str),
        ("status", _text_type(given.get("status", MAX_TEXT_CHARS), True)),
        ("deal_time", str | None, None),
        ("order_products", list[line] | None, None),  # type: ignore[valid-type]
    ]
    return msgspec.json.Decoder(_struct("OrderItem", _ORDER_PLAN, given, extra))


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
