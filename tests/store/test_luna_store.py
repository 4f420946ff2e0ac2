"""The LUNA state machine tables and queries, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import inspect, text

from camsync.store import luna_admin, luna_scan, luna_txns
from camsync.store.base import utcnow
from camsync.store.migrate import downgrade, upgrade
from camsync.sync.luna import moves
from camsync.sync.luna.states import REPORTED, Event, TxnState, transition

NOW = utcnow()
LATER = NOW + timedelta(minutes=5)


def discover(store, *txn_ids: str) -> None:
    found = [
        luna_scan.NewTxn(txn_id=t, tui_id=i, meter="M-1", amount=Decimal("1500.50"), currency="XAF")
        for i, t in enumerate(txn_ids, 1)
    ]
    with store.writer() as session:
        last, _ = luna_scan.lock_scan_cursor(session)
        moves.apply_scan(
            session, now=NOW, actor="t", last_id=last + len(found), found=found, rejects=[], watch=[], unwatch=[]
        )


def claim(store, owner: str, *, now=NOW, limit: int = 10) -> list[str]:
    with store.writer() as session:
        got = moves.claim_sends(
            session, owner=owner, now=now, lease_until=now + timedelta(minutes=1), due_before=now, limit=limit
        )
    return [item.txn_id for item in got]


def test_discovery_is_idempotent_and_keeps_amounts_exact(store) -> None:
    discover(store, "T1", "T2")
    with store.writer() as session:
        outcome = moves.apply_scan(
            session,
            now=NOW,
            actor="t",
            last_id=9,
            found=[
                luna_scan.NewTxn("T2", 2, "M-1", Decimal("1500.50"), "XAF"),
                luna_scan.NewTxn("T3", 3, "M-1", Decimal(7), "XAF"),
            ],
            rejects=[luna_scan.NewReject(4, None, "USED", None, "x", "txn_id is NULL")],
            watch=[(5, "READY")],
            unwatch=[],
        )
    assert (outcome.discovered, outcome.already_known, outcome.rejected) == (["T3"], 1, 1)
    with store.session() as session:
        assert luna_admin.get_txn(session, txn_id="T2")["amount"] == "1500.50"
        assert (
            luna_admin.count_by_state(session)["discovered"] == 3
            and luna_admin.count_by_state(session)["rejected"] == 1
        )
        assert luna_scan.scan_position(session) == (9, 1) and luna_scan.watched_ids(session) == [5]


def test_rejects_are_keyed_by_tui_id_so_null_and_shared_txn_ids_fit(store) -> None:
    rejects = [
        luna_scan.NewReject(1, None, "USED", None, None, "txn_id is NULL"),
        luna_scan.NewReject(2, None, "USED", None, None, "txn_id is NULL"),
        luna_scan.NewReject(3, "D", "USED", "M", "1", "txn_id D appears on several tuis rows (ids 3, 4)"),
        luna_scan.NewReject(4, "D", "USED", "M", "1", "txn_id D appears on several tuis rows (ids 3, 4)"),
    ]
    for _ in range(2):
        with store.writer() as session:
            moves.apply_scan(session, now=NOW, actor="t", last_id=4, found=[], rejects=rejects, watch=[], unwatch=[])
    with store.session() as session:
        assert luna_admin.count_by_state(session)["rejected"] == 4
        assert [r["tui_id"] for r in luna_admin.list_rejects(session, txn_id="D")] == [4, 3]


def test_a_claimed_txn_is_not_claimed_again_until_its_lease_lapses(store) -> None:
    discover(store, "T1", "T2", "T3")
    assert claim(store, "a:1", limit=2) == ["T1", "T2"]
    assert claim(store, "b:2") == ["T3"]
    assert claim(store, "b:2") == []
    assert claim(store, "b:2", now=LATER) == ["T1", "T2", "T3"]


def test_intent_and_transitions_are_fenced_by_the_lease_owner(store) -> None:
    discover(store, "T1")
    claim(store, "a:1")
    with store.writer() as session:
        assert moves.mark_sending(session, owner="b:2", txn_ids=["T1"], now=NOW) == []
        assert moves.mark_sending(session, owner="a:1", txn_ids=["T1"], now=NOW) == ["T1"]
        assert not luna_txns.transition(
            session,
            txn_id="T1",
            owner="b:2",
            from_states=("sending",),
            now=NOW,
            changes={"state": "created"},
            kind="answer",
            message="x",
        )
        assert luna_txns.transition(
            session,
            txn_id="T1",
            owner="a:1",
            from_states=("sending",),
            now=NOW,
            changes={"state": "successful", "work_order_id": "WO-1", "finished_at": NOW},  # as the caller decided
            kind="answer",
            message="ok",
        )
    with store.session() as session:
        txn = luna_admin.get_txn(session, txn_id="T1")
        assert (txn["state"], txn["attempts"], txn["work_order_id"]) == ("successful", 1, "WO-1")
        assert txn["finished_at"] is not None and txn["first_sent_at"] is not None
        assert [(e["kind"], e["state"]) for e in luna_admin.txn_history(session, txn_id="T1")] == [
            ("discovered", "discovered"),
            ("intent", "sending"),
            ("answer", "successful"),
        ]


def test_a_reclaimed_intent_must_be_looked_up_first(store) -> None:
    discover(store, "T1")
    claim(store, "a:1")
    with store.writer() as session:
        moves.mark_sending(session, owner="a:1", txn_ids=["T1"], now=NOW)
    with store.writer() as session:
        [item] = moves.claim_sends(session, owner="b:2", now=LATER, lease_until=LATER, due_before=LATER, limit=5)
    assert (item.state, item.lookup_first, item.attempts) == ("sending", True, 1)


def test_only_dead_owners_of_our_own_namespace_lose_their_claims(store) -> None:
    discover(store, "T1", "T2", "T3", "T4", "T5", "T6")
    claim(store, "here:111:aaaa:ns1", limit=1)  # gone, same boot and pid namespace
    claim(store, "here:222:bbbb:ns1", limit=1)  # alive
    claim(store, "there:333:cccc:ns1", limit=1)  # another host: only its lease can lapse
    claim(store, "here:999:old0:ns1", limit=1)  # an earlier process of this namespace that had our pid
    claim(store, "here:444:dddd:ns2", limit=1)  # same host name, another pid namespace: its pid means nothing here
    claim(store, "here:555:eeee", limit=1)  # no namespace: cannot be proved dead
    with store.writer() as session:  # "h_re" is a LIKE pattern matching "here": still another host
        assert (
            moves.release_dead_claims(session, host="h_re", owner="h_re:1:x:ns1", alive=lambda pid: False, now=NOW)
            == []
        )
    with store.writer() as session:  # a process that cannot name its namespace frees nothing
        assert moves.release_dead_claims(session, host="here", owner="here:7:x", alive=lambda pid: False, now=NOW) == []
    with store.writer() as session:
        freed = moves.release_dead_claims(
            session, host="here", owner="here:999:new1:ns1", alive=lambda pid: pid in (222, 999), now=NOW
        )
    assert freed == ["T1", "T4"]
    assert claim(store, "x:1") == ["T1", "T4"]


def test_a_live_claim_of_a_same_named_host_in_another_namespace_survives(store) -> None:
    discover(store, "T1")
    claim(store, "box:1:aaaa:nsA")  # pid 1 of another container with the same host name, mid-create
    with store.writer() as session:  # we are pid 1 too, in our own namespace, and see no pid 1 of theirs
        assert (
            moves.release_dead_claims(session, host="box", owner="box:1:bbbb:nsB", alive=lambda pid: False, now=NOW)
            == []
        )
    assert claim(store, "box:1:bbbb:nsB") == []


def test_skip_locked_hands_concurrent_claimers_disjoint_rows(store) -> None:
    discover(store, *[f"T{i}" for i in range(40)])
    results: dict[str, list[str]] = {}

    def worker(name: str) -> None:
        got: list[str] = []
        while batch := claim(store, name, limit=3):
            got += batch
        results[name] = got

    threads = [threading.Thread(target=worker, args=(f"w{i}:1",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    claimed = [t for got in results.values() for t in got]
    assert sorted(claimed) == sorted(f"T{i}" for i in range(40))


def test_forget_txn_keeps_history_and_watches_the_row_again(store) -> None:
    discover(store, "T1")
    with store.writer() as session:
        before = luna_admin.forget_txn(session, txn_id="T1", actor="op", now=NOW)
        assert luna_admin.forget_txn(session, txn_id="NOPE", actor="op", now=NOW) is None
    assert before["state"] == "discovered"
    with store.session() as session:
        assert luna_admin.get_txn(session, txn_id="T1") is None
        assert luna_scan.watched_ids(session) == [1]
        assert [e["kind"] for e in luna_admin.txn_history(session, txn_id="T1")] == ["discovered", "operator"]


def test_import_takes_over_unsent_txns_and_leaves_finished_ones(store) -> None:
    discover(store, "T1", "T2")
    with store.writer() as session:
        luna_txns.transition(
            session,
            txn_id="T2",
            owner=None,
            from_states=("discovered",),
            now=NOW,
            changes={"state": "failed"},
            kind="answer",
            message="x",
        )
        counts = moves.import_old_state(
            session, created={"T1": "WO-9", "T2": "WO-8", "T3": "WO-7"}, done=["T3"], currency="XAF", actor="i", now=NOW
        )
    assert counts == moves.ImportCounts(created=1, done=1, already_known=1)
    with store.session() as session:
        assert luna_admin.get_txn(session, txn_id="T1")["state"] == "created"
        assert luna_admin.get_txn(session, txn_id="T2")["state"] == "failed"
        t3 = luna_admin.get_txn(session, txn_id="T3")
        assert (t3["state"], t3["work_order_id"], t3["origin"]) == ("successful", "WO-7", "import")


def test_migration_0003_goes_down_and_up(store) -> None:
    downgrade(store.engine, "0002")
    with store.engine.connect() as conn:
        assert not inspect(conn).has_table("luna_txns")
    upgrade(store.engine, "head")
    with store.engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
        assert {"luna_txns", "luna_events", "luna_rejects", "luna_watch", "luna_cursor"} <= names
        assert conn.execute(text("SELECT last_id FROM luna_cursor WHERE name = 'tuis'")).scalar() == 0


@pytest.mark.parametrize("state", ["successful", "failed", "expired", "cancelled"])
def test_terminal_states_set_finished_at(store, state: str) -> None:
    discover(store, "T1")
    claim(store, "a:1")
    answer = {"work_order_id": "WO-1", "remote_status": "Waiting", "last_error": None, "next_attempt_at": NOW}
    settle = transition("created", REPORTED[TxnState(state)])
    reported = {"remote_status": state.title()} | ({"last_error": "x"} if "last_error" in settle.takes else {})
    with store.writer() as session:  # sent, answered with a work order, then LUNA reports `state`
        moves.mark_sending(session, owner="a:1", txn_ids=["T1"], now=NOW)
        for status, event, now, given in (
            ("sending", Event.WORK_ORDER, NOW, answer),
            ("created", settle.event, LATER, reported),
        ):
            moves.move(session, txn_id="T1", state=status, event=event, owner="a:1", now=now, message="x", given=given)
    with store.session() as session:
        assert luna_admin.get_txn(session, txn_id="T1")["finished_at"] == LATER.isoformat()
