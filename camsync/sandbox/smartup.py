"""A faithful local simulator of the SmartUp ERP export API.

It answers the inventory, order, price, product-group and balance exports over real HTTP: Basic auth with a
Russian 401, the `project_code` (`anor` also taken on /b/anor/ paths) and `filial_id` headers, `dd.mm.yyyy`
filters with empty strings ignored, every scalar as a string, the `limits` block with a daily call budget per
class (Asia/Tashkent days from an injectable clock), `day_range_limit` clamped silently, answered with an error or
with no items, and fault switches. Answers are joined from items encoded once; a distinct request's array is
cached until an edit changes the data. The product groups are classifications with their values
(`smartup_groups`), the balance one row per batch per warehouse (`smartup_stock`).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import fields, replace
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from camsync.sandbox import auth
from camsync.sandbox.faults import FaultDraws, truncated
from camsync.sandbox.server import Reply, Request, RunningSandbox, SandboxApp
from camsync.sandbox.smartup_config import (
    ANSWER_FAULTS,
    AUTH_TEXT,
    BUDGET_CLASSES,
    BUDGET_ERROR_CODE,
    ENDPOINTS,
    FAULT_NAMES,
    FILIAL_NOT_FOUND_CODE,
    TRANSPORT_FAULTS,
    ApiError,
    BadRequest,
    Endpoint,
    SmartupFaults,
    SmartupSandboxConfig,
    error_reply,
    text_reply,
)
from camsync.sandbox.smartup_control import control_api
from camsync.sandbox.smartup_data import (
    Filial,
    OrderRecord,
    ProductRecord,
    SmartupData,
    decode_item,
    encode_item,
    generate_smartup_data,
)
from camsync.sandbox.smartup_query import ExportQueries
from camsync.sandbox.smartup_stock import StockBook, make_warehouses

_COUNTERS = {f"{name}_next": name for name in FAULT_NAMES}


class SmartupSandbox(SandboxApp):
    """The SmartUp simulator: serve it with `RunningSandbox(app)` or `start_smartup_sandbox(config)`."""

    def __init__(self, config: SmartupSandboxConfig | None = None) -> None:
        self.config = config or SmartupSandboxConfig()
        self.tz = ZoneInfo(self.config.timezone)
        self.filials = self._make_filials()
        self._lock = threading.RLock()
        self._draws = FaultDraws(self.config.seed)
        disarmed: dict[str, Any] = dict.fromkeys(_COUNTERS, 0)  # the counters live in the draws
        self._switches = replace(self.config.faults, **disarmed)
        for counter, name in _COUNTERS.items():
            self._draws.arm(name, getattr(self.config.faults, counter))
        self.data: SmartupData = generate_smartup_data(
            products=self.config.products,
            orders=self.config.orders,
            seed=self.config.seed,
            today=self.today(),
            filials=self.filials,
        )
        self._queries = ExportQueries(self.config, self.filials)
        self.stock = StockBook(
            seed=self.config.seed,
            warehouses=make_warehouses(self.config.warehouses, self.config.seed),
            born=self.today().toordinal(),
            products=self.data.products,
        )
        self._product_at = {record.product_id: i for i, record in enumerate(self.data.products)}
        self._order_at = {record.deal_id: i for i, record in enumerate(self.data.orders)}
        self._cache: OrderedDict[tuple[Any, ...], tuple[bytes, int]] = OrderedDict()
        self._day = self.today()
        self._calls = dict.fromkeys(BUDGET_CLASSES, 0)
        self._paths: dict[str, int] = {}
        self._refused = {"auth": 0, "budget": 0}
        self._server_error_turn = 0
        self._control = control_api(self)

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
                "faults_injected": self._draws.struck(),
                "products": len(self.data.products),
                "orders": len(self.data.orders),
            }

    @property
    def faults(self) -> SmartupFaults:
        """The fault switches as they are now, each `<name>_next` the requests its counter will still strike."""
        with self._lock:
            counters: dict[str, Any] = {counter: self._draws.armed(name) for counter, name in _COUNTERS.items()}
            return replace(self._switches, **counters)

    def set_faults(self, **changes: Any) -> SmartupFaults:
        """Change fault switches by name (e.g. `server_error_next=2`, `slow=0.5`); returns the new switches."""
        known = {f.name: f.type for f in fields(SmartupFaults)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown fault switch: {name}")
            self._check_fault(name, value)
        with self._lock:
            for name, value in changes.items():
                if name in _COUNTERS:
                    self._draws.arm(_COUNTERS[name], value)
                else:
                    setattr(self._switches, name, value)
            return self.faults

    @staticmethod
    def _check_fault(name: str, value: Any) -> None:
        if name in ("error_code", "error_message"):
            if not isinstance(value, str):
                raise ValueError(f"{name} must be text")
            return
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{name} must be a number of at least 0")
        if name in FAULT_NAMES and value > 1:
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
                self.stock.recode(product_id, code)
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

    def set_stock(self, product_id: str, warehouse_code: str, batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Replace a product's batches in one warehouse (`[]`: no stock there); see `StockBook.set_batches`."""
        with self._lock:
            record = self.data.products[self._product_at[product_id]]
            rows = self.stock.set_batches(record, warehouse_code, batches, today=self.today().toordinal())
            self._cache.clear()
            return rows

    def stock_of(self, product_id: str) -> dict[str, list[dict[str, Any]]]:
        """A product's balance rows per warehouse code, each with its batch's `received` day."""
        with self._lock:
            if product_id not in self._product_at:
                raise KeyError(product_id)
            return self.stock.of_product(product_id)

    def set_product_group(self, product_id: str, group_code: str, type_code: str | None) -> dict[str, Any]:
        """Give a product the value `type_code` in classification `group_code` (None or "": take it away).

        Like `edit_product`, it bumps the product's modified day; returns the new item."""
        groups = self.data.groups
        with self._lock:
            item = decode_item(self.data.products[self._product_at[product_id]].body)
            order = {c.code: i for i, c in enumerate(groups.classifications)}
            if group_code not in order:
                raise KeyError(group_code)
            entries = [e for e in item.get("groups") or () if e.get("group_code") != group_code]
            if type_code:
                group, value = groups.value_of_code(group_code, type_code)
                entries.append(decode_item(group.member(value).encode()))
            entries.sort(key=lambda e: order.get(str(e.get("group_code")), len(order)))
            return self.edit_product(product_id, groups=entries)

    def edit_group_value(self, type_id: str, **changes: Any) -> dict[str, str]:
        """Change a classification value's `name`, `state` or `order_no` in the product-group reference."""
        with self._lock:
            item = self.data.groups.edit_value(type_id, **changes)
            self._cache.clear()
            return item

    def remove_group_value(self, type_id: str) -> None:
        """Delete a value from the product-group reference (products that carry it keep its type_id)."""
        with self._lock:
            self.data.groups.remove_value(type_id)
            self._cache.clear()

    # ----- HTTP
    def route(self, request: Request) -> Reply:
        """Answer one HTTP request."""
        path = request.route_path
        if self._control.owns(path):
            return self._control.answer(request, path)
        endpoint = self._endpoint(path)
        if endpoint is None:
            return text_reply(404, "Страница не найдена")
        switches = self._switches
        if switches.latency:
            self.config.sleep(switches.latency)
        fault = self._draws.first((name, getattr(switches, name)) for name in TRANSPORT_FAULTS)
        if fault:
            return self._transport_fault(fault)
        return self._export(request, path, endpoint)

    @staticmethod
    def _endpoint(path: str) -> Endpoint | None:
        for suffix, endpoint in ENDPOINTS.items():
            if path.endswith(suffix):
                return endpoint
        return None

    def _export(self, request: Request, path: str, endpoint: Endpoint) -> Reply:
        refusal = self._authorise(request, endpoint)
        if refusal is not None:
            with self._lock:
                self._refused["auth"] += 1
            return refusal
        used = self._spend(endpoint.budget_class, path)
        body = self._request_body(request)
        switches = self._switches
        fault = self._draws.first((name, getattr(switches, name)) for name in ANSWER_FAULTS)
        if fault == "error_json":
            return error_reply(switches.error_code, switches.error_message)
        array, count = self._answer_array(endpoint, body)
        payload = self._wrap(endpoint, array, count, used)
        if self._draws.strike("slow", switches.slow):
            self.config.sleep(switches.slow_seconds)
        if fault == "malformed":
            payload = truncated(payload)
        return Reply(status=200, body=payload)

    def _authorise(self, request: Request, endpoint: Endpoint) -> Reply | None:
        headers = request.headers
        unauthorised = text_reply(401, AUTH_TEXT, auth.challenge("Basic", "smartup"))
        if not auth.basic_ok(headers.get("authorization", ""), user=self.config.user, password=self.config.password):
            return unauthorised
        allowed = {self.config.project_code, "anor"} if endpoint.project == "anor" else {self.config.project_code}
        if headers.get("project_code", "") not in allowed:
            return unauthorised
        filial_id = headers.get("filial_id", "").strip()
        if not filial_id:
            raise BadRequest("Не указан заголовок filial_id")
        if not filial_id.isdigit():
            raise BadRequest("Заголовок filial_id должен быть числом")
        if filial_id != self.config.filial_id and filial_id not in {f.filial_id for f in self.filials}:
            raise ApiError(FILIAL_NOT_FOUND_CODE, f"filial not found: {filial_id}")
        return None

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
                raise ApiError(
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
            raise BadRequest("Некорректный JSON в теле запроса") from None
        if body is None:
            return {key: values[0] for key, values in request.query.items() if values}
        if not isinstance(body, dict):
            raise BadRequest("Тело запроса должно быть JSON-объектом")
        return body

    def _transport_fault(self, fault: str) -> Reply:
        if fault == "drop":
            return Reply(drop=True)
        switches = self._switches
        if fault == "rate_limit":
            return text_reply(429, "Слишком много запросов", {"Retry-After": str(switches.retry_after)})
        if fault == "bad_request":
            return text_reply(400, "Некорректный запрос")
        status = switches.server_error_status
        if not status:
            with self._lock:
                status = (500, 502, 503)[self._server_error_turn % 3]
                self._server_error_turn += 1
        return text_reply(status, "Внутренняя ошибка сервера" if status == 500 else "Сервис временно недоступен")

    # ----- answers
    def _answer_array(self, endpoint: Endpoint, body: dict[str, Any]) -> tuple[bytes, int]:
        """The encoded items of the answer (`a,b,c` without brackets) and their count, cached per request."""
        key = self._queries.query(endpoint.name, body, today=self.today().toordinal())
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
            bodies = self._queries.select(key, self.data, self.stock)
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


def _stringify(values: dict[str, Any]) -> dict[str, Any]:
    """Scalars as strings, the way SmartUp sends them; lists and objects as given."""
    return {k: v if isinstance(v, list | dict | str) else ("" if v is None else str(v)) for k, v in values.items()}


def start_smartup_sandbox(
    config: SmartupSandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> RunningSandbox:
    """Generate the tenant and serve it in a background thread; `.url` is SMARTUP_BASE_URL, `.app` the sandbox."""
    return RunningSandbox(SmartupSandbox(config), host=host, port=port).start()
