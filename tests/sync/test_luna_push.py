"""The LUNA push job against an in-memory LUNA and app DB, on both databases: exactly once, retries, polls."""

from __future__ import annotations

import threading
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from test_luna_support import FakeClock, FakeLuna, FakeSource, Row

from camsync.settings import Settings
from camsync.store import luna as q
from camsync.store.runs import list_runs
from camsync.sync.luna import PushReport, push, recover_dead_claims, replay
from camsync.sync.luna_admin import import_state, reset, show
from camsync.sync.luna_engine import PushEngine, PushOptions
from camsync.sync.luna_scan import discover


def run_push(store, luna: FakeLuna, source: FakeSource, clock: FakeClock, **overrides) -> PushReport:
    settings = Settings()
    options = PushOptions.from_settings(settings, **{"timeout": 3600.0, "retry_base": 1.0, **overrides})
    return push(settings, store, options=options, client=luna, source=source, clock=clock, sleep=clock.sleep)


def states(store) -> dict[str, str]:
    with store.session() as session:
        return {row["txn_id"]: row["state"] for row in q.list_txns(session, limit=1000)}


def history_kinds(store, txn_id: str) -> list[str]:
    with store.session() as session:
        return [event["kind"] for event in q.txn_history(session, txn_id=txn_id)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_push_creates_one_work_order_per_used_row_and_follows_them(store, clock) -> None:
    source = FakeSource([Row(1, "T1"), Row(2, "T2", meter_number="M-2", amount=Decimal("1500.50")), Row(3, "T3")])
    luna = FakeLuna(default_statuses=["Waiting", "InProgress", "Successful"])
    report = run_push(store, luna, source, clock)
    assert states(store) == {"T1": "successful", "T2": "successful", "T3": "successful"}
    assert luna.calls["create"] == 3 and not luna.duplicates()
    assert (report.status, report.scan.discovered, report.counts.created) == ("SUCCESS", 3, 3)
    assert report.counts.finished["successful"] == 3
    assert history_kinds(store, "T2") == ["discovered", "intent", "request", "answer", "poll", "poll", "poll"]
    with store.session() as session:
        run = list_runs(session, job="luna")[0]
        assert (run.run_type, run.status, run.fetched, run.inserted, run.updated) == ("push", "SUCCESS", 3, 3, 3)
        assert run.details["states"]["successful"] == 3 and run.details["requests"] >= 6


def test_bad_rows_are_rejected_ready_rows_watched_and_known_rows_never_rediscovered(store, clock) -> None:
    source = FakeSource(
        [
            Row(1, "T1"),
            Row(2, "T2", amount=None, amount_raw="1,5x", reject_reason="amount '1,5x' does not parse"),
            Row(3, "T3", status="READY"),
            Row(4, "T4", status="READY"),
            Row(5, None, reject_reason="txn_id is NULL"),
            Row(6, "X" * 70),
        ]
    )
    luna = FakeLuna()
    first = run_push(store, luna, source, clock)
    assert first.status == "SUCCESS" and first.scan.rejected == 3  # bad data is shown, not a failed push
    assert states(store) == {"T1": "successful"}
    with store.session() as session:
        assert {r["tui_id"]: r["reason"] for r in q.list_rejects(session)} == {
            2: "amount '1,5x' does not parse",
            5: "txn_id is NULL",
            6: "txn_id is longer than 64 characters",
        }
        assert q.scan_position(session) == (6, 2)
    source.put(Row(3, "T3", status="USED"))
    source.put(Row(4, "T4", status="EXPIRED"))
    second = run_push(store, luna, source, clock)
    assert source.scans[-1] == (6, [3, 4], 2)  # only the watched rows are read again
    assert (second.scan.discovered, second.scan.rejected) == (1, 0)
    assert states(store) == {"T1": "successful", "T3": "successful"}
    third = run_push(store, luna, source, clock)
    assert source.scans[-1] == (6, [], 0) and third.scan.discovered == 0
    assert luna.calls["create"] == 2


def test_lost_answer_of_a_committed_create_is_adopted_by_lookup_not_resent(store, clock) -> None:
    luna = FakeLuna(create_faults={"T1": ["commit_lost"]})
    run_push(store, luna, FakeSource([Row(1, "T1"), Row(2, "T2")]), clock)
    assert states(store) == {"T1": "successful", "T2": "successful"}
    assert luna.by_reference("T1") == ["WO-0001"] and not luna.duplicates()
    assert luna.calls["create"] == 2 and luna.calls["lookup"] == 1
    assert "lookup" in history_kinds(store, "T1")


def test_lost_answer_of_an_uncommitted_create_is_sent_after_an_empty_lookup(store, clock) -> None:
    luna = FakeLuna(create_faults={"T1": ["lost"]})
    run_push(store, luna, FakeSource([Row(1, "T1")]), clock)
    assert states(store) == {"T1": "successful"}
    assert (luna.calls["create"], luna.calls["lookup"], len(luna.by_reference("T1"))) == (2, 1, 1)


def test_unknown_outcome_without_lookup_is_held_then_settled_by_replay(store, clock) -> None:
    luna = FakeLuna(lookup_on=False, create_faults={"T1": ["commit_lost"]})
    report = run_push(store, luna, FakeSource([Row(1, "T1")]), clock)
    assert states(store) == {"T1": "unknown"} and report.status == "PARTIAL"
    assert luna.calls["create"] == 1
    luna.lookup_on = True
    result = replay(Settings(), store, txn_id="T1", client=luna, clock=clock, sleep=clock.sleep)
    assert (result.before, result.after, result.work_order_id) == ("unknown", "successful", "WO-0001")
    assert luna.calls["create"] == 1 and not luna.duplicates()


def test_unknown_outcome_with_resend_policy_sends_again(store, clock) -> None:
    luna = FakeLuna(lookup_on=False, create_faults={"T1": ["lost"]})
    run_push(store, luna, FakeSource([Row(1, "T1")]), clock, unknown_outcome="resend")
    assert states(store) == {"T1": "successful"} and luna.calls["create"] == 2


def test_validation_error_fails_without_retry(store, clock) -> None:
    luna = FakeLuna(create_faults={"T1": ["reject", "reject"]})
    report = run_push(store, luna, FakeSource([Row(1, "T1")]), clock)
    assert states(store) == {"T1": "failed"} and luna.calls["create"] == 1
    assert report.counts.rejected_by_luna == 1 and report.status == "PARTIAL"
    with store.session() as session:
        assert "VALIDATION" in q.get_txn(session, txn_id="T1")["last_error"]


def test_busy_and_unavailable_are_retried_later_without_lookup(store, clock) -> None:
    luna = FakeLuna(create_faults={"T1": ["busy", "unavailable"]})
    started = clock.now
    run_push(store, luna, FakeSource([Row(1, "T1")]), clock)
    assert states(store) == {"T1": "successful"}
    assert (luna.calls["create"], luna.calls["lookup"]) == (3, 0)
    assert (clock.now - started).total_seconds() >= 0.5 + 1.0  # two backoffs with jitter of base 1 s


def test_failed_cancelled_and_expired_statuses_are_terminal(store, clock) -> None:
    luna = FakeLuna(statuses={"WO-0001": ["Failed"], "WO-0002": ["Cancelled"], "WO-0003": ["Expired"]})
    run_push(store, luna, FakeSource([Row(1, "T1"), Row(2, "T2"), Row(3, "T3")]), clock, concurrency=1)
    assert states(store) == {"T1": "failed", "T2": "cancelled", "T3": "expired"}
    assert luna.calls["get"] == 3
    with store.session() as session:
        assert q.get_txn(session, txn_id="T1")["last_error"] == "meter offline"


def test_work_order_never_terminal_is_expired_locally_and_never_recreated(store, clock) -> None:
    luna = FakeLuna(default_statuses=["InProgress"])
    run_push(store, luna, FakeSource([Row(1, "T1")]), clock, poll_timeout=30.0, poll_max=8.0)
    assert states(store) == {"T1": "expired"}
    assert luna.calls["create"] == 1 and 3 <= luna.calls["get"] <= 8
    run_push(store, luna, FakeSource([Row(1, "T1")]), clock)
    assert luna.calls["create"] == 1
    luna.statuses["WO-0001"] = ["Successful"]
    result = replay(Settings(), store, txn_id="T1", client=luna, clock=clock, sleep=clock.sleep)
    assert (result.before, result.after, result.work_order_id) == ("expired", "successful", "WO-0001")
    assert luna.calls["create"] == 1


def test_no_wait_creates_and_leaves_polling_to_the_next_run(store, clock) -> None:
    luna = FakeLuna()
    source = FakeSource([Row(1, "T1")])
    report = run_push(store, luna, source, clock, wait=False)
    assert states(store) == {"T1": "created"} and luna.calls["get"] == 0
    assert report.status == "SUCCESS" and report.counts.left_in_flight == 1
    clock.advance(5)
    run_push(store, luna, source, clock, wait=False)
    assert states(store) == {"T1": "successful"} and luna.calls["create"] == 1


@pytest.mark.parametrize(("require_terminal", "status"), [(True, "PARTIAL"), (False, "SUCCESS")])
def test_wait_stops_at_the_timeout_and_keeps_the_state(store, clock, require_terminal: bool, status: str) -> None:
    luna = FakeLuna(default_statuses=["InProgress"])
    report = run_push(store, luna, FakeSource([Row(1, "T1")]), clock, timeout=5.0, require_terminal=require_terminal)
    assert (report.status, report.counts.left_in_flight) == (status, 1)
    assert states(store) == {"T1": "created"}
    with store.session() as session:
        assert q.leased(session, now=clock()) == []


def test_push_inside_run_all_is_a_child_run(store, clock) -> None:
    from camsync.sync.ledger import recorded_run

    with recorded_run(store, job="run-all", run_type="all") as parent:
        report = run_push(store, FakeLuna(), FakeSource([Row(1, "T1")]), clock)
        settings = Settings()
        options = PushOptions.from_settings(settings, timeout=60.0)
        child = push(
            settings,
            store,
            options=options,
            parent_id=parent.id,
            client=FakeLuna(),
            source=FakeSource(),
            clock=clock,
            sleep=clock.sleep,
        )
    with store.session() as session:
        runs = {run.id: run.parent_id for run in list_runs(session, job="luna")}
    assert runs == {report.run_id: None, child.run_id: parent.id}


def test_limit_caps_the_creates_of_one_run(store, clock) -> None:
    luna = FakeLuna()
    run_push(store, luna, FakeSource([Row(i, f"T{i}") for i in range(1, 6)]), clock, limit=2)
    assert sorted(states(store).values()) == ["discovered"] * 3 + ["successful"] * 2


def test_intent_of_a_dead_process_is_looked_up_before_any_resend(store, clock) -> None:
    import socket

    source = FakeSource([Row(1, "T1"), Row(2, "T2")])
    luna = FakeLuna()
    discover(store, source, actor="t", now=clock())
    ghost = f"{socket.gethostname()}:{2**22 + 11}"
    with store.writer() as session:  # a process that committed both intents, sent T1 only, and died
        q.claim_sends(
            session, owner=ghost, now=clock(), lease_until=clock.now.replace(year=2100), due_before=clock(), limit=10
        )
        q.mark_sending(session, owner=ghost, txn_ids=["T1", "T2"], now=clock())
    luna.create_work_order(txn_id="T1", meter="M-1", amount=Decimal(1500), currency="XAF")
    assert recover_dead_claims(store, owner="here:1") == ["T1", "T2"]
    run_push(store, luna, source, clock)
    assert states(store) == {"T1": "successful", "T2": "successful"}
    assert luna.calls["lookup"] == 2 and not luna.duplicates() and len(luna.orders) == 2


def test_two_engines_on_one_store_never_send_a_txn_twice(store, clock) -> None:
    source = FakeSource([Row(i, f"T{i}") for i in range(1, 61)])
    luna = FakeLuna()
    discover(store, source, actor="t", now=clock())
    options = PushOptions.from_settings(Settings(), concurrency=4, batch_size=5, timeout=3600.0)
    engines = [PushEngine(store, luna, options, owner=f"w{i}:1", clock=clock, sleep=clock.sleep) for i in (1, 2)]
    threads = [threading.Thread(target=engine.run) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert set(states(store).values()) == {"successful"}
    assert luna.calls["create"] == 60 and not luna.duplicates()
    assert sum(engine.counts.creates for engine in engines) == 60


def test_import_then_push_polls_imported_work_orders_and_sends_nothing_again(store, clock, tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    state_file.write_text('{"created": {"T1": "WO-OLD-1", "T2": "WO-OLD-2"}, "done": ["T2", "T3"]}')
    first = import_state(store, path=state_file)
    assert (first["created"], first["done"], first["already_known"]) == (1, 2, 0)
    again = import_state(store, path=state_file)
    assert (again["created"], again["done"], again["already_known"]) == (0, 0, 3)
    luna = FakeLuna()
    run_push(store, luna, FakeSource([Row(1, "T1"), Row(2, "T2"), Row(3, "T3"), Row(4, "T4")]), clock)
    assert states(store) == {"T1": "successful", "T2": "successful", "T3": "successful", "T4": "successful"}
    assert luna.calls["create"] == 1 and luna.by_reference("T4") == ["WO-0001"]
    with store.session() as session:
        assert q.get_txn(session, txn_id="T1")["tui_id"] == 1


def test_reset_txn_rediscovers_it_and_adopts_its_work_order(store, clock) -> None:
    luna = FakeLuna()
    source = FakeSource([Row(1, "T1"), Row(2, "T2")])
    run_push(store, luna, source, clock)
    reset(store, txn_id="T1")
    assert states(store) == {"T2": "successful"}
    run_push(store, luna, source, clock)
    assert states(store) == {"T1": "successful", "T2": "successful"}
    assert luna.calls["create"] == 2 and luna.calls["lookup"] == 1
    kinds = [e["kind"] for e in show(store, txn_id="T1")["history"]]
    assert kinds.count("discovered") == 2 and "operator" in kinds and "lookup" in kinds


def test_reset_all_rescans_from_the_start(store, clock) -> None:
    luna = FakeLuna()
    source = FakeSource([Row(1, "T1"), Row(2, "T2", reject_reason="no meter row")])
    run_push(store, luna, source, clock)
    plan = reset(store, txn_id=None)
    assert plan.counts["successful"] == 1 and plan.counts["rejected"] == 1
    report = run_push(store, luna, source, clock)
    assert (report.scan.discovered, report.scan.rejected) == (1, 1)
    assert luna.calls["create"] == 1 and states(store) == {"T1": "successful"}


def test_imported_txns_forgotten_by_reset_all_are_looked_up_not_resent(store, clock, tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    state_file.write_text('{"created": {"T1": "WO-OLD-1"}, "done": ["T2"]}')
    import_state(store, path=state_file)
    luna = FakeLuna(lookup_on=False, orders={"WO-OLD-1": "T1", "WO-OLD-2": "T2"})
    reset(store, txn_id=None)
    run_push(store, luna, FakeSource([Row(1, "T1"), Row(2, "T2")]), clock)
    assert states(store) == {"T1": "unknown", "T2": "unknown"} and luna.calls["create"] == 0
    luna.lookup_on = True
    for txn in ("T1", "T2"):
        replay(Settings(), store, txn_id=txn, client=luna, clock=clock, sleep=clock.sleep)
    assert states(store) == {"T1": "successful", "T2": "successful"} and luna.calls["create"] == 0


def test_replay_refuses_a_successful_txn_without_force(store, clock) -> None:
    from camsync.errors import UsageError

    luna = FakeLuna()
    run_push(store, luna, FakeSource([Row(1, "T1")]), clock)
    with pytest.raises(UsageError, match="already successful"):
        replay(Settings(), store, txn_id="T1", client=luna, clock=clock, sleep=clock.sleep)
    result = replay(Settings(), store, txn_id="T1", force=True, client=luna, clock=clock, sleep=clock.sleep)
    assert result.after == "successful" and luna.calls["create"] == 2


def test_push_of_one_txn_sends_only_it_and_refuses_an_unknown_one(store, clock) -> None:
    from camsync.errors import NotFoundError

    luna = FakeLuna()
    source = FakeSource([Row(1, "T1"), Row(2, "T2"), Row(3, "T3", reject_reason="no meter row 7")])
    run_push(store, luna, source, clock, txn_id="T2")
    assert states(store) == {"T1": "discovered", "T2": "successful"}
    with pytest.raises(NotFoundError, match=r"txn T3 is not known.*no meter row 7"):
        run_push(store, luna, source, clock, txn_id="T3")
    assert luna.calls["create"] == 1


def test_options_map_terminal_statuses_from_settings() -> None:
    options = replace(PushOptions(), success_status="Done", failed_statuses=("KO", "Cancelled"))
    assert [options.terminal_state(s) for s in ("done", "KO", "Cancelled", "Successful", None)] == [
        "successful",
        "failed",
        "cancelled",
        None,
        None,
    ]
