"""`luna reconcile` on both databases: per day, USED rows of the app DB against successful txns of the store."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from test_luna_support import FakeClock, FakeLuna, FakeSource, Row

from camsync.settings import Settings
from camsync.sync.luna.options import PushOptions
from camsync.sync.luna.push import push
from camsync.sync.luna.reconcile import day_of, reconcile
from camsync.sync.luna.states import TxnState

D1, D2 = "2026-03-01 08:00:00", "2026-03-02T23:30:00+00:00"


def run_push(store, luna: FakeLuna, source: FakeSource, clock: FakeClock) -> None:
    settings = Settings()
    options = PushOptions.from_settings(settings, timeout=3600.0, retry_base=1.0)
    push(settings, store, options=options, client=luna, source=source, clock=clock, sleep=clock.sleep)


def test_day_of_reads_text_and_aware_times_in_utc() -> None:
    assert day_of("2026-03-01 08:00:37") == "2026-03-01"
    assert day_of("2026-03-01T23:30:00-02:00") == "2026-03-02"
    assert day_of(None) == day_of("yesterday") == "undated"


def test_a_matching_store_reconciles(store) -> None:
    source = FakeSource([Row(1, "T1", created_at=D1), Row(2, "T2", created_at=D2, amount=Decimal("700"))])
    run_push(store, FakeLuna(), source, FakeClock())
    report = reconcile(store, source)
    assert report.matches and not report.differences
    assert [(d.day, d.used, d.used_amount, d.successful, d.successful_amount) for d in report.days] == [
        ("2026-03-01", 1, Decimal("1500"), 1, Decimal("1500")),
        ("2026-03-02", 1, Decimal("700"), 1, Decimal("700")),
    ]


def test_every_difference_is_listed_under_its_kind(store) -> None:
    source = FakeSource(
        [
            Row(1, "T1", created_at=D1),
            Row(2, "T2", created_at=D1),  # LUNA reports it failed
            Row(3, "T3", created_at=D1, amount=None, amount_raw="1,5x", reject_reason="amount '1,5x' does not parse"),
            Row(4, "T4", created_at=D2),  # successful, then its app row stops being USED
            Row(5, "T5", created_at=D2, status="EXPIRED"),
        ]
    )
    luna = FakeLuna(txn_statuses={"T2": ["Failed"]})
    run_push(store, luna, source, FakeClock())
    source.put(Row(6, "T6", created_at=D2))  # not pushed yet
    source.put(Row(4, "T4", created_at=D2, status="EXPIRED"))
    report = reconcile(store, source)
    assert not report.matches
    kinds = {(d.kind, d.txn_id) for d in report.differences}
    assert kinds == {("failed", "T2"), ("rejected", "T3"), ("not_sent", "T6"), ("no_used_row", "T4")}
    first, second = report.days
    assert (first.used, first.successful, first.states["failed"], first.rejected) == (3, 1, 1, 1)
    assert first.used_amount == Decimal("3000")  # the rejected row's amount does not parse
    assert (second.used, second.successful, second.not_sent, second.no_used_row) == (1, 1, 1, 1)
    assert set(first.states) == {s.value for s in TxnState} - {"successful"}  # a new state shows up on its own
    only_second = reconcile(store, source, date_from=date(2026, 3, 2), date_to=date(2026, 3, 2))
    assert [d.day for d in only_second.days] == ["2026-03-02"]
    assert {d.kind for d in only_second.differences} == {"not_sent", "no_used_row"}
    data = report.as_dict()
    assert data["matches"] is False and data["days"][0]["used_amount"] == "3000"


def test_reconcile_compares_batch_by_batch(store) -> None:
    source = FakeSource([Row(i, f"T{i}", created_at=D1) for i in range(1, 24)])
    run_push(store, FakeLuna(), source, FakeClock())
    report = reconcile(store, source, batch_size=5)
    assert report.matches and report.rows_read == 23 and report.days[0].successful == 23


def test_lookup_finds_work_orders_for_rows_that_are_not_used_and_not_sent_rows_already_at_luna(store) -> None:
    source = FakeSource([Row(1, "T1", created_at=D1), Row(5, "T5", created_at=D1, status="EXPIRED")])
    luna = FakeLuna()
    run_push(store, luna, source, FakeClock())
    luna.orders.update({"WO-OLD5": "T5", "WO-OLD6": "T6"})  # created by another program
    source.put(Row(6, "T6", created_at=D2))  # USED, not sent by camsync, already at LUNA
    source.put(Row(7, "T7", created_at=D2, status="READY"))  # not USED, nothing at LUNA
    source.put(Row(8, "T8", created_at=D2))  # USED, not sent, not at LUNA
    without = reconcile(store, source)
    assert {(d.kind, d.txn_id, d.detail) for d in without.differences} == {
        ("not_sent", "T6", ""),
        ("not_sent", "T8", ""),
    }
    assert without.lookups == 0
    before = luna.calls["lookup"]
    report = reconcile(store, source, lookup=luna.lookup, lookup_threads=2)
    assert report.lookups == luna.calls["lookup"] - before == 4  # T5, T6, T7, T8: the rows the store does not know
    assert [(d.day, d.kind, d.txn_id) for d in report.differences] == [
        ("2026-03-01", "luna_only", "T5"),
        ("2026-03-02", "not_sent", "T6"),
        ("2026-03-02", "not_sent", "T8"),
    ]
    luna_only, at_luna, plain = report.differences
    assert "app row is EXPIRED" in luna_only.detail and "WO-OLD5" in luna_only.detail
    assert at_luna.detail.startswith("already at LUNA as WO-OLD6") and plain.detail == ""
    first, second = report.days
    assert (first.luna_only, first.differences, second.not_sent, second.luna_only) == (1, 1, 2, 0)
    assert report.as_dict()["lookups"] == 4 and not report.matches
