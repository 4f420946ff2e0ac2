"""Operator views and actions on the LUNA push state: status, one txn's history, reset, the old agent's import."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from camsync.errors import ConfigError, NotFoundError, UsageError
from camsync.store import luna_admin as q
from camsync.store.base import utcnow
from camsync.store.engine import Store
from camsync.store.luna_admin import REJECTED
from camsync.store.luna_scan import scan_position
from camsync.sync.luna import moves
from camsync.sync.luna.owner import owner_name
from camsync.sync.luna.states import MAY_BE_IN_LUNA, NEEDS_ATTENTION, STATES, TxnState

# a txn sent (or imported) whose work order is not known here: LUNA may hold one all the same
_SENT_UNKNOWN_ORDER = tuple(state for state in MAY_BE_IN_LUNA if state is not TxnState.CREATED)
_UNKNOWN_AFTER_RESET = (
    "it is looked up before any new send, and with LUNA_LOOKUP_URL=none held as unknown "
    "(or sent again if LUNA_UNKNOWN_OUTCOME=resend)"
)
_AFTER_RESET = (
    "those whose work order is in their history are followed (polled) again, never sent again; "
    f"the others: {_UNKNOWN_AFTER_RESET}"
)


def status(store: Store, *, state: str | None = None, limit: int = 50) -> dict[str, Any]:
    """Counts per state, txns with several work orders in LUNA, the scan position, and the txns of `state`
    (default: those needing attention)."""
    if state is not None and state not in (*STATES, REJECTED):
        raise UsageError(f"unknown state {state!r}", "Use one of " + ", ".join((*STATES, REJECTED)))
    with store.session() as session:
        counts = q.count_by_state(session, states=STATES)
        duplicates = q.count_duplicate_work_orders(session)
        resent = q.count_resent(session)
        last_id, watched = scan_position(session)
        if state == REJECTED:
            rows = q.list_rejects(session, limit=limit)
        elif state is not None:
            rows = q.list_txns(session, state=state, limit=limit)
        else:
            rows = [row for s in NEEDS_ATTENTION for row in q.list_txns(session, state=s, limit=limit)][:limit]
        rejects = q.list_rejects(session, limit=limit) if state is None else []
    return {
        "counts": counts,
        "duplicate_work_orders": duplicates,
        "possible_duplicates": resent,
        "scan": {"last_tui_id": last_id, "watched": watched},
        "state": state,
        "txns": rows,
        "rejects": rejects,
    }


def show(store: Store, *, txn_id: str) -> dict[str, Any]:
    """One txn with its whole history (and any rejected app DB row carrying its txn_id)."""
    with store.session() as session:
        txn = q.get_txn(session, txn_id=txn_id)
        history = q.txn_history(session, txn_id=txn_id)
        rejects = q.list_rejects(session, txn_id=txn_id, include_resolved=True)
    if txn is None and not history and not rejects:
        raise NotFoundError(f"txn {txn_id} is not known", "See `camsync luna status` for the txns camsync knows")
    return {"txn": txn, "history": history, "rejects": rejects}


@dataclass
class ResetPlan:
    """What `state reset` would forget."""

    scope: str
    counts: dict[str, int]
    txn: dict[str, Any] | None
    in_flight: list[str]
    warnings: list[str]


def plan_reset(store: Store, *, txn_id: str | None) -> ResetPlan:
    """Describe what a reset of one txn (or all, when `txn_id` is None) would forget, and what blocks it."""
    now = utcnow()
    with store.session() as session:
        live = [row["txn_id"] for row in q.leased(session, now=now, txn_id=txn_id)]
        if txn_id is None:
            counts = q.count_by_state(session, states=STATES)
            maybe = sum(counts[state] for state in MAY_BE_IN_LUNA)
            warnings = [f"{maybe} txns may have work orders in LUNA: {_AFTER_RESET}"] if maybe else []
            return ResetPlan("all", counts, None, live, warnings)
        txn = q.get_txn(session, txn_id=txn_id)
        rejects = q.list_rejects(session, txn_id=txn_id)
    if txn is None and not rejects:
        raise NotFoundError(f"txn {txn_id} is not known", "See `camsync luna status`")
    state = txn["state"] if txn else REJECTED
    warnings = []
    if txn is not None and txn["work_order_id"]:
        warnings.append(
            f"txn {txn_id} is {state} with work order {txn['work_order_id']}: "
            "once rediscovered it is followed (polled) again, never sent again"
        )
    elif state in _SENT_UNKNOWN_ORDER:
        warnings.append(f"txn {txn_id} is {state}: LUNA may hold a work order for it; {_UNKNOWN_AFTER_RESET}")
    if txn is not None and txn["tui_id"] is None:
        warnings.append(
            f"txn {txn_id} came from the old agent's state file and was never seen in the app DB: "
            "it will not be rediscovered unless `camsync state reset --all`"
        )
    return ResetPlan("txn", {state: 1}, txn, live, warnings)


def reset(store: Store, *, txn_id: str | None) -> ResetPlan:
    """Forget one txn or everything (refused while a push holds it). History is kept; nothing is sent here."""
    plan = plan_reset(store, txn_id=txn_id)
    _refuse_in_flight(plan.in_flight)
    actor, now = f"operator@{owner_name()}", utcnow()
    with store.writer() as session:
        # checked again inside the write, the txns locked: a push may have claimed one since the plan
        _refuse_in_flight([row["txn_id"] for row in q.leased(session, now=now, txn_id=txn_id, lock=True)])
        if txn_id is None:
            q.forget_all(session, actor=actor, now=now, states=STATES)
        else:
            q.forget_txn(session, txn_id=txn_id, actor=actor, now=now)
    return plan


def _refuse_in_flight(txn_ids: list[str]) -> None:
    if txn_ids:
        raise UsageError(
            f"{len(txn_ids)} txn(s) are being pushed right now ({', '.join(txn_ids[:5])})",
            "Wait for the running `luna push` to finish, then reset",
        )


def read_state_file(path: Path) -> tuple[dict[str, str], list[str]]:
    """The old agent's `{"created": {txn: work_order}, "done": [txn]}`, validated."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"state file {path} does not exist", "Pass the old agent's state.json (STATE_PATH)") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"state file {path} cannot be read: {exc}", "Pass the old agent's state.json") from None
    created, done = (
        (data.get(moves.OLD_CREATED, {}), data.get(moves.OLD_DONE, [])) if isinstance(data, dict) else (None, None)
    )
    if not isinstance(created, dict) or not isinstance(done, list):
        raise ConfigError(
            f"state file {path} is not the old agent's format",
            'Expected {"created": {"<txn_id>": "<work_order_id>"}, "done": ["<txn_id>"]}',
        )
    return {str(k): str(v) for k, v in created.items() if v not in (None, "")}, [str(t) for t in done]


def import_state(store: Store, *, path: Path, currency: str = "XAF") -> dict[str, Any]:
    """Import the old agent's state file: created → polled work orders, done → successful; idempotent."""
    created, done = read_state_file(path)
    with store.writer() as session:
        counts = moves.import_old_state(
            session, created=created, done=done, currency=currency, actor=f"import@{owner_name()}", now=utcnow()
        )
    return {"path": str(path), "entries": len(set(created) | set(done)), **asdict(counts)}
