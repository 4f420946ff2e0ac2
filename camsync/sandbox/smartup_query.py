"""The filters of the SmartUp exports: a request body as a hashable query (the cache key), and its items.

`dd.mm.yyyy` filters with empty strings ignored, the orders' day ranges clamped to `day_range_limit` (or refused,
or answered with no items), filial codes checked against the tenant's organisations, the balance as of its
`end_date` (today when empty). A query is a tuple whose first item names the export.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from camsync.sandbox.smartup_config import (
    FILIAL_MISMATCH_CODE,
    FILIAL_NOT_FOUND_CODE,
    RANGE_ERROR_CODE,
    ApiError,
    BadRequest,
    SmartupSandboxConfig,
)
from camsync.sandbox.smartup_data import Filial, OrderRecord, ProductRecord, SmartupData
from camsync.sandbox.smartup_stock import StockBook

_NO_DAY_BEFORE = 0
_NO_DAY_AFTER = 10**7
_DATE_RE = re.compile(r"\d{2}\.\d{2}\.\d{4}")
_WHOLE = (_NO_DAY_BEFORE, _NO_DAY_AFTER)
_NOTHING = (1, 0)  # a range no day is in: what a too-wide range selects in range_mode "empty"


def parse_day(value: Any, name: str) -> int | None:
    """A `dd.mm.yyyy` filter as a day ordinal; empty means no filter; anything else is a bad request."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        raise BadRequest(f"Неверный формат даты в поле {name}: ожидается dd.mm.yyyy")
    try:
        return datetime.strptime(value, "%d.%m.%Y").date().toordinal()
    except ValueError:
        raise BadRequest(f"Неверная дата в поле {name}: {value}") from None


def _text_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str | int):
        raise BadRequest(f"Поле {name} должно быть строкой")
    return str(value)


def _day_range(body: dict[str, Any], prefix: str, suffix: str) -> tuple[int | None, int | None]:
    begin_name, end_name = f"begin_{prefix}{suffix}", f"end_{prefix}{suffix}"
    return parse_day(body.get(begin_name), begin_name), parse_day(body.get(end_name), end_name)


def _bounds(span: tuple[int | None, int | None]) -> tuple[int, int]:
    begin, end = span
    return (_NO_DAY_BEFORE if begin is None else begin), (_NO_DAY_AFTER if end is None else end)


class ExportQueries:
    """Turns request bodies into queries, and queries into the encoded items they select."""

    def __init__(self, config: SmartupSandboxConfig, filials: Sequence[Filial]) -> None:
        self.config = config
        self.filials = filials

    def query(self, export: str, body: dict[str, Any], *, today: int) -> tuple[Any, ...]:
        """The query of one export request (raises `BadRequest` or `ApiError` for a filter it refuses)."""
        if export == "inventory":
            return (
                "inventory",
                _text_field(body, "code"),
                _bounds(_day_range(body, "created", "_on")),
                _bounds(_day_range(body, "modified", "_on")),
            )
        if export == "prices":
            return ("prices", _text_field(body, "code") or _text_field(body, "inventory_code"))
        if export == "orders":
            return self._orders_query(body, today)
        if export == "balance":
            parse_day(body.get("begin_date"), "begin_date")  # checked; the stock is as of end_date
            end = parse_day(body.get("end_date"), "end_date")
            return ("balance", today if end is None else end)
        return (export,)

    def _orders_query(self, body: dict[str, Any], today: int) -> tuple[Any, ...]:
        statuses = body.get("statuses") or []
        if not isinstance(statuses, list) or not all(isinstance(s, str) for s in statuses):
            raise BadRequest("Поле statuses должно быть списком строк")
        delivery = parse_day(body.get("delivery_date"), "delivery_date")
        return (
            "orders",
            _text_field(body, "deal_id"),
            _text_field(body, "external_id"),
            self._filial_codes(body),
            frozenset(s for s in statuses if s),
            delivery,
            self._limited(_day_range(body, "deal", "_date"), today),
            self._limited(_day_range(body, "created", "_on"), today),
            self._limited(_day_range(body, "modified", "_on"), today),
        )

    def _filial_codes(self, body: dict[str, Any]) -> frozenset[str]:
        codes = {_text_field(body, "filial_code")}
        listed = body.get("filial_codes") or []
        if not isinstance(listed, list) or not all(isinstance(item, dict) for item in listed):
            raise BadRequest("Поле filial_codes должно быть списком объектов {filial_code}")
        codes.update(_text_field(item, "filial_code") for item in listed)
        codes.discard("")
        known = {f.code for f in self.filials}
        for code in codes:
            if code in known:
                continue
            if self.config.single_organisation:
                raise ApiError(FILIAL_MISMATCH_CODE, f"filial code {code} does not match the current organisation")
            raise ApiError(FILIAL_NOT_FOUND_CODE, f"filial code not found: {code}")
        return frozenset(codes)

    def _limited(self, span: tuple[int | None, int | None], today: int) -> tuple[int, int]:
        """Apply `day_range_limit` to a range: clamp it to its first days, refuse it, or select nothing."""
        begin, end = span
        if begin is None and end is None:
            return _bounds(span)
        limit = self.config.day_range_limit
        last = end if end is not None else max(today, begin or 0)
        first = begin if begin is not None else _NO_DAY_BEFORE
        if last - first + 1 <= limit:
            return first, (_NO_DAY_AFTER if end is None else end)
        if self.config.range_mode == "error":
            raise ApiError(RANGE_ERROR_CODE, f"Период не должен превышать {limit} дн.")
        if self.config.range_mode == "empty":
            return _NOTHING
        if begin is None:  # no first day to count from: keep the last `limit` days up to `end`
            return last - limit + 1, last
        return begin, begin + limit - 1

    def select(self, query: tuple[Any, ...], data: SmartupData, stock: StockBook) -> list[bytes]:
        """The encoded items a query selects, in the tenant's order."""
        kind = query[0]
        if kind == "inventory":
            return _select_products(data.products, *query[1:])
        if kind == "prices":
            code = query[1]
            return [p.body for p in data.prices if not code or p.code == code]
        if kind == "orders":
            return _select_orders(data.orders, *query[1:])
        if kind == "groups":
            return list(data.groups.items())
        return stock.rows(until=query[1])


def _select_products(
    records: list[ProductRecord], code: str, created: tuple[int, int], modified: tuple[int, int]
) -> list[bytes]:
    if code:
        records = [r for r in records if r.code == code]
    if created != _WHOLE:
        records = [r for r in records if created[0] <= r.created <= created[1]]
    if modified != _WHOLE:
        records = [r for r in records if modified[0] <= r.modified <= modified[1]]
    return [r.body for r in records]


def _select_orders(
    records: list[OrderRecord],
    deal_id: str,
    external_id: str,
    filial_codes: frozenset[str],
    statuses: frozenset[str],
    delivery: int | None,
    deal: tuple[int, int],
    created: tuple[int, int],
    modified: tuple[int, int],
) -> list[bytes]:
    if deal_id:
        records = [r for r in records if r.deal_id == deal_id]
    if external_id:
        records = [r for r in records if r.external_id == external_id]
    if filial_codes:
        records = [r for r in records if r.filial_code in filial_codes]
    if statuses:
        records = [r for r in records if r.status in statuses]
    if delivery is not None:
        records = [r for r in records if r.delivery_day == delivery]
    for attribute, (low, high) in (("deal_day", deal), ("created", created), ("modified", modified)):
        if (low, high) != _WHOLE:
            records = [r for r in records if low <= getattr(r, attribute) <= high]
    return [r.body for r in records]
