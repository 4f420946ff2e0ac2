"""A faithful local simulator of the SmartUp ERP export API.

It answers the inventory, order, price, product-group and balance exports over real HTTP: Basic auth with a
Russian 401, the `project_code`/`filial_id` headers, `dd.mm.yyyy` filters with empty strings ignored, every
scalar as a string, the `limits` block with a daily call budget per class (Asia/Tashkent days from an injectable
clock), `day_range_limit` either clamped silently or answered with an error, and fault switches. Answers are
joined from items encoded once; a distinct request's array is cached until an edit changes the data.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import random
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from camsync.sandbox.server import Reply, Request, RunningSandbox, SandboxApp
from camsync.sandbox.smartup_data import (
    WAREHOUSES,
    Filial,
    OrderRecord,
    ProductRecord,
    SmartupData,
    decode_item,
    encode_item,
    generate_smartup_data,
    quantity,
)

AUTH_TEXT = "Требуется авторизация"
TEXT = "text/plain; charset=utf-8"
BUDGET_ERROR_CODE = "A02-00-999"
RANGE_ERROR_CODE = "A02-00-015"
FILIAL_NOT_FOUND_CODE = "A02-24-042"
FILIAL_MISMATCH_CODE = "A02-24-048"
BUDGET_CLASSES = ("reference", "documents", "rare")
RANGE_MODES = ("clamp", "error")
_NO_DAY_BEFORE = 0
_NO_DAY_AFTER = 10**7
_DATE_RE = re.compile(r"\d{2}\.\d{2}\.\d{4}")


@dataclass(frozen=True)
class Endpoint:
    """An export: its name, the root key of its answer and the daily budget class it spends."""

    name: str
    root: str
    budget_class: str


ENDPOINTS: dict[str, Endpoint] = {
    "/b/anor/mxsx/mr/inventory$export": Endpoint("inventory", "inventory", "reference"),
    "/b/trade/txs/tdeal/order$export": Endpoint("orders", "order", "documents"),
    "/b/anor/api/v2/mkf/product_price$export": Endpoint("prices", "inventory", "reference"),
    "/b/anor/mxsx/mr/product_group$export": Endpoint("groups", "product_group", "reference"),
    "/b/anor/mxsx/mkw/balance$export": Endpoint("balance", "balance", "documents"),
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class SmartupFaults:
    """Fault switches: each a probability (0..1) and a "next N requests" counter; both settable at runtime.

    Transport faults (drop, server_error, rate_limit, bad_request) strike before auth and do not spend the
    budget; answer faults (error_json, malformed) and `slow` strike on an authorised, counted call.
    """

    drop: float = 0.0
    drop_next: int = 0
    server_error: float = 0.0
    server_error_next: int = 0
    server_error_status: int = 0  # 0: 500, 502 and 503 in turn
    rate_limit: float = 0.0
    rate_limit_next: int = 0
    retry_after: int = 1
    bad_request: float = 0.0
    bad_request_next: int = 0
    error_json: float = 0.0
    error_json_next: int = 0
    error_code: str = FILIAL_NOT_FOUND_CODE
    error_message: str = "filial code not found"
    malformed: float = 0.0
    malformed_next: int = 0
    slow: float = 0.0
    slow_next: int = 0
    slow_seconds: float = 2.0
    latency: float = 0.0  # added to every export answer


TRANSPORT_FAULTS = ("drop", "server_error", "rate_limit", "bad_request")
ANSWER_FAULTS = ("error_json", "malformed")


@dataclass
class SmartupSandboxConfig:
    """Every option of the SmartUp simulator."""

    products: int = 200
    orders: int = 300
    seed: int = 42
    user: str = "sandbox"
    password: str = "sandbox"
    project_code: str = "trade"
    filial_id: str = "100"
    filial_codes: tuple[str, ...] = ("TASH", "SAMR", "BUKH")
    single_organisation: bool = False  # one organisation: a foreign filial_code answers A02-24-048
    day_range_limit: int = 7
    range_mode: str = "clamp"  # clamp (silently, like the real API) | error
    reference_budget: int = 100
    documents_budget: int = 500
    rare_budget: int = 300
    budget_status: int = 200  # HTTP status of the budget-exhausted error (200 or 429)
    limits_as_numbers: bool = False
    limits_first: bool = False
    timezone: str = "Asia/Tashkent"
    cache_entries: int = 32  # distinct requests whose encoded arrays are kept
    cache_bytes: int = 512 * 1024 * 1024  # and at most this much of them (the newest is always kept)
    faults: SmartupFaults = field(default_factory=SmartupFaults)
    clock: Callable[[], datetime] = _utcnow
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if self.range_mode not in RANGE_MODES:
            raise ValueError(f"range_mode must be one of {', '.join(RANGE_MODES)}")
        if self.day_range_limit < 1:
            raise ValueError("day_range_limit must be at least 1")
        if not self.filial_id.isdigit():
            raise ValueError("filial_id must be a numeric id")
        if not self.filial_codes:
            raise ValueError("filial_codes must name at least one organisation")


class _BadRequest(Exception):
    """Answered 400 with a plain-text body."""


class _ApiError(Exception):
    """Answered with error JSON (HTTP 200 unless told otherwise)."""

    def __init__(self, code: str, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def text_reply(status: int, text: str, headers: dict[str, str] | None = None) -> Reply:
    """A plain-text answer."""
    return Reply(status=status, body=text, content_type=TEXT, headers=headers or {})


def error_reply(code: str, message: str, status: int = 200) -> Reply:
    """SmartUp's error JSON."""
    return Reply(status=status, body={"error_code": code, "message": message})


