"""Two real `luna push` processes on one store never send the same txn twice (sandbox idempotency OFF)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from camsync.sandbox.luna import LunaSandboxConfig, start_luna_sandbox
from camsync.source.payplus_sample import make_payplus_db
from camsync.store import luna_admin
from camsync.store.engine import open_store
from camsync.store.runs import list_runs

pytestmark = pytest.mark.slow
TOPUPS = 240


def test_two_push_processes_share_the_work_without_a_double_send(db_url: str, tmp_path: Path) -> None:
    make_payplus_db(tmp_path / "app.db", [{"id": i, "status": "USED"} for i in range(1, TOPUPS + 1)])
    open_store(db_url).dispose()  # migrate once, so that both processes start on an up-to-date schema
    config = LunaSandboxConfig(waiting_seconds=0.1, in_progress_seconds=0.1, idempotency=False, latency=0.04)
    sandbox = start_luna_sandbox(config)
    try:
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "APP_DB_URL": f"sqlite:///{tmp_path / 'app.db'}",
            "LUNA_BASE_URL": sandbox.url,
            "LUNA_USERNAME": config.username,
            "LUNA_PASSWORD": config.password,
            "LUNA_POLL_INITIAL_SECONDS": "0.2",
            "BATCH_SIZE": "10",
        }
        command = [sys.executable, "-m", "camsync", "luna", "push", "--wait", "--concurrency", "4", "--timeout", "120"]
        workers = [subprocess.Popen(command, env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True) for _ in "ab"]
        outputs = [worker.communicate(timeout=180)[1] for worker in workers]
        assert [worker.returncode for worker in workers] == [0, 0], outputs
        stats = sandbox.app.stats()
    finally:
        sandbox.stop()
    assert stats["duplicates"] == [] and stats["work_orders"] == TOPUPS
    assert stats["requests"]["create"] == TOPUPS
    store = open_store(db_url)
    try:
        with store.session() as session:
            assert luna_admin.count_by_state(session)["successful"] == TOPUPS
            runs = list_runs(session, job="luna")
            assert sorted(run.status for run in runs) == ["SUCCESS", "SUCCESS"]
            assert sum(run.inserted for run in runs) == TOPUPS
            assert all(run.inserted > 0 for run in runs), [run.inserted for run in runs]
    finally:
        store.dispose()
