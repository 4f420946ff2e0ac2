"""The LUNA txn state machine: every allowed move gives what the table documents, every other pair is refused,
docs/luna.md shows the table as it is, and no module spells a state outside states.py."""

from __future__ import annotations

import ast
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from camsync.store import luna_admin, luna_scan, luna_txns
from camsync.store.base import utcnow
from camsync.store.luna_tables import HistoryKind
from camsync.sync.luna import moves
from camsync.sync.luna.states import (
    NOW,
    STATES,
    TABLE,
    TERMINAL,
    Event,
    Transition,
    TransitionRefused,
    TxnState,
    allowed,
    describe,
    sources,
    transition,
)

ROOT = Path(__file__).resolve().parents[2]
T0 = utcnow().replace(microsecond=0)
T1 = T0 + timedelta(minutes=1)
OWNER = "a:1"
BEFORE: dict[str, Any] = {  # a txn's row before each move: every value tells whether the move wrote it
    "lookup_first": False,
    "work_order_id": "WO-0",
    "remote_status": "Waiting",
    "last_error": "old error",
    "next_attempt_at": T0,
    "work_order_at": T0,
    "finished_at": None,
    "first_sent_at": None,
    "claimed_by": OWNER,
    "claimed_until": T0 + timedelta(days=1),
}
GIVEN: dict[str, Any] = {
    "work_order_id": "WO-9",
    "remote_status": "InProgress",
    "last_error": "new error",
    "next_attempt_at": T1 + timedelta(seconds=30),
    "work_order_at": T1,
    "polls": 7,
}
COUNTERS = {"attempts": 2, "polls": 3}


def _moved_by_move() -> list[Transition]:
    return [step for step in TABLE.values() if step.source is not None and step.kind is not None]


def _insert(session: Any, txn_id: str, state: str, **values: Any) -> None:
    row = {**BEFORE, "state": state, **values}
    luna_txns.insert_txn(session, txn_id=txn_id, currency="XAF", origin="app", now=T0, values=row)
    session.flush()
    luna_txns.transition(
        session, txn_id=txn_id, owner=None, from_states=(state,), now=T0, changes=COUNTERS, kind="t", message="t"
    )


def _expected(step: Transition, given: dict[str, Any]) -> dict[str, Any]:
    out = {**BEFORE, **COUNTERS, "state": step.target.value}
    out.update((key, T1 if value is NOW else value) for key, value in step.sets.items())
    out.update(given)
    out.update((column, COUNTERS[column] + 1) for column in step.increments)
    out.update((column, T1) for column in step.stamps_once)
    return out


def _row(session: Any, txn_id: str) -> dict[str, Any]:
    row = luna_admin.get_txn(session, txn_id=txn_id)
    assert row is not None
    return row


def _as_stored(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value.isoformat() if hasattr(value, "isoformat") else value for key, value in values.items()}


# --- the table itself ----------------------------------------------------------------------------------------


def test_each_entry_is_keyed_by_its_own_pair_and_every_state_is_reachable() -> None:
    assert all(key == (step.source, step.event) for key, step in TABLE.items())
    reached = {step.target for step in TABLE.values() if step.source != step.target}
    assert reached == set(STATES)


def test_every_move_into_a_terminal_state_ends_the_txn() -> None:
    for step in TABLE.values():
        if step.target in TERMINAL and step.source not in TERMINAL:
            assert step.sets.get("finished_at") is NOW and step.sets.get("next_attempt_at", "kept") is None, step
            if step.kind is not HistoryKind.IMPORT:  # a push's move also gives its lease back
                assert step.sets.get("claimed_by", "kept") is None, step
        elif step.source not in TERMINAL:
            assert step.sets.get("finished_at") is not NOW, step


def test_every_move_into_created_names_its_work_order() -> None:
    for step in TABLE.values():
        if step.target is TxnState.CREATED:
            assert "work_order_id" in step.takes or step.source is TxnState.CREATED or step.event is Event.REPLAY_FOLLOW


def test_a_move_takes_exactly_the_values_it_documents() -> None:
    step = transition(TxnState.SENDING, Event.REJECTED)
    assert step.values(T1, {"last_error": "x"})["state"] == TxnState.FAILED
    with pytest.raises(TransitionRefused, match="takes"):
        step.values(T1, {})
    with pytest.raises(TransitionRefused, match="takes"):
        step.values(T1, {"last_error": "x", "work_order_id": "WO-1"})


