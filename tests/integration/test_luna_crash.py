"""Crash tests: `luna push` killed by SIGKILL at each failpoint, restarted, and still exactly one work order per txn.

The LUNA sandbox runs in the test process with idempotency OFF, so a second create of one txn would show as a
duplicate in its stats. Each push is a real `python -m camsync` process; the store is SQLite or PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from camsync.sandbox.luna import LunaSandboxConfig, start_luna_sandbox
from camsync.sandbox.server import RunningSandbox
from camsync.source.payplus_sample import make_payplus_db
from camsync.store import luna_admin
from camsync.store.engine import open_store

pytestmark = pytest.mark.slow
TXNS = [f"TXN-{i}" for i in range(1, 7)]


@dataclass
class Rig:
    sandbox: RunningSandbox
    env: dict[str, str]
    db_url: str
    cwd: Path

    def push(self, *args: str, failpoints: str | None = None, extra: dict[str, str] | None = None) -> int:
        env = {**self.env, **(extra or {})}
        if failpoints:
            env["CAMSYNC_FAILPOINTS"] = failpoints
        done = subprocess.run(
            [sys.executable, "-m", "camsync", "luna", *args],
            env=env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode not in (0, 2, 3, -signal.SIGKILL):
            raise AssertionError(f"exit {done.returncode}: {done.stderr[-2000:]}")
        return done.returncode

    def states(self) -> dict[str, str]:
        store = open_store(self.db_url)
        try:
            with store.session() as session:
                return {row["txn_id"]: row["state"] for row in luna_admin.list_txns(session, limit=100)}
        finally:
            store.dispose()

    def assert_exactly_once(self) -> None:
        stats = self.sandbox.app.stats()
        assert stats["duplicates"] == []
        assert stats["by_reference"] == dict.fromkeys(TXNS, 1)
        assert self.states() == dict.fromkeys(TXNS, "successful")


@pytest.fixture
def rig(db_url: str, tmp_path: Path) -> Iterator[Rig]:
    make_payplus_db(tmp_path / "app.db", [{"id": i, "status": "USED"} for i in range(1, 7)])
    config = LunaSandboxConfig(waiting_seconds=0.1, in_progress_seconds=0.1, idempotency=False, latency=0.01)
    sandbox = start_luna_sandbox(config)
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "APP_DB_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "LUNA_BASE_URL": sandbox.url,
        "LUNA_USERNAME": config.username,
        "LUNA_PASSWORD": config.password,
        "LUNA_POLL_INITIAL_SECONDS": "0.2",
        "LUNA_CONCURRENCY": "3",
    }
    env.pop("CAMSYNC_FAILPOINTS", None)
    try:
        yield Rig(sandbox, env, db_url, tmp_path)
    finally:
        sandbox.stop()


@pytest.mark.parametrize("failpoint", ["after_intent_commit", "after_post_before_commit", "during_poll"])
def test_killed_push_restarts_to_exactly_one_work_order_per_txn(rig: Rig, failpoint: str) -> None:
    assert rig.push("push", "--wait", failpoints=f"{failpoint}=kill") == -signal.SIGKILL
    assert set(rig.states().values()) != {"successful"}
    assert rig.push("push", "--wait", "--timeout", "60") == 0
    rig.assert_exactly_once()


def test_kill_on_a_later_create_answer_is_settled_by_lookup(rig: Rig) -> None:
    assert rig.push("push", "--wait", failpoints="after_post_before_commit=kill@4") == -signal.SIGKILL
    assert rig.push("push", "--wait", "--timeout", "60") == 0
    rig.assert_exactly_once()


def test_without_lookup_a_killed_create_is_held_then_settled_by_replay(rig: Rig) -> None:
    rig.sandbox.app.configure(lookup=False)
    no_lookup = {"LUNA_LOOKUP_URL": "none"}
    assert rig.push("push", "--wait", failpoints="after_post_before_commit=kill", extra=no_lookup) == -signal.SIGKILL
    assert rig.push("push", "--wait", "--timeout", "60", extra=no_lookup) == 3
    held = [txn for txn, state in rig.states().items() if state == "unknown"]
    assert held, rig.states()
    assert rig.push("replay", held[0], extra=no_lookup) == 2  # refused: it may exist and cannot be looked up
    rig.sandbox.app.configure(lookup=True)
    for txn in held:
        assert rig.push("replay", txn) == 0
    rig.assert_exactly_once()
