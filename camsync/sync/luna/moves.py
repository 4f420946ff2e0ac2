"""Every write that changes a LUNA txn: decided by the transition table (`states.py`), persisted by the store.

The engine, the scan, replay, import and recovery call these (each inside a store transaction they hold); the
store functions behind them take the states to query and the values to write as arguments and spell no state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from camsync.store import luna_scan, luna_txns
from camsync.store.luna_scan import NewReject, NewTxn, ScanOutcome, TxnStart, TxnStarts
from camsync.store.luna_txns import ClaimedTxn
from camsync.sync.luna.states import Event, Transition, TransitionRefused, TxnState, allowed, by_source, transition

# the words of the old agent's state file, {"created": {txn: work order}, "done": [txn]}
OLD_CREATED = "created"  # not a txn state: the old agent's word
OLD_DONE = "done"


def _kind(move: Transition) -> str:
    if move.kind is None:
        raise TransitionRefused(f"{move.event} from {move.source} writes no history line")
    return move.kind.value


def _effect(step: Transition) -> tuple[Any, ...]:
    return step.target, step.kind, dict(step.sets), step.takes, step.increments, step.stamps_once


def _shared(steps: Mapping[TxnState, Transition]) -> Transition:
    """The one move several states make alike on an event (same target, values and history line)."""
    first, *others = steps.values()
    for other in others:
        if _effect(other) != _effect(first):
            raise TransitionRefused(f"{first.event} does not move {first.source} and {other.source} alike")
    return first


# the state a txn is in once the intent to send it is committed
INTENDED = _shared(by_source(Event.INTENT)).target


def _starts(now: datetime) -> TxnStarts:
    fresh = transition(None, Event.FOUND)
    sent = transition(None, Event.FOUND_SENT_BEFORE)
    followed = transition(None, Event.FOUND_WITH_WORK_ORDER)
    held = transition(None, Event.FOUND_HELD)
    held_sent = transition(None, Event.FOUND_HELD_SENT_BEFORE)
    return TxnStarts(
        fresh=TxnStart(fresh.values(now), _kind(fresh)),
        sent_before=TxnStart(
            sent.values(now), _kind(sent), " (sent before it was forgotten: it will be looked up first)"
        ),
        followed=TxnStart(  # the store writes the work order the txn's history names
            followed.values(now, {"work_order_id": None}),
            _kind(followed),
            " (work order {order} is in its history: followed again, never sent again)",
        ),
        held=TxnStart(  # the store writes each txn's own reason as its last_error
            held.values(now, {"last_error": None}), _kind(held), " held for review: {reason}"
        ),
        held_sent_before=TxnStart(
            held_sent.values(now, {"last_error": None}),
            _kind(held_sent),
            " held for review: {reason} (sent before it was forgotten: looked up first once released)",
        ),
    )


def apply_scan(
    session: Any,
    *,
    now: datetime,
    actor: str,
    last_id: int,
    found: Sequence[NewTxn],
    rejects: Sequence[NewReject],
    watch: Sequence[tuple[int, str | None]],
    unwatch: Sequence[int],
    resolved: Sequence[int] = (),
) -> ScanOutcome:
    """Record one scan; each new txn starts as the table says for what its history holds."""
    return luna_scan.apply_scan(
        session,
        now=now,
        actor=actor,
        last_id=last_id,
        found=found,
        rejects=rejects,
        watch=watch,
        unwatch=unwatch,
        resolved=resolved,
        starts=_starts(now),
    )


def _on(event: Event, now: datetime) -> dict[str, dict[str, Any]]:
    return {state.value: move.values(now) for state, move in by_source(event).items()}


def claim_sends(
    session: Any,
    *,
    owner: str,
    now: datetime,
    lease_until: datetime,
    due_before: datetime,
    limit: int,
    txn_id: str | None = None,
) -> list[ClaimedTxn]:
    """Lease up to `limit` txns to create (those the table lets be claimed to send), oldest first."""
    on_claim = _on(Event.CLAIMED_TO_SEND, now)
    return luna_txns.claim_sends(
        session,
        owner=owner,
        now=now,
        lease_until=lease_until,
        due_before=due_before,
        limit=limit,
        states=tuple(on_claim),
        on_claim=on_claim,
        txn_id=txn_id,
    )


def claim_polls(
    session: Any,
    *,
    owner: str,
    now: datetime,
    lease_until: datetime,
    due_before: datetime,
    limit: int,
    txn_id: str | None = None,
) -> list[ClaimedTxn]:
    """Lease up to `limit` work orders to poll whose next poll is due before `due_before`."""
    on_claim = _on(Event.CLAIMED_TO_POLL, now)
    return luna_txns.claim_polls(
        session,
        owner=owner,
        now=now,
        lease_until=lease_until,
        due_before=due_before,
        limit=limit,
        states=tuple(on_claim),
        on_claim=on_claim,
        txn_id=txn_id,
    )


def mark_sending(session: Any, *, owner: str, txn_ids: Sequence[str], now: datetime) -> list[str]:
    """Commit the intent to send (one more attempt) for the txns `owner` still holds; returns those marked."""
    steps = by_source(Event.INTENT)
    intent = _shared(steps)
    marked = luna_txns.record_intents(
        session,
        owner=owner,
        txn_ids=txn_ids,
        now=now,
        from_states=[state.value for state in steps],
        values=intent.values(now),
        increment=intent.increments,
        stamp_once=intent.stamps_once,
    )
    events = []
    for txn_id, attempts, lookup_first in marked:
        how = "look the reference up, then send if LUNA has none" if lookup_first else "send the create"
        message = f"attempt {attempts}: {how}"
        events.append(luna_txns.event_row(txn_id, _kind(intent), message, owner, now, state=intent.target.value))
    luna_txns.add_events(session, events=events)
    return [txn_id for txn_id, _, _ in marked]


def move(
    session: Any,
    *,
    txn_id: str,
    state: str,
    event: Event,
    owner: str | None,
    now: datetime,
    message: str,
    given: Mapping[str, Any] | None = None,
    http_status: int | None = None,
    work_order_id: str | None = None,
    events: list[dict[str, Any]] | None = None,
    unleased_at: datetime | None = None,
) -> TxnState | None:
    """Move a txn held in `state` on `event` as the table says (TransitionRefused when it does not allow it),
    fenced as the store's `transition` is; returns the new state, or None when the txn moved on or its lease
    was lost meanwhile."""
    step = transition(state, event)
    if step.source is None:
        raise TransitionRefused(f"{event} starts a txn: it is recorded by the scan or an import, not moved")
    moved = luna_txns.transition(
        session,
        txn_id=txn_id,
        owner=owner,
        from_states=(step.source.value,),
        now=now,
        changes=step.values(now, given),
        kind=_kind(step),
        message=message,
        http_status=http_status,
        work_order_id=work_order_id,
        events=events,
        unleased_at=unleased_at,
        increment=step.increments,
        stamp_once=step.stamps_once,
    )
    return step.target if moved else None


def release_dead_claims(
    session: Any, *, host: str, owner: str, alive: Callable[[int], bool], now: datetime
) -> list[str]:
    """Free the leases of this host's dead processes, each txn moved as the table says for its state."""
    (kind,) = {_kind(step) for step in by_source(Event.OWNER_GONE).values()}
    return luna_txns.release_dead_claims(
        session, host=host, owner=owner, alive=alive, now=now, on_release=_on(Event.OWNER_GONE, now), kind=kind
    )


