"""The LUNA push at its edges, on both databases: money checks, answers about the endpoint rather than the txn,
an unreachable LUNA, the defence against a run rejected alike, and the bulk replay that recovers from each."""

from __future__ import annotations

from decimal import Decimal

import pytest
from test_luna_support import FakeClock, FakeLuna, FakeSource, Row

from camsync.clients.luna_target import LunaEndpointError
from camsync.errors import ExitCode, UpstreamError
from camsync.settings import Settings, load_settings
from camsync.store import luna_admin
from camsync.store.runs import list_runs
from camsync.sync.luna.admin import status as luna_status
from camsync.sync.luna.options import PushOptions
from camsync.sync.luna.push import PushReport, push
from camsync.sync.luna.replay import NeedsReview, plan_bulk, replay, replay_many


def run_push(store, luna: FakeLuna, source: FakeSource, clock: FakeClock, settings: Settings | None = None, **kw):
    settings = settings or Settings()
    options = PushOptions.from_settings(settings, **{"timeout": 3600.0, "retry_base": 1.0, **kw})
    return push(settings, store, options=options, client=luna, source=source, clock=clock, sleep=clock.sleep)


def txns(store) -> dict[str, dict]:
    with store.session() as session:
        return {row["txn_id"]: row for row in luna_admin.list_txns(session, limit=1000)}


def states(store) -> dict[str, str]:
    return {txn_id: row["state"] for txn_id, row in txns(store).items()}


def last_run(store) -> dict:
    with store.session() as session:
        return list_runs(session, job="luna", limit=1)[0].as_dict()


