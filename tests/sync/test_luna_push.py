"""The LUNA push job against an in-memory LUNA and app DB, on both databases: exactly once, retries, polls."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from test_luna_support import FakeClock, FakeLuna, FakeSource, Row

from camsync.clients.luna_target import LookupAmbiguous, WorkOrder
from camsync.settings import Settings
from camsync.store import luna_admin, luna_scan, luna_txns
from camsync.store.runs import list_runs
from camsync.sync.luna import moves
from camsync.sync.luna.admin import import_state, plan_reset, reset, show
from camsync.sync.luna.admin import status as luna_status
from camsync.sync.luna.engine import PushEngine
from camsync.sync.luna.options import PushOptions
from camsync.sync.luna.owner import namespace_id
from camsync.sync.luna.push import PushReport, push, recover_dead_claims
from camsync.sync.luna.replay import replay
from camsync.sync.luna.scan import discover
from camsync.sync.luna.work import best_work_order


def run_push(store, luna: FakeLuna, source: FakeSource, clock: FakeClock, **overrides) -> PushReport:
    settings = Settings()
    options = PushOptions.from_settings(settings, **{"timeout": 3600.0, "retry_base": 1.0, **overrides})
    return push(settings, store, options=options, client=luna, source=source, clock=clock, sleep=clock.sleep)


def states(store) -> dict[str, str]:
    with store.session() as session:
        return {row["txn_id"]: row["state"] for row in luna_admin.list_txns(session, limit=1000)}


def history_kinds(store, txn_id: str) -> list[str]:
    with store.session() as session:
        return [event["kind"] for event in luna_admin.txn_history(session, txn_id=txn_id)]


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
        assert {r["tui_id"]: r["reason"] for r in luna_admin.list_rejects(session)} == {
            2: "amount '1,5x' does not parse",
            5: "txn_id is NULL",
            6: "txn_id is longer than 64 characters",
        }
        assert luna_scan.scan_position(session) == (6, 2)
    source.put(Row(3, "T3", status="USED"))
    source.put(Row(4, "T4", status="EXPIRED"))
    second = run_push(store, luna, source, clock)
    assert source.scans[-1] == (0, [2, 3, 4, 5, 6], 6)  # the lookback window, the watched and the rejected rows
    assert (second.scan.discovered, second.scan.rejected) == (1, 0)
    assert states(store) == {"T1": "successful", "T3": "successful"}
    third = run_push(store, luna, source, clock)
    assert source.scans[-1] == (0, [2, 5, 6], 6) and third.scan.discovered == 0
    assert luna.calls["create"] == 2


def test_a_lower_id_committed_after_a_higher_one_is_still_discovered(store, clock) -> None:
    source = FakeSource([Row(1, "T1"), Row(3, "T3")])  # id 2 is taken by a transaction not committed yet
    luna = FakeLuna()
    run_push(store, luna, source, clock)
    source.put(Row(2, "T2"))
    report = run_push(store, luna, source, clock)
    assert report.scan.discovered == 1 and report.scan.already_known == 0
    assert states(store) == {"T1": "successful", "T2": "successful", "T3": "successful"}
    assert luna.calls["create"] == 3 and not luna.duplicates()


def test_rejected_rows_are_rechecked_and_pushed_once_fixed(store, clock) -> None:
    source = FakeSource(
        [
            Row(1, "T1", reject_reason="no topup row with txn_id 'T1'"),  # its topup row committed later
            Row(2, "T2", amount=None, amount_raw="1,5x", reject_reason="amount '1,5x' does not parse"),
            Row(3, None, reject_reason="txn_id is NULL"),
        ]
    )
    luna = FakeLuna()
    assert run_push(store, luna, source, clock).scan.rejected == 3
    source.put(Row(1, "T1"))
    source.put(Row(3, "T3"))
    report = run_push(store, luna, source, clock)
    assert (report.scan.discovered, report.scan.rejected) == (2, 0)
    assert states(store) == {"T1": "successful", "T3": "successful"} and luna.calls["create"] == 2
    with store.session() as session:
        assert luna_admin.count_by_state(session)["rejected"] == 1
        assert [r["tui_id"] for r in luna_admin.list_rejects(session)] == [2]
        resolved = {r["tui_id"]: r["resolved_at"] for r in luna_admin.list_rejects(session, include_resolved=True)}
    assert resolved[1] is not None and resolved[3] is not None and resolved[2] is None
    assert show(store, txn_id="T1")["rejects"][0]["resolved_at"] is not None
    run_push(store, luna, source, clock)
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


def test_txns_resent_after_an_unknown_outcome_are_counted_as_possible_duplicates(store, clock) -> None:
    luna = FakeLuna(lookup_on=False, create_faults={"T1": ["commit_lost"], "T2": ["lost"]})
    run_push(store, luna, FakeSource([Row(1, "T1"), Row(2, "T2"), Row(3, "T3")]), clock, unknown_outcome="resend")
    assert luna.duplicates() == ["T1"]  # T1's first create was committed: resending credited it twice
    status = luna_status(store)
    assert status["possible_duplicates"] == 2  # T1 and T2 were resent unchecked; T3 was not
    assert "resend" in history_kinds(store, "T1") and "resend" not in history_kinds(store, "T3")


def test_validation_error_fails_without_retry(store, clock) -> None:
    luna = FakeLuna(create_faults={"T1": ["reject", "reject"]})
    report = run_push(store, luna, FakeSource([Row(1, "T1")]), clock)
    assert states(store) == {"T1": "failed"} and luna.calls["create"] == 1
    assert report.counts.rejected_by_luna == 1 and report.status == "PARTIAL"
    with store.session() as session:
        assert "VALIDATION" in luna_admin.get_txn(session, txn_id="T1")["last_error"]


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
        assert luna_admin.get_txn(session, txn_id="T1")["last_error"] == "meter offline"


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
        assert luna_admin.leased(session, now=clock()) == []


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
    ghost = f"{socket.gethostname()}:{2**22 + 11}:dead:{namespace_id()}"
    with store.writer() as session:  # a process that committed both intents, sent T1 only, and died
        moves.claim_sends(
            session, owner=ghost, now=clock(), lease_until=clock.now.replace(year=2100), due_before=clock(), limit=10
        )
        moves.mark_sending(session, owner=ghost, txn_ids=["T1", "T2"], now=clock())
    luna.create_work_order(txn_id="T1", meter="M-1", amount=Decimal(1500), currency="XAF")
    assert recover_dead_claims(store, owner=f"{socket.gethostname()}:1:new:{namespace_id()}") == ["T1", "T2"]
    run_push(store, luna, source, clock)
    assert states(store) == {"T1": "successful", "T2": "successful"}
    assert luna.calls["lookup"] == 2 and not luna.duplicates() and len(luna.orders) == 2


class _FirstCreateWaits:
    """A LUNA whose first create of each engine waits until every engine has started creating."""

    def __init__(self, luna: FakeLuna, started: list[threading.Event], me: int) -> None:
        self.luna, self.started, self.me = luna, started, me
        self.lookup_available = luna.lookup_available
        self.get_work_order, self.lookup = luna.get_work_order, luna.lookup

    def create_work_order(self, **kwargs):
        self.started[self.me].set()
        for event in self.started:
            event.wait(10)
        return self.luna.create_work_order(**kwargs)


def test_two_engines_on_one_store_never_send_a_txn_twice(store, clock) -> None:
    source = FakeSource([Row(i, f"T{i}") for i in range(1, 61)])
    luna = FakeLuna()
    discover(store, source, actor="t", now=clock())
    options = PushOptions.from_settings(Settings(), concurrency=4, batch_size=5, timeout=3600.0)
    started = [threading.Event(), threading.Event()]
    engines = [
        PushEngine(store, _FirstCreateWaits(luna, started, i), options, owner=f"w{i}:1", clock=clock, sleep=clock.sleep)
        for i in (0, 1)
    ]
    threads = [threading.Thread(target=engine.run) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert set(states(store).values()) == {"successful"}
    assert luna.calls["create"] == 60 and not luna.duplicates()
    assert sum(engine.counts.creates for engine in engines) == 60
    assert all(engine.counts.creates > 0 for engine in engines)


def _lease_end(store, txn_id: str) -> datetime:
    with store.session() as session:
        value = luna_admin.get_txn(session, txn_id=txn_id)["claimed_until"]
    return datetime.fromisoformat(value) if value else datetime.min.replace(tzinfo=UTC)


def _until(condition, seconds: float = 5.0) -> bool:
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_a_stopping_push_keeps_renewing_the_lease_of_an_in_flight_create(store, clock) -> None:
    luna = FakeLuna()
    discover(store, FakeSource([Row(1, "T1")]), actor="t", now=clock())
    posted, answered = threading.Event(), threading.Event()

    class SlowPost:
        lookup_available = True
        get_work_order, lookup = luna.get_work_order, luna.lookup

        def create_work_order(self, **kwargs):
            posted.set()
            answered.wait(10)  # still inside the POST, e.g. sleeping on Retry-After
            return luna.create_work_order(**kwargs)

    options = PushOptions.from_settings(Settings(), timeout=10.0, lease_seconds=120.0, concurrency=1)
    first = PushEngine(store, SlowPost(), options, owner="a:1", clock=clock, sleep=clock.sleep)
    thread = threading.Thread(target=first.run)
    thread.start()
    try:
        assert posted.wait(5)
        for _ in range(4):  # past the deadline (stopping), then well past the first lease
            clock.advance(100)
            assert _until(lambda: _lease_end(store, "T1") > clock() + timedelta(seconds=30))
        second = PushEngine(
            store, luna, PushOptions.from_settings(Settings(), timeout=5.0), owner="b:2", clock=clock, sleep=clock.sleep
        )
        assert second.run().creates == 0
    finally:
        answered.set()
        thread.join(10)
    assert luna.by_reference("T1") == ["WO-0001"] and not luna.duplicates()
    with store.session() as session:
        assert luna_admin.get_txn(session, txn_id="T1")["work_order_id"] == "WO-0001"


def test_the_lease_outlasts_the_worst_case_of_one_create() -> None:
    from camsync.clients.http import RetryPolicy

    policy, settings = RetryPolicy(), Settings()
    worst = policy.attempts * (settings.timeout_seconds + policy.max_retry_after)
    assert PushOptions.from_settings(settings).lease_seconds > worst


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
        assert luna_admin.get_txn(session, txn_id="T1")["tui_id"] == 1


def test_reset_txn_rediscovers_it_and_adopts_its_work_order(store, clock) -> None:
    luna = FakeLuna()
    source = FakeSource([Row(1, "T1"), Row(2, "T2")])
    run_push(store, luna, source, clock)
    reset(store, txn_id="T1")
    assert states(store) == {"T2": "successful"}
    run_push(store, luna, source, clock)
    assert states(store) == {"T1": "successful", "T2": "successful"}
    assert luna.calls["create"] == 2 and luna.calls["lookup"] == 0  # its work order is in its history
    kinds = [e["kind"] for e in show(store, txn_id="T1")["history"]]
    assert kinds.count("discovered") == 2 and "operator" in kinds and kinds[-1] == "poll"
    with store.session() as session:
        assert luna_admin.get_txn(session, txn_id="T1")["work_order_id"] == "WO-0001"


@pytest.mark.parametrize("lookup_on", [False, True])
def test_reset_never_resends_a_txn_whose_work_order_is_known(store, clock, lookup_on: bool) -> None:
    luna = FakeLuna(lookup_on=lookup_on)
    source = FakeSource([Row(1, "T1")])
    run_push(store, luna, source, clock, unknown_outcome="resend")
    plan = reset(store, txn_id="T1")
    assert "never sent again" in plan.warnings[0]
    report = run_push(store, luna, source, clock, unknown_outcome="resend")
    assert luna.by_reference("T1") == ["WO-0001"] and not luna.duplicates()
    assert luna.calls["create"] == 1 and luna.calls["lookup"] == 0
    assert states(store) == {"T1": "successful"} and report.counts.creates == 0


def test_reset_warnings_say_what_happens_to_each_txn(store, clock) -> None:
    luna = FakeLuna(create_faults={"T2": ["reject"]})
    run_push(store, luna, FakeSource([Row(1, "T1"), Row(2, "T2")]), clock)
    assert "followed (polled) again, never sent again" in reset(store, txn_id="T1").warnings[0]
    assert "LUNA_UNKNOWN_OUTCOME=resend" in plan_reset(store, txn_id="T2").warnings[0]
    assert "never sent again" in plan_reset(store, txn_id=None).warnings[0]


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
    # T1's work order is in its history: polled again; T2 (imported as done, no work order known) is held
    assert states(store) == {"T1": "successful", "T2": "unknown"} and luna.calls["create"] == 0
    luna.lookup_on = True
    replay(Settings(), store, txn_id="T2", client=luna, clock=clock, sleep=clock.sleep)
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


class _TwoOrders(FakeLuna):
    """LUNA already holds two work orders for every reference: a failed one and a successful one."""

    def lookup(self, txn_id: str) -> list[WorkOrder]:
        self.calls["lookup"] += 1
        return [
            WorkOrder("WO-A", "Failed", "meter offline", {}, txn_id),
            WorkOrder("WO-B", "Successful", None, {}, txn_id),
        ]


def test_several_work_orders_adopt_the_successful_one_and_are_counted(store, clock) -> None:
    luna = _TwoOrders(create_faults={"T1": ["lost"]})
    report = run_push(store, luna, FakeSource([Row(1, "T1")]), clock)
    with store.session() as session:
        txn = luna_admin.get_txn(session, txn_id="T1")
        run = list_runs(session, job="luna")[0]
    assert (txn["state"], txn["work_order_id"]) == ("successful", "WO-B")
    events = [(e["kind"], e["work_order_id"]) for e in show(store, txn_id="T1")["history"]]
    assert ("duplicate_work_orders", "WO-B") in events
    assert report.counts.duplicates == 1 and run.details["duplicate_work_orders"] == 1
    assert report.status == "PARTIAL" and "several work orders" in (report.message or "")
    assert luna_status(store)["duplicate_work_orders"] == 1


def test_best_work_order_prefers_successful_then_running() -> None:
    options = PushOptions()
    failed, running, done = (WorkOrder(f"WO-{s}", s, None, {}) for s in ("Failed", "InProgress", "Successful"))
    assert best_work_order([failed, running, done], options.terminal_state) is done
    assert best_work_order([failed, running], options.terminal_state) is running
    assert best_work_order([failed], options.terminal_state) is failed


def test_a_duplicate_answer_naming_several_work_orders_is_recorded(store, clock) -> None:
    class Duplicate(FakeLuna):
        def create_work_order(self, **kwargs) -> WorkOrder:
            self.calls["create"] += 1
            orders = (WorkOrder("WO-A", "Failed", None, {}, "T1"), WorkOrder("WO-B", "InProgress", None, {}, "T1"))
            return replace(orders[0], siblings=orders)

    luna = Duplicate(statuses={"WO-B": ["Successful"]})
    run_push(store, luna, FakeSource([Row(1, "T1")]), clock)
    with store.session() as session:
        assert luna_admin.get_txn(session, txn_id="T1")["work_order_id"] == "WO-B"
    assert luna_status(store)["duplicate_work_orders"] == 1


def test_an_ambiguous_lookup_holds_the_txn_even_under_resend(store, clock) -> None:
    class Ambiguous(FakeLuna):
        def lookup(self, txn_id: str) -> list[WorkOrder]:
            raise LookupAmbiguous("work orders without the ClientReference field")

    luna = Ambiguous(create_faults={"T1": ["lost"]})
    run_push(store, luna, FakeSource([Row(1, "T1")]), clock, unknown_outcome="resend")
    assert states(store) == {"T1": "unknown"} and luna.calls["create"] == 1


def test_an_answer_arriving_after_the_claim_was_lost_is_kept_as_an_orphan(store, clock) -> None:
    luna = FakeLuna()
    source = FakeSource([Row(1, "T1")])
    discover(store, source, actor="t", now=clock())
    posted, answered = threading.Event(), threading.Event()

    class SlowPost:
        lookup_available = True
        get_work_order, lookup = luna.get_work_order, luna.lookup

        def create_work_order(self, **kwargs):
            posted.set()
            answered.wait(10)
            return luna.create_work_order(**kwargs)

    options = PushOptions.from_settings(Settings(), timeout=3600.0, concurrency=1)
    engine = PushEngine(store, SlowPost(), options, owner="a:1", clock=clock, sleep=clock.sleep)
    thread = threading.Thread(target=engine.run)
    thread.start()
    assert posted.wait(5)
    with store.writer() as session:  # the lease lapsed and another push took the txn over
        luna_txns.release_claims(session, owner="a:1")
        moves.claim_sends(session, owner="b:2", now=clock(), lease_until=clock(), due_before=clock(), limit=1)
    answered.set()
    thread.join(10)
    assert engine.counts.orphans == 1
    events = [(e["kind"], e["work_order_id"]) for e in show(store, txn_id="T1")["history"]]
    assert ("orphan", "WO-0001") in events
    with store.writer() as session:
        luna_txns.release_claims(session, owner="b:2")
    reset(store, txn_id="T1")
    run_push(store, luna, source, clock)  # rediscovered: its orphaned work order is followed, not sent again
    assert luna.by_reference("T1") == ["WO-0001"] and states(store) == {"T1": "successful"}


def test_reset_and_replay_check_the_lease_inside_their_write(store, clock, monkeypatch) -> None:
    import camsync.sync.luna.admin as admin
    import camsync.sync.luna.replay as luna_job
    from camsync.errors import UsageError

    luna = FakeLuna()
    run_push(store, luna, FakeSource([Row(1, "T1")]), clock)
    with store.writer() as session:  # a push claims the txn after the operator's checks ran
        luna_txns.transition(
            session,
            txn_id="T1",
            owner=None,
            from_states=("successful",),
            now=clock(),
            kind="t",
            message="t",
            changes={"state": "discovered", "claimed_by": "w:1", "claimed_until": clock.now.replace(year=2100)},
        )
    monkeypatch.setattr(admin, "plan_reset", lambda store, txn_id: admin.ResetPlan("txn", {}, None, [], []))
    with pytest.raises(UsageError, match="being pushed"):
        reset(store, txn_id="T1")
    real_leased = luna_admin.leased
    monkeypatch.setattr(luna_job.luna_admin, "leased", lambda session, **kw: [])
    with pytest.raises(UsageError, match="claimed it"):
        replay(Settings(), store, txn_id="T1", client=luna, clock=clock, sleep=clock.sleep)
    monkeypatch.setattr(luna_job.luna_admin, "leased", real_leased)
    assert states(store) == {"T1": "discovered"} and luna.calls["create"] == 1


def test_the_app_db_is_read_before_the_store_is_locked(store, clock) -> None:
    other_writer_done: list[bool] = []

    class Probing(FakeSource):
        def scan(self, **kwargs):
            def write() -> None:  # another push recording its scan while this one reads the app DB
                with store.writer() as session:
                    luna_scan.lock_scan_cursor(session)
                other_writer_done.append(True)

            thread = threading.Thread(target=write, daemon=True)
            thread.start()
            thread.join(3)
            return super().scan(**kwargs)

    discover(store, Probing([Row(1, "T1")]), actor="t", now=clock())
    assert other_writer_done == [True]
    assert states(store) == {"T1": "discovered"}
