"""What the pool threads of `luna push` do: HTTP only, no database. Each task returns an outcome to apply.

A create attempt first settles any earlier uncertainty (`lookup_first`): one work order found → adopt it; none →
safe to send; no lookup → hold (or resend under LUNA_UNKNOWN_OUTCOME=resend). `maybe_created` in the outcome
says whether LUNA may hold a work order for the txn after the attempt: then the next attempt looks it up first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from camsync.clients.luna_target import (
    LookupAmbiguous,
    LookupUnavailable,
    LunaBusy,
    LunaEndpointError,
    LunaError,
    LunaRejected,
    LunaResponseError,
    LunaTarget,
    OutcomeUnknown,
    WorkOrder,
)
from camsync.errors import UpstreamError
from camsync.failpoints import failpoint
from camsync.logs import get_logger
from camsync.store.luna_tables import HistoryKind
from camsync.store.luna_txns import ClaimedTxn
from camsync.sync.luna.states import TxnState

log = get_logger("camsync.sync.luna")


class Verdict(StrEnum):
    """How a create attempt ended."""

    WORK_ORDER = "work_order"  # LUNA holds its work order (created, or adopted when found by lookup)
    REJECTED = "rejected"  # LUNA refused it: never retried
    RETRY = "retry"  # later, with backoff
    HOLD = "hold"  # the outcome is unknown and cannot be looked up
    UNREACHABLE = "unreachable"  # LUNA could not be reached: nothing was sent, tried again (the run may give up)
    STOP = "stop"  # an answer about the endpoint (a URL, credentials): nothing was created, the run stops


@dataclass(frozen=True)
class Note:
    """One history line gathered by a task: what was asked and what came back."""

    kind: str
    message: str
    http_status: int | None = None


@dataclass
class CreateOutcome:
    """The end of one create attempt (`kind`; with a work order: `work_order`, `adopted` when found by lookup)."""

    item: ClaimedTxn
    kind: Verdict
    maybe_created: bool
    reason: str = ""
    http_status: int | None = None
    code: str | None = None  # LUNA's error code, when it gave one
    work_order: WorkOrder | None = None
    adopted: bool = False
    requests: int = 0
    notes: list[Note] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # every work order LUNA holds for the txn, when several


@dataclass
class PollOutcome:
    """The answer to one status poll: the work order, or the error (fatal when the run must stop)."""

    item: ClaimedTxn
    work_order: WorkOrder | None = None
    error: str = ""
    http_status: int | None = None
    fatal: bool = False  # an answer about the endpoint: the run stops, the txn is left as it was
    unreachable: bool = False  # LUNA could not be reached


Terminal = Callable[[str | None], str | None]


def attempt_create(
    client: LunaTarget, item: ClaimedTxn, *, unknown_outcome: str, terminal: Terminal = lambda status: None
) -> CreateOutcome:
    """Settle an earlier uncertainty by lookup when needed, then send the create (at most once).

    `terminal` maps a LUNA status to its local terminal state (None while not terminal): when LUNA holds several
    work orders for the txn, a successful one is adopted first, then one still running.
    """
    outcome = CreateOutcome(item=item, kind=Verdict.RETRY, maybe_created=item.lookup_first)
    if item.lookup_first:
        settled = _look_up(client, outcome, unknown_outcome=unknown_outcome, terminal=terminal)
        if settled:
            return outcome
    return _send(client, outcome, unknown_outcome=unknown_outcome, terminal=terminal)


def best_work_order(orders: list[WorkOrder], terminal: Terminal) -> WorkOrder:
    """The work order to follow among several for one txn: successful, else still running, else the first."""

    def rank(order: WorkOrder) -> int:
        state = terminal(order.status)
        return 0 if state == TxnState.SUCCESSFUL else 1 if state is None else 2

    return min(orders, key=rank)


def _adopt(outcome: CreateOutcome, orders: list[WorkOrder], terminal: Terminal) -> WorkOrder:
    chosen = best_work_order(orders, terminal)
    if len(orders) > 1:
        outcome.duplicates = [order.id for order in orders]
        outcome.reason = (
            f"LUNA holds {len(orders)} work orders for this reference ({', '.join(outcome.duplicates)}); "
            f"adopted {chosen.id}"
        )
    return chosen


def _look_up(client: LunaTarget, outcome: CreateOutcome, *, unknown_outcome: str, terminal: Terminal) -> bool:
    """True when the lookup ended the attempt (adopted, held, or failed); False when it is safe to send."""
    txn_id = outcome.item.txn_id
    try:
        outcome.requests += 1
        found = client.lookup(txn_id)
    except LookupAmbiguous as exc:
        outcome.notes.append(Note(HistoryKind.LOOKUP, exc.reason, exc.status))
        return _end(outcome, Verdict.HOLD, exc, reason=f"outcome unknown and the lookup is ambiguous: {exc.reason}")
    except LookupUnavailable as exc:
        outcome.notes.append(Note(HistoryKind.LOOKUP, f"lookup unavailable: {exc.reason}", exc.status))
        if unknown_outcome == "resend":
            outcome.notes.append(
                Note(HistoryKind.RESEND, "LUNA_UNKNOWN_OUTCOME=resend: sending again unchecked (a possible duplicate)")
            )
            return False
        return _end(outcome, Verdict.HOLD, exc, reason=f"outcome unknown and no lookup: {exc.reason}")
    except LunaEndpointError as exc:
        return _end(outcome, Verdict.STOP, exc)
    except UpstreamError as exc:
        kind = Verdict.UNREACHABLE if _unreachable(exc) else Verdict.RETRY
        return _end(outcome, kind, exc, reason=f"lookup failed: {exc.reason}")
    outcome.notes.append(Note(HistoryKind.LOOKUP, f"lookup by reference found {len(found)} work order(s)", 200))
    if not found:
        outcome.maybe_created = False
        return False
    outcome.kind, outcome.adopted = Verdict.WORK_ORDER, True
    outcome.work_order = _adopt(outcome, found, terminal)
    return True


def _end(outcome: CreateOutcome, kind: Verdict, exc: UpstreamError, *, reason: str | None = None) -> bool:
    outcome.kind, outcome.reason, outcome.http_status, outcome.code = kind, reason or exc.reason, exc.status, exc.code
    return True


def _unreachable(exc: UpstreamError) -> bool:
    """A failure without any answer from LUNA (refused, unresolvable, timed out connecting)."""
    return exc.status is None and exc.retryable


def _send(client: LunaTarget, outcome: CreateOutcome, *, unknown_outcome: str, terminal: Terminal) -> CreateOutcome:
    item = outcome.item
    amount = item.amount if item.amount is not None else Decimal(0)
    log.info("create", f"[create] txn={item.txn_id} meter={item.meter} amount={amount} {item.currency}")
    outcome.notes.append(Note(HistoryKind.REQUEST, f"POST create: meter={item.meter} amount={amount} {item.currency}"))
    try:
        outcome.requests += 1
        order = client.create_work_order(
            txn_id=item.txn_id, meter=item.meter or "", amount=amount, currency=item.currency
        )
    except LunaEndpointError as exc:  # no such route, credentials, TLS: nothing was created
        _end(outcome, Verdict.STOP, exc)
        return outcome
    except (OutcomeUnknown, LunaResponseError) as exc:
        outcome.maybe_created = True
        held = not client.lookup_available and unknown_outcome == "hold"
        _end(outcome, Verdict.HOLD if held else Verdict.RETRY, exc, reason=f"outcome unknown: {exc.reason}")
        return outcome
    except LunaRejected as exc:
        _end(outcome, Verdict.REJECTED, exc)
        return outcome
    except LunaBusy as exc:
        _end(outcome, Verdict.RETRY, exc)
        return outcome
    except (LookupUnavailable, LookupAmbiguous) as exc:  # a duplicate answer naming no work order it can find
        outcome.maybe_created = True
        _end(outcome, Verdict.HOLD, exc)
        return outcome
    except LunaError as exc:
        _end(outcome, Verdict.RETRY if exc.retryable else Verdict.STOP, exc)
        return outcome
    except UpstreamError as exc:  # never reached LUNA, or LUNA stayed busy (429): this POST created nothing
        _end(outcome, Verdict.UNREACHABLE if _unreachable(exc) else Verdict.RETRY, exc)
        return outcome
    failpoint("after_post_before_commit")
    if order.siblings:
        order = _adopt(outcome, list(order.siblings), terminal)
    outcome.kind, outcome.work_order, outcome.maybe_created = Verdict.WORK_ORDER, order, True
    return outcome


def poll(client: LunaTarget, item: ClaimedTxn) -> PollOutcome:
    """Ask LUNA for the status of the txn's work order."""
    try:
        order = client.get_work_order(item.work_order_id or "")
    except LunaEndpointError as exc:
        return PollOutcome(item=item, error=exc.reason, http_status=exc.status, fatal=True)
    except UpstreamError as exc:
        return PollOutcome(item=item, error=exc.reason, http_status=exc.status, unreachable=_unreachable(exc))
    failpoint("during_poll")
    return PollOutcome(item=item, work_order=order)
