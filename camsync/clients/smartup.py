"""The SmartUp ERP export client: products, orders and prices.

Every export is a POST with a JSON body over HTTP Basic auth, with the context in the `project_code` and
`filial_id` headers. Answers carry no pagination: an `Export` reads one whole and hands out its items as the raw
JSON SmartUp sent, decoded only when needed. A 200 answer is not proof of success: an `{"error_code", "message"}`
object becomes a `SmartupApiError` whatever the status. Each call is counted against its daily budget class, and
the newest `limits` block of each class is kept for the sync to plan with.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from types import TracebackType
from typing import Any

import httpx
import msgspec

from camsync.clients.http import HttpService, RetryPolicy, build_client
from camsync.clients.smartup_answer import Answer, BodyReader, MalformedAnswer, head_text, parse_answer
from camsync.errors import ConfigError, UpstreamError, UsageError
from camsync.logs import get_logger, redact, register_secret
from camsync.settings import Settings

log = get_logger(__name__)

SERVICE = "SmartUp"
PRODUCTS_PATH = "/b/anor/mxsx/mr/inventory$export"
ORDERS_PATH = "/b/trade/txs/tdeal/order$export"
PRICES_PATH = "/b/anor/api/v2/mkf/product_price$export"
BUDGET_CODE = "A02-00-999"
EXCERPT_BYTES = 64 * 1024
EXCERPT_CHARS = 200
AUTH_HINT = (
    "Check SMARTUP_BASIC_USER and SMARTUP_BASIC_PASS, and SMARTUP_PROJECT_CODE and SMARTUP_FILIAL_ID "
    "(a wrong project_code or filial_id is also refused as an authorization error)"
)
FILIAL_HINT = "Check SMARTUP_FILIAL_CODE and SMARTUP_FILIAL_ID against the organisations of this SmartUp account"
_BUDGET_MESSAGE = re.compile(
    r"(?i)(limit|лимит).{0,60}(exhaust|exceed|spent|reached|over|исчерп|превыш|законч)"
    r"|(exhaust|exceed|spent|reached|исчерп|превыш|законч).{0,60}(limit|лимит)"
    r"|(call|request|запрос|обращен).{0,30}(limit|лимит)"
    r"|(daily|дневн|суточн).{0,30}(limit|лимит)"
)
_RANGE_MESSAGE = re.compile(r"(?i)range|диапазон|period|период|day_range")


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


class SmartupError(UpstreamError):
    """SmartUp answered with an error or could not be reached; `message` is SmartUp's own text when it sent one."""

    def __init__(
        self,
        reason: str,
        hint: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        message: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(reason, hint, service=SERVICE, status=status, code=code, retryable=retryable)
        self.message = message if message is not None else reason


class SmartupAuthError(SmartupError):
    """SmartUp refused the credentials or the context headers (HTTP 401/403)."""


class SmartupApiError(SmartupError):
    """SmartUp answered an `{"error_code", "message"}` object, even under HTTP 200."""


class SmartupBudgetError(SmartupApiError):
    """The daily call budget of a class is spent (an error answer, or HTTP 429 after every retry)."""


class SmartupResponseError(SmartupError):
    """The answer is not the document an export sends: malformed or cut JSON, no root key, a wrong shape."""


class Export:
    """One export call's answer, read whole and checked: its items as raw JSON, its `limits`, its status.

    The body is read at once (so an error answer or a broken connection surfaces when the export is called, and
    nothing of a broken answer is ever handed out) and the response closed. `raw_items()` gives each item as the
    exact bytes SmartUp sent (a `msgspec.Raw` view); iterating the export gives the items decoded.
    """

    def __init__(
        self,
        response: httpx.Response,
        *,
        name: str,
        root_key: str,
        budget_class: BudgetClass,
        on_limits: Callable[[BudgetClass, Limits], None] | None = None,
    ) -> None:
        self.name = name
        self.root_key = root_key
        self.budget_class = budget_class
        self.limits: Limits | None = None
        self._response = response
        self._on_limits = on_limits
        try:
            answer = self._read()
        finally:
            response.close()
        if answer.limits is not None:
            self.limits = Limits.from_raw(answer.limits)
            if on_limits is not None:
                on_limits(budget_class, self.limits)
        self._items = answer.items
        self.count = len(answer.items)
        self._check_complete(answer)

    def raw_items(self) -> list[msgspec.Raw]:
        """The items as the exact JSON bytes SmartUp sent (hashed and stored as they are)."""
        return self._items

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for raw in self._items:
            yield msgspec.json.decode(raw)

    def close(self) -> None:
        """Drop the items (the response is closed already)."""
        self._items = []

    def __enter__(self) -> Export:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _read(self) -> Answer:
        reader = BodyReader(self._response.iter_bytes())
        try:
            body = reader.read(_content_length(self._response))
        except MalformedAnswer as exc:
            raise self._malformed(exc, "") from None
        except httpx.HTTPError as exc:
            raise SmartupResponseError(
                f"SmartUp {self.name} export broke off after {reader.size} bytes: {_first_line(exc)}",
                "The connection failed while the answer was read (nothing of it was used); try again later",
                status=self._response.status_code,
                retryable=True,
            ) from None
        try:
            return parse_answer(body, self.root_key)
        except MalformedAnswer as exc:
            raise self._malformed(exc, head_text(body)) from None

    def _malformed(self, exc: MalformedAnswer, head: str) -> SmartupResponseError:
        came = f"; it began with: {_excerpt(head)}" if head.strip() else ""
        return SmartupResponseError(
            f"SmartUp {self.name} export sent a malformed answer: {exc}{came}",
            "SmartUp or a proxy in between sent something else than an export; try again later",
            status=self._response.status_code,
        )

    def _check_complete(self, answer: Answer) -> None:
        error = answer.error
        if _text(error.get("error_code")):
            raise api_error(
                self.name, self.budget_class, _text(error.get("error_code")), _text(error.get("message")), self.status
            )
        if not answer.root_seen:
            said = _text(error.get("message"))
            raise SmartupResponseError(
                f"SmartUp {self.name} export answered without the '{self.root_key}' key"
                + (f": {_excerpt(said)}" if said else ""),
                "Check the export URL setting: it may point at another endpoint",
                status=self.status,
            )
        log.info(
            "smartup_export",
            f"SmartUp {self.name}: {self.count} items",
            export=self.name,
            items=self.count,
            left=self.limits.left_limit_quant if self.limits else None,
        )

    @property
    def status(self) -> int:
        """The HTTP status of the answer."""
        return self._response.status_code


@dataclass(frozen=True)
class SmartupUrls:
    """The full URL of each export."""

    products: str
    orders: str
    prices: str

    @classmethod
    def from_settings(cls, settings: Settings) -> SmartupUrls:
        """The override URLs when set, else SMARTUP_BASE_URL (path prefix kept) plus each export's path."""
        overrides = (
            settings.smartup_inventory_export_url,
            settings.smartup_orders_export_url,
            settings.smartup_prices_export_url,
        )
        base = settings.smartup_base_url.strip().rstrip("/")
        if not base and not all(url.strip() for url in overrides):
            raise ConfigError(
                "SMARTUP_BASE_URL is not set",
                "Set it to the SmartUp address, with the tenant's path prefix if any (e.g. https://smartup.online)",
            )
        paths = (PRODUCTS_PATH, ORDERS_PATH, PRICES_PATH)
        products, orders, prices = (url.strip() or f"{base}{path}" for url, path in zip(overrides, paths, strict=True))
        return cls(products=products, orders=orders, prices=prices)


class SmartupClient(HttpService):
    """The SmartUp exports; `calls` and `last_limits` track the daily budgets per class."""

    service = SERVICE

    def __init__(
        self,
        client: httpx.Client,
        *,
        urls: SmartupUrls,
        filial_code: str = "",
        day_range_limit: int = 7,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(client, policy=policy, sleep=sleep)
        self.urls = urls
        self.filial_code = filial_code
        self.day_range_limit = day_range_limit
        self.calls: dict[BudgetClass, int] = {budget: 0 for budget in BudgetClass}
        self.last_limits: dict[BudgetClass, Limits] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> SmartupClient:
        """A client for the configured account; raises `ConfigError` when a needed setting is empty."""
        for env, value in (
            ("SMARTUP_BASIC_USER", settings.smartup_basic_user),
            ("SMARTUP_BASIC_PASS", settings.smartup_basic_pass),
        ):
            if not value:
                raise ConfigError(f"{env} is not set", "Set the SmartUp web login and password")
        register_secret(settings.smartup_basic_pass)
        urls = SmartupUrls.from_settings(settings)
        client = build_client(
            timeout=settings.timeout_seconds,
            verify=settings.verify_tls,
            auth=httpx.BasicAuth(settings.smartup_basic_user, settings.smartup_basic_pass),
            headers={"project_code": settings.smartup_project_code, "filial_id": settings.smartup_filial_id},
            transport=transport,
        )
        return cls(
            client,
            urls=urls,
            filial_code=settings.smartup_filial_code,
            day_range_limit=settings.smartup_day_range_limit,
            policy=policy,
            sleep=sleep,
        )

    def __enter__(self) -> SmartupClient:
        return self

    def export_products(
        self, *, begin_modified_on: date | None = None, end_modified_on: date | None = None, code: str = ""
    ) -> Export:
        """Products (`inventory`), optionally only those modified in a date range or with one code."""
        self._check_range(begin_modified_on, end_modified_on)
        body = {
            "code": code,
            "begin_created_on": "",
            "end_created_on": "",
            "begin_modified_on": smartup_date(begin_modified_on),
            "end_modified_on": smartup_date(end_modified_on),
        }
        return self._export("products", self.urls.products, body, "inventory", BudgetClass.REFERENCE)

    def export_orders(
        self,
        *,
        begin_modified_on: date | None = None,
        end_modified_on: date | None = None,
        deal_id: str = "",
        statuses: Sequence[str] = (),
        filial_code: str | None = None,
    ) -> Export:
        """Orders (`order`) modified in a date range; `filial_code` None means SMARTUP_FILIAL_CODE."""
        self._check_range(begin_modified_on, end_modified_on)
        filial = self.filial_code if filial_code is None else filial_code
        body: dict[str, Any] = {
            "filial_codes": [{"filial_code": filial}],
            "filial_code": filial,
            "external_id": "",
            "deal_id": deal_id,
            "begin_deal_date": "",
            "end_deal_date": "",
            "delivery_date": "",
            "begin_created_on": "",
            "end_created_on": "",
            "begin_modified_on": smartup_date(begin_modified_on),
            "end_modified_on": smartup_date(end_modified_on),
        }
        if statuses:
            body["statuses"] = list(statuses)
        return self._export("orders", self.urls.orders, body, "order", BudgetClass.DOCUMENTS)

    def export_prices(self) -> Export:
        """Prices of every product (`inventory` items with `price_type[{price_type_code, price}]`)."""
        return self._export("prices", self.urls.prices, {}, "inventory", BudgetClass.REFERENCE)

    def _export(self, name: str, url: str, body: dict[str, Any], root_key: str, budget_class: BudgetClass) -> Export:
        log.debug("smartup_call", f"SmartUp {name} export", export=name, budget=budget_class.value)
        sent_before = self.requests_made
        try:
            response = self.send("POST", url, json=body, stream=True)
        except UpstreamError as exc:
            raise _gave_up(exc, name, budget_class, self.policy.attempts) from None
        finally:
            self.calls[budget_class] += self.requests_made - sent_before
        if not response.is_success:
            raise _refusal(response, name, budget_class)
        try:
            return Export(
                response, name=name, root_key=root_key, budget_class=budget_class, on_limits=self._keep_limits
            )
        except BaseException:
            response.close()
            raise

    def _keep_limits(self, budget_class: BudgetClass, limits: Limits) -> None:
        self.last_limits[budget_class] = limits

    def _check_range(self, begin: date | None, end: date | None) -> None:
        if begin is None or end is None:
            return
        if end < begin:
            raise UsageError(f"the SmartUp date range ends ({end}) before it begins ({begin})")
        days = (end - begin).days + 1
        if days > self.day_range_limit:
            log.warning(
                "smartup_range",
                f"a {days}-day range is wider than the {self.day_range_limit}-day limit; SmartUp may answer empty",
                days=days,
                limit=self.day_range_limit,
            )


def smartup_date(value: date | None) -> str:
    """A date as SmartUp reads it (`dd.mm.yyyy`); None is the empty string (no filter)."""
    return value.strftime("%d.%m.%Y") if value is not None else ""


def is_budget_error(code: str, message: str) -> bool:
    """Whether an error answer says the daily call budget is spent."""
    if code == BUDGET_CODE:
        return True
    return bool(_BUDGET_MESSAGE.search(message)) and not _RANGE_MESSAGE.search(message)


def api_error(name: str, budget_class: BudgetClass, code: str, message: str, status: int | None) -> SmartupApiError:
    """The typed error of an `{"error_code", "message"}` answer."""
    reason = f"SmartUp {name} export failed: {code}" + (f" {_excerpt(message)}" if message else "")
    if is_budget_error(code, message):
        return SmartupBudgetError(
            reason, _budget_hint(budget_class), status=status, code=code, message=redact(message), retryable=False
        )
    return SmartupApiError(reason, _code_hint(code), status=status, code=code, message=redact(message))


def _budget_hint(budget_class: BudgetClass) -> str:
    return (
        f"The daily SmartUp call budget for {budget_class.value} exports is spent; it is shared with every "
        "user of the account. Wait for the next day, or sync less often (SMARTUP_*_INTERVAL_SECONDS)"
    )


def _code_hint(code: str) -> str:
    if code in ("A02-24-042", "A02-24-048", "A02-24-070"):
        return FILIAL_HINT
    return "See SmartUp's message; the request may need other filters or settings"


def _gave_up(exc: UpstreamError, name: str, budget_class: BudgetClass, attempts: int) -> SmartupError:
    if exc.status == 429:
        return SmartupBudgetError(
            f"SmartUp {name} export answered HTTP 429 (too many requests) {attempts} times",
            _budget_hint(budget_class),
            status=429,
        )
    return SmartupError(
        redact(f"{exc.reason} (gave up after {attempts} attempts)"), exc.hint, status=exc.status, retryable=True
    )


def _refusal(response: httpx.Response, name: str, budget_class: BudgetClass) -> SmartupError:
    status = response.status_code
    text = _read_excerpt(response)
    error = _error_object(text)
    if status in (401, 403):
        return SmartupAuthError(
            f"SmartUp refused the {name} export (HTTP {status})" + (f": {_excerpt(text)}" if text.strip() else ""),
            AUTH_HINT,
            status=status,
            code=error.get("error_code"),
            message=redact(error["message"]) if error else None,
        )
    if error.get("error_code"):
        return api_error(name, budget_class, error["error_code"], error.get("message", ""), status)
    return SmartupError(
        f"SmartUp {name} export answered HTTP {status}" + (f": {_excerpt(text)}" if text.strip() else ""),
        _status_hint(status),
        status=status,
        message=_excerpt(text) if text.strip() else None,
    )


def _status_hint(status: int) -> str:
    if status in (404, 405):
        return "Check SMARTUP_BASE_URL and the SMARTUP_*_EXPORT_URL settings"
    if 300 <= status < 400:
        return "SmartUp redirected the call; check SMARTUP_BASE_URL (https, tenant path prefix)"
    return "SmartUp refused the request; check the filters and SMARTUP_FILIAL_CODE"


def _read_excerpt(response: httpx.Response) -> str:
    """The start of a refusal's body as text; the response is closed."""
    data = b""
    try:
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) >= EXCERPT_BYTES:
                break
    except httpx.HTTPError:
        pass
    finally:
        response.close()
    return data[:EXCERPT_BYTES].decode(response.encoding or "utf-8", errors="replace")


def _error_object(text: str) -> dict[str, str]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(value, dict) or not _text(value.get("error_code")):
        return {}
    return {"error_code": _text(value.get("error_code")), "message": _text(value.get("message"))}


def _content_length(response: httpx.Response) -> int | None:
    """The announced length of a plain (not content-encoded) body, when there is one."""
    if response.headers.get("content-encoding", "identity").lower() != "identity":
        return None
    try:
        length = int(response.headers.get("content-length", ""))
    except ValueError:
        return None
    return length if length >= 0 else None


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _excerpt(text: str) -> str:
    """A short one-line excerpt of a message, with secrets removed."""
    flat = " ".join(redact(text).split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1] + "…"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact(text.splitlines()[0]) if text else type(exc).__name__
