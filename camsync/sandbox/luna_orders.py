"""The work orders of the LUNA OASYS simulator: what a create asks for, their book, status on the clock and views.

The book is not locked: `LunaSandbox` holds its lock around every use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from camsync.sandbox.luna_config import (
    CANCELLED,
    EXPIRED,
    FAILED,
    IN_PROGRESS,
    SUCCESSFUL,
    WAITING,
    ApiError,
    LunaSandboxConfig,
)


def parse_amount(value: Any, config: LunaSandboxConfig) -> Decimal:
    """A positive finite JSON number, exactly as sent, else a VALIDATION error.

    spec: "400 VALIDATION for a missing/non-positive amount". The create body sends the amount as a number
    (`"<LUNA_AMOUNT_FIELD>":<amount>`), so a string is refused unless `amount_strings` is on; a fraction
    (1250.5) is a number and is kept as the `Decimal` the body was parsed into. `refused_amounts` lists
    amounts refused on purpose, for tests.
    """
    if value is None:
        raise ApiError(400, "VALIDATION", "the credit amount is missing")
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ApiError(400, "VALIDATION", "the credit amount is not a number")
    if isinstance(value, str) and not config.amount_strings:
        raise ApiError(400, "VALIDATION", "the credit amount must be a JSON number, not a string")
    try:
        amount = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise ApiError(400, "VALIDATION", "the credit amount is not a number") from None
    if not amount.is_finite():
        raise ApiError(400, "VALIDATION", "the credit amount is not a number")
    if amount <= 0:
        raise ApiError(400, "VALIDATION", "the credit amount must be positive")
    if any(amount == Decimal(refused) for refused in config.refused_amounts):
        raise ApiError(400, "VALIDATION", f"the credit amount {amount} is refused")
    return amount


def parse_create(
    body: dict[str, Any], headers: Mapping[str, str], config: LunaSandboxConfig
) -> tuple[str, str | None, Decimal, str]:
    """The meter, client reference, amount and currency a create asks for, else a VALIDATION error."""
    if body.get("WorkOrderType") != "LoadCredit":
        raise ApiError(400, "VALIDATION", "WorkOrderType must be LoadCredit")
    meter = body.get("MeterNumber")
    if not isinstance(meter, str | int) or isinstance(meter, bool) or not str(meter).strip():
        raise ApiError(400, "VALIDATION", "MeterNumber is missing")
    inputs = body.get("WorkOrderInputs")
    if not isinstance(inputs, dict):
        raise ApiError(400, "VALIDATION", "WorkOrderInputs is missing")
    amount = parse_amount(inputs.get(config.amount_field), config)
    reference = body.get(config.client_ref_field) or headers.get("idempotency-key") or None
    currency = inputs.get("Currency") or config.currency
    return str(meter).strip(), (str(reference) if reference is not None else None), amount, str(currency)


@dataclass
class WorkOrder:
    """One stored LoadCredit work order; its status is computed on read."""

    id: str
    meter: str
    reference: str | None
    amount: Decimal  # exactly as the create sent it
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


@dataclass
class WorkOrderBook:
    """Every work order, by id (in creation order), by client reference and by meter."""

    orders: dict[str, WorkOrder] = field(default_factory=dict)
    by_reference: dict[str, list[str]] = field(default_factory=dict)
    by_meter: dict[str, list[str]] = field(default_factory=dict)
    next_id: int = 1

    def add(
        self,
        *,
        meter: str,
        reference: str | None,
        amount: Decimal,
        currency: str,
        created_at: float,
        waiting_seconds: float,
        in_progress_seconds: float,
        will_fail: bool,
    ) -> WorkOrder:
        """Store a new work order under the next id (`WO-000001`, …)."""
        order = WorkOrder(
            id=f"WO-{self.next_id:06d}",
            meter=meter,
            reference=reference,
            amount=amount,
            currency=currency,
            created_at=created_at,
            waiting_seconds=waiting_seconds,
            in_progress_seconds=in_progress_seconds,
            will_fail=will_fail,
        )
        self.next_id += 1
        self.orders[order.id] = order
        if reference is not None:
            self.by_reference.setdefault(reference, []).append(order.id)
        self.by_meter.setdefault(meter, []).append(order.id)
        return order

    def first_of(self, reference: str | None) -> WorkOrder | None:
        """The oldest work order carrying `reference`, or None."""
        ids = self.by_reference.get(reference) if reference is not None else None
        return self.orders[ids[0]] if ids else None

    def of_reference(self, reference: str | None) -> list[WorkOrder]:
        """Every work order, or those carrying `reference`, oldest first."""
        ids = self.orders if reference is None else self.by_reference.get(reference, [])
        return [self.orders[i] for i in ids]

    def on_meter(self, meter: str) -> list[WorkOrder]:
        """The work orders loaded on `meter`, oldest first."""
        return [self.orders[i] for i in self.by_meter.get(meter, [])]


def iso(timestamp: float) -> str:
    """A POSIX time as the head-end writes it: `2027-01-15T08:00:00.000Z`."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def create_view(order: WorkOrder, *, now: float, ref_field: str) -> dict[str, Any]:
    """What a create answers: the work order, its reference under `ref_field`, and its status at `now`."""
    return {
        "WorkOrderId": order.id,
        "WorkOrderType": "LoadCredit",
        "MeterNumber": order.meter,
        ref_field: order.reference,
        "Status": order.status_at(now)[0],
        "CreatedAt": iso(order.created_at),
    }


def status_view(order: WorkOrder, *, now: float, ref_field: str, failure_reason: str) -> dict[str, Any]:
    """What a status poll answers: the create view plus since when, why it failed, and what was loaded."""
    status, since = order.status_at(now)
    reason = None
    if status == FAILED:
        reason = order.forced_reason or failure_reason
    elif status in (CANCELLED, EXPIRED):
        reason = order.forced_reason or f"work order {status.lower()}"
    # CreditLoaded echoes the amount exactly as the create sent it (1250.5 stays 1250.5, 1500.00 stays 1500.00)
    result = {"CreditLoaded": order.amount, "Currency": order.currency} if status == SUCCESSFUL else None
    return {
        **create_view(order, now=now, ref_field=ref_field),
        "Status": status,
        "UpdatedAt": iso(since),
        "FailureReason": reason,
        "Result": result,
    }
