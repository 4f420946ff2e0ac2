"""run-all and the job locks, on both databases: due jobs only, failures isolated, one run per job at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta

import pytest

from camsync.errors import LockedError, UpstreamError
from camsync.settings import load_settings
from camsync.store import runs as run_queries
from camsync.store.base import utcnow
from camsync.store.locks import job_lock
from camsync.sync.jobs import Job
from camsync.sync.ledger import recorded_run
from camsync.sync.runall import JobOutcome, overall_status, run_all, select_jobs


def _job(
    name: str,
    status: str = "SUCCESS",
    interval: int = 0,
    calls: list[str] | None = None,
    error: Exception | None = None,
) -> Job:
    def run(store, settings, trigger, parent_id) -> str:  # type: ignore[no-untyped-def]
        if calls is not None:
            calls.append(name)
        with recorded_run(store, job=name, run_type=name, trigger=trigger, parent_id=parent_id) as child:
            if error is not None:
                raise error
            if status != "SUCCESS":
                child.fail("it went wrong", partial=status == "PARTIAL")
        return child.status

    return Job(name=name, ledger_job=name, ledger_run_type=name, interval=lambda _s: interval, run=run)


def test_all_jobs_succeed_and_are_children_of_the_run_all_row(store) -> None:
    calls: list[str] = []
    result = run_all(store, load_settings({}), [_job("a", calls=calls), _job("b", calls=calls)], trigger="cron")
    assert (result.status, calls) == ("SUCCESS", ["a", "b"])
    with store.session() as session:
        children = run_queries.child_runs(session, parent_id=result.run_id)
        parent = run_queries.get_run(session, run_id=result.run_id)
    assert [(c.job, c.trigger, c.status) for c in children] == [("a", "cron", "SUCCESS"), ("b", "cron", "SUCCESS")]
    assert (parent.job, parent.status, parent.details["jobs"]) == (
        "run-all",
        "SUCCESS",
        {"a": "SUCCESS", "b": "SUCCESS"},
    )


def test_a_failing_job_does_not_stop_the_others_and_makes_partial(store) -> None:
    calls: list[str] = []
    boom = UpstreamError("SmartUp at http://x is unreachable", service="SmartUp")
    result = run_all(store, load_settings({}), [_job("a", error=boom, calls=calls), _job("b", calls=calls)])
    assert calls == ["a", "b"]
    assert result.status == "PARTIAL"
    assert [(o.name, o.status) for o in result.outcomes] == [("a", "FAILED"), ("b", "SUCCESS")]
    with store.session() as session:
        assert "unreachable" in run_queries.get_run(session, run_id=result.run_id).error_message


def test_all_failing_is_failed() -> None:
    assert overall_status([JobOutcome("a", "FAILED"), JobOutcome("b", "FAILED")]) == "FAILED"
    assert overall_status([JobOutcome("a", "SKIPPED"), JobOutcome("b", "SUCCESS")]) == "SUCCESS"
    assert overall_status([JobOutcome("a", "PARTIAL"), JobOutcome("b", "SUCCESS")]) == "PARTIAL"


def test_a_job_within_its_interval_is_skipped(store) -> None:
    calls: list[str] = []
    jobs = [_job("hourly", interval=3600, calls=calls), _job("always", calls=calls)]
    run_all(store, load_settings({}), jobs)
    second = run_all(store, load_settings({}), jobs)
    assert calls == ["hourly", "always", "always"]
    assert [(o.name, o.status) for o in second.outcomes] == [("hourly", "SKIPPED"), ("always", "SUCCESS")]
    later = run_all(store, load_settings({}), jobs, now=lambda: utcnow() + timedelta(hours=2))
    assert [o.status for o in later.outcomes] == ["SUCCESS", "SUCCESS"]


def test_only_and_skip_select_jobs() -> None:
    jobs = [_job("a"), _job("b"), _job("c")]
    assert [j.name for j in select_jobs(jobs, only=["b", "c"], skip=["c"])] == ["b"]
    with pytest.raises(Exception, match="unknown job zz"):
        select_jobs(jobs, only=["zz"])


def test_lock_is_exclusive_and_a_held_job_is_reported_locked(store) -> None:
    calls: list[str] = []
    with job_lock(store, "a"):
        with pytest.raises(LockedError), job_lock(store, "a"):
            pass
        result = run_all(store, load_settings({}), [_job("a", calls=calls), _job("b", calls=calls)])
    assert calls == ["b"]
    assert [(o.name, o.status) for o in result.outcomes] == [("a", "LOCKED"), ("b", "SUCCESS")]


def test_second_run_all_gets_the_lock_error(store) -> None:
    with job_lock(store, "run-all"), pytest.raises(LockedError) as info:
        run_all(store, load_settings({}), [_job("a")])
    assert info.value.exit_code == 75


def test_wait_lock_waits_for_the_holder(store) -> None:
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with job_lock(store, "a"):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(5)
    with pytest.raises(LockedError), job_lock(store, "a"):
        pass
    threading.Timer(0.3, release.set).start()
    with job_lock(store, "a", wait=5):
        pass
    thread.join()


def test_stores_in_two_schemas_of_one_database_never_share_a_lock() -> None:
    from pg_support import drop_pg_schema, new_pg_schema

    from camsync.store.engine import open_store

    (first, first_url), (second, second_url) = new_pg_schema(), new_pg_schema()
    stores = [open_store(first_url), open_store(second_url)]
    try:
        with job_lock(stores[0], "run-all"), job_lock(stores[1], "run-all"):
            held_elsewhere = stores[0]
            with pytest.raises(LockedError), job_lock(held_elsewhere, "run-all"):
                pass
    finally:
        for opened in stores:
            opened.dispose()
        drop_pg_schema(first)
        drop_pg_schema(second)


@pytest.mark.slow
def test_a_killed_holders_lock_frees_itself(db_url: str) -> None:
    code = (
        "import sys, time; from camsync.store.engine import open_store; from camsync.store.locks import job_lock\n"
        "s = open_store(sys.argv[1])\n"
        "with job_lock(s, 'a'):\n    print('held', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, db_url], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        from camsync.store.engine import open_store

        store = open_store(db_url)
        with pytest.raises(LockedError), job_lock(store, "a"):
            pass
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        with job_lock(store, "a", wait=10):
            pass
        store.dispose()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_an_unconfigured_job_is_skipped(store) -> None:
    calls: list[str] = []
    off = Job("off", "off", "off", lambda _s: 0, _job("off", calls=calls).run, configured=lambda _s: False)
    result = run_all(store, load_settings({}), [off, _job("on", calls=calls)], force=True)
    assert calls == ["on"]
    assert [(o.name, o.status, o.message) for o in result.outcomes] == [
        ("off", "SKIPPED", "not configured"),
        ("on", "SUCCESS", ""),
    ]


def test_default_jobs_are_the_four_documented_ones() -> None:
    from camsync.sync.jobs import default_jobs

    jobs = default_jobs()
    assert [j.name for j in jobs] == ["smartup-products", "smartup-orders", "smartup-stock", "luna-push"]
    settings = load_settings({"SMARTUP_BASE_URL": "http://127.0.0.1:9", "SMARTUP_PRODUCTS_INTERVAL_SECONDS": "3600"})
    assert [j.configured(settings) for j in jobs] == [True, True, True, False]
    assert [j.interval(settings) for j in jobs] == [3600, 0, 900, 0]