def test_every_pair_not_in_the_table_is_refused() -> None:
    refused = [(state, event) for state in (None, *STATES) for event in Event if (state, event) not in TABLE]
    assert len(refused) == (len(STATES) + 1) * len(Event) - len(TABLE)
    for state, event in refused:
        assert not allowed(state, event)
        with pytest.raises(TransitionRefused):
            transition(state, event)
    with pytest.raises(TransitionRefused, match="not a txn state"):
        transition("rejected", Event.REPLAY_SEND)


# --- applied to the store ------------------------------------------------------------------------------------


@pytest.mark.parametrize("step", _moved_by_move(), ids=lambda step: f"{step.source}-{step.event}")
def test_every_allowed_move_writes_what_the_table_documents(store, step: Transition) -> None:
    given = {key: GIVEN[key] for key in step.takes}
    with store.writer() as session:
        _insert(session, "T1", step.source)
        assert (
            moves.move(
                session, txn_id="T1", state=step.source, event=step.event, owner=OWNER, now=T1, message="m", given=given
            )
            is step.target
        )
    with store.session() as session:
        row = _row(session, "T1")
        last = luna_admin.txn_history(session, txn_id="T1")[-1]
    assert {key: row[key] for key in _expected(step, given)} == _as_stored(_expected(step, given))
    assert row["updated_at"] == T1.isoformat()
    assert (last["kind"], last["state"], last["message"], last["actor"]) == (step.kind, step.target, "m", OWNER)


def test_every_pair_not_in_the_table_is_refused_and_writes_nothing(store) -> None:
    with store.writer() as session:
        for state in STATES:
            _insert(session, f"T-{state}", state)
    with store.session() as session:
        before = {state: _row(session, f"T-{state}") for state in STATES}
    with store.writer() as session:
        for state in STATES:
            for event in (event for event in Event if (state, event) not in TABLE):
                with pytest.raises(TransitionRefused):
                    moves.move(session, txn_id=f"T-{state}", state=state, event=event, owner=OWNER, now=T1, message="m")
    with store.session() as session:
        assert {state: _row(session, f"T-{state}") for state in STATES} == before


def test_a_move_from_a_state_the_txn_has_left_changes_nothing(store) -> None:
    with store.writer() as session:
        _insert(session, "T1", TxnState.CREATED)
        given = {"last_error": "x"}
        moved = moves.move(
            session, txn_id="T1", state="sending", event=Event.REJECTED, owner=OWNER, now=T1, message="m", given=given
        )
        assert moved is None
    with store.session() as session:
        assert _row(session, "T1")["state"] == TxnState.CREATED


@pytest.mark.parametrize("event", [Event.CLAIMED_TO_SEND, Event.CLAIMED_TO_POLL])
def test_claims_lease_the_states_the_table_names_and_write_its_values(store, event: Event) -> None:
    claim = moves.claim_sends if event is Event.CLAIMED_TO_SEND else moves.claim_polls
    with store.writer() as session:
        for state in STATES:
            _insert(session, f"T-{state}", state, claimed_by=None, claimed_until=None, next_attempt_at=None)
        got = claim(session, owner=OWNER, now=T1, lease_until=T1, due_before=T1, limit=100)
    assert sorted(item.state for item in got) == sorted(sources(event))
    with store.session() as session:
        for state in STATES:
            row = _row(session, f"T-{state}")
            if state in sources(event):
                step = transition(state, event)
                assert row["claimed_by"] == OWNER and row["state"] == step.target
                assert all(row[key] == value for key, value in step.sets.items())
            else:
                assert row["claimed_by"] is None


def test_a_dead_owners_claims_are_freed_as_the_table_says_for_each_state(store) -> None:
    dead = "box:4242:dead:ns1"
    with store.writer() as session:
        for state in STATES:
            _insert(session, f"T-{state}", state, claimed_by=dead)
        freed = moves.release_dead_claims(session, host="box", owner="box:1:me:ns1", alive=lambda pid: False, now=T1)
    assert sorted(freed) == sorted(f"T-{state}" for state in STATES)
    with store.session() as session:
        for state in STATES:
            step = transition(state, Event.OWNER_GONE)
            row = _row(session, f"T-{state}")
            assert {key: row[key] for key in _expected(step, {})} == _as_stored(_expected(step, {}))
            assert luna_admin.txn_history(session, txn_id=f"T-{state}")[-1]["kind"] == HistoryKind.RECOVERED


