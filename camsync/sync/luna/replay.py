"""`luna replay`: re-push one txn, or every txn of a state, after an operator's decision, then follow them with a
push engine of its own.

A held txn is released only by an operator who looked (`--force` for one txn; the confirmed plan of a bulk
replay); an unknown one is looked up first (adopted if LUNA has it, sent if not); a successful one is never part
of a bulk replay.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from camsync.clients.luna_target import LunaTarget
from camsync.errors import CamsyncError, ExitCode, NotFoundError, UsageError
from camsync.settings import Settings
from camsync.store import luna_admin
from camsync.store.base import utcnow
from camsync.store.engine import Store
from camsync.sync.luna import moves
from camsync.sync.luna.engine import PushEngine
from camsync.sync.luna.options import PushOptions
from camsync.sync.luna.owner import owner_name
from camsync.sync.luna.states import Event, TxnState, transition
from camsync.sync.luna.target import target_for

REPLAYABLE = (TxnState.FAILED, TxnState.UNKNOWN, TxnState.HELD)  # what `luna replay --state` takes


class NeedsReview(CamsyncError):
    """A held txn is replayed only after an operator looked at it."""

    exit_code = ExitCode.PARTIAL


@dataclass
class ReplayReport:
    txn_id: str
    before: str
    after: str
    work_order_id: str | None
    message: str


def replay(
    settings: Settings,
    store: Store,
    *,
    txn_id: str,
    force: bool = False,
    timeout: float = 60.0,
    client: LunaTarget | None = None,
    clock: Callable[[], datetime] = utcnow,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplayReport:
    """Re-push one txn: settle an unknown by lookup first; a successful one only with `force`."""
    owner = owner_name()
    with target_for(settings, client, 1) as api:
        options = PushOptions.from_settings(settings, txn_id=txn_id, concurrency=1, wait=True, timeout=timeout)
        before = _prepare_replay(store, api, options, txn_id=txn_id, force=force, owner=owner)
        PushEngine(store, api, options, owner=owner, clock=clock, sleep=sleep).run()
    with store.session() as session:
        after = luna_admin.get_txn(session, txn_id=txn_id) or {}
    state = after.get("state", "forgotten")
    return ReplayReport(txn_id, before, state, after.get("work_order_id"), f"txn {txn_id}: {before} → {state}")


def _prepare_replay(
    store: Store, client: LunaTarget, options: PushOptions, *, txn_id: str, force: bool, owner: str
) -> str:
    """Check the txn may be replayed and put it where the engine will pick it up; returns its state before."""
    now = utcnow()
    with store.writer() as session:
        row = luna_admin.get_txn(session, txn_id=txn_id)
        if row is None:
            rejects = luna_admin.list_rejects(session, txn_id=txn_id, limit=1)
            hint = f"It is a rejected app DB row: {rejects[0]['reason']}" if rejects else "See `camsync luna status`"
            raise NotFoundError(f"txn {txn_id} is not known", hint)
        state = row["state"]
        if luna_admin.leased(session, now=now, txn_id=txn_id, lock=True):
            raise UsageError(f"txn {txn_id} is being pushed right now ({row['claimed_by']})", "Try again later")
        if state == TxnState.HELD and not force:
            raise NeedsReview(
                f"txn {txn_id} is held for review: {row['last_error']}",
                f"Look at its row in PAY+ (tuis.amount {row['amount']}); "
                f"`camsync luna replay {txn_id} --force` sends it with that amount",
            )
        if state == TxnState.SUCCESSFUL and not force:
            raise UsageError(
                f"txn {txn_id} is already successful (work order {row['work_order_id']})",
                "Pass --force to push it again anyway",
            )
        if state in (TxnState.UNKNOWN, TxnState.SENDING) and not client.lookup_available and not force:
            raise UsageError(
                f"txn {txn_id} may already have a work order in LUNA and lookup is off (LUNA_LOOKUP_URL=none)",
                "Check in LUNA first; pass --force to send it again",
            )
        expired_here = (
            state == TxnState.EXPIRED and row["work_order_id"] and not options.terminal_state(row["remote_status"])
        )
        event = _replay_event(state, follow=bool(expired_here) and not force, lookup=client.lookup_available)
        target = transition(state, event).target
        after = moves.move(
            session,
            txn_id=txn_id,
            state=state,
            event=event,
            owner=None,
            now=now,
            message=f"luna replay{' --force' if force else ''} by {owner}: {state} → {target}",
            unleased_at=now,
        )
        if after is None:
            raise UsageError(
                f"txn {txn_id} changed, or a push claimed it, while it was being replayed",
                "Look at `camsync luna show` and retry",
            )
    return state


def _replay_event(state: str, *, follow: bool, lookup: bool) -> Event:
    """What a replay does to a txn in `state`: follow its work order again (polled now; also a txn expired here,
    LUNA never having said its work order ended, when `follow`), look it up then send, or send it again."""
    if state == TxnState.CREATED or (state == TxnState.EXPIRED and follow):
        return Event.REPLAY_FOLLOW
    if state == TxnState.DISCOVERED:
        return Event.REPLAY_SEND
    if state == TxnState.HELD:
        return Event.RELEASED
    if state in (TxnState.UNKNOWN, TxnState.SENDING):
        return Event.REPLAY_LOOKUP if lookup else Event.REPLAY_UNCHECKED
    return Event.REPLAY_AGAIN


@dataclass
class BulkPlan:
    """What `luna replay --state` would do: the txns it takes and what each would become."""

    state: str
    txns: list[dict[str, Any]]
    action: str
    refused: str | None = None  # why it cannot run as asked


def plan_bulk(
    settings: Settings, store: Store, *, state: str, since: datetime | None = None, limit: int = 100_000
) -> BulkPlan:
    """The txns of `state` (changed since `since`) a bulk replay takes, and what it would do with them."""
    if state not in REPLAYABLE:
        raise UsageError(
            f"luna replay --state takes {', '.join(REPLAYABLE)}, not {state!r}",
            "A successful txn is never re-sent in bulk; replay one with `camsync luna replay TXN --force`",
        )
    with store.session() as session:
        txns = luna_admin.txns_to_replay(session, state=state, since=since, limit=limit)
    lookup = _lookup_configured(settings)
    action = {
        TxnState.FAILED: "send each again as a new work order",
        TxnState.UNKNOWN: "look each up in LUNA first: adopt the work order found, send only when LUNA has none",
        TxnState.HELD: "release each after your review and send it with the amount of its TUI",
    }[TxnState(state)]
    refused = None
    if state == TxnState.UNKNOWN and not lookup:
        refused = (
            "unknown txns may already have a work order in LUNA and lookup is off (LUNA_LOOKUP_URL=none): "
            "check each in LUNA, then `camsync luna replay TXN --force`"
        )
    return BulkPlan(state, txns, action, refused)


def _lookup_configured(settings: Settings) -> bool:
    return settings.luna_lookup_url.strip().lower() != "none"


@dataclass
class BulkReport:
    state: str
    replayed: int
    skipped: list[str]
    after: dict[str, int]


def replay_many(
    settings: Settings,
    store: Store,
    plan: BulkPlan,
    *,
    timeout: float = 600.0,
    client: LunaTarget | None = None,
    clock: Callable[[], datetime] = utcnow,
    sleep: Callable[[float], None] = time.sleep,
) -> BulkReport:
    """Put every txn of the plan where a push picks it up (as one replay each), then push until they settle."""
    if plan.refused:
        raise UsageError(plan.refused)
    owner = owner_name()
    skipped: list[str] = []
    with target_for(settings, client, settings.luna_concurrency) as api:
        options = PushOptions.from_settings(settings, wait=True, timeout=timeout)
        for row in plan.txns:
            try:
                _prepare_replay(store, api, options, txn_id=row["txn_id"], force=True, owner=owner)
            except (UsageError, NotFoundError) as exc:  # it moved on meanwhile: left as it is now
                skipped.append(f"{row['txn_id']}: {exc.reason}")
        PushEngine(store, api, options, owner=owner, clock=clock, sleep=sleep).run()
    ids = [row["txn_id"] for row in plan.txns]
    after: dict[str, int] = {}
    with store.session() as session:
        for txn_id in ids:
            found = luna_admin.get_txn(session, txn_id=txn_id)
            state = found["state"] if found else "forgotten"
            after[state] = after.get(state, 0) + 1
    return BulkReport(plan.state, len(ids) - len(skipped), skipped, after)
