"""SmartUp's daily call budgets: the classes it counts calls in, and the `limits` block an answer carries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class BudgetClass(StrEnum):
    """The daily call budgets SmartUp counts separately."""

    REFERENCE = "reference"  # inventory, prices, product groups: 100 calls a day
    DOCUMENTS = "documents"  # orders, balance: 500 calls a day
    RARE = "rare"  # rarely used documents: 300 calls a day


@dataclass(frozen=True)
class Limits:
    """The `limits` block of an answer; SmartUp sends its values as strings or numbers."""

    has_limit: bool
    limit_quant: int | None
    request_quant: int | None
    left_limit_quant: int | None
    object_count: int | None
    day_range_limit: int | None

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> Limits:
        """Read a raw `limits` object; values that are absent or not numbers become None."""
        return cls(
            has_limit=_flag(raw.get("has_limit")),
            limit_quant=_whole(raw.get("limit_quant")),
            request_quant=_whole(raw.get("request_quant")),
            left_limit_quant=_whole(raw.get("left_limit_quant")),
            object_count=_whole(raw.get("object_count")),
            day_range_limit=_whole(raw.get("day_range_limit")),
        )


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().upper() in ("Y", "YES", "TRUE", "1")


def _whole(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(float(str(value).strip().replace(" ", "")))
    except (TypeError, ValueError, OverflowError):
        return None
