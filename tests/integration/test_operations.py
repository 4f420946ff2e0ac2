"""Operations with real processes: the worker stops cleanly on SIGTERM mid-push; overlapping run-all passes.

The LUNA sandbox runs in the test process with idempotency OFF, so a second create of one txn would show as a
duplicate in its stats.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from camsync.sandbox.luna import LunaSandboxConfig, start_luna_sandbox
from camsync.source.payplus_sample import make_payplus_db
from camsync.store import luna_admin
from camsync.store.engine import open_store
from camsync.store.locks import job_lock

pytestmark = pytest.mark.slow
TOPUPS = 60


def _env(db_url: str, tmp_path: Path, luna_url: str, config: LunaSandboxConfig) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "APP_DB_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "LUNA_BASE_URL": luna_url,
        "LUNA_USERNAME": config.username,
        "LUNA_PASSWORD": config.password,
        "LUNA_CONCURRENCY": "2",
        "LUNA_POLL_INITIAL_SECONDS": "0.2",
        "LUNA_POLL_MAX_SECONDS": "0.5",
        "SYNC_INTERVAL_SECONDS": "60",
    }


def _states(db_url: str) -> dict[str, str]:
    store = open_store(db_url)
    try:
        with store.session() as session:
            return {row["txn_id"]: row["state"] for row in luna_admin.list_txns(session, limit=1000)}
    finally:
        store.dispose()


def test_worker_stops_cleanly_on_sigterm_mid_push_and_nothing_is_lost(db_url: str, tmp_path: Path) -> None:
    make_payplus_db(tmp_path / "app.db", [{"id": i, "status": "USED"} for i in range(1, TOPUPS + 1)])
    config = LunaSandboxConfig(latency=0.05, waiting_seconds=0.2, in_progress_seconds=0.2, idempotency=False)
    sandbox = start_luna_sandbox(config)
    try:
        env = _env(db_url, tmp_path, sandbox.url, config)
        worker = subprocess.Popen(
            [sys.executable, "-m", "camsync", "worker"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while sandbox.app.stats()["requests"]["create"] < 5:  # the push is under way
            assert worker.poll() is None, worker.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the worker never started pushing"
            time.sleep(0.05)
        stopped_at = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
        assert worker.returncode == 0, err[-2000:]
        assert time.monotonic() - stopped_at < 10
        assert sandbox.app.stats()["requests"]["create"] < TOPUPS, "the push finished before the signal"
        finish = subprocess.run(
            [sys.executable, "-m", "camsync", "luna", "push", "--wait", "--timeout", "60"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert finish.returncode == 0, finish.stderr[-2000:]
        stats = sandbox.app.stats()
        assert stats["duplicates"] == [] and len(stats["by_reference"]) == TOPUPS
        assert set(_states(db_url).values()) == {"successful"}
    finally:
        sandbox.stop()


def test_overlapping_run_all_exits_with_the_lock_code_or_waits(db_url: str, tmp_path: Path) -> None:
    make_payplus_db(tmp_path / "app.db", [{"id": i, "status": "USED"} for i in range(1, 4)])
    config = LunaSandboxConfig(waiting_seconds=0.1, in_progress_seconds=0.1, idempotency=False)
    sandbox = start_luna_sandbox(config)
    store = open_store(db_url)
    try:
        env = _env(db_url, tmp_path, sandbox.url, config)
        command = [sys.executable, "-m", "camsync", "--trigger", "cron", "run-all"]
        release = threading.Event()
        held = threading.Event()

        def other_run_all() -> None:  # another run-all, as far as the lock can tell
            with job_lock(store, "run-all"):
                held.set()
                release.wait(30)

        holder = threading.Thread(target=other_run_all)
        holder.start()
        assert held.wait(10)
        locked = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert locked.returncode == 75, locked.stderr[-2000:]
        assert "another camsync run holds the run-all lock" in locked.stderr
        assert sandbox.app.stats()["requests"]["create"] == 0

        threading.Timer(1.0, release.set).start()
        waited = subprocess.run(
            [*command, "--wait-lock", "20"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        holder.join()
        assert waited.returncode == 0, waited.stderr[-2000:]
        by_reference = sandbox.app.stats()["by_reference"]
        assert len(by_reference) == 3 and set(by_reference.values()) == {1}
    finally:
        store.dispose()
        sandbox.stop()
