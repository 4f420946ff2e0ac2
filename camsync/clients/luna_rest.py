"""The LUNA OASYS REST client (a `LunaTarget`): LoadCredit work orders, their status, lookup by client
reference, meter readouts.

Every endpoint and field name is configurable exactly as in the agent camsync replaces (`LUNA_*_URL`
templates, `LUNA_AMOUNT_FIELD`, `LUNA_CLIENT_REF_FIELD`, `LUNA_STATUS_FIELD`). Answers are parsed tolerantly
(optional `{"data": …}` envelope, several id and status spellings). A create is never repeated blindly: only
failures that prove the request never left are retried, and a lost answer is an `OutcomeUnknown`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from camsync.clients.http import HttpService, OutcomeUnknown, RetryPolicy, build_client
from camsync.clients.luna_rest_answers import (
    describe,
    error_layers,
    error_of,
    first_value,
    is_duplicate,
    items_of,
    json_body,
    json_or_none,
    path_of,
    snippet,
    text_of,
)
from camsync.clients.luna_target import (
    SERVICE,
    LookupAmbiguous,
    LookupUnavailable,
    LunaAuthError,
    LunaBusy,
    LunaEndpointError,
    LunaError,
    LunaRejected,
    LunaResponseError,
    WorkOrder,
)
from camsync.errors import EndpointError, UpstreamError
from camsync.logs import get_logger, redact, register_secret
from camsync.settings import Settings

log = get_logger("camsync.clients.luna")

LOOKUP_DISABLED = "none"
DUPLICATE_CODE = "DUPLICATE_REFERENCE"
IN_PROGRESS_CODE = "WORK_ORDER_IN_PROGRESS"
_FAILURE_KEYS = ("FailureReason", "failureReason", "failure_reason")
URL_HINT = "Check LUNA_BASE_URL (and LUNA_CREATE_URL, LUNA_STATUS_URL, LUNA_LOOKUP_URL if set)"
# error codes a server gives any unknown path: a 404 carrying one is about the URL, not about the txn
GENERIC_CODES = frozenset({"NOT_FOUND", "ROUTE_NOT_FOUND", "NO_ROUTE", "METHOD_NOT_ALLOWED", "404", "HTTP_404"})
# statuses that only ever speak of the endpoint (a method, a media type, a route that is gone)
ENDPOINT_STATUSES = frozenset({405, 406, 410, 415, 501})


def about_the_endpoint(status: int, code: str | None) -> bool:
    """Whether an error answer speaks of the URL rather than of the txn: 404 without one of LUNA's own codes
    (an HTML page, `NOT_FOUND` …), or a status that never concerns one work order."""
    if status in ENDPOINT_STATUSES:
        return True
    return status == 404 and (not code or code.strip().upper() in GENERIC_CODES)


@dataclass(frozen=True)
class LunaUrls:
    """The endpoint templates, with the base URL already applied; `lookup` is None when disabled."""

    create: str
    status: str
    lastread: str
    lookup: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> LunaUrls:
        """The templates of `LUNA_*_URL`, or their defaults under `LUNA_BASE_URL`."""
        base = settings.luna_base_url.strip().rstrip("/")
        lookup = settings.luna_lookup_url.strip()
        return cls(
            create=_template(settings.luna_create_url, base, "{base}/workorders"),
            status=_template(settings.luna_status_url, base, "{base}/workorders/{id}"),
            lastread=_template(settings.luna_lastread_url, base, "{base}/meters/{meter}/lastreadout"),
            lookup=None
            if lookup.lower() == LOOKUP_DISABLED
            else _template(lookup, base, "{base}/workorders?ClientReference={ref}"),
        )


def _template(value: str, base: str, default: str) -> str:
    template = value.strip() or default
    template = template.replace("{LUNA_BASE_URL}", base).replace("{base}", base)
    if "://" not in template:  # a bare path is taken relative to LUNA_BASE_URL
        template = f"{base}/{template.lstrip('/')}"
    return template


def fill(template: str, **values: str) -> str:
    """The URL for `template` with each `{name}` replaced by its URL-encoded value."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", quote(str(value), safe=""))
    return template


def json_amount(amount: Decimal) -> str:
    """The amount as the text of a JSON number, exactly as written: "1500" for Decimal("1500.00"), "1250.5" for
    Decimal("1250.50"), "12345678901234567.89" with every digit (a float would round it)."""
    if not amount.is_finite():
        raise ValueError(f"amount {amount} is not a finite number")
    text = f"{amount.normalize():f}"
    return text if text != "-0" else "0"


