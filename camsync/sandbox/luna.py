"""A local simulator of the LUNA OASYS head-end: LoadCredit work orders, their statuses, meter readouts, faults.

Statuses are computed from each work order's creation time and the configured delays on an injectable clock
(no background thread): `Waiting` for `waiting_seconds`, `InProgress` for `in_progress_seconds`, then
`Successful`, or `Failed` for a seeded share `failure_rate`. Faults are probabilities drawn from a seeded RNG,
plus "next N" counters (`fail_next`) for exact tests. `/_sandbox/*` inspects and controls the simulator without
auth; the same operations are methods of `LunaSandbox`. Paths and methods the API does not serve are answered as
a web server would (`luna_http`); amounts are kept as the exact numbers sent. The contract simulated is
/work/shared/specs/luna-oasys-api.md ("spec" in comments).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from camsync.errors import NotFoundError, UsageError
from camsync.sandbox import auth
from camsync.sandbox.control import ControlApi, ControlCall
from camsync.sandbox.faults import FaultDraws, truncated
from camsync.sandbox.luna_config import (
    ENDPOINTS,
    FAULT_ENDPOINTS,
    FAULTS,
    STATUSES,
    SUCCESSFUL,
    TERMINAL,
    ApiError,
    LunaSandboxConfig,
    json_bytes,
    json_object,
)
from camsync.sandbox.luna_http import auth_refusal, endpoint_of, lookup_off, unrouted
from camsync.sandbox.luna_orders import WorkOrder, WorkOrderBook, create_view, iso, parse_create, status_view
from camsync.sandbox.server import Reply, Request, RunningSandbox, SandboxApp


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
        self._draws = FaultDraws(self.config.seed, known=FAULTS, scopes=FAULT_ENDPOINTS)
        self._tokens = auth.IssuedTokens()
        self._control = self._control_api()
        self._reset_state()

    # --- inspection and control ------------------------------------------------------------------------

    def _reset_state(self) -> None:
        self._book = WorkOrderBook()
        self._requests = dict.fromkeys(ENDPOINTS, 0)
        self._replays = 0

    def reset(self) -> None:
        """Forget every work order, counter, pending fault and issued token; keep the configuration."""
        with self._lock:
            self._reset_state()
            self._draws.reset(self.config.seed)
            self._tokens.clear()

    def configure(self, **changes: Any) -> LunaSandboxConfig:
        """Change switches at runtime (names of `LunaSandboxConfig` fields); returns the new configuration."""
        with self._lock:
            self.config = self.config.changed(**changes)
            if "seed" in changes:
                self._draws.reseed(self.config.seed)
            return self.config

    def fail_next(self, fault: str, count: int = 1, *, endpoint: str | None = None) -> None:
        """Make the next `count` eligible requests (of `endpoint`, or any) suffer `fault`, whatever the rates."""
        if fault not in FAULTS:
            raise UsageError(f"fault must be one of {', '.join(FAULTS)}, not {fault!r}")
        if endpoint is not None and endpoint not in ENDPOINTS:
            raise UsageError(f"endpoint must be one of {', '.join(ENDPOINTS)}, not {endpoint!r}")
        if count < 0:
            raise UsageError(f"count must not be negative, not {count}")
        self._draws.arm(fault, count, scope=endpoint)

    def set_status(self, work_order_id: str, status: str, *, reason: str | None = None) -> dict[str, Any]:
        """Force a work order's status from now on (e.g. Cancelled or Expired); returns its view."""
        if status not in STATUSES:
            raise UsageError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        with self._lock:
            order = self._book.orders.get(work_order_id)
            if order is None:
                raise NotFoundError(f"no work order {work_order_id}")
            order.forced_status, order.forced_at = status, self.clock()
            order.forced_reason = reason
            return self._view(order)

    def work_order(self, work_order_id: str) -> dict[str, Any] | None:
        """The status view of one work order, or None."""
        with self._lock:
            order = self._book.orders.get(work_order_id)
            return self._view(order) if order else None

    def work_orders(self, reference: str | None = None) -> list[dict[str, Any]]:
        """The status views of every work order, or of those carrying `reference`, oldest first."""
        with self._lock:
            return [self._view(order) for order in self._book.of_reference(reference)]

    def stats(self) -> dict[str, Any]:
        """Counts for tests: work orders in all and per reference, duplicated references, requests, faults."""
        with self._lock:
            by_reference = {ref: len(ids) for ref, ids in self._book.by_reference.items()}
            now = self.clock()
            by_status = dict.fromkeys(STATUSES, 0)
            for order in self._book.orders.values():
                by_status[order.status_at(now)[0]] += 1
            return {
                "work_orders": len(self._book.orders),
                "by_reference": by_reference,
                "duplicates": sorted(ref for ref, count in by_reference.items() if count > 1),
                "by_status": by_status,
                "requests": dict(self._requests),
                "faults": self._draws.struck(),
                "replays": self._replays,
            }

    # --- HTTP --------------------------------------------------------------------------------------------

    def route(self, request: Request) -> Reply:
        """Answer one HTTP request."""
        path = request.route_path
        if self._control.owns(path):
            return _encoded(self._control.answer(request, path))
        endpoint = endpoint_of(request.method, path)
        with self._lock:
            self._requests[endpoint] += 1
            latency = self.config.latency
        if latency:
            self.sleep(latency)
        return self._serve(request, path, endpoint)

    def _serve(self, request: Request, path: str, endpoint: str) -> Reply:
        if endpoint == "other":
            return unrouted(request.method, path, self.config)
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

    def _authorize(self, request: Request) -> None:
        config = self.config
        header = request.headers.get("authorization", "")
        if config.auth == "none":
            return
        if config.auth == "basic" and auth.basic_ok(header, user=config.username, password=config.password):
            return
        scheme, credentials = auth.authorization(header)
        if config.auth == "bearer" and scheme == "bearer":
            if any(auth.same_secret(credentials, token) for token in config.forbidden_tokens):
                raise auth_refusal(403, config)
            if self._tokens.accepts(credentials, static=config.token):
                return
        challenge = auth.challenge("Basic" if config.auth == "basic" else "Bearer", "luna")
        raise auth_refusal(401, config, challenge=challenge)

    def _inject_request_faults(self, endpoint: str) -> None:
        config = self.config
        if self._draws.strike("error", config.error_rate, scope=endpoint):
            raise ApiError(config.error_status, "SERVICE_UNAVAILABLE", "the head-end is temporarily unavailable")
        if self._draws.strike("rate_limit", config.rate_limit_rate, scope=endpoint):
            seconds = config.retry_after
            header = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
            raise ApiError(429, "RATE_LIMITED", "too many requests").with_headers({"Retry-After": header})

    def _finish(self, reply: Reply, endpoint: str) -> Reply:
        if reply.status >= 400 or reply.drop:
            return reply
        if self.config.envelope:
            reply.body = {"data": reply.body}
        reply = _encoded(reply)
        if self._draws.strike("malformed", self.config.malformed_rate, scope=endpoint):
            reply.body = truncated(reply.payload())
        return reply

    # --- endpoints ---------------------------------------------------------------------------------------

    def _create(self, request: Request, path: str) -> Reply:
        body = json_object(request)
        meter, reference, amount, currency = parse_create(body, request.headers, self.config)
        if meter in self.config.unknown_meters:  # spec: "404 METER_NOT_FOUND"
            raise ApiError(404, "METER_NOT_FOUND", f"meter {meter} is not known")
        with self._lock:
            existing = self._replay(reference)
            if existing is not None:
                return existing
            self._check_meter_free(meter)
            order = self._store(meter, reference, amount, currency)
            view = self._create_view(order)
        if self._draws.strike("drop_after_commit", self.config.drop_after_commit_rate, scope="create"):
            return Reply(drop=True)
        return Reply(201, view)

    def _replay(self, reference: str | None) -> Reply | None:
        """The answer to a repeated reference when idempotency is on (lock held), else None."""
        order = self._book.first_of(reference) if self.config.idempotency else None
        if order is None:
            return None
        self._replays += 1
        if self.config.duplicate_mode == "409":
            raise ApiError(
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
        for order in self._book.on_meter(meter):
            if order.status_at(now)[0] not in TERMINAL:
                raise ApiError(
                    409,
                    "WORK_ORDER_IN_PROGRESS",
                    f"work order {order.id} is still running on meter {meter}",
                    WorkOrderId=order.id,
                )

    def _store(self, meter: str, reference: str | None, amount: Decimal, currency: str) -> WorkOrder:
        config = self.config
        will_fail = config.failure_rate > 0 and self._draws.rng.random() < config.failure_rate
        return self._book.add(
            meter=meter,
            reference=reference,
            amount=amount,
            currency=currency,
            created_at=self.clock(),
            waiting_seconds=config.waiting_seconds,
            in_progress_seconds=config.in_progress_seconds,
            will_fail=will_fail,
        )

    def _status(self, request: Request, path: str) -> Reply:
        order_id = path.rsplit("/", 1)[1]
        config = self.config
        if config.slow_poll_seconds and self._draws.strike("slow_poll", config.slow_poll_rate, scope="status"):
            self.sleep(config.slow_poll_seconds)
        with self._lock:
            order = self._book.orders.get(order_id)
            if order is None:
                raise ApiError(404, "WORK_ORDER_NOT_FOUND", f"no work order {order_id}")
            return Reply(200, self._view(order))

    def _lookup(self, request: Request, path: str) -> Reply:
        config = self.config
        if not config.lookup:
            raise lookup_off(config)
        values = request.query.get(config.client_ref_field) or request.query.get("ClientReference")
        if not values:
            raise ApiError(400, "VALIDATION", f"the {config.client_ref_field} query parameter is required")
        return Reply(200, self.work_orders(values[0]))

    def _readout(self, request: Request, path: str) -> Reply:
        meter = path.strip("/").split("/")[1]
        if meter in self.config.unknown_meters:
            raise ApiError(404, "METER_NOT_FOUND", f"meter {meter} is not known")
        with self._lock:
            now = self.clock()
            loaded = (o.amount for o in self._book.on_meter(meter) if o.status_at(now)[0] == SUCCESSFUL)
            credit = sum(loaded, Decimal(0))
        consumption = round(random.Random(meter).uniform(0, 500), 3)
        return Reply(
            200,
            {
                "MeterNumber": meter,
                "ReadoutTime": iso(now),
                "Credit": credit,
                "Consumption": consumption,
                "ValveStatus": "Open",
            },
        )

    def _login(self, request: Request, path: str) -> Reply:
        body = json_object(request)
        username, password = body.get("username"), body.get("password")
        config = self.config
        if (
            not isinstance(username, str)
            or not isinstance(password, str)
            or not auth.pair_ok(username, password, expected_user=config.username, expected_password=config.password)
        ):
            raise auth_refusal(401, config)
        return Reply(200, {"access_token": self._tokens.issue(), "token_type": "Bearer", "expires_in": 3600})

    # --- views -------------------------------------------------------------------------------------------

    def _create_view(self, order: WorkOrder) -> dict[str, Any]:
        return create_view(order, now=self.clock(), ref_field=self.config.client_ref_field)

    def _view(self, order: WorkOrder) -> dict[str, Any]:
        config = self.config
        return status_view(
            order, now=self.clock(), ref_field=config.client_ref_field, failure_reason=config.failure_reason
        )

    # --- control endpoints -------------------------------------------------------------------------------

    def _control_api(self) -> ControlApi:
        control = ControlApi(
            read_body=lambda request: json_object(request, exact=False),
            error=lambda status, exc: Reply(status, {"error": {"code": "SANDBOX", "message": str(exc)}}),
            unrouted=lambda method, path: Reply(
                404, {"error": {"code": "NOT_FOUND", "message": f"no sandbox route {method} {path}"}}
            ),
            statuses=((NotFoundError, 404), (UsageError, 400), (TypeError, 400), (ValueError, 400)),
        )
        control.add("GET", "/_sandbox/stats", lambda call: self.stats())
        control.add("GET", "/_sandbox/workorders", self._control_work_orders)
        control.add("GET", "/_sandbox/config", lambda call: self.config.as_dict())
        control.add("POST", "/_sandbox/config", lambda call: self.configure(**call.body()).as_dict())
        control.add("POST", "/_sandbox/reset", self._control_reset)
        control.add("POST", "/_sandbox/faults", self._control_faults)
        control.add("POST", "/_sandbox/workorders/{id}/status", self._control_status)
        return control

    def _control_work_orders(self, call: ControlCall) -> list[dict[str, Any]]:
        return self.work_orders(call.query("ClientReference", self.config.client_ref_field))

    def _control_reset(self, call: ControlCall) -> dict[str, Any]:
        self.reset()
        return {"reset": True}

    def _control_faults(self, call: ControlCall) -> dict[str, Any]:
        body = call.body()
        self.fail_next(str(body.get("fault")), int(body.get("count", 1)), endpoint=body.get("endpoint"))
        return {"pending": body}

    def _control_status(self, call: ControlCall) -> dict[str, Any]:
        body = call.body()
        return self.set_status(call.params["id"], str(body.get("Status")), reason=body.get("FailureReason"))


def _encoded(reply: Reply) -> Reply:
    """The reply with a JSON body encoded as the head-end writes it (a `Decimal` amount as its exact number)."""
    if not isinstance(reply.body, bytes | str):
        reply.body = json_bytes(reply.body)
    return reply


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
    "start_luna_sandbox",
]
