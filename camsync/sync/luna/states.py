"""The LUNA txn state machine: the one list of states and the one table of transitions.

A txn moves discovered → sending (the intent, committed before the POST) → created (work-order id) →
successful | failed | expired | cancelled, or to unknown when a create's outcome cannot be settled. Every change
of a txn — found in the app DB, claimed, sent, answered, polled, imported, replayed, or freed from a dead
process — is a (state, event) pair of `TABLE`, which says the new state, the kind of history line written and
what the move sets. A pair not in the table raises `TransitionRefused`. The store spells no state: the sync layer
hands it what this table decided (`camsync/sync/luna/moves.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from camsync.errors import CamsyncError
from camsync.store.luna_tables import HistoryKind


class TxnState(StrEnum):
    """Where a txn is on its way to one LUNA work order."""

    DISCOVERED = "discovered"
    SENDING = "sending"
    CREATED = "created"
    SUCCESSFUL = "successful"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"
    HELD = "held"


STATES: tuple[TxnState, ...] = tuple(TxnState)
TERMINAL = (TxnState.SUCCESSFUL, TxnState.FAILED, TxnState.EXPIRED, TxnState.CANCELLED)
# what `luna status` lists by default, in this order
NEEDS_ATTENTION = (
    TxnState.HELD,
    TxnState.UNKNOWN,
    TxnState.SENDING,
    TxnState.FAILED,
    TxnState.EXPIRED,
    TxnState.CANCELLED,
)
# a push that ends with txns in these states exits 3: only an operator can move them on
NEEDS_OPERATOR = (TxnState.HELD, TxnState.UNKNOWN)
# a create was sent (or imported): LUNA may hold a work order for the txn
MAY_BE_IN_LUNA = (TxnState.SENDING, TxnState.CREATED, TxnState.UNKNOWN, *TERMINAL)


class Event(StrEnum):
    """What happens to a txn."""

    FOUND = "found"
    FOUND_SENT_BEFORE = "found_sent_before"
    FOUND_WITH_WORK_ORDER = "found_with_work_order"
    FOUND_HELD = "found_held"
    FOUND_HELD_SENT_BEFORE = "found_held_sent_before"
    CLAIMED_TO_SEND = "claimed_to_send"
    CLAIMED_TO_POLL = "claimed_to_poll"
    OWNER_GONE = "owner_gone"
    INTENT = "intent"
    WORK_ORDER = "work_order"
    REJECTED = "rejected"
    HELD = "held"
    RETRY = "retry"
    RETRY_LOOKUP_FIRST = "retry_lookup_first"
    POLLED = "polled"
    POLL_FAILED = "poll_failed"
    REPORTED_SUCCESSFUL = "reported_successful"
    REPORTED_FAILED = "reported_failed"
    REPORTED_CANCELLED = "reported_cancelled"
    REPORTED_EXPIRED = "reported_expired"
    POLL_TIMED_OUT = "poll_timed_out"
    IMPORTED_CREATED = "imported_created"
    IMPORTED_DONE = "imported_done"
    REPLAY_FOLLOW = "replay_follow"
    REPLAY_SEND = "replay_send"
    REPLAY_LOOKUP = "replay_lookup"
    REPLAY_UNCHECKED = "replay_unchecked"
    REPLAY_AGAIN = "replay_again"
    RELEASED = "released"
    SUSPECT_REJECTION = "suspect_rejection"


# the event of a terminal status LUNA reported, by the local state that status maps to
REPORTED = {
    TxnState.SUCCESSFUL: Event.REPORTED_SUCCESSFUL,
    TxnState.FAILED: Event.REPORTED_FAILED,
    TxnState.CANCELLED: Event.REPORTED_CANCELLED,
    TxnState.EXPIRED: Event.REPORTED_EXPIRED,
}


class _Now:
    """Stands, in a transition's values, for the time of the move."""

    def __repr__(self) -> str:
        return "now"


NOW: Any = _Now()