def rows(n: int, **extra) -> list[Row]:
    return [Row(i, f"T{i}", **extra) for i in range(1, n + 1)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# --- amounts and money checks -------------------------------------------------------------------------------


def test_a_fractional_amount_is_sent_exactly_as_written(store, clock) -> None:
    luna = FakeLuna()
    run_push(store, luna, FakeSource([Row(1, "T1", amount=Decimal("1250.50"), amount_raw="1250.50")]), clock)
    assert luna.amounts == {"T1": Decimal("1250.50")}
    assert states(store) == {"T1": "successful"}


def test_amounts_that_disagree_or_pass_the_maximum_are_held_never_sent(store, clock) -> None:
    source = FakeSource(
        [
            Row(1, "T1", topup_amount=Decimal("1500"), has_topup_amount=True),
            Row(
                2,
                "T2",
                amount=Decimal("99999999999999999999999"),
                amount_raw="99999999999999999999999",
                topup_amount=Decimal("1000.00"),
                has_topup_amount=True,
            ),
            Row(3, "T3", topup_amount=None, has_topup_amount=True),
            Row(4, "T4", amount=Decimal("2000000"), amount_raw="2000000"),
        ]
    )
    report = run_push(store, FakeLuna(), source, clock)
    assert states(store) == {"T1": "successful", "T2": "held", "T3": "held", "T4": "held"}
    found = txns(store)
    assert "differs from topups.amount 1000.00" in found["T2"]["last_error"]
    assert "topups.amount is NULL" in found["T3"]["last_error"]
    assert "over LUNA_MAX_AMOUNT=1000000" in found["T4"]["last_error"]
    assert report.status == "PARTIAL" and "3 txns held" in (report.message or "")
    assert "camsync luna replay TXN --force" in (report.message or "")
    listed = luna_status(store)
    assert [t["txn_id"] for t in listed["txns"] if t["state"] == "held"] == ["T4", "T3", "T2"]


def test_the_maximum_is_a_setting(store, clock) -> None:
    settings = load_settings({"LUNA_MAX_AMOUNT": "5000000"})
    luna = FakeLuna()
    run_push(store, luna, FakeSource([Row(1, "T1", amount=Decimal("2000000"), amount_raw="2000000")]), clock, settings)
    assert states(store) == {"T1": "successful"}


def test_a_held_txn_is_sent_only_after_a_forced_replay(store, clock) -> None:
    luna = FakeLuna()
    source = FakeSource([Row(1, "T1", topup_amount=Decimal("1000"), has_topup_amount=True)])
    run_push(store, luna, source, clock)
    with pytest.raises(NeedsReview) as info:
        replay(Settings(), store, txn_id="T1", client=luna, clock=clock, sleep=clock.sleep)
    assert info.value.exit_code == ExitCode.PARTIAL and "--force" in (info.value.hint or "")
    assert luna.calls["create"] == 0
    run_push(store, luna, source, clock)  # a push never sends it on its own
    assert luna.calls["create"] == 0
    result = replay(Settings(), store, txn_id="T1", force=True, client=luna, clock=clock, sleep=clock.sleep)
    assert (result.before, result.after) == ("held", "successful")
    assert luna.amounts == {"T1": Decimal("1500")} and luna.duplicates() == []


# --- about the endpoint, not the txn ------------------------------------------------------------------------


def test_no_such_route_stops_the_push_with_exit_4_and_fails_no_txn(store, clock) -> None:
    luna = FakeLuna(no_route=True)
    source = FakeSource(rows(20))
    with pytest.raises(LunaEndpointError) as info:
        run_push(store, luna, source, clock)
    assert info.value.exit_code == ExitCode.CONFIG
    assert set(states(store).values()) == {"discovered"}
    assert luna.calls["create"] <= 16  # the creates in flight when the first answer came back; no more
    assert all(row["next_attempt_at"] is None for row in txns(store).values())
    assert last_run(store)["status"] == "FAILED"
    luna.no_route = False  # the operator fixed LUNA_BASE_URL
    report = run_push(store, luna, source, clock)
    assert report.status == "SUCCESS" and set(states(store).values()) == {"successful"}
    assert luna.duplicates() == [] and len(luna.orders) == 20


def test_a_status_route_that_does_not_exist_stops_the_run_and_leaves_the_work_order_followed(store, clock) -> None:
    luna = FakeLuna()
    source = FakeSource(rows(1))
    run_push(store, luna, source, clock, wait=False)
    assert states(store) == {"T1": "created"}
    luna.no_route = True
    clock.advance(10)
    with pytest.raises(LunaEndpointError):
        run_push(store, luna, source, clock)
    row = txns(store)["T1"]
    assert row["state"] == "created" and row["polls"] == 0
    luna.no_route = False
    run_push(store, luna, source, clock)
    assert states(store) == {"T1": "successful"}


def test_an_unreachable_luna_ends_the_run_within_a_minute_with_exit_1_touching_no_txn(store, clock) -> None:
    luna = FakeLuna(down=True)
    source = FakeSource(rows(5))
    started = clock()
    with pytest.raises(UpstreamError) as info:
        run_push(store, luna, source, clock)
    assert info.value.exit_code == ExitCode.FAILED and "unreachable" in info.value.reason
    assert (clock() - started).total_seconds() < 120
    assert set(states(store).values()) == {"discovered"}
    assert all(row["next_attempt_at"] is None for row in txns(store).values())
    luna.down = False
    run_push(store, luna, source, clock)
    assert set(states(store).values()) == {"successful"} and luna.duplicates() == []


def test_no_wait_with_luna_down_is_a_failed_run_not_a_success(store, clock) -> None:
    luna = FakeLuna(down=True)
    with pytest.raises(UpstreamError):
        run_push(store, luna, FakeSource(rows(3)), clock, wait=False)
    assert last_run(store)["status"] == "FAILED"


def test_the_first_creates_rejected_alike_are_held_and_the_run_stops(store, clock) -> None:
    luna = FakeLuna(create_faults={f"T{i}": ["reject"] for i in range(1, 41)})
    source = FakeSource(rows(40))
    with pytest.raises(LunaEndpointError) as info:
        run_push(store, luna, source, clock, concurrency=1)
    assert "rejected the first 3 creates of this run alike" in info.value.reason
    found = states(store)
    held = sorted((t for t, s in found.items() if s == "held"), key=lambda t: int(t[1:]))
    sent = luna.calls["create"]
    assert held == [f"T{i}" for i in range(1, sent + 1)]  # the three, and those in flight when it tripped
    assert 3 <= sent <= 6 and "failed" not in found.values()
    assert sum(s == "discovered" for s in found.values()) == 40 - sent


def test_rejections_that_differ_are_answers_about_each_txn(store, clock) -> None:
    luna = FakeLuna(create_faults={"T1": ["reject"]})
    run_push(store, luna, FakeSource(rows(5)), clock)
    assert states(store) == {"T1": "failed", **{f"T{i}": "successful" for i in range(2, 6)}}


# --- recovery in one command --------------------------------------------------------------------------------


def test_replay_by_state_takes_every_txn_of_that_state_and_never_a_successful_one(store, clock) -> None:
    luna = FakeLuna(create_faults={"T1": ["reject"], "T2": ["reject"]})
    report: PushReport = run_push(store, luna, FakeSource(rows(4)), clock)
    assert report.status == "PARTIAL"
    assert states(store) == {"T1": "failed", "T2": "failed", "T3": "successful", "T4": "successful"}
    plan = plan_bulk(Settings(), store, state="failed")
    assert [t["txn_id"] for t in plan.txns] == ["T1", "T2"] and plan.refused is None
    done = replay_many(Settings(), store, plan, client=luna, clock=clock, sleep=clock.sleep)
    assert done.replayed == 2 and done.after == {"successful": 2}
    assert set(states(store).values()) == {"successful"}
    assert sorted(luna.orders.values()) == ["T1", "T2", "T3", "T4"]
    with pytest.raises(Exception, match="never re-sent in bulk"):
        plan_bulk(Settings(), store, state="successful")


def test_replay_of_unknowns_looks_each_up_first(store, clock) -> None:
    luna = FakeLuna(lookup_on=False, create_faults={"T1": ["commit_lost"], "T2": ["lost"]})
    run_push(store, luna, FakeSource(rows(2)), clock)
    assert states(store) == {"T1": "unknown", "T2": "unknown"}
    assert plan_bulk(load_settings({"LUNA_LOOKUP_URL": "none"}), store, state="unknown").refused
    luna.lookup_on = True
    plan = plan_bulk(Settings(), store, state="unknown")
    replay_many(Settings(), store, plan, client=luna, clock=clock, sleep=clock.sleep)
    assert set(states(store).values()) == {"successful"}
    assert luna.duplicates() == [] and sorted(luna.orders.values()) == ["T1", "T2"]