class _Number(str):
    """A JSON number already written as text: `json_body` puts it in the body unquoted."""


def json_body_bytes(body: dict[str, Any]) -> bytes:
    """The body as compact UTF-8 JSON, each `_Number` written as the number it spells (no float on the way)."""
    numbers: dict[str, str] = {}

    def mark(value: Any) -> Any:
        if isinstance(value, _Number):
            token = f"\u0000number{len(numbers)}\u0000"
            numbers[json.dumps(token)] = str(value)
            return token
        if isinstance(value, dict):
            return {key: mark(item) for key, item in value.items()}
        return value

    text = json.dumps(mark(body), ensure_ascii=False, separators=(",", ":"))
    for quoted, number in numbers.items():
        text = text.replace(quoted, number, 1)
    return text.encode("utf-8")


class LunaClient(HttpService):
    """The LUNA OASYS REST API as camsync uses it: a `LunaTarget` over HTTP, plus meter readouts."""

    service = SERVICE

    def __init__(
        self,
        client: httpx.Client,
        *,
        urls: LunaUrls,
        amount_field: str = "CreditAmount",
        client_ref_field: str = "ClientReference",
        status_field: str = "Status",
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(client, policy=policy, sleep=sleep)
        self.urls = urls
        self.amount_field = amount_field
        self.client_ref_field = client_ref_field
        self.status_field = status_field

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_connections: int | None = None,
    ) -> LunaClient:
        """A client configured by the `LUNA_*`, `VERIFY_TLS` and `TIMEOUT_SECONDS` settings."""
        settings.require("luna")
        register_secret(settings.luna_token)
        register_secret(settings.luna_password)
        headers: dict[str, str] = {"Accept": "application/json"}
        auth: httpx.Auth | None = None
        if settings.luna_token:
            headers["Authorization"] = f"Bearer {settings.luna_token}"
        elif settings.luna_username:
            auth = httpx.BasicAuth(settings.luna_username, settings.luna_password)
        client = build_client(
            timeout=settings.timeout_seconds,
            verify=settings.verify_tls,
            auth=auth,
            headers=headers,
            transport=transport,
            max_connections=max_connections or max(20, settings.luna_concurrency * 2),
        )
        return cls(
            client,
            urls=LunaUrls.from_settings(settings),
            amount_field=settings.luna_amount_field,
            client_ref_field=settings.luna_client_ref_field,
            status_field=settings.luna_status_field,
            policy=policy,
            sleep=sleep,
        )

    def send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """`HttpService.send`, with any secret an answer echoed removed from the error raised."""
        try:
            return super().send(method, url, **kwargs)
        except OutcomeUnknown as exc:
            raise OutcomeUnknown(redact(exc.reason), service=SERVICE) from None
        except EndpointError as exc:
            hint = "Check VERIFY_TLS and the server's certificate" if "TLS" in exc.reason else URL_HINT
            raise LunaEndpointError(exc.reason, hint) from None
        except UpstreamError as exc:
            raise UpstreamError(
                redact(exc.reason), exc.hint, service=SERVICE, status=exc.status, code=exc.code, retryable=exc.retryable
            ) from None

    @property
    def lookup_available(self) -> bool:
        """False when `LUNA_LOOKUP_URL=none`: unknown outcomes cannot be settled by asking LUNA."""
        return self.urls.lookup is not None

    # --- create ----------------------------------------------------------------------------------------------

    def create_body(self, *, txn_id: str, meter: str, amount: Decimal, currency: str) -> dict[str, Any]:
        """The LoadCredit body, exactly as the old agent sent it."""
        return {
            "WorkOrderType": "LoadCredit",
            "MeterNumber": meter,
            "WorkOrderInputs": {self.amount_field: _Number(json_amount(amount)), "Currency": currency},
            self.client_ref_field: txn_id,
        }

    def create_work_order(self, *, txn_id: str, meter: str, amount: Decimal, currency: str) -> WorkOrder:
        """Create a LoadCredit work order for one top-up, keyed by `txn_id` (sent as the Idempotency-Key).

        A duplicate reference answers the existing work order. Raises LunaRejected (never retry), LunaBusy
        (retry later), LunaAuthError, LunaResponseError, OutcomeUnknown (the create may have been committed)
        or UpstreamError(retryable=True) when LUNA could not be reached or stayed busy.
        """
        body = self.create_body(txn_id=txn_id, meter=meter, amount=amount, currency=currency)
        content = json_body_bytes(body)
        headers = {"Idempotency-Key": txn_id, "Content-Type": "application/json"}
        try:
            response = self.send("POST", self.urls.create, retry_unsent_only=True, content=content, headers=headers)
        except UpstreamError as exc:
            if exc.status is not None and exc.status >= 500:  # a gateway may have passed the create on
                raise OutcomeUnknown(redact(exc.reason), service=SERVICE) from None
            raise
        status = response.status_code
        if 200 <= status < 300:
            return self._work_order_from(response, what=f"the create of txn {txn_id}")
        if status >= 500 or status == 408:  # 408: the server gave up on a request it may have begun
            raise OutcomeUnknown(f"LUNA POST {path_of(self.urls.create)} answered HTTP {status}", service=SERVICE)
        if status < 400:
            raise LunaEndpointError(
                f"LUNA POST {path_of(self.urls.create)} answered HTTP {status} (a redirect): nothing was created",
                "Check LUNA_BASE_URL and LUNA_CREATE_URL (https://, the right host and path)",
                status=status,
            )
        code, message = error_of(response)
        if status == 409:
            if is_duplicate(code, message):
                return self._existing(response, txn_id=txn_id, code=code)
            raise LunaBusy(
                f"LUNA is busy with another work order for meter {meter} (txn {txn_id}): "
                + describe(status, code, message),
                "The top-up is sent again later",
                status=status,
                code=code or IN_PROGRESS_CODE,
                retryable=True,
            )
        self._raise_auth(status, code, message)
        if about_the_endpoint(status, code):
            raise LunaEndpointError(
                f"LUNA POST {path_of(self.urls.create)} answered "
                + describe(status, code, message)
                + ": no such route, nothing was created",
                "Check LUNA_BASE_URL and LUNA_CREATE_URL",
                status=status,
                code=code,
            )
        raise LunaRejected(
            f"LUNA rejected the work order of txn {txn_id}: " + describe(status, code, message),
            "Fix the top-up in PAY+ or retry it once LUNA accepts it",
            status=status,
            code=code,
        )

    def _existing(self, response: httpx.Response, *, txn_id: str, code: str | None) -> WorkOrder:
        order = None
        for candidate in error_layers(json_or_none(response)):
            order = order or self._work_order(candidate, fallback_id=None)
        if order is not None:
            log.info("luna_duplicate", "work order already exists", txn=txn_id, work_order=order.id)
            return order
        if not self.lookup_available:
            raise LookupUnavailable(
                f"LUNA already has a work order for txn {txn_id} but did not say which one, and LUNA_LOOKUP_URL=none",
                "Find the work order in LUNA and record it by hand",
                status=409,
                code=code or DUPLICATE_CODE,
            )
        found = self.lookup(txn_id)
        if not found:
            raise LunaResponseError(
                f"LUNA answered {DUPLICATE_CODE} for txn {txn_id} but a lookup finds no work order",
                "Find the work order in LUNA and record it by hand",
                status=409,
                code=code or DUPLICATE_CODE,
            )
        return replace(found[0], siblings=tuple(found)) if len(found) > 1 else found[0]

    def probe_create_route(self) -> str:
        """Whether the create URL is a route of this server, without creating anything: a GET of it (the work-
        order collection). Any answer but "no such route" proves the route; LunaEndpointError when it is not."""
        response = self.send("GET", self.urls.create)
        status = response.status_code
        code, message = error_of(response)
        self._raise_auth(status, code, message)
        if (status == 404 and about_the_endpoint(status, code)) or 300 <= status < 400:
            raise LunaEndpointError(
                f"LUNA GET {path_of(self.urls.create)} answered "
                + describe(status, code, message)
                + ": no such route, so a create would fail",
                "Check LUNA_BASE_URL (its path) and LUNA_CREATE_URL",
                status=status,
                code=code,
            )
        allowed = response.headers.get("Allow", "")
        return f"HTTP {status}" + (f" (Allow: {allowed})" if allowed else "")

    # --- reads -----------------------------------------------------------------------------------------------

    def get_work_order(self, work_order_id: str) -> WorkOrder:
        """The work order's current status; LunaError(status=404) when LUNA does not know it."""
        url = fill(self.urls.status, id=work_order_id)
        response = self.send("GET", url)
        if 200 <= response.status_code < 300:
            return self._work_order_from(response, what=f"work order {work_order_id}", fallback_id=work_order_id)
        code, message = error_of(response)
        self._raise_auth(response.status_code, code, message)
        if about_the_endpoint(response.status_code, code) or 300 <= response.status_code < 400:
            raise LunaEndpointError(
                f"LUNA GET work order {work_order_id} ({path_of(url)}): "
                + describe(response.status_code, code, message)
                + ": no such route",
                "Check LUNA_BASE_URL and LUNA_STATUS_URL",
                status=response.status_code,
                code=code,
            )
        raise LunaError(
            f"LUNA GET work order {work_order_id}: " + describe(response.status_code, code, message),
            status=response.status_code,
            code=code,
        )

    def lookup(self, txn_id: str) -> list[WorkOrder]:
        """The work orders carrying client reference `txn_id` (empty when none); raises LookupUnavailable, or
        LookupAmbiguous when LUNA answers work orders that do not name their reference."""
        if self.urls.lookup is None:
            raise LookupUnavailable(
                "LUNA lookup by client reference is off (LUNA_LOOKUP_URL=none)",
                "Unknown outcomes are held for an operator",
            )
        response = self.send("GET", fill(self.urls.lookup, ref=txn_id))
        status = response.status_code
        if status in (404, 405, 501):
            raise LookupUnavailable(
                f"LUNA has no lookup by client reference (HTTP {status} on {path_of(self.urls.lookup)})",
                "Set LUNA_LOOKUP_URL to the right template, or to none",
                status=status,
            )
        if status != 200:
            code, message = error_of(response)
            self._raise_auth(status, code, message)
            raise LunaError(
                f"LUNA lookup of txn {txn_id}: " + describe(status, code, message), status=status, code=code
            )
        payload = json_body(response, what=f"the lookup of txn {txn_id}")
        orders = [order for item in items_of(payload) if (order := self._work_order(item, fallback_id=None))]
        unnamed = [order.id for order in orders if order.reference is None]
        if unnamed:
            raise LookupAmbiguous(
                f"LUNA lookup of txn {txn_id} answered work orders without the {self.client_ref_field} field "
                f"({', '.join(unnamed[:5])}): whose they are is unknown",
                "Check LUNA_LOOKUP_URL and LUNA_CLIENT_REF_FIELD; the txn is held for an operator",
                status=status,
            )
        return [order for order in orders if order.reference == txn_id]

    def last_readout(self, meter: str) -> dict[str, Any]:
        """The meter's last readout (MeterNumber, ReadoutTime, Credit, Consumption, ValveStatus …)."""
        response = self.send("GET", fill(self.urls.lastread, meter=meter))
        if response.status_code != 200:
            code, message = error_of(response)
            self._raise_auth(response.status_code, code, message)
            raise LunaError(
                f"LUNA last readout of meter {meter}: " + describe(response.status_code, code, message),
                status=response.status_code,
                code=code,
            )
        payload = json_body(response, what=f"the last readout of meter {meter}")
        if isinstance(payload, dict) and isinstance(payload.get("data"), dict):
            payload = payload["data"]
        if not isinstance(payload, dict):
            raise LunaResponseError(f"LUNA last readout of meter {meter} is not a JSON object")
        return payload

    # --- parsing ---------------------------------------------------------------------------------------------

    def _work_order_from(self, response: httpx.Response, *, what: str, fallback_id: str | None = None) -> WorkOrder:
        payload = json_body(response, what=what)
        order = self._work_order(payload, fallback_id=fallback_id) if isinstance(payload, dict) else None
        if order is None:
            raise LunaResponseError(
                f"LUNA answered {what} without a work-order id: {snippet(response.text)}",
                "Check LUNA_CREATE_URL and the work-order id field",
                status=response.status_code,
            )
        return order

    def _work_order(self, payload: Any, *, fallback_id: str | None) -> WorkOrder | None:
        """A WorkOrder from an answer object (enveloped or not), or None when it names no id."""
        if not isinstance(payload, dict):
            return None
        data = payload.get("data")
        layers: tuple[dict[str, Any], ...] = (payload, data) if isinstance(data, dict) else (payload,)
        work_order_id = first_value(layers, ("WorkOrderId", "id")) or fallback_id
        if work_order_id is None:
            return None
        return WorkOrder(
            id=str(work_order_id),
            status=text_of(first_value(layers, (self.status_field, "status"))),
            failure_reason=text_of(first_value(layers, _FAILURE_KEYS)),
            raw=payload,
            reference=text_of(first_value(layers, (self.client_ref_field,))),
        )

    @staticmethod
    def _raise_auth(status: int, code: str | None, message: str | None) -> None:
        if status in (401, 403):
            raise LunaAuthError(
                "LUNA refused the credentials: " + describe(status, code, message),
                "Check LUNA_TOKEN, or LUNA_USERNAME and LUNA_PASSWORD",
                status=status,
                code=code,
            )
