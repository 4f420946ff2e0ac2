"""SmartUp product groups and stock batches → rows of the catalogue tables.

A product group (`product_group$export`) is a classification with its values nested in `product_group_types`;
it maps to one `product_groups` row and one `product_group_types` row per value. Stock (`balance$export`) comes
as one item per batch per warehouse; `StockTally` sums the batches into one row per warehouse and product.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from camsync.store.smartup import text_limits
from camsync.store.smartup_catalog import ProductGroup, ProductGroupType
from camsync.store.smartup_catalog import StockBalance as _StockBalance
from camsync.sync.smartup.items import Fingerprint, ItemError, decoded, decoded_object, item_key, kind_of
from camsync.sync.smartup.mapping import MAX_NUMBER, Fields
from camsync.sync.smartup.odd import STOCK_RANGES, out_of_range

GROUP_LIMITS = text_limits(ProductGroup)
TYPE_LIMITS = text_limits(ProductGroupType)
STOCK_LIMITS = text_limits(_StockBalance)
_FOUR_PLACES = Decimal("0.0001")
_ZERO = Decimal(0)
_MOST_QUANTITY = STOCK_RANGES["quantity"][1]
_MOST_PRICE = STOCK_RANGES["input_price"][1]
NUMBERS_KEPT = 100_000  # distinct quantity and price texts a tally remembers


def map_group(fp: Fingerprint) -> tuple[dict[str, Any], list[tuple[Any, ...]], list[str]]:
    """The `product_groups` row of one product group, its values as `product_group_types` tuples (in the order
    of `TYPE_COLUMNS`), and why some values were left out or look odd. Raises ItemError for a group that cannot
    be stored."""
    item = decoded_object(fp.source)
    key = item_key(item, "product_group_id")
    fields = Fields(item, key, GROUP_LIMITS)
    entries = item.get("product_group_types") or []
    if not isinstance(entries, list):
        raise ItemError(key, f"product_group_types is {kind_of(entries)}, expected a list")
    values: dict[str, tuple[Any, ...]] = {}
    reasons = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ItemError(key, f"product_group_types[{index}] is {kind_of(entry)}, expected an object")
        value, why = _group_type(key, index, entry)
        if why:
            reasons.append(why)
        elif value[1] in values:
            reasons.append(f"product_type_id {value[1]} is listed twice: the first is kept")
        else:
            values[value[1]] = value
    row = {
        "product_group_id": key,
        "code": fields.text("code"),
        "name": fields.text("name"),
        "state": fields.text("state"),
        "product_kind": fields.text("product_kind"),
        "type_count": len(values),
        "raw": fp.raw,
        "content_hash": fp.content_hash,
    }
    return row, list(values.values()), reasons


def _group_type(key: str, index: int, entry: dict[str, Any]) -> tuple[tuple[Any, ...], str | None]:
    fields = Fields(entry, key, TYPE_LIMITS, where=f"product_group_types[{index}].")
    type_id = fields.text("product_type_id")
    if not type_id or not type_id.strip():
        return (), f"product_group_types[{index}] has no product_type_id: not stored"
    order_no, why = None, None
    raw_order = fields.scalar("order_no")
    if raw_order is not None and raw_order.strip():
        try:
            number = Decimal(raw_order.strip())
            if number != number.to_integral_value() or abs(number) >= 2**31:
                raise InvalidOperation
            order_no = int(number)
        except InvalidOperation:
            why = f"product_group_types[{index}].order_no {raw_order[:40]!r} is not a whole number: stored empty"
    value = (key, type_id.strip(), fields.text("code"), fields.text("name"), fields.text("state"), order_no)
    return value, why


class _Batch(msgspec.Struct, gc=False):
    warehouse_id: str | None = None
    warehouse_code: str | None = None
    product_id: str | None = None
    product_code: str | None = None
    quantity: str | None = None
    input_price: str | None = None


_BATCH = msgspec.json.Decoder(_Batch)
_NAMES = ("warehouse_id", "warehouse_code", "product_id", "product_code", "quantity", "input_price")
_SHORT = min(STOCK_LIMITS[name] for name in _NAMES[:4])  # a text this long fits any of the four columns


@dataclass
class _Pair:
    warehouse_code: str | None
    product_code: str | None
    quantity: Decimal = Decimal(0)
    batches: int = 0
    priced_quantity: Decimal = Decimal(0)
    value: Decimal | None = None


@dataclass
class StockTally:
    """The batches of one stock answer summed per warehouse and product; a pair with a batch that cannot be read
    is `broken` (left out of the snapshot, its reason in `failures`)."""

    pairs: dict[tuple[str, str], _Pair] = field(default_factory=dict)
    broken: set[tuple[str, str]] = field(default_factory=set)
    failures: list[ItemError] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (item id, reason)
    batches: int = 0
    numbers: dict[str, Decimal | None] = field(default_factory=dict, repr=False)

    def add(self, source: msgspec.Raw | bytes) -> None:
        """Count one batch item into its warehouse and product."""
        self.batches += 1
        try:
            try:
                batch = _BATCH.decode(source)
                values = msgspec.structs.astuple(batch)  # its fields are `_NAMES`, in order
            except msgspec.DecodeError:
                values = _plain_batch(source)  # numbers as numbers, or not an object: read the slow way
            self._add(*values)
        except ItemError as error:
            self.failures.append(error)

    def _add(self, *values: str | None) -> None:
        warehouse_id, warehouse_code, product_id, product_code, quantity, input_price = [
            (value.strip() or None) if value else None for value in values
        ]
        if not warehouse_id or not product_id:
            raise ItemError(
                _pair_id(warehouse_id, product_id), "a stock batch without warehouse_id or product_id: not stored"
            )
        if (  # unrolled: this runs for every batch, and nearly every text is short
            len(warehouse_id) > _SHORT
            or len(product_id) > _SHORT
            or (warehouse_code is not None and len(warehouse_code) > _SHORT)
            or (product_code is not None and len(product_code) > _SHORT)
        ):
            self._check_lengths(warehouse_id, warehouse_code, product_id, product_code)
        key = (warehouse_id, product_id)
        try:
            amount = self._number(quantity, "quantity", key)
            price = self._number(input_price, "input_price", key)
            if amount is None:
                raise ItemError(_pair_id(warehouse_id, product_id), "a batch's quantity is missing")
        except ItemError:
            self.broken.add(key)
            raise
        pair = self.pairs.get(key)
        if pair is None:
            pair = self.pairs[key] = _Pair(warehouse_code, product_code)
        pair.quantity += amount
        pair.batches += 1
        if price is not None:
            pair.priced_quantity += amount
            pair.value = (pair.value or _ZERO) + amount * price
        if amount < 0 or amount > _MOST_QUANTITY or (price is not None and (price < 0 or price > _MOST_PRICE)):
            for reason in out_of_range({"quantity": amount, "input_price": price}, STOCK_RANGES):
                self.warnings.append((_pair_id(warehouse_id, product_id), f"a batch's {reason}"))

    @staticmethod
    def _check_lengths(
        warehouse_id: str, warehouse_code: str | None, product_id: str, product_code: str | None
    ) -> None:
        for name, value in zip(_NAMES[:4], (warehouse_id, warehouse_code, product_id, product_code), strict=True):
            if value is not None and len(value) > STOCK_LIMITS[name]:
                pair_id = _pair_id(warehouse_id, product_id)
                raise ItemError(pair_id, f"{name} is {len(value)} characters, more than {STOCK_LIMITS[name]}")

    def _number(self, text: str | None, name: str, key: tuple[str, str]) -> Decimal | None:
        """`_number`, remembered per distinct text (quantities and prices repeat across batches)."""
        if text is None:
            return None
        cache = self.numbers
        number = cache.get(text)
        if number is None:
            number = _number(text, name, _pair_id(*key))
            if len(cache) < NUMBERS_KEPT:
                cache[text] = number
        return number

    def rows(self) -> list[tuple[Any, ...]]:
        """One tuple per warehouse and product in the order of `STOCK_COLUMNS` (numbers as text), broken pairs
        left out."""
        rows = []
        for (warehouse_id, product_id), pair in self.pairs.items():
            if (warehouse_id, product_id) in self.broken:
                continue
            value = pair.value.quantize(_FOUR_PLACES) if pair.value is not None else None
            cost = None
            if value is not None and pair.priced_quantity > 0:
                cost = (pair.value / pair.priced_quantity).quantize(_FOUR_PLACES)  # type: ignore[operator]
                if abs(cost) >= MAX_NUMBER:  # only when negative batches (warned about) nearly cancel the others
                    cost = None
            rows.append(
                (
                    warehouse_id,
                    product_id,
                    pair.warehouse_code,
                    pair.product_code,
                    str(pair.quantity),
                    pair.batches,
                    None if cost is None else str(cost),
                    None if value is None else str(value),
                )
            )
        return rows

    def totals_out_of_range(self) -> list[tuple[str, str]]:
        """(item id, reason) of each pair whose summed quantity is negative or cannot be stored."""
        odd = []
        for (warehouse_id, product_id), pair in self.pairs.items():
            if pair.quantity < 0:
                odd.append((f"{product_id}@{warehouse_id}", f"the stock {pair.quantity} is negative"))
        return odd

    def unstorable(self) -> list[tuple[str, str]]:
        """Pairs whose sums do not fit their columns: they become broken (reason per pair)."""
        found = []
        for key, pair in self.pairs.items():
            if abs(pair.quantity) >= MAX_NUMBER or (pair.value is not None and abs(pair.value) >= MAX_NUMBER * 10**8):
                self.broken.add(key)
                found.append((f"{key[1]}@{key[0]}", "the summed quantity or value is too large to store"))
        return found


def _pair_id(warehouse_id: str | None, product_id: str | None) -> str:
    return f"{product_id or '?'}@{warehouse_id or '?'}"


def _plain_batch(source: msgspec.Raw | bytes) -> tuple[str | None, ...]:
    item = decoded(source)
    if not isinstance(item, dict):
        raise ItemError(None, f"a stock batch is {kind_of(item)}, not an object")
    fields = Fields(item, "?", STOCK_LIMITS)
    return tuple(fields.scalar(name) for name in _NAMES)


def _number(text: str | None, name: str, pair_id: str) -> Decimal | None:
    if text is None:
        return None
    try:
        number = Decimal(text.replace(" ", "").replace(",", "."))
    except InvalidOperation:
        raise ItemError(pair_id, f"a batch's {name} is {text[:40]!r}, not a number") from None
    if not number.is_finite() or abs(number) >= MAX_NUMBER:
        raise ItemError(pair_id, f"a batch's {name} is {text[:40]!r}, out of range")
    return number
