"""The SmartUp ERP export client: products, orders, prices, product groups and stock (balance).

Every export is a POST with a JSON body over HTTP Basic auth, with the context in the `project_code` and
`filial_id` headers. Answers carry no pagination: an `Export` reads one whole and hands out its items as the raw
JSON SmartUp sent, decoded only when needed. A 200 answer is not proof of success: an `{"error_code", "message"}`
object becomes a `SmartupApiError` whatever the status (`smartup_errors`). Each call is counted against its daily
budget class (`smartup_limits`), and the newest `limits` block of each class is kept for the sync to plan with.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from types import TracebackType
from typing import Any

import httpx
import msgspec

from camsync.clients.http import HttpService, RetryPolicy, build_client
from camsync.clients.smartup_answer import Answer, BodyReader, MalformedAnswer, head_text, parse_answer
from camsync.clients.smartup_errors import (
    SERVICE,
    SmartupResponseError,
    api_error,
    excerpt,
    first_line,
    gave_up,
    refusal,
    text_of,
)
from camsync.clients.smartup_limits import BudgetClass, Limits
from camsync.errors import ConfigError, UpstreamError, UsageError
from camsync.logs import get_logger, register_secret
from camsync.settings import Settings

log = get_logger(__name__)

PRODUCTS_PATH = "/b/anor/mxsx/mr/inventory$export"
ORDERS_PATH = "/b/trade/txs/tdeal/order$export"
PRICES_PATH = "/b/anor/api/v2/mkf/product_price$export"
GROUPS_PATH = "/b/anor/mxsx/mr/product_group$export"
BALANCE_PATH = "/b/anor/mxsx/mkw/balance$export"


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
                f"SmartUp {self.name} export broke off after {reader.size} bytes: {first_line(exc)}",
                "The connection failed while the answer was read (nothing of it was used); try again later",
                status=self._response.status_code,
                retryable=True,
            ) from None
        try:
            return parse_answer(body, self.root_key)
        except MalformedAnswer as exc:
            raise self._malformed(exc, head_text(body)) from None

    def _malformed(self, exc: MalformedAnswer, head: str) -> SmartupResponseError:
        came = f"; it began with: {excerpt(head)}" if head.strip() else ""
        return SmartupResponseError(
            f"SmartUp {self.name} export sent a malformed answer: {exc}{came}",
            "SmartUp or a proxy in between sent something else than an export; try again later",
            status=self._response.status_code,
        )

    def _check_complete(self, answer: Answer) -> None:
        error = answer.error
        if text_of(error.get("error_code")):
            raise api_error(
                self.name,
                self.budget_class,
                text_of(error.get("error_code")),
                text_of(error.get("message")),
                self.status,
            )
        if not answer.root_seen:
            said = text_of(error.get("message"))
            raise SmartupResponseError(
                f"SmartUp {self.name} export answered without the '{self.root_key}' key"
                + (f": {excerpt(said)}" if said else ""),
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
    groups: str
    balance: str

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
        # groups and stock: checked when called, so a setup of overrides alone keeps working for the others
        groups = settings.smartup_groups_export_url.strip() or (f"{base}{GROUPS_PATH}" if base else "")
        balance = settings.smartup_balance_export_url.strip() or (f"{base}{BALANCE_PATH}" if base else "")
        return cls(products=products, orders=orders, prices=prices, groups=groups, balance=balance)


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

    def export_groups(self) -> Export:
        """Product groups (`product_group`): each classification with its values (`product_group_types`)."""
        _require(self.urls.groups, "SMARTUP_GROUPS_EXPORT_URL")
        return self._export("product groups", self.urls.groups, {}, "product_group", BudgetClass.REFERENCE)

    def export_balance(self, *, begin_date: date, end_date: date) -> Export:
        """Stock (`balance`): one item per batch per warehouse, as of `end_date`."""
        _require(self.urls.balance, "SMARTUP_BALANCE_EXPORT_URL")
        body = {"begin_date": smartup_date(begin_date), "end_date": smartup_date(end_date)}
        return self._export("balance", self.urls.balance, body, "balance", BudgetClass.DOCUMENTS)

    def _export(self, name: str, url: str, body: dict[str, Any], root_key: str, budget_class: BudgetClass) -> Export:
        log.debug("smartup_call", f"SmartUp {name} export", export=name, budget=budget_class.value)
        sent_before = self.requests_made
        try:
            response = self.send("POST", url, json=body, stream=True)
        except UpstreamError as exc:
            raise gave_up(exc, name, budget_class, self.policy.attempts) from None
        finally:
            self.calls[budget_class] += self.requests_made - sent_before
        if not response.is_success:
            raise refusal(response, name, budget_class)
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


def _require(url: str, setting: str) -> None:
    if not url:
        raise ConfigError(f"{setting} is not set (nor SMARTUP_BASE_URL)", f"Set {setting} or SMARTUP_BASE_URL")


def smartup_date(value: date | None) -> str:
    """A date as SmartUp reads it (`dd.mm.yyyy`); None is the empty string (no filter)."""
    return value.strftime("%d.%m.%Y") if value is not None else ""


def _content_length(response: httpx.Response) -> int | None:
    """The announced length of a plain (not content-encoded) body, when there is one."""
    if response.headers.get("content-encoding", "identity").lower() != "identity":
        return None
    try:
        length = int(response.headers.get("content-length", ""))
    except ValueError:
        return None
    return length if length >= 0 else None
