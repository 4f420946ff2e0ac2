"""The LUNA full sweep, on both databases: a row the incremental scan missed is found and pushed once, and the
sweep interval is honoured (an injected clock, no sleeps)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_luna_support import FakeClock, FakeLuna, FakeSource, Row

from camsync.settings import Settings
from camsync.store import luna_admin, luna_sweep
from camsync.sync.luna.options import PushOptions
from camsync.sync.luna.push import PushReport, push
from camsync.sync.luna.sweep import sweep

DAY = 86400


def run_push(store, luna: FakeLuna, source: FakeSource, clock: FakeClock, **overrides) -> PushReport:
    settings = Settings()
    options = PushOptions.from_settings(settings, **{"timeout": 3600.0, "retry_base": 1.0, **overrides})
    return push(settings, store, options=options, client=luna, source=source, clock=clock, sleep=clock.sleep)


def big_app_db(top: int = 10_000, used: tuple[int, ...] = (1, 10_000)) -> FakeSource:
    """`top` rows, all EXPIRED but those of `used`, and id 5,000 missing (its transaction not committed yet)."""
    rows = [Row(i, f"T{i}", status="USED" if i in used else "EXPIRED") for i in range(1, top + 1) if i != 5000]
    return FakeSource(rows)


def states(store) -> dict[str, str]:
    with store.session() as session:
        return {row["txn_id"]: row["state"] for row in luna_admin.list_txns(session, limit=1000)}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_a_row_committed_late_far_below_the_cursor_is_found_by_the_sweep_and_pushed_once(store, clock) -> None:
    source, luna = big_app_db(), FakeLuna()
    first = run_push(store, luna, source, clock)
    assert first.scan.from_id == 0 and first.sweep is not None and first.sweep.by_scan  # the first scan read it all
    assert states(store) == {"T1": "successful", "T10000": "successful"}
    source.put(Row(5000, "T5000"))  # committed late: 5,000 ids below the cursor, outside the lookback window
    missed = run_push(store, luna, source, clock)
    assert missed.scan.from_id == 9000 and missed.scan.discovered == 0 and missed.sweep is None
    assert "T5000" not in states(store)  # the incremental scan cannot see it
    clock.advance(DAY)
    swept = run_push(store, luna, source, clock)
    assert swept.sweep is not None and not swept.sweep.by_scan
    assert (swept.sweep.rows, swept.sweep.used, swept.sweep.missed, swept.sweep.discovered) == (10_000, 3, 1, 1)
    assert states(store)["T5000"] == "successful"
    assert luna.by_reference("T5000") == ["WO-0003"] and not luna.duplicates()
    again = run_push(store, luna, source, clock, sweep=True)  # on demand: nothing missed any more
    assert again.sweep is not None and again.sweep.missed == 0
    assert luna.calls["create"] == 3
    with store.session() as session:
        history = [e["kind"] for e in luna_admin.txn_history(session, txn_id="T5000")]
    assert history[0] == "discovered"  # recorded by the table's `found` move, like the scan does


def test_the_sweep_records_a_missed_bad_row_as_rejected_and_never_sends_it(store, clock) -> None:
    source, luna = big_app_db(), FakeLuna()
    run_push(store, luna, source, clock)
    source.put(Row(5000, "T5000", amount=None, amount_raw="1,5x", reject_reason="amount '1,5x' does not parse"))
    report = run_push(store, luna, source, clock, sweep=True)
    assert report.sweep is not None and (report.sweep.missed, report.sweep.rejected) == (1, 1)
    with store.session() as session:
        assert [r["tui_id"] for r in luna_admin.list_rejects(session)] == [5000]
    assert luna.calls["create"] == 2
    again = run_push(store, luna, source, clock, sweep=True)
    assert again.sweep is not None and again.sweep.missed == 0  # a known reject is not "missed" again


def test_the_sweep_interval_is_honoured(store, clock) -> None:
    source, luna = big_app_db(), FakeLuna()
    run_push(store, luna, source, clock)  # the first scan counts as the sweep
    with store.session() as session:
        swept_at = luna_sweep.last_sweep(session)
    assert swept_at is not None and swept_at <= clock.now
    clock.now = swept_at + timedelta(seconds=DAY - 1)
    assert run_push(store, luna, source, clock).sweep is None
    clock.now = swept_at + timedelta(seconds=DAY)
    due = run_push(store, luna, source, clock)
    assert due.sweep is not None and due.sweep.rows == len(source.rows)
    with store.session() as session:
        assert luna_sweep.last_sweep(session) == swept_at + timedelta(seconds=DAY)
    clock.advance(DAY / 2)
    assert run_push(store, luna, source, clock).sweep is None
    assert run_push(store, luna, source, clock, sweep_interval=DAY / 4).sweep is not None
    assert [scan[0] for scan in source.scans].count(0) == 3  # the first scan and the two sweeps read from id 0


def test_interval_zero_sweeps_only_on_demand(store, clock) -> None:
    source, luna = big_app_db(), FakeLuna()
    first = run_push(store, luna, source, clock, sweep_interval=0)
    assert first.sweep is None
    source.put(Row(5000, "T5000"))
    clock.advance(30 * DAY)
    assert run_push(store, luna, source, clock, sweep_interval=0).sweep is None
    forced = run_push(store, luna, source, clock, sweep_interval=0, sweep=True)
    assert forced.sweep is not None and forced.sweep.discovered == 1
    assert states(store)["T5000"] == "successful"


def test_the_setting_reaches_the_push_options() -> None:
    from camsync.settings import load_settings

    assert PushOptions.from_settings(Settings()).sweep_interval == DAY
    settings = load_settings({"LUNA_SWEEP_INTERVAL_SECONDS": "0"})
    assert PushOptions.from_settings(settings).sweep_interval == 0


def test_the_sweep_compares_batch_by_batch(store, clock) -> None:
    source = FakeSource([Row(i, f"T{i}") for i in range(1, 26)])
    report = sweep(store, source, actor="test", now=clock(), batch_size=10)
    assert (report.rows, report.discovered, report.last_id) == (25, 25, 25)
    again = sweep(store, source, actor="test", now=clock(), batch_size=10)
    assert (again.missed, again.already_known) == (0, 0)
    assert len(states(store)) == 25
