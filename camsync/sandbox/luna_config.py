"""The switches and the voice of the LUNA OASYS simulator: statuses, modes, faults, its error answer, the config.

Rules taken from an upstream cite it: "spec" is /work/shared/specs/luna-oasys-api.md (the simulator contract).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

from camsync.errors import UsageError
from camsync.sandbox.server import Refusal, Reply, Request

WAITING, IN_PROGRESS, SUCCESSFUL = "Waiting", "InProgress", "Successful"
FAILED, CANCELLED, EXPIRED = "Failed", "Cancelled", "Expired"
STATUSES = (WAITING, IN_PROGRESS, SUCCESSFUL, FAILED, CANCELLED, EXPIRED)
TERMINAL = frozenset({SUCCESSFUL, FAILED, CANCELLED, EXPIRED})
AUTH_MODES = ("basic", "bearer", "none")
DUPLICATE_MODES = ("same", "409")
ROUTE_ERROR_MODES = ("html", "json")  # how a path or method the API does not serve is answered
AUTH_BODIES = ("json", "plain")  # how a 401 or 403 is answered
_LISTS = ("unknown_meters", "refused_amounts", "forbidden_tokens")  # tuple switches; a comma list is accepted
ENDPOINTS = ("create", "status", "lookup", "readout", "login", "other")
FAULTS = ("error", "rate_limit", "drop_after_commit", "malformed", "slow_poll")
FAULT_ENDPOINTS = {"drop_after_commit": ("create",), "slow_poll": ("status",)}  # the others strike anywhere
_RATES = (
    "failure_rate",
    "error_rate",
    "rate_limit_rate",
    "drop_after_commit_rate",
    "malformed_rate",
    "slow_poll_rate",
)
_DELAYS = ("latency", "waiting_seconds", "in_progress_seconds", "retry_after", "slow_poll_seconds")


class ApiError(Refusal):
    """The head-end's error answer: `{"error": {"code": …, "message": …, …}}` (spec: "errors as …")."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(Reply(status, {"error": {"code": code, "message": message, **extra}}))

    def with_headers(self, headers: dict[str, str]) -> ApiError:
        """The same answer with these headers too."""
        self.reply.headers.update(headers)
        return self


def json_object(request: Request, *, exact: bool = True) -> dict[str, Any]:
    """The body as a JSON object, else a VALIDATION error.

    With `exact`, numbers with a fraction or an exponent are read as `Decimal` (never a float), so `1250.5` is
    kept exactly and can be echoed as sent in `Result.CreditLoaded`; the control API reads plain floats.
    """
    parse_float = Decimal if exact else float
    try:
        body = json.loads(request.body.decode("utf-8"), parse_float=parse_float) if request.body.strip() else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "VALIDATION", "the body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "VALIDATION", "the body must be a JSON object")
    return body


_ENCODER = msgspec.json.Encoder(decimal_format="number")


def json_bytes(value: Any) -> bytes:
    """A JSON value as the head-end sends it: compact UTF-8, a `Decimal` written as the number it holds."""
    return _ENCODER.encode(value)


