"""The worker loop: passes until a stop request, jittered intervals, outages backed off and never fatal."""

from __future__ import annotations

import pytest

from camsync import shutdown
from camsync.errors import UpstreamError
from camsync.settings import load_settings
from camsync.store import runs as run_queries
from camsync.sync.jobs import Job
from camsync.sync.ledger import recorded_run
from camsync.sync.worker import next_delay, serve


@pytest.fixture(autouse=True)
def _clear_stop():  # type: ignore[no-untyped-def]
    shutdown.clear()
    yield
    shutdown.clear()


def _job(name: str, fail: bool = False) -> Job:
    def run(store, settings, trigger, parent_id) -> str:  # type: ignore[no-untyped-def]
        with recorded_run(store, job=name, run_type=name, trigger=trigger, parent_id=parent_id):
            if fail:
                raise UpstreamError("LUNA is down", service="LUNA")
        return "SUCCESS"

    return Job(name=name, ledger_job=name, ledger_run_type=name, interval=lambda _s: 0, run=run)


def test_next_delay_jitters_within_ten_percent_and_backs_off() -> None:
    assert next_delay(600, 0, rng=lambda: 0.0) == pytest.approx(540)
    assert next_delay(600, 0, rng=lambda: 1.0) == pytest.approx(660)
    assert next_delay(600, 3, rng=lambda: 0.5) == pytest.approx(2400)
    assert next_delay(600, 10, rng=lambda: 0.5) == pytest.approx(2400)


def test_worker_runs_passes_and_survives_an_outage(store) -> None:
    waits: list[float] = []
    passes = serve(
        store,
        load_settings({"SYNC_INTERVAL_SECONDS": "60"}),
        [_job("luna", fail=True)],
        max_passes=3,
        wait=lambda s: waits.append(s) is not None,
    )
    assert passes == 3
    assert len(waits) >= 2 and all(w <= 60 for w in waits)
    with store.session() as session:
        runs = run_queries.list_runs(session, limit=50)
    assert sum(r.job == "run-all" for r in runs) == 3
    assert all(r.status == "FAILED" for r in runs if r.job == "run-all")
    worker = next(r for r in runs if r.job == "worker")
    assert (worker.status, worker.details["passes"]) == ("SUCCESS", 3)


def test_stop_request_ends_the_worker_after_the_pass_in_hand(store) -> None:
    def wait(_seconds: float) -> bool:
        shutdown.request()
        return True

    passes = serve(store, load_settings({}), [_job("smartup")], wait=wait)
    assert passes == 1
