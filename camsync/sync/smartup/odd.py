"""Values SmartUp sends that are stored as given but are worth a look: a negative weight or quantity, a value
beyond any sane range, a product with two values in one classification or a classification entry without an id.

Each is a warning on the run (`details.warnings`, the first ones with their item ids in `details.warning_items`)
and a log line naming the item; none stops a row from being stored. Text that cannot fit its column is not a
warning but an `ItemError`: the item is not stored, and the run says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from camsync.sync.smartup.items import ItemError

MILLION = Decimal(1_000_000)
BILLION = Decimal(1_000_000_000)
# column → (lowest, highest) sane value; a value outside is stored as given and warned about
PRODUCT_RANGES: dict[str, tuple[Decimal, Decimal]] = {
    "weight_netto": (Decimal(0), MILLION),
    "weight_brutto": (Decimal(0), MILLION),
    "litr": (Decimal(0), MILLION),
    "box_quant": (Decimal(0), MILLION),
}
LINE_RANGES: dict[str, tuple[Decimal, Decimal]] = {
    "order_quant": (Decimal(0), BILLION),
    "sold_quant": (Decimal(0), BILLION),
    "return_quant": (Decimal(0), BILLION),
    "product_price": (Decimal(0), BILLION * 1000),
}
STOCK_RANGES: dict[str, tuple[Decimal, Decimal]] = {
    "quantity": (Decimal(0), BILLION),
    "input_price": (Decimal(0), BILLION * 1000),
}
ID_CHARS, CODE_CHARS = 64, 255


def out_of_range(row: Mapping[str, Any], ranges: Mapping[str, tuple[Decimal, Decimal]]) -> list[str]:
    """Why the numbers of `row` look odd (empty when none does)."""
    reasons = []
    for name, (low, high) in ranges.items():
        value = row.get(name)
        if value is None:
            continue
        if value < 0 <= low:
            reasons.append(f"{name} {value} is negative")
        elif value < low or value > high:
            reasons.append(f"{name} {value} is outside {low}..{high}")
    return reasons


def settle_classifications(key: str, entries: list[tuple[str | None, ...]]) -> tuple[list[tuple[Any, ...]], list[str]]:
    """The classifications of product `key` as stored (one per classification: the first value of each), and why
    some entries were left out. Raises ItemError for an id or code too long for its column."""
    kept: dict[str, tuple[Any, ...]] = {}
    reasons = []
    for group_id, type_id, group_code, type_code in entries:
        for name, value, limit in (
            ("group_id", group_id, ID_CHARS),
            ("type_id", type_id, ID_CHARS),
            ("group_code", group_code, CODE_CHARS),
            ("type_code", type_code, CODE_CHARS),
        ):
            if value is not None and len(value) > limit:
                raise ItemError(key, f"groups[].{name} is {len(value)} characters, more than {limit}")
        if group_id is None:
            reasons.append(f"a groups[] entry has no group_id (type_id {type_id or '-'}): not stored")
        elif group_id in kept:
            reasons.append(
                f"two values in classification {group_id} ({kept[group_id][1]}, {type_id}): the first is kept"
            )
        else:
            kept[group_id] = (group_id, type_id, group_code, type_code)
    return list(kept.values()), reasons