@dataclass(frozen=True)
class LunaSandboxConfig:
    """Every switch of the LUNA simulator; change them at runtime with `LunaSandbox.configure(**changes)`."""

    latency: float = 0.0  # seconds slept in the handler thread of every API request
    waiting_seconds: float = 1.0
    in_progress_seconds: float = 1.0
    failure_rate: float = 0.0  # share of work orders that end Failed instead of Successful
    failure_reason: str = "Meter did not acknowledge the credit"
    idempotency: bool = True  # a repeat of a client reference does not create another work order
    duplicate_mode: str = "same"  # "same": 200 with the existing work order; "409": DUPLICATE_REFERENCE
    lookup: bool = True  # GET /workorders?ClientReference=…
    lookup_off_status: int = 405  # what GET /workorders answers when lookup is off: 404 or 405
    envelope: bool = False  # wrap every success body as {"data": …}
    auth: str = "basic"  # basic | bearer | none
    username: str = "camsync"
    password: str = "sandbox-password"
    token: str = "sandbox-token"
    meter_conflicts: bool = False  # 409 WORK_ORDER_IN_PROGRESS while a load on the same meter is not terminal
    unknown_meters: tuple[str, ...] = ()  # answered 404 METER_NOT_FOUND (create and readout)
    refused_amounts: tuple[str, ...] = ()  # amounts a create refuses with 400 VALIDATION ("1500", "1250.5")
    amount_strings: bool = False  # accept a numeric string as the amount (the spec's body sends a number)
    route_errors: str = "html"  # html: unknown routes 404 and wrong methods 405 as a web server's page; json
    auth_body: str = "json"  # json: 401/403 as {"error": …}; plain: a text/plain line
    forbidden_tokens: tuple[str, ...] = ()  # bearer tokens that authenticate but have no rights: 403 FORBIDDEN
    amount_field: str = "CreditAmount"
    client_ref_field: str = "ClientReference"
    currency: str = "XAF"
    error_rate: float = 0.0  # 503 before anything is stored
    error_status: int = 503
    rate_limit_rate: float = 0.0  # 429 with Retry-After
    retry_after: float = 1.0
    drop_after_commit_rate: float = 0.0  # a create is stored, then the connection drops unanswered
    malformed_rate: float = 0.0  # a success answer's body is cut in half (invalid JSON)
    slow_poll_seconds: float = 0.0  # extra sleep of a status poll
    slow_poll_rate: float = 1.0  # share of status polls that are slow when slow_poll_seconds > 0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in _RATES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise UsageError(f"{name} must be between 0 and 1, not {value}")
        for name in _DELAYS:
            if getattr(self, name) < 0:
                raise UsageError(f"{name} must not be negative, not {getattr(self, name)}")
        if self.auth not in AUTH_MODES:
            raise UsageError(f"auth must be one of {', '.join(AUTH_MODES)}, not {self.auth!r}")
        if self.duplicate_mode not in DUPLICATE_MODES:
            raise UsageError(f"duplicate_mode must be one of {', '.join(DUPLICATE_MODES)}, not {self.duplicate_mode!r}")
        if self.route_errors not in ROUTE_ERROR_MODES:
            raise UsageError(f"route_errors must be one of {', '.join(ROUTE_ERROR_MODES)}, not {self.route_errors!r}")
        if self.auth_body not in AUTH_BODIES:
            raise UsageError(f"auth_body must be one of {', '.join(AUTH_BODIES)}, not {self.auth_body!r}")
        if self.lookup_off_status not in (404, 405):
            raise UsageError(f"lookup_off_status must be 404 or 405, not {self.lookup_off_status}")
        if not 500 <= self.error_status <= 599:
            raise UsageError(f"error_status must be a 5xx status, not {self.error_status}")
        for name in _LISTS:
            object.__setattr__(self, name, tuple(str(item) for item in getattr(self, name)))
        for text in self.refused_amounts:
            if not _is_number(text):
                raise UsageError(f"refused_amounts must hold numbers, not {text!r}")

    def changed(self, **changes: Any) -> LunaSandboxConfig:
        """A copy with some switches changed (names of the fields; a list switch may be a comma list)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(LunaSandboxConfig)})
        if unknown:
            raise UsageError(f"unknown sandbox settings: {', '.join(unknown)}")
        for name in _LISTS:
            if isinstance(changes.get(name), str):
                changes[name] = split_meters(changes[name])
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The switches as JSON-ready values, the password and token masked."""
        values = dataclasses.asdict(self)
        values.update({name: list(getattr(self, name)) for name in _LISTS})
        values.update(password="****", token="****", forbidden_tokens=["****"] * len(self.forbidden_tokens))
        return values

    def env_lines(self, base_url: str) -> list[str]:
        """The camsync environment lines that point the LUNA client at a sandbox serving on `base_url`."""
        lines = [f"LUNA_BASE_URL={base_url}"]
        if self.auth == "bearer":
            lines.append(f"LUNA_TOKEN={self.token}")
        elif self.auth == "basic":
            lines += [f"LUNA_USERNAME={self.username}", f"LUNA_PASSWORD={self.password}"]
        if not self.lookup:
            lines.append("LUNA_LOOKUP_URL=none")
        if self.amount_field != "CreditAmount":
            lines.append(f"LUNA_AMOUNT_FIELD={self.amount_field}")
        if self.client_ref_field != "ClientReference":
            lines.append(f"LUNA_CLIENT_REF_FIELD={self.client_ref_field}")
        return lines


def split_meters(text: str | Iterable[str]) -> tuple[str, ...]:
    """Meter numbers from a comma list (or any iterable), blanks dropped."""
    items = text.split(",") if isinstance(text, str) else text
    return tuple(item.strip() for item in items if item.strip())


def _is_number(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except ArithmeticError:
        return False