@dataclass(frozen=True)
class ImportCounts:
    created: int
    done: int
    already_known: int


def import_old_state(
    session: Any, *, created: dict[str, str], done: Sequence[str], currency: str, actor: str, now: datetime
) -> ImportCounts:
    """Take over the old agent's state: created → state created with its work order (polled), done → successful.

    Txns the table does not let an import move (already created or finished here) are left alone; txns not sent
    yet (or not settled) take the imported work order, so nothing imported is ever sent again. Running it twice
    changes nothing the second time.
    """
    done_set = set(done)
    wanted = sorted(set(created) | done_set)
    # one import or scan at a time: both insert txns, and two inserts of one txn_id in different orders deadlock
    luna_scan.lock_scan_cursor(session)
    states = luna_txns.txn_states(session, txn_ids=wanted, lock=True)
    counts = {OLD_CREATED: 0, OLD_DONE: 0, "already_known": 0}
    for txn_id in wanted:
        event, word = (Event.IMPORTED_DONE, OLD_DONE) if txn_id in done_set else (Event.IMPORTED_CREATED, OLD_CREATED)
        state = states.get(txn_id)
        if not allowed(state, event):
            counts["already_known"] += 1
            continue
        step = transition(state, event)
        order = created.get(txn_id)
        given: dict[str, Any] = {"work_order_id": order}
        if "work_order_at" in step.takes:
            given["work_order_at"] = now if order else None
        values = step.values(now, given)
        message = f"imported from the old agent's state file as {word}"
        if state is None:
            luna_txns.insert_txn(session, txn_id=txn_id, currency=currency, origin="import", now=now, values=values)
            luna_txns.add_event(
                session,
                txn_id=txn_id,
                kind=_kind(step),
                state=values["state"],
                actor=actor,
                now=now,
                work_order_id=order,
                message=message,
            )
        else:
            luna_txns.transition(
                session,
                txn_id=txn_id,
                owner=None,
                from_states=(state,),
                now=now,
                changes=values,
                kind=_kind(step),
                message=message,
                actor=actor,
            )
        counts[word] += 1
    return ImportCounts(created=counts[OLD_CREATED], done=counts[OLD_DONE], already_known=counts["already_known"])