class TransitionRefused(CamsyncError):
    """A (state, event) pair the transition table does not allow, or a move given the wrong values."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, "This is a bug in camsync: the txn was left as it was")


@dataclass(frozen=True)
class Transition:
    """One allowed move: from `source` (None: a txn not in the store yet) on `event` to `target`.

    `sets` are written as they are (NOW: the time of the move); `takes` are the values the caller supplies (the
    answer's work order, the error, the next poll …); each column of `increments` gets one more, each column of
    `stamps_once` the time of the move unless already set. `kind` is the history line written (None: none).
    """

    source: TxnState | None
    event: Event
    target: TxnState
    kind: HistoryKind | None
    sets: Mapping[str, Any] = field(default_factory=dict)
    takes: tuple[str, ...] = ()
    increments: tuple[str, ...] = ()
    stamps_once: tuple[str, ...] = ()
    note: str = ""

    def values(self, now: datetime, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What the move writes: the new state, `sets` (NOW resolved) and the `given` values of `takes`."""
        given = dict(given or {})
        if set(given) != set(self.takes):
            raise TransitionRefused(
                f"{self.event} from {self.source or 'a new txn'} takes {sorted(self.takes)}, not {sorted(given)}"
            )
        out: dict[str, Any] = {"state": self.target.value}
        out.update((key, now if value is NOW else value) for key, value in self.sets.items())
        out.update(given)
        return out


_HANDED_BACK = {"next_attempt_at": None, "claimed_by": None, "claimed_until": None}  # done with it for now
_ENDED = {**_HANDED_BACK, "finished_at": NOW}
_REPLAYED = {**_HANDED_BACK, "finished_at": None}
_NOT_SENT = {"work_order_id": None, "work_order_at": None, "next_attempt_at": None}


def _rows() -> list[Transition]:
    S, k = TxnState, HistoryKind
    rows = [
        Transition(None, Event.FOUND, S.DISCOVERED, k.DISCOVERED, {"lookup_first": False, **_NOT_SENT}),
        Transition(
            None,
            Event.FOUND_SENT_BEFORE,
            S.DISCOVERED,
            k.DISCOVERED,
            {"lookup_first": True, **_NOT_SENT},
            note="forgotten after an intent or an import: looked up before any send",
        ),
        Transition(
            None,
            Event.FOUND_WITH_WORK_ORDER,
            S.CREATED,
            k.DISCOVERED,
            {"lookup_first": False, "work_order_at": NOW, "next_attempt_at": NOW},
            takes=("work_order_id",),
            note="forgotten with a work order in its history: followed again, never sent again",
        ),
        Transition(
            None,
            Event.FOUND_HELD,
            S.HELD,
            k.DISCOVERED,
            {"lookup_first": False, **_NOT_SENT},
            takes=("last_error",),
            note="its money checks failed (amounts disagree, over LUNA_MAX_AMOUNT): never sent until released",
        ),
        Transition(
            None,
            Event.FOUND_HELD_SENT_BEFORE,
            S.HELD,
            k.DISCOVERED,
            {"lookup_first": True, **_NOT_SENT},
            takes=("last_error",),
            note="held for review, and sent before it was forgotten: looked up first once released",
        ),
        Transition(
            S.HELD,
            Event.RELEASED,
            S.DISCOVERED,
            k.OPERATOR,
            {**_REPLAYED, "last_error": None},
            note="`luna replay --force` after a look: sent with the amount of its TUI",
        ),
        Transition(
            S.FAILED,
            Event.SUSPECT_REJECTION,
            S.HELD,
            k.ANSWER,
            {**_HANDED_BACK, "finished_at": None},
            takes=("last_error",),
            note="the first creates of a run were all rejected alike (a setting?): held for review",
        ),
        Transition(S.DISCOVERED, Event.CLAIMED_TO_SEND, S.DISCOVERED, None),
        Transition(
            S.SENDING,
            Event.CLAIMED_TO_SEND,
            S.SENDING,
            None,
            {"lookup_first": True},
            note="an intent without a settled outcome: never resent blindly",
        ),
        Transition(S.CREATED, Event.CLAIMED_TO_POLL, S.CREATED, None),
        *(
            Transition(
                state, Event.INTENT, S.SENDING, k.INTENT, increments=("attempts",), stamps_once=("first_sent_at",)
            )
            for state in (S.DISCOVERED, S.SENDING, S.UNKNOWN)
        ),
        Transition(
            S.SENDING,
            Event.WORK_ORDER,
            S.CREATED,
            k.ANSWER,
            {"work_order_at": NOW, "lookup_first": False, "polls": 0},
            takes=("work_order_id", "remote_status", "last_error", "next_attempt_at"),
            note="created, or adopted when found by lookup",
        ),
        Transition(
            S.SENDING,
            Event.REJECTED,
            S.FAILED,
            k.ANSWER,
            {"lookup_first": False, **_ENDED},
            takes=("last_error",),
            note="LUNA refused the create (4xx): never retried",
        ),
        Transition(
            S.SENDING,
            Event.HELD,
            S.UNKNOWN,
            k.ANSWER,
            {"lookup_first": True, **_HANDED_BACK},
            takes=("last_error",),
            note="outcome unknown and no lookup: held for an operator",
        ),
        Transition(
            S.SENDING,
            Event.RETRY,
            S.DISCOVERED,
            k.ANSWER,
            {"lookup_first": False},
            takes=("last_error", "next_attempt_at"),
            note="nothing was created (busy, unreachable): sent again later",
        ),
        Transition(
            S.SENDING,
            Event.RETRY_LOOKUP_FIRST,
            S.SENDING,
            k.ANSWER,
            {"lookup_first": True},
            takes=("last_error", "next_attempt_at"),
            note="LUNA may have created it: looked up before the next send",
        ),
        Transition(
            S.CREATED,
            Event.POLLED,
            S.CREATED,
            k.POLL,
            {"last_error": None},
            takes=("polls", "next_attempt_at", "remote_status"),
            note="not terminal yet: polled again with backoff",
        ),
        Transition(S.CREATED, Event.POLL_FAILED, S.CREATED, k.POLL, takes=("polls", "next_attempt_at", "last_error")),
        Transition(
            S.CREATED,
            Event.REPORTED_SUCCESSFUL,
            S.SUCCESSFUL,
            k.POLL,
            {"last_error": None, **_ENDED},
            ("remote_status",),
        ),
        *(
            Transition(S.CREATED, REPORTED[state], state, k.POLL, _ENDED, ("remote_status", "last_error"))
            for state in (S.FAILED, S.CANCELLED, S.EXPIRED)
        ),
        Transition(
            S.CREATED,
            Event.POLL_TIMED_OUT,
            S.EXPIRED,
            k.EXPIRED,
            _ENDED,
            ("last_error",),
            note="no terminal status within LUNA_POLL_TIMEOUT: expired locally, never re-created",
        ),
        Transition(
            S.CREATED, Event.REPLAY_FOLLOW, S.CREATED, k.OPERATOR, {**_REPLAYED, "polls": 0, "work_order_at": NOW}
        ),
        Transition(
            S.EXPIRED,
            Event.REPLAY_FOLLOW,
            S.CREATED,
            k.OPERATOR,
            {**_REPLAYED, "polls": 0, "work_order_at": NOW},
            note="expired here, LUNA never said its work order ended: followed again",
        ),
        Transition(S.DISCOVERED, Event.REPLAY_SEND, S.DISCOVERED, k.OPERATOR, _REPLAYED),
    ]
    for state in (S.UNKNOWN, S.SENDING):
        rows.append(Transition(state, Event.REPLAY_LOOKUP, S.SENDING, k.OPERATOR, {**_REPLAYED, "lookup_first": True}))
        rows.append(
            Transition(
                state,
                Event.REPLAY_UNCHECKED,
                S.DISCOVERED,
                k.OPERATOR,
                {**_REPLAYED, "lookup_first": False},
                note="--force without a lookup: sent again",
            )
        )
    again = {**_REPLAYED, "lookup_first": False, "work_order_id": None, "remote_status": None}
    rows += [Transition(state, Event.REPLAY_AGAIN, S.DISCOVERED, k.OPERATOR, again) for state in TERMINAL]
    imports = (None, S.DISCOVERED, S.SENDING, S.UNKNOWN)
    created = {"lookup_first": False, "work_order_at": NOW, "next_attempt_at": NOW, "finished_at": None}
    done = {"lookup_first": False, "next_attempt_at": None, "finished_at": NOW}
    rows += [
        Transition(state, Event.IMPORTED_CREATED, S.CREATED, k.IMPORT, created, ("work_order_id",)) for state in imports
    ]
    rows += [
        Transition(state, Event.IMPORTED_DONE, S.SUCCESSFUL, k.IMPORT, done, ("work_order_id", "work_order_at"))
        for state in imports
    ]
    for state in STATES:
        sets = {"claimed_by": None, "claimed_until": None} | ({"lookup_first": True} if state is S.SENDING else {})
        note = "its lease's owner is provably gone" + (": looked up before any resend" if state is S.SENDING else "")
        rows.append(Transition(state, Event.OWNER_GONE, state, k.RECOVERED, sets, note=note))
    return [replace(step, note=step.note or _NOTES.get(step.event, "")) for step in rows]


_NOTES = {
    Event.FOUND: "a new USED row of the app DB, nothing in its history",
    Event.CLAIMED_TO_SEND: "leased to one push, to be sent",
    Event.CLAIMED_TO_POLL: "leased to one push, polled when due",
    Event.INTENT: "committed before the POST",
    Event.POLL_FAILED: "no status this time (LUNA unreachable …): polled again",
    Event.REPORTED_SUCCESSFUL: "LUNA reported LUNA_STATUS_SUCCESS",
    Event.REPORTED_FAILED: "LUNA reported a status of LUNA_STATUS_FAILED",
    Event.REPORTED_CANCELLED: "LUNA reported a status of LUNA_STATUS_FAILED (cancelled)",
    Event.REPORTED_EXPIRED: "LUNA reported a status of LUNA_STATUS_FAILED (expired)",
    Event.REPLAY_FOLLOW: "`luna replay`: polled now, with a new poll timeout",
    Event.REPLAY_SEND: "`luna replay`: sent now",
    Event.REPLAY_LOOKUP: "`luna replay`: looked up, then sent if LUNA has none",
    Event.REPLAY_AGAIN: "`luna replay` (`--force` when successful): a new work order",
    Event.IMPORTED_CREATED: "`state import-json`: the old agent's work order, polled",
    Event.IMPORTED_DONE: "`state import-json`: done by the old agent",
}


TABLE: Mapping[tuple[TxnState | None, Event], Transition] = {(t.source, t.event): t for t in _rows()}


def transition(state: str | None, event: Event) -> Transition:
    """The move `event` makes from `state` (None: a txn not in the store yet); TransitionRefused if none."""
    try:
        key = (TxnState(state) if state is not None else None, event)
    except ValueError:
        raise TransitionRefused(f"{state!r} is not a txn state") from None
    found = TABLE.get(key)
    if found is None:
        raise TransitionRefused(f"no transition from {state or 'a new txn'} on {event}")
    return found


def allowed(state: str | None, event: Event) -> bool:
    """Whether `event` may happen to a txn in `state`."""
    try:
        transition(state, event)
    except TransitionRefused:
        return False
    return True


def sources(event: Event) -> tuple[TxnState, ...]:
    """The states `event` may happen in, in the order of `STATES`."""
    return tuple(state for state in STATES if (state, event) in TABLE)


def by_source(event: Event) -> dict[TxnState, Transition]:
    """The moves of `event` from each state it may happen in."""
    return {state: TABLE[(state, event)] for state in sources(event)}


def _shown(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def describe() -> str:
    """The transition table as Markdown (docs/luna.md shows it; a test keeps the two alike)."""
    lines = [
        "| from | event | to | history line | sets | given by the caller | why |",
        "|---|---|---|---|---|---|---|",
    ]
    for step in TABLE.values():
        sets = [f"{key}={_shown(value)}" for key, value in step.sets.items()]
        sets += [f"{column}+1" for column in step.increments]
        sets += [f"{column}=now if unset" for column in step.stamps_once]
        cells = (
            f"`{step.source}`" if step.source else "(new)",
            f"`{step.event}`",
            f"`{step.target}`",
            f"`{step.kind}`" if step.kind else "",
            ", ".join(sets),
            ", ".join(step.takes),
            step.note,
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