def test_a_new_txn_starts_as_the_table_says_for_what_its_history_holds(store) -> None:
    found = [luna_scan.NewTxn(t, i, "M-1", Decimal(1500), "XAF") for i, t in enumerate(("T1", "T2", "T3"), 1)]
    with store.writer() as session:  # T2 was sent before it was forgotten, T3's history names a work order
        history = {"message": "m", "actor": "x", "now": T0}
        luna_txns.add_event(session, txn_id="T2", kind=HistoryKind.INTENT, **history)
        luna_txns.add_event(session, txn_id="T3", kind=HistoryKind.ANSWER, work_order_id="WO-7", **history)
        luna_scan.lock_scan_cursor(session)
        moves.apply_scan(session, now=T1, actor="t", last_id=3, found=found, rejects=[], watch=[], unwatch=[])
    with store.session() as session:
        for txn_id, event, given in (
            ("T1", Event.FOUND, {}),
            ("T2", Event.FOUND_SENT_BEFORE, {}),
            ("T3", Event.FOUND_WITH_WORK_ORDER, {"work_order_id": "WO-7"}),
        ):
            values = transition(None, event).values(T1, given)
            row = _row(session, txn_id)
            assert {key: row[key] for key in values} == _as_stored(values)
            assert (row["attempts"], row["polls"], row["discovered_at"]) == (0, 0, T1.isoformat())
            first = luna_admin.txn_history(session, txn_id=txn_id)[-1]
            assert (first["kind"], first["state"]) == (transition(None, event).kind, values["state"])


def test_an_import_moves_only_the_states_the_table_lets_it(store) -> None:
    with store.writer() as session:
        for state in STATES:
            _insert(session, f"T-{state}", state)
        wanted = {f"T-{state}": f"WO-{state}" for state in STATES} | {"T-new": "WO-new"}
        counts = moves.import_old_state(session, created=wanted, done=[], currency="XAF", actor="i", now=T1)
    movable = [state for state in STATES if allowed(state, Event.IMPORTED_CREATED)]
    assert counts == moves.ImportCounts(created=len(movable) + 1, done=0, already_known=len(STATES) - len(movable))
    with store.session() as session:
        for state in STATES:
            row = _row(session, f"T-{state}")
            if state in movable:
                assert (row["state"], row["work_order_id"]) == (TxnState.CREATED, f"WO-{state}")
            else:
                assert (row["state"], row["work_order_id"]) == (state, "WO-0")
        assert _row(session, "T-new")["state"] == TxnState.CREATED


# --- the docs and the sources --------------------------------------------------------------------------------


def test_docs_show_the_transition_table_as_it_is() -> None:
    text = (ROOT / "docs" / "luna.md").read_text(encoding="utf-8")
    start = text.index("<!-- transitions:")
    shown = text[text.index("\n", start) + 1 : text.index("<!-- /transitions -->")]
    assert shown == describe(), "regenerate the table in docs/luna.md from camsync.sync.luna.states.describe()"


MARKER = "# not a txn state"  # on the line of a word that only looks like a state (a count, a history kind …)
LUNA_ONLY = {TxnState.DISCOVERED, TxnState.SENDING, TxnState.SUCCESSFUL}  # words no other part of camsync uses


def _luna_module(path: str) -> bool:
    return any("luna" in part for part in Path(path).parts) or path == "camsync/commands/state.py"


def _state_literals(path: Path, words: set[str]) -> list[str]:
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return [
        f"{where}:{node.lineno}: {node.value!r}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and node.value in words and MARKER not in lines[node.lineno - 1]
    ]


def test_no_state_is_spelled_as_a_bare_string_outside_states_py() -> None:
    """Everything under camsync/ but states.py itself, the migrations and the simulators (which speak LUNA's
    own statuses, below the sync layer): a LUNA module spells no state, any other module no LUNA-only one."""
    found = []
    for path in sorted((ROOT / "camsync").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "camsync/sync/luna/states.py" or {"migrations", "sandbox"} & set(Path(rel).parts):
            continue
        if _luna_module(rel):
            found += _state_literals(path, {state.value for state in STATES})
        else:
            found += _state_literals(path, {state.value for state in LUNA_ONLY})
    assert not found, "use TxnState (camsync/sync/luna/states.py), or mark a look-alike with " + MARKER


def test_the_scan_finds_a_bare_state(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('x = "sending"\ny = "created"  # not a txn state: a count\nz = f"{d[\'failed\']}"\n')
    found = _state_literals(module, {state.value for state in STATES})
    assert [line.split(": ", 1)[1] for line in found] == ["'sending'", "'failed'"]