def parse_day(value: Any, name: str) -> int | None:
    """A `dd.mm.yyyy` filter as a day ordinal; empty means no filter; anything else is a bad request."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        raise _BadRequest(f"Неверный формат даты в поле {name}: ожидается dd.mm.yyyy")
    try:
        return datetime.strptime(value, "%d.%m.%Y").date().toordinal()
    except ValueError:
        raise _BadRequest(f"Неверная дата в поле {name}: {value}") from None


def _text_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str | int):
        raise _BadRequest(f"Поле {name} должно быть строкой")
    return str(value)


def _day_range(body: dict[str, Any], prefix: str, suffix: str) -> tuple[int | None, int | None]:
    begin_name, end_name = f"begin_{prefix}{suffix}", f"end_{prefix}{suffix}"
    return parse_day(body.get(begin_name), begin_name), parse_day(body.get(end_name), end_name)


def _bounds(span: tuple[int | None, int | None]) -> tuple[int, int]:
    begin, end = span
    return (_NO_DAY_BEFORE if begin is None else begin), (_NO_DAY_AFTER if end is None else end)


class SmartupSandbox(SandboxApp):
    """The SmartUp simulator: serve it with `RunningSandbox(app)` or `start_smartup_sandbox(config)`."""

    def __init__(self, config: SmartupSandboxConfig | None = None) -> None:
        self.config = config or SmartupSandboxConfig()
        self.tz = ZoneInfo(self.config.timezone)
        self.filials = self._make_filials()
        self._lock = threading.RLock()
        self._fault_rng = random.Random(self.config.seed)
        self.faults = SmartupFaults(**asdict(self.config.faults))
        self.data: SmartupData = generate_smartup_data(
            products=self.config.products,
            orders=self.config.orders,
            seed=self.config.seed,
            today=self.today(),
            filials=self.filials,
        )
        self._product_at = {record.product_id: i for i, record in enumerate(self.data.products)}
        self._order_at = {record.deal_id: i for i, record in enumerate(self.data.orders)}
        self._cache: OrderedDict[tuple[Any, ...], tuple[bytes, int]] = OrderedDict()
        self._day = self.today()
        self._calls = dict.fromkeys(BUDGET_CLASSES, 0)
        self._paths: dict[str, int] = {}
        self._refused = {"auth": 0, "budget": 0}
        self._injected: dict[str, int] = {}
        self._server_error_turn = 0

    # ----- time and tenant
    def today(self) -> date:
        """The tenant's local calendar day, from the injectable clock."""
        return self.config.clock().astimezone(self.tz).date()

    def _make_filials(self) -> list[Filial]:
        config = self.config
        if config.single_organisation:
            return [Filial(config.filial_id, config.filial_codes[0], "Организация")]
        base = int(config.filial_id)
        return [Filial(str(base + i + 1), code, f"Филиал {code}") for i, code in enumerate(config.filial_codes)]

    def budget(self, budget_class: str) -> int:
        """The daily call budget of a class."""
        return {
            "reference": self.config.reference_budget,
            "documents": self.config.documents_budget,
            "rare": self.config.rare_budget,
        }[budget_class]

    # ----- public inspection and control
    def stats(self) -> dict[str, Any]:
        """Calls per budget class and per path today, budget left, refusals and injected faults."""
        with self._lock:
            self._roll_day()
            return {
                "day": self._day.strftime("%d.%m.%Y"),
                "calls": dict(self._calls),
                "budget": {name: self.budget(name) for name in BUDGET_CLASSES},
                "budget_left": {name: max(0, self.budget(name) - self._calls[name]) for name in BUDGET_CLASSES},
                "paths": dict(self._paths),
                "refused": dict(self._refused),
                "faults_injected": dict(self._injected),
                "products": len(self.data.products),
                "orders": len(self.data.orders),
            }

    def set_faults(self, **changes: Any) -> SmartupFaults:
        """Change fault switches by name (e.g. `server_error_next=2`, `slow=0.5`); returns the new switches."""
        known = {f.name: f.type for f in fields(SmartupFaults)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown fault switch: {name}")
            self._check_fault(name, value)
        with self._lock:
            for name, value in changes.items():
                setattr(self.faults, name, value)
            return SmartupFaults(**asdict(self.faults))

    @staticmethod
    def _check_fault(name: str, value: Any) -> None:
        if name in ("error_code", "error_message"):
            if not isinstance(value, str):
                raise ValueError(f"{name} must be text")
            return
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{name} must be a number of at least 0")
        if name in TRANSPORT_FAULTS + ANSWER_FAULTS + ("slow",) and value > 1:
            raise ValueError(f"{name} is a probability from 0 to 1")
        if (name.endswith("_next") or name in ("retry_after", "server_error_status")) and not isinstance(value, int):
            raise ValueError(f"{name} must be a whole number")

    def reset_budget(self) -> None:
        """Forget today's calls: every class has its whole budget again."""
        with self._lock:
            self._calls = dict.fromkeys(BUDGET_CLASSES, 0)
            self._paths.clear()

    def edit_product(self, product_id: str, **fields_: Any) -> dict[str, Any]:
        """Change fields of one product and bump its modified day to today; returns the new item."""
        with self._lock:
            position = self._product_at[product_id]
            record = self.data.products[position]
            item = decode_item(record.body)
            item.update(_stringify(fields_))
            code = str(item["code"])
            self.data.products[position] = ProductRecord(
                product_id, code, record.created, self.today().toordinal(), encode_item(item)
            )
            if code != record.code:
                self._recode_price(position, code)
            self._cache.clear()
            return item

    def _recode_price(self, position: int, code: str) -> None:
        price = self.data.prices[position]
        item = decode_item(price.body)
        item["inventory_code"] = code
        price.code, price.body = code, encode_item(item)

    def remove_product(self, product_id: str) -> None:
        """Delete one product (and its prices) from the tenant."""
        with self._lock:
            position = self._product_at[product_id]
            del self.data.products[position]
            del self.data.prices[position]
            self._product_at = {record.product_id: i for i, record in enumerate(self.data.products)}
            self._cache.clear()

    def edit_order(self, deal_id: str, **fields_: Any) -> dict[str, Any]:
        """Change fields of one order (e.g. `status="B#S"`) and bump its modified day to today."""
        with self._lock:
            position = self._order_at[deal_id]
            old = self.data.orders[position]
            item = decode_item(old.body)
            item.update(_stringify(fields_))
            self.data.orders[position] = OrderRecord(
                deal_id,
                str(item["external_id"]),
                str(item["filial_code"]),
                str(item["status"]),
                old.deal_day,
                old.delivery_day,
                old.created,
                self.today().toordinal(),
                encode_item(item),
            )
            self._cache.clear()
            return item

    # ----- HTTP
    def route(self, request: Request) -> Reply:
        """Answer one HTTP request."""
        path = request.path.rstrip("/") or "/"
        if path.startswith("/_sandbox/"):
            return self._control(request, path)
        endpoint = self._endpoint(path)
        if endpoint is None:
            return text_reply(404, "Страница не найдена")
        if self.faults.latency:
            self.config.sleep(self.faults.latency)
        fault = self._draw(TRANSPORT_FAULTS)
        if fault:
            return self._transport_fault(fault)
        try:
            return self._export(request, path, endpoint)
        except _BadRequest as exc:
            return text_reply(400, str(exc))
        except _ApiError as exc:
            return error_reply(exc.code, exc.message, exc.status)

    @staticmethod
    def _endpoint(path: str) -> Endpoint | None:
        for suffix, endpoint in ENDPOINTS.items():
            if path.endswith(suffix):
                return endpoint
        return None

    def _export(self, request: Request, path: str, endpoint: Endpoint) -> Reply:
        refusal = self._authorise(request)
        if refusal is not None:
            with self._lock:
                self._refused["auth"] += 1
            return refusal
        used = self._spend(endpoint.budget_class, path)
        body = self._request_body(request)
        fault = self._draw(ANSWER_FAULTS)
        if fault == "error_json":
            return error_reply(self.faults.error_code, self.faults.error_message)
        array, count = self._answer_array(endpoint, body)
        payload = self._wrap(endpoint, array, count, used)
        if self._draw(("slow",)):
            self.config.sleep(self.faults.slow_seconds)
        if fault == "malformed":
            payload = payload[: max(1, len(payload) // 2)]
        return Reply(status=200, body=payload)

    def _authorise(self, request: Request) -> Reply | None:
        headers = request.headers
        unauthorised = text_reply(401, AUTH_TEXT, {"WWW-Authenticate": 'Basic realm="smartup"'})
        if not self._basic_ok(headers.get("authorization", "")):
            return unauthorised
        if headers.get("project_code", "") != self.config.project_code:
            return unauthorised
        filial_id = headers.get("filial_id", "").strip()
        if not filial_id:
            raise _BadRequest("Не указан заголовок filial_id")
        if not filial_id.isdigit():
            raise _BadRequest("Заголовок filial_id должен быть числом")
        if filial_id != self.config.filial_id and filial_id not in {f.filial_id for f in self.filials}:
            raise _ApiError(FILIAL_NOT_FOUND_CODE, f"filial not found: {filial_id}")
        return None

    def _basic_ok(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        same_user = hmac.compare_digest(user.encode(), self.config.user.encode())
        return hmac.compare_digest(password.encode(), self.config.password.encode()) and same_user

    def _roll_day(self) -> None:
        today = self.today()
        if today != self._day:
            self._day = today
            self._calls = dict.fromkeys(BUDGET_CLASSES, 0)
            self._paths.clear()

    def _spend(self, budget_class: str, path: str) -> int:
        """Count one call of a class and return today's count, or refuse once the budget is spent."""
        with self._lock:
            self._roll_day()
            if self._calls[budget_class] >= self.budget(budget_class):
                self._refused["budget"] += 1
                raise _ApiError(
                    BUDGET_ERROR_CODE,
                    f"Дневной лимит запросов исчерпан ({budget_class}: {self.budget(budget_class)} в день)",
                    self.config.budget_status,
                )
            self._calls[budget_class] += 1
            self._paths[path] = self._paths.get(path, 0) + 1
            return self._calls[budget_class]

    @staticmethod
    def _request_body(request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            raise _BadRequest("Некорректный JSON в теле запроса") from None
        if body is None:
            return {key: values[0] for key, values in request.query.items() if values}
        if not isinstance(body, dict):
            raise _BadRequest("Тело запроса должно быть JSON-объектом")
        return body

    # ----- faults
    def _draw(self, names: Iterable[str]) -> str | None:
        """The first switch among `names` that fires on this request (its counter first, then its chance)."""
        with self._lock:
            for name in names:
                counter = f"{name}_next"
                if getattr(self.faults, counter) > 0:
                    setattr(self.faults, counter, getattr(self.faults, counter) - 1)
                elif not (getattr(self.faults, name) and self._fault_rng.random() < getattr(self.faults, name)):
                    continue
                self._injected[name] = self._injected.get(name, 0) + 1
                return name
        return None

    def _transport_fault(self, fault: str) -> Reply:
        if fault == "drop":
            return Reply(drop=True)
        if fault == "rate_limit":
            return text_reply(429, "Слишком много запросов", {"Retry-After": str(self.faults.retry_after)})
        if fault == "bad_request":
            return text_reply(400, "Некорректный запрос")
        status = self.faults.server_error_status
        if not status:
            with self._lock:
                status = (500, 502, 503)[self._server_error_turn % 3]
                self._server_error_turn += 1
        return text_reply(status, "Внутренняя ошибка сервера" if status == 500 else "Сервис временно недоступен")

    # ----- answers
    def _answer_array(self, endpoint: Endpoint, body: dict[str, Any]) -> tuple[bytes, int]:
        """The encoded items of the answer (`a,b,c` without brackets) and their count, cached per request."""
        select = {
            "inventory": self._inventory_query,
            "orders": self._orders_query,
            "prices": self._prices_query,
            "groups": lambda _body: ("groups",),
            "balance": lambda _body: ("balance",),
        }[endpoint.name]
        key = select(body)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
            bodies = self._select(key)
            answer = b",".join(bodies), len(bodies)
            self._cache[key] = answer
            self._trim_cache()
            return answer

    def _trim_cache(self) -> None:
        total = sum(len(array) for array, _count in self._cache.values())
        while len(self._cache) > 1 and (
            len(self._cache) > self.config.cache_entries or total > self.config.cache_bytes
        ):
            _key, (array, _count) = self._cache.popitem(last=False)
            total -= len(array)

    def _inventory_query(self, body: dict[str, Any]) -> tuple[Any, ...]:
        return (
            "inventory",
            _text_field(body, "code"),
            _bounds(_day_range(body, "created", "_on")),
            _bounds(_day_range(body, "modified", "_on")),
        )

    def _prices_query(self, body: dict[str, Any]) -> tuple[Any, ...]:
        return ("prices", _text_field(body, "code") or _text_field(body, "inventory_code"))

    def _orders_query(self, body: dict[str, Any]) -> tuple[Any, ...]:
        statuses = body.get("statuses") or []
        if not isinstance(statuses, list) or not all(isinstance(s, str) for s in statuses):
            raise _BadRequest("Поле statuses должно быть списком строк")
        delivery = parse_day(body.get("delivery_date"), "delivery_date")
        return (
            "orders",
            _text_field(body, "deal_id"),
            _text_field(body, "external_id"),
            self._filial_codes(body),
            frozenset(s for s in statuses if s),
            delivery,
            self._limited(_day_range(body, "deal", "_date")),
            self._limited(_day_range(body, "created", "_on")),
            self._limited(_day_range(body, "modified", "_on")),
        )

    def _filial_codes(self, body: dict[str, Any]) -> frozenset[str]:
        codes = {_text_field(body, "filial_code")}
        listed = body.get("filial_codes") or []
        if not isinstance(listed, list) or not all(isinstance(item, dict) for item in listed):
            raise _BadRequest("Поле filial_codes должно быть списком объектов {filial_code}")
        codes.update(_text_field(item, "filial_code") for item in listed)
        codes.discard("")
        known = {f.code for f in self.filials}
        for code in codes:
            if code in known:
                continue
            if self.config.single_organisation:
                raise _ApiError(FILIAL_MISMATCH_CODE, f"filial code {code} does not match the current organisation")
            raise _ApiError(FILIAL_NOT_FOUND_CODE, f"filial code not found: {code}")
        return frozenset(codes)

    def _limited(self, span: tuple[int | None, int | None]) -> tuple[int, int]:
        """Apply `day_range_limit` to a range: clamp it to its first days, or refuse it."""
        begin, end = span
        if begin is None and end is None:
            return _bounds(span)
        limit = self.config.day_range_limit
        last = end if end is not None else max(self.today().toordinal(), begin or 0)
        first = begin if begin is not None else _NO_DAY_BEFORE
        if last - first + 1 <= limit:
            return first, (_NO_DAY_AFTER if end is None else end)
        if self.config.range_mode == "error":
            raise _ApiError(RANGE_ERROR_CODE, f"Период не должен превышать {limit} дн.")
        if begin is None:  # no first day to count from: keep the last `limit` days up to `end`
            return last - limit + 1, last
        return begin, begin + limit - 1

    def _select(self, key: tuple[Any, ...]) -> list[bytes]:
        kind = key[0]
        if kind == "inventory":
            return self._select_products(*key[1:])
        if kind == "prices":
            code = key[1]
            return [p.body for p in self.data.prices if not code or p.code == code]
        if kind == "orders":
            return self._select_orders(*key[1:])
        if kind == "groups":
            return list(self.data.groups)
        return self._balance()

    def _select_products(self, code: str, created: tuple[int, int], modified: tuple[int, int]) -> list[bytes]:
        records: list[ProductRecord] = self.data.products
        if code:
            records = [r for r in records if r.code == code]
        if created != (_NO_DAY_BEFORE, _NO_DAY_AFTER):
            records = [r for r in records if created[0] <= r.created <= created[1]]
        if modified != (_NO_DAY_BEFORE, _NO_DAY_AFTER):
            records = [r for r in records if modified[0] <= r.modified <= modified[1]]
        return [r.body for r in records]

    def _select_orders(
        self,
        deal_id: str,
        external_id: str,
        filial_codes: frozenset[str],
        statuses: frozenset[str],
        delivery: int | None,
        deal: tuple[int, int],
        created: tuple[int, int],
        modified: tuple[int, int],
    ) -> list[bytes]:
        records: list[OrderRecord] = self.data.orders
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
            if (low, high) != (_NO_DAY_BEFORE, _NO_DAY_AFTER):
                records = [r for r in records if low <= getattr(r, attribute) <= high]
        return [r.body for r in records]

    def _balance(self) -> list[bytes]:
        rng = random.Random(self.config.seed + 1)
        items = []
        for record in self.data.products:
            for warehouse in WAREHOUSES:
                amount = quantity(int(rng.random() * 500) * 1000)
                text = (
                    f'{{"warehouse_code":"{warehouse}","inventory_code":"{record.code}",'
                    f'"product_id":"{record.product_id}","quantity":"{amount}"}}'
                )
                items.append(text.encode())
        return items

    def _wrap(self, endpoint: Endpoint, array: bytes, count: int, used: int) -> bytes:
        budget = self.budget(endpoint.budget_class)
        values = (budget, used, max(0, budget - used), count, self.config.day_range_limit)
        names = ("limit_quant", "request_quant", "left_limit_quant", "object_count", "day_range_limit")
        limits: dict[str, Any] = {"has_limit": "Y"}
        limits.update(zip(names, values if self.config.limits_as_numbers else map(str, values), strict=True))
        limits_json = json.dumps(limits, separators=(",", ":")).encode()
        root = f'"{endpoint.root}":['.encode()
        if self.config.limits_first:
            return b"".join((b'{"limits":', limits_json, b",", root, array, b"]}"))
        return b"".join((b"{", root, array, b'],"limits":', limits_json, b"}"))

    # ----- control endpoints
    def _control(self, request: Request, path: str) -> Reply:
        try:
            body = request.json() if request.method == "POST" else None
        except ValueError:
            return Reply(status=400, body={"error": "the body is not JSON"})
        try:
            return self._control_action(request.method, path, body if isinstance(body, dict) else {})
        except KeyError as exc:
            return Reply(status=404, body={"error": f"not found: {exc.args[0]}"})
        except ValueError as exc:
            return Reply(status=400, body={"error": str(exc)})

    def _control_action(self, method: str, path: str, body: dict[str, Any]) -> Reply:
        if path == "/_sandbox/stats":
            return Reply(body=self.stats())
        if path == "/_sandbox/faults" and method == "GET":
            return Reply(body=asdict(self.faults))
        if path == "/_sandbox/faults" and method == "POST":
            return Reply(body=asdict(self.set_faults(**body)))
        if path == "/_sandbox/reset-budget" and method == "POST":
            self.reset_budget()
            return Reply(body=self.stats())
        if path == "/_sandbox/edit" and method == "POST":
            return Reply(body=self._edit(body))
        return Reply(status=404, body={"error": f"no control endpoint {method} {path}"})

    def _edit(self, body: dict[str, Any]) -> dict[str, Any]:
        changes = dict(body)
        if "product_id" in changes:
            product_id = str(changes.pop("product_id"))
            if changes.pop("remove", False):
                self.remove_product(product_id)
                return {"removed": product_id}
            return self.edit_product(product_id, **changes)
        if "deal_id" in changes:
            return self.edit_order(str(changes.pop("deal_id")), **changes)
        raise ValueError("an edit names a product_id or a deal_id")


def _stringify(values: dict[str, Any]) -> dict[str, Any]:
    """Scalars as strings, the way SmartUp sends them; lists and objects as given."""
    return {k: v if isinstance(v, list | dict | str) else ("" if v is None else str(v)) for k, v in values.items()}


def start_smartup_sandbox(
    config: SmartupSandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> RunningSandbox:
    """Generate the tenant and serve it in a background thread; `.url` is SMARTUP_BASE_URL, `.app` the sandbox."""
    return RunningSandbox(SmartupSandbox(config), host=host, port=port).start()
