"""A local simulator of the LUNA OASYS head-end: LoadCredit work orders, their statuses, meter readouts, faults.

Statuses are computed from each work order's creation time and the configured delays on an injectable clock
(no background thread): `Waiting` for `waiting_seconds`, `InProgress` for `in_progress_seconds`, then
`Successful`, or `Failed` for a seeded share `failure_rate`. Faults are probabilities drawn from a seeded RNG,
plus "next N" counters (`fail_next`) for exact tests. `/_sandbox/*` inspects and controls the simulator without
auth; the same operations are methods of `LunaSandbox`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from camsync.errors import NotFoundError, UsageError
from camsync.sandbox.server import Reply, Request, RunningSandbox, SandboxApp

WAITING, IN_PROGRESS, SUCCESSFUL = "Waiting", "InProgress", "Successful"
FAILED, CANCELLED, EXPIRED = "Failed", "Cancelled", "Expired"
STATUSES = (WAITING, IN_PROGRESS, SUCCESSFUL, FAILED, CANCELLED, EXPIRED)
TERMINAL = frozenset({SUCCESSFUL, FAILED, CANCELLED, EXPIRED})
AUTH_MODES = ("basic", "bearer", "none")
DUPLICATE_MODES = ("same", "409")
ENDPOINTS = ("create", "status", "lookup", "readout", "login", "other")
FAULTS = ("error", "rate_limit", "drop_after_commit", "malformed", "slow_poll")
_FAULT_ENDPOINTS = {"drop_after_commit": ("create",), "slow_poll": ("status",)}
_RATES = (
    "failure_rate",
    "error_rate",
    "rate_limit_rate",
    "drop_after_commit_rate",
    "malformed_rate",
    "slow_poll_rate",
)
_DELAYS = ("latency", "waiting_seconds", "in_progress_seconds", "retry_after", "slow_poll_seconds")


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
    unknown_meters: tuple[str, ...] = ()  # answered 404 METER_NOT_FOUND
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
        if self.lookup_off_status not in (404, 405):
            raise UsageError(f"lookup_off_status must be 404 or 405, not {self.lookup_off_status}")
        if not 500 <= self.error_status <= 599:
            raise UsageError(f"error_status must be a 5xx status, not {self.error_status}")
        object.__setattr__(self, "unknown_meters", tuple(self.unknown_meters))

    def as_dict(self) -> dict[str, Any]:
        """The switches as JSON-ready values, the password and token masked."""
        values = dataclasses.asdict(self)
        values["unknown_meters"] = list(self.unknown_meters)
        values.update(password="****", token="****")
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


@dataclass
class WorkOrder:
    """One stored LoadCredit work order; its status is computed on read."""

    id: str
    meter: str
    reference: str | None
    amount: int | float
    currency: str
    created_at: float
    waiting_seconds: float
    in_progress_seconds: float
    will_fail: bool
    forced_status: str | None = None
    forced_at: float | None = None
    forced_reason: str | None = None

    def status_at(self, now: float) -> tuple[str, float]:
        """The status at `now` and when it began."""
        if self.forced_status is not None and self.forced_at is not None:
            return self.forced_status, self.forced_at
        started = self.created_at + self.waiting_seconds
        finished = started + self.in_progress_seconds
        if now < started:
            return WAITING, self.created_at
        if now < finished:
            return IN_PROGRESS, started
        return (FAILED if self.will_fail else SUCCESSFUL), finished


class _ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.reply = Reply(status, {"error": {"code": code, "message": message, **extra}})

    def with_header(self, name: str, value: str) -> _ApiError:
        self.reply.headers[name] = value
        return self


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_amount(value: Any) -> int | float:
    """A positive finite number (a numeric string is accepted), else a VALIDATION error."""
    if isinstance(value, bool) or value is None:
        raise _ApiError(400, "VALIDATION", "the credit amount is missing or not a number")
    try:
        amount = Decimal(str(value).strip()) if isinstance(value, str | int | float) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise _ApiError(400, "VALIDATION", "the credit amount is not a number")
    if amount <= 0:
        raise _ApiError(400, "VALIDATION", "the credit amount must be positive")
    return int(amount) if amount == amount.to_integral_value() else float(amount)


class LunaSandbox(SandboxApp):
    """The LUNA OASYS simulator: serve it with `RunningSandbox(sandbox)` or `start_luna_sandbox(config)`."""

    def __init__(
        self,
        config: LunaSandboxConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config or LunaSandboxConfig()
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._rng = random.Random(self.config.seed)
        self._reset_state()

    # --- inspection and control ------------------------------------------------------------------------

    def _reset_state(self) -> None:
        self._orders: dict[str, WorkOrder] = {}
        self._by_reference: dict[str, list[str]] = {}
        self._by_meter: dict[str, list[str]] = {}
        self._next_id = 1
        self._requests = dict.fromkeys(ENDPOINTS, 0)
        self._faults = dict.fromkeys(FAULTS, 0)
        self._replays = 0
        self._pending: dict[tuple[str, str | None], int] = {}
        self._tokens: set[str] = set()

    def reset(self) -> None:
        """Forget every work order, counter, pending fault and issued token; keep the configuration."""
        with self._lock:
            self._reset_state()
            self._rng = random.Random(self.config.seed)

    def configure(self, **changes: Any) -> LunaSandboxConfig:
        """Change switches at runtime (names of `LunaSandboxConfig` fields); returns the new configuration."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(LunaSandboxConfig)})
        if unknown:
            raise UsageError(f"unknown sandbox settings: {', '.join(unknown)}")
        if isinstance(changes.get("unknown_meters"), str):
            changes["unknown_meters"] = split_meters(changes["unknown_meters"])
        with self._lock:
            self.config = dataclasses.replace(self.config, **changes)
            if "seed" in changes:
                self._rng = random.Random(self.config.seed)
            return self.config

    def fail_next(self, fault: str, count: int = 1, *, endpoint: str | None = None) -> None:
        """Make the next `count` eligible requests (of `endpoint`, or any) suffer `fault`, whatever the rates."""
        if fault not in FAULTS:
            raise UsageError(f"fault must be one of {', '.join(FAULTS)}, not {fault!r}")
        if endpoint is not None and endpoint not in ENDPOINTS:
            raise UsageError(f"endpoint must be one of {', '.join(ENDPOINTS)}, not {endpoint!r}")
        if count < 0:
            raise UsageError(f"count must not be negative, not {count}")
        with self._lock:
            self._pending[(fault, endpoint)] = count

    def set_status(self, work_order_id: str, status: str, *, reason: str | None = None) -> dict[str, Any]:
        """Force a work order's status from now on (e.g. Cancelled or Expired); returns its view."""
        if status not in STATUSES:
            raise UsageError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        with self._lock:
            order = self._orders.get(work_order_id)
            if order is None:
                raise NotFoundError(f"no work order {work_order_id}")
            order.forced_status, order.forced_at = status, self.clock()
            order.forced_reason = reason
            return self._view(order)

    def work_order(self, work_order_id: str) -> dict[str, Any] | None:
        """The status view of one work order, or None."""
        with self._lock:
            order = self._orders.get(work_order_id)
            return self._view(order) if order else None

    def work_orders(self, reference: str | None = None) -> list[dict[str, Any]]:
        """The status views of every work order, or of those carrying `reference`, oldest first."""
        with self._lock:
            ids = self._orders if reference is None else self._by_reference.get(reference, [])
            return [self._view(self._orders[i]) for i in ids]

    def stats(self) -> dict[str, Any]:
        """Counts for tests: work orders in all and per reference, duplicated references, requests, faults."""
        with self._lock:
            by_reference = {ref: len(ids) for ref, ids in self._by_reference.items()}
            now = self.clock()
            by_status = dict.fromkeys(STATUSES, 0)
            for order in self._orders.values():
                by_status[order.status_at(now)[0]] += 1
            return {
                "work_orders": len(self._orders),
                "by_reference": by_reference,
                "duplicates": sorted(ref for ref, count in by_reference.items() if count > 1),
                "by_status": by_status,
                "requests": dict(self._requests),
                "faults": dict(self._faults),
                "replays": self._replays,
            }

    # --- HTTP --------------------------------------------------------------------------------------------

    def route(self, request: Request) -> Reply:
        """Answer one HTTP request."""
        path = request.path.rstrip("/") or "/"
        if path.startswith("/_sandbox/"):
            return self._control(request, path)
        endpoint = self._endpoint(request.method, path)
        with self._lock:
            self._requests[endpoint] += 1
            latency = self.config.latency
        if latency:
            self.sleep(latency)
        try:
            return self._serve(request, path, endpoint)
        except _ApiError as exc:
            return exc.reply

    @staticmethod
    def _endpoint(method: str, path: str) -> str:
        parts = path.strip("/").split("/")
        if parts == ["workorders"]:
            return {"POST": "create", "GET": "lookup"}.get(method, "other")
        if len(parts) == 2 and parts[0] == "workorders" and method == "GET":
            return "status"
        if len(parts) == 3 and parts[0] == "meters" and parts[2] == "lastreadout" and method == "GET":
            return "readout"
        if parts == ["auth", "login"] and method == "POST":
            return "login"
        return "other"

    def _serve(self, request: Request, path: str, endpoint: str) -> Reply:
        if endpoint == "other":
            return self._unrouted(request.method, path)
        if endpoint != "login":
            self._authorize(request)
        self._inject_request_faults(endpoint)
        handlers: dict[str, Callable[[Request, str], Reply]] = {
            "create": self._create,
            "status": self._status,
            "lookup": self._lookup,
            "readout": self._readout,
            "login": self._login,
        }
        reply = handlers[endpoint](request, path)
        return self._finish(reply, endpoint)

    @staticmethod
    def _unrouted(method: str, path: str) -> Reply:
        parts = path.strip("/").split("/")
        known = (
            parts in (["workorders"], ["auth", "login"])
            or (len(parts) == 2 and parts[0] == "workorders")
            or (len(parts) == 3 and parts[0] == "meters" and parts[2] == "lastreadout")
        )
        if known:
            return Reply(405, {"error": {"code": "METHOD_NOT_ALLOWED", "message": f"{method} is not allowed here"}})
        return Reply(404, {"error": {"code": "NOT_FOUND", "message": f"no route {path}"}})

    def _authorize(self, request: Request) -> None:
        config = self.config
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        if config.auth == "none":
            return
        if config.auth == "basic" and scheme.lower() == "basic" and self._basic_ok(credentials.strip()):
            return
        if config.auth == "bearer" and scheme.lower() == "bearer" and self._token_ok(credentials.strip()):
            return
        challenge = "Basic" if config.auth == "basic" else "Bearer"
        raise _ApiError(401, "UNAUTHORIZED", "missing or invalid credentials").with_header(
            "WWW-Authenticate", f'{challenge} realm="luna"'
        )

    def _basic_ok(self, credentials: str) -> bool:
        try:
            user, _, password = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return self._credentials_ok(user, password)

    def _credentials_ok(self, user: str, password: str) -> bool:
        user_ok = hmac.compare_digest(user.encode(), self.config.username.encode())
        password_ok = hmac.compare_digest(password.encode(), self.config.password.encode())
        return user_ok and password_ok

    def _token_ok(self, token: str) -> bool:
        if hmac.compare_digest(token.encode(), self.config.token.encode()):
            return True
        with self._lock:
            return token in self._tokens

    def _inject_request_faults(self, endpoint: str) -> None:
        config = self.config
        if self._draw("error", endpoint, config.error_rate):
            raise _ApiError(config.error_status, "SERVICE_UNAVAILABLE", "the head-end is temporarily unavailable")
        if self._draw("rate_limit", endpoint, config.rate_limit_rate):
            seconds = config.retry_after
            header = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
            raise _ApiError(429, "RATE_LIMITED", "too many requests").with_header("Retry-After", header)

    def _draw(self, fault: str, endpoint: str, rate: float) -> bool:
        """Whether this request suffers `fault`: a pending "next N" counter first, then the seeded rate."""
        if endpoint not in _FAULT_ENDPOINTS.get(fault, ENDPOINTS):
            return False
        with self._lock:
            for key in ((fault, endpoint), (fault, None)):
                if self._pending.get(key, 0) > 0:
                    self._pending[key] -= 1
                    self._faults[fault] += 1
                    return True
            hit = rate > 0 and self._rng.random() < rate
            if hit:
                self._faults[fault] += 1
            return hit

    def _finish(self, reply: Reply, endpoint: str) -> Reply:
        if reply.status >= 400 or reply.drop:
            return reply
        if self.config.envelope:
            reply.body = {"data": reply.body}
        if self._draw("malformed", endpoint, self.config.malformed_rate):
            payload = reply.payload()
            reply.body = payload[: max(1, len(payload) // 2)]
        return reply

    # --- endpoints ---------------------------------------------------------------------------------------

    def _create(self, request: Request, path: str) -> Reply:
        body = self._json_object(request)
        meter, reference, amount, currency = self._validated_create(body, request)
        if meter in self.config.unknown_meters:
            raise _ApiError(404, "METER_NOT_FOUND", f"meter {meter} is not known")
        with self._lock:
            existing = self._replay(reference)
            if existing is not None:
                return existing
            self._check_meter_free(meter)
            order = self._store(meter, reference, amount, currency)
            view = self._create_view(order)
        if self._draw("drop_after_commit", "create", self.config.drop_after_commit_rate):
            return Reply(drop=True)
        return Reply(201, view)

    @staticmethod
    def _json_object(request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError) as exc:
            raise _ApiError(400, "VALIDATION", "the body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise _ApiError(400, "VALIDATION", "the body must be a JSON object")
        return body

    def _validated_create(self, body: dict[str, Any], request: Request) -> tuple[str, str | None, int | float, str]:
        config = self.config
        if body.get("WorkOrderType") != "LoadCredit":
            raise _ApiError(400, "VALIDATION", "WorkOrderType must be LoadCredit")
        meter = body.get("MeterNumber")
        if not isinstance(meter, str | int) or isinstance(meter, bool) or not str(meter).strip():
            raise _ApiError(400, "VALIDATION", "MeterNumber is missing")
        inputs = body.get("WorkOrderInputs")
        if not isinstance(inputs, dict):
            raise _ApiError(400, "VALIDATION", "WorkOrderInputs is missing")
        amount = _parse_amount(inputs.get(config.amount_field))
        reference = body.get(config.client_ref_field) or request.headers.get("idempotency-key") or None
        currency = inputs.get("Currency") or config.currency
        return str(meter).strip(), (str(reference) if reference is not None else None), amount, str(currency)

    def _replay(self, reference: str | None) -> Reply | None:
        """The answer to a repeated reference when idempotency is on (lock held), else None."""
        if reference is None or not self.config.idempotency or reference not in self._by_reference:
            return None
        order = self._orders[self._by_reference[reference][0]]
        self._replays += 1
        if self.config.duplicate_mode == "409":
            raise _ApiError(
                409,
                "DUPLICATE_REFERENCE",
                f"a work order with reference {reference} exists",
                WorkOrderId=order.id,
            )
        return Reply(200, self._create_view(order))

    def _check_meter_free(self, meter: str) -> None:
        if not self.config.meter_conflicts:
            return
        now = self.clock()
        for order_id in self._by_meter.get(meter, []):
            if self._orders[order_id].status_at(now)[0] not in TERMINAL:
                raise _ApiError(
                    409,
                    "WORK_ORDER_IN_PROGRESS",
                    f"work order {order_id} is still running on meter {meter}",
                    WorkOrderId=order_id,
                )

    def _store(self, meter: str, reference: str | None, amount: int | float, currency: str) -> WorkOrder:
        config = self.config
        will_fail = config.failure_rate > 0 and self._rng.random() < config.failure_rate
        order = WorkOrder(
            id=f"WO-{self._next_id:06d}",
            meter=meter,
            reference=reference,
            amount=amount,
            currency=currency,
            created_at=self.clock(),
            waiting_seconds=config.waiting_seconds,
            in_progress_seconds=config.in_progress_seconds,
            will_fail=will_fail,
        )
        self._next_id += 1
        self._orders[order.id] = order
        if reference is not None:
            self._by_reference.setdefault(reference, []).append(order.id)
        self._by_meter.setdefault(meter, []).append(order.id)
        return order

    def _status(self, request: Request, path: str) -> Reply:
        order_id = path.rsplit("/", 1)[1]
        config = self.config
        if config.slow_poll_seconds and self._draw("slow_poll", "status", config.slow_poll_rate):
            self.sleep(config.slow_poll_seconds)
        with self._lock:
            order = self._orders.get(order_id)
            if order is None:
                raise _ApiError(404, "WORK_ORDER_NOT_FOUND", f"no work order {order_id}")
            return Reply(200, self._view(order))

    def _lookup(self, request: Request, path: str) -> Reply:
        config = self.config
        if not config.lookup:
            code = "NOT_FOUND" if config.lookup_off_status == 404 else "METHOD_NOT_ALLOWED"
            raise _ApiError(config.lookup_off_status, code, "work orders cannot be looked up by reference")
        values = request.query.get(config.client_ref_field) or request.query.get("ClientReference")
        if not values:
            raise _ApiError(400, "VALIDATION", f"the {config.client_ref_field} query parameter is required")
        return Reply(200, self.work_orders(values[0]))

    def _readout(self, request: Request, path: str) -> Reply:
        meter = path.strip("/").split("/")[1]
        if meter in self.config.unknown_meters:
            raise _ApiError(404, "METER_NOT_FOUND", f"meter {meter} is not known")
        with self._lock:
            now = self.clock()
            orders = [self._orders[i] for i in self._by_meter.get(meter, [])]
            credit = sum(o.amount for o in orders if o.status_at(now)[0] == SUCCESSFUL)
        consumption = round(random.Random(meter).uniform(0, 500), 3)
        return Reply(
            200,
            {
                "MeterNumber": meter,
                "ReadoutTime": _iso(now),
                "Credit": credit,
                "Consumption": consumption,
                "ValveStatus": "Open",
            },
        )

    def _login(self, request: Request, path: str) -> Reply:
        body = self._json_object(request)
        username, password = body.get("username"), body.get("password")
        if (
            not isinstance(username, str)
            or not isinstance(password, str)
            or not self._credentials_ok(username, password)
        ):
            raise _ApiError(401, "UNAUTHORIZED", "invalid username or password")
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens.add(token)
        return Reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    # --- views -------------------------------------------------------------------------------------------

    def _create_view(self, order: WorkOrder) -> dict[str, Any]:
        return {
            "WorkOrderId": order.id,
            "WorkOrderType": "LoadCredit",
            "MeterNumber": order.meter,
            self.config.client_ref_field: order.reference,
            "Status": order.status_at(self.clock())[0],
            "CreatedAt": _iso(order.created_at),
        }

    def _view(self, order: WorkOrder) -> dict[str, Any]:
        status, since = order.status_at(self.clock())
        reason = None
        if status == FAILED:
            reason = order.forced_reason or self.config.failure_reason
        elif status in (CANCELLED, EXPIRED):
            reason = order.forced_reason or f"work order {status.lower()}"
        result = {"CreditLoaded": order.amount, "Currency": order.currency} if status == SUCCESSFUL else None
        return {
            **self._create_view(order),
            "Status": status,
            "UpdatedAt": _iso(since),
            "FailureReason": reason,
            "Result": result,
        }

    # --- control endpoints -------------------------------------------------------------------------------

    def _control(self, request: Request, path: str) -> Reply:
        try:
            return self._control_action(request, path)
        except _ApiError as exc:
            return exc.reply
        except (UsageError, NotFoundError, TypeError, ValueError) as exc:
            status = 404 if isinstance(exc, NotFoundError) else 400
            return Reply(status, {"error": {"code": "SANDBOX", "message": str(exc)}})

    def _control_action(self, request: Request, path: str) -> Reply:
        method = request.method
        if path == "/_sandbox/stats" and method == "GET":
            return Reply(200, self.stats())
        if path == "/_sandbox/workorders" and method == "GET":
            refs = request.query.get("ClientReference") or request.query.get(self.config.client_ref_field)
            return Reply(200, self.work_orders(refs[0] if refs else None))
        if path == "/_sandbox/config" and method == "GET":
            return Reply(200, self.config.as_dict())
        if path == "/_sandbox/config" and method == "POST":
            return Reply(200, self.configure(**self._json_object(request)).as_dict())
        if path == "/_sandbox/reset" and method == "POST":
            self.reset()
            return Reply(200, {"reset": True})
        if path == "/_sandbox/faults" and method == "POST":
            body = self._json_object(request)
            self.fail_next(str(body.get("fault")), int(body.get("count", 1)), endpoint=body.get("endpoint"))
            return Reply(200, {"pending": body})
        parts = path.strip("/").split("/")
        if len(parts) == 4 and parts[1] == "workorders" and parts[3] == "status" and method == "POST":
            body = self._json_object(request)
            return Reply(200, self.set_status(parts[2], str(body.get("Status")), reason=body.get("FailureReason")))
        return Reply(404, {"error": {"code": "NOT_FOUND", "message": f"no sandbox route {method} {path}"}})


def split_meters(text: str | Iterable[str]) -> tuple[str, ...]:
    """Meter numbers from a comma list (or any iterable), blanks dropped."""
    items = text.split(",") if isinstance(text, str) else text
    return tuple(item.strip() for item in items if item.strip())


def start_luna_sandbox(
    config: LunaSandboxConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    verbose: bool = False,
) -> RunningSandbox:
    """Serve a new `LunaSandbox` on loopback in a background thread; `.url` is its base URL, `.app` the sandbox."""
    return RunningSandbox(LunaSandbox(config, clock=clock, sleep=sleep), host=host, port=port, verbose=verbose).start()


__all__ = [
    "STATUSES",
    "LunaSandbox",
    "LunaSandboxConfig",
    "WorkOrder",
    "split_meters",
    "start_luna_sandbox",
]
