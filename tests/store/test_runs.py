"""The run ledger on both databases: recording runs, reaping abandoned ones, the old worker's view."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from camsync.store import runs as q
from camsync.store.base import utcnow
from camsync.sync.ledger import recorded_run


def test_recorded_run_success_writes_counts_and_duration(store) -> None:
    with recorded_run(store, job="smartup", run_type="products") as run:
        run.add(fetched=5, inserted=3, unchanged=2)
    with store.session() as session:
        row = q.get_run(session, run_id=run.id)
        assert row is not None
        assert (row.status, row.fetched, row.inserted, row.unchanged) == ("SUCCESS", 5, 3, 2)
        assert row.finished_at is not None and row.finished_at >= row.started_at
        assert row.details["duration_seconds"] >= 0
        assert row.started_at.tzinfo is not None


def test_recorded_run_exception_marks_failed_and_propagates(store) -> None:
    with pytest.raises(RuntimeError), recorded_run(store, job="luna", run_type="push") as run:
        raise RuntimeError("boom")
    with store.session() as session:
        row = q.get_run(session, run_id=run.id)
        assert row.status == "FAILED"
        assert "boom" in row.error_message


def test_dead_process_run_is_reaped_by_next_run(store) -> None:
    import socket

    with store.session() as session:
        ghost = q.create_run(
            session, job="luna", run_type="push", trigger="cron", host=socket.gethostname(), pid=2**22 + 7, now=utcnow()
        )
        ghost_id = ghost.id
    with recorded_run(store, job="luna", run_type="push"):
        pass
    with store.session() as session:
        row = q.get_run(session, run_id=ghost_id)
        assert row.status == "FAILED"
        assert row.error_message.startswith("abandoned: its process is gone")


def test_stale_heartbeat_on_other_host_is_reaped(store) -> None:
    import os

    old = utcnow() - timedelta(hours=2)
    with store.session() as session:
        ghost = q.create_run(
            session, job="smartup", run_type="orders", trigger="cron", host="elsewhere", pid=os.getpid(), now=old
        )
        ghost_id = ghost.id
        fresh = q.create_run(
            session, job="smartup", run_type="orders", trigger="cron", host="elsewhere", pid=os.getpid(), now=utcnow()
        )
        fresh_id = fresh.id
    with recorded_run(store, job="smartup", run_type="products", stale_seconds=900):
        pass
    with store.session() as session:
        assert q.get_run(session, run_id=ghost_id).status == "FAILED"
        assert "no heartbeat since" in q.get_run(session, run_id=ghost_id).error_message
        assert q.get_run(session, run_id=fresh_id).status == "RUNNING"


def test_old_worker_query_reads_full_runs_with_child_counts(store) -> None:
    with recorded_run(store, job="smartup", run_type="full") as full:
        with recorded_run(store, job="smartup", run_type="products", parent_id=full.id) as products:
            products.add(fetched=10, inserted=4, updated=1, unchanged=5)
        with recorded_run(store, job="smartup", run_type="orders", parent_id=full.id) as orders:
            orders.add(fetched=3, inserted=3)
            orders.fail("SmartUp answered A02-24-042", partial=False)
        full.fail("orders failed", partial=True)
    sql = (
        "SELECT status, synced_products_count, synced_orders_count, started_at, finished_at, error_message "
        "FROM smartup_sync_runs WHERE run_type='full'"
    )
    with store.engine.connect() as conn:
        rows = conn.execute(text(sql)).all()
    assert len(rows) == 1
    status, products_count, orders_count, started, finished, error = rows[0]
    assert (status, products_count, orders_count) == ("PARTIAL", 10, 3)
    assert started is not None and finished is not None
    assert error == "orders failed"


def test_list_runs_filters_by_job_and_status(store) -> None:
    with recorded_run(store, job="smartup", run_type="products"):
        pass
    with recorded_run(store, job="luna", run_type="push") as run:
        run.fail("x")
    with store.session() as session:
        assert [r.job for r in q.list_runs(session)] == ["luna", "smartup"]
        assert [r.job for r in q.list_runs(session, job="smartup")] == ["smartup"]
        assert [r.job for r in q.list_runs(session, status="failed")] == ["luna"]
        assert len(q.list_runs(session, limit=1)) == 1


def test_old_worker_query_sees_run_all_passes_as_full_runs(store) -> None:
    with recorded_run(store, job="run-all", run_type="run-all") as pass_:
        with recorded_run(store, job="smartup", run_type="products", parent_id=pass_.id) as products:
            products.add(fetched=2, unchanged=2)
        with recorded_run(store, job="smartup", run_type="orders", parent_id=pass_.id) as orders:
            orders.add(fetched=4, inserted=1, updated=3)
        with recorded_run(store, job="luna", run_type="push", parent_id=pass_.id) as push:
            push.fail("LUNA down")
        pass_.fail("luna-push: FAILED", partial=True)
    with (
        recorded_run(store, job="run-all", run_type="run-all") as luna_only,
        recorded_run(store, job="luna", run_type="push", parent_id=luna_only.id),
    ):
        pass
    sql = (
        "SELECT status, synced_products_count, synced_orders_count, started_at, finished_at, error_message "
        "FROM smartup_sync_runs WHERE run_type='full'"
    )
    with store.engine.connect() as conn:
        rows = conn.execute(text(sql)).all()
    assert len(rows) == 1
    status, products_count, orders_count, started, finished, error = rows[0]
    assert (status, products_count, orders_count, error) == ("SUCCESS", 2, 4, None)
    assert started is not None and finished is not None
