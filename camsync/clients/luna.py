"""The LUNA OASYS client: LoadCredit work orders, their status, lookup by client reference, meter readouts.

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
from camsync.errors import UpstreamError
from camsync.logs import get_logger, redact, register_secret
from camsync.settings import Settings

log = get_logger(__name__)

SERVICE = "LUNA"
LOOKUP_DISABLED = "none"
DUPLICATE_CODE = "DUPLICATE_REFERENCE"
IN_PROGRESS_CODE = "WORK_ORDER_IN_PROGRESS"
_LIST_KEYS = ("data", "items", "WorkOrders", "workOrders", "work_orders", "results")
_FAILURE_KEYS = ("FailureReason", "failureReason", "failure_reason")

__all__ = [
    "LookupAmbiguous",
    "LookupUnavailable",
    "LunaAuthError",
    "LunaBusy",
    "LunaClient",
    "LunaError",
    "LunaRejected",
    "LunaResponseError",
    "LunaUrls",
    "OutcomeUnknown",
    "WorkOrder",
]


@dataclass(frozen=True)
class WorkOrder:
    """A work order as LUNA described it; `raw` is the whole answer (envelope included)."""

    id: str
    status: str | None
    failure_reason: str | None
    raw: dict[str, Any]
    reference: str | None = None
    siblings: tuple[WorkOrder, ...] = ()  # every work order LUNA holds for the reference, when more than one


class LunaError(UpstreamError):
    """LUNA answered with an error, or with something camsync cannot use."""

    def __init__(
        self,
        reason: str,
        hint: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(redact(reason), hint, service=SERVICE, status=status, code=code, retryable=retryable)


class LunaRejected(LunaError):
    """LUNA refused the work order (validation, unknown meter …): sending it again cannot succeed."""


class LunaBusy(LunaError):
    """Another work order runs on the same meter: send this one again later."""


class LunaAuthError(LunaError):
    """LUNA refused the credentials (401/403)."""


class LunaResponseError(LunaError):
    """A success answer that is not JSON, or carries no work-order id."""


class LookupUnavailable(LunaError):
    """Work orders cannot be looked up by client reference on this server."""


class LookupAmbiguous(LunaError):
    """A lookup answered work orders that do not carry the reference: whose they are is unknown."""


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


def json_amount(amount: Decimal) -> int | float:
    """The amount as a JSON number: 1500 for Decimal("1500.00"), 1500.5 for Decimal("1500.50")."""
    if not amount.is_finite():
        raise ValueError(f"amount {amount} is not a finite number")
    if amount == amount.to_integral_value():
        return int(amount)
    return float(amount)


class LunaClient(HttpService):
    """The LUNA OASYS REST API as camsync uses it."""

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
            "WorkOrderInputs": {self.amount_field: json_amount(amount), "Currency": currency},
            self.client_ref_field: txn_id,
        }

    def create_work_order(self, *, txn_id: str, meter: str, amount: Decimal, currency: str) -> WorkOrder:
        """Create a LoadCredit work order for one top-up, keyed by `txn_id` (sent as the Idempotency-Key).

        A duplicate reference answers the existing work order. Raises LunaRejected (never retry), LunaBusy
        (retry later), LunaAuthError, LunaResponseError, OutcomeUnknown (the create may have been committed)
        or UpstreamError(retryable=True) when LUNA could not be reached or stayed busy.
        """
        body = self.create_body(txn_id=txn_id, meter=meter, amount=amount, currency=currency)
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
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
            raise OutcomeUnknown(f"LUNA POST {_path(self.urls.create)} answered HTTP {status}", service=SERVICE)
        if status < 400:
            raise LunaError(
                f"LUNA POST {_path(self.urls.create)} answered HTTP {status} (a redirect)",
                "Check LUNA_BASE_URL and LUNA_CREATE_URL",
                status=status,
            )
        code, message = _error_of(response)
        if status == 409:
            if _is_duplicate(code, message):
                return self._existing(response, txn_id=txn_id, code=code)
            raise LunaBusy(
                f"LUNA is busy with another work order for meter {meter} (txn {txn_id}): "
                + _describe(status, code, message),
                "The top-up is sent again later",
                status=status,
                code=code or IN_PROGRESS_CODE,
                retryable=True,
            )
        self._raise_auth(status, code, message)
        if status in (404, 405) and not code:
            raise LunaError(
                f"LUNA POST {_path(self.urls.create)} answered HTTP {status} without an error code",
                "Check LUNA_BASE_URL and LUNA_CREATE_URL",
                status=status,
            )
        raise LunaRejected(
            f"LUNA rejected the work order of txn {txn_id}: " + _describe(status, code, message),
            "Fix the top-up in PAY+ or retry it once LUNA accepts it",
            status=status,
            code=code,
        )

    def _existing(self, response: httpx.Response, *, txn_id: str, code: str | None) -> WorkOrder:
        order = None
        for candidate in _error_layers(_json_or_none(response)):
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

    # --- reads -----------------------------------------------------------------------------------------------

    def get_work_order(self, work_order_id: str) -> WorkOrder:
        """The work order's current status; LunaError(status=404) when LUNA does not know it."""
        url = fill(self.urls.status, id=work_order_id)
        response = self.send("GET", url)
        if 200 <= response.status_code < 300:
            return self._work_order_from(response, what=f"work order {work_order_id}", fallback_id=work_order_id)
        code, message = _error_of(response)
        self._raise_auth(response.status_code, code, message)
        raise LunaError(
            f"LUNA GET work order {work_order_id}: " + _describe(response.status_code, code, message),
            "Check LUNA_STATUS_URL" if response.status_code == 404 and not code else None,
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
                f"LUNA has no lookup by client reference (HTTP {status} on {_path(self.urls.lookup)})",
                "Set LUNA_LOOKUP_URL to the right template, or to none",
                status=status,
            )
        if status != 200:
            code, message = _error_of(response)
            self._raise_auth(status, code, message)
            raise LunaError(
                f"LUNA lookup of txn {txn_id}: " + _describe(status, code, message), status=status, code=code
            )
        payload = _json(response, what=f"the lookup of txn {txn_id}")
        orders = [order for item in _items(payload) if (order := self._work_order(item, fallback_id=None))]
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
            code, message = _error_of(response)
            self._raise_auth(response.status_code, code, message)
            raise LunaError(
                f"LUNA last readout of meter {meter}: " + _describe(response.status_code, code, message),
                status=response.status_code,
                code=code,
            )
        payload = _json(response, what=f"the last readout of meter {meter}")
        if isinstance(payload, dict) and isinstance(payload.get("data"), dict):
            payload = payload["data"]
        if not isinstance(payload, dict):
            raise LunaResponseError(f"LUNA last readout of meter {meter} is not a JSON object")
        return payload

    # --- parsing ---------------------------------------------------------------------------------------------

    def _work_order_from(self, response: httpx.Response, *, what: str, fallback_id: str | None = None) -> WorkOrder:
        payload = _json(response, what=what)
        order = self._work_order(payload, fallback_id=fallback_id) if isinstance(payload, dict) else None
        if order is None:
            raise LunaResponseError(
                f"LUNA answered {what} without a work-order id: {_snippet(response.text)}",
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
        work_order_id = _first(layers, ("WorkOrderId", "id")) or fallback_id
        if work_order_id is None:
            return None
        return WorkOrder(
            id=str(work_order_id),
            status=_text(_first(layers, (self.status_field, "status"))),
            failure_reason=_text(_first(layers, _FAILURE_KEYS)),
            raw=payload,
            reference=_text(_first(layers, (self.client_ref_field,))),
        )

    @staticmethod
    def _raise_auth(status: int, code: str | None, message: str | None) -> None:
        if status in (401, 403):
            raise LunaAuthError(
                "LUNA refused the credentials: " + _describe(status, code, message),
                "Check LUNA_TOKEN, or LUNA_USERNAME and LUNA_PASSWORD",
                status=status,
                code=code,
            )


def _first(layers: tuple[dict[str, Any], ...], keys: tuple[str, ...]) -> Any:
    """The first non-empty value of `keys`, looking through each layer in turn (answer, then its envelope)."""
    for layer in layers:
        for key in keys:
            value = layer.get(key)
            if value not in (None, ""):
                return value
    return None


def _error_layers(payload: Any) -> list[dict[str, Any]]:
    """The objects of an error answer that may name the existing work order."""
    if not isinstance(payload, dict):
        return []
    error = payload.get("error")
    layers = [payload]
    if isinstance(error, dict):
        layers += [error] + [value for key in ("details", "data") if isinstance(value := error.get(key), dict)]
    return layers


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _items(payload: Any) -> list[Any]:
    """The work orders of a lookup answer: a list, a list under a known key, or one object."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for key in _LIST_KEYS:
            value = payload.get(key)
            if isinstance(value, list):
                return value
            if isinstance(value, dict) and key == "data":
                return _items(value)
        return [payload]
    return []


def _json(response: httpx.Response, *, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise LunaResponseError(
            f"LUNA answered {what} with malformed JSON (HTTP {response.status_code}): {_snippet(response.text)}",
            status=response.status_code,
        ) from None


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_of(response: httpx.Response) -> tuple[str | None, str | None]:
    """(code, message) of an error answer: {"error": {code, message}}, {code, message}, or plain text."""
    payload = _json_or_none(response)
    if isinstance(payload, dict):
        error = payload.get("error", payload)
        if isinstance(error, str):
            message = payload.get("message")
            return None, _snippet(str(message) if message else error)
        if isinstance(error, dict):
            code = error.get("code") or error.get("Code")
            message = error.get("message") or error.get("Message")
            return (_text(code), _snippet(str(message)) if message is not None else None)
    text = _snippet(response.text)
    return None, text or None


def _is_duplicate(code: str | None, message: str | None) -> bool:
    if code:
        return "DUPLICATE" in code.upper()
    return "duplicate" in (message or "").lower()


def _describe(status: int, code: str | None, message: str | None) -> str:
    return f"HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")


def _snippet(text: str) -> str:
    return redact(" ".join(text.split())[:200])


def _path(url: str) -> str:
    return httpx.URL(url).path or url
