"""Four real `luna push` processes on one PostgreSQL store, SIGKILLed at random and restarted while a few hundred
top-ups drain: no process dies of a deadlock (or of anything else), and every USED row ends as exactly one
successful work order.

The LUNA sandbox is a real `camsync sandbox luna` process with idempotency OFF, so a second create of one txn
shows as a second work order for its reference in `/_sandbox/stats`. Kills are drawn from a seeded generator
and fire at points of progress (work orders created + txns successful), never after a wall-clock delay; every
wait polls a condition under a deadline.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from camsync.source.payplus_sample import make_payplus_db
from camsync.store import luna_admin
from camsync.store.base import utcnow
from camsync.store.engine import Store, open_store

pytestmark = pytest.mark.slow

SEED = 20261203
TOPUPS = 300
PUSHERS = 4
KILLS = 8
DEADLINE_SECONDS = 50.0
TICK = 0.05  # how often the supervisor looks at its conditions
PUSH_TIMEOUT = "45"  # a push's own --timeout: it ends (exit 3) rather than outlive the test
FORBIDDEN = ("deadlock", "traceback", "unexpected error")  # matched case-insensitively in every stderr


def _wait_for(condition: Callable[[], Any], *, deadline: float, what: str) -> Any:
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(TICK)


@dataclass
class Pusher:
    """One slot of the pool: the process now running in it, and the stderr files of all its generations."""

    slot: int
    command: list[str]
    env: dict[str, str]
    cwd: Path
    process: subprocess.Popen[str] | None = None
    killed: bool = False
    logs: list[Path] = field(default_factory=list)
    exits: list[int] = field(default_factory=list)
    _sink: IO[str] | None = None

    def start(self) -> None:
        log = self.cwd / f"pusher-{self.slot}-{len(self.logs)}.err"
        self.logs.append(log)
        self._sink = log.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            self.command, env=self.env, cwd=self.cwd, stdout=subprocess.DEVNULL, stderr=self._sink, text=True
        )
        self.killed = False

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        assert self.process is not None
        self.killed = True
        self.process.send_signal(signal.SIGKILL)
        self.reap(self.process.wait(timeout=10))

    def reap(self, code: int) -> None:
        """Record how the current process ended (a kill of ours is recorded as such)."""
        self.exits.append(-signal.SIGKILL if self.killed and code == -signal.SIGKILL else code)
        self.process = None
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def stop(self) -> None:
        if self.running():
            assert self.process is not None
            self.process.kill()
            self.reap(self.process.wait(timeout=10))


@dataclass
class Sandbox:
    process: subprocess.Popen[str]
    url: str

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/_sandbox/stats", timeout=10).json()  # type: ignore[no-any-return]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    port_file = tmp_path / "luna.port"
    command = [
        *(sys.executable, "-m", "camsync", "sandbox", "luna", "--port", "0", "--port-file", str(port_file)),
        *("--idempotency", "off", "--latency", "0.01", "--waiting-seconds", "0.2", "--in-progress-seconds", "0.2"),
        *("--seed", str(SEED)),
    ]
    with (tmp_path / "sandbox.err").open("w", encoding="utf-8") as sink:
        process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=sink, text=True)
        try:
            deadline = time.monotonic() + 20
            _wait_for(lambda: port_file.exists() or process.poll() is not None, deadline=deadline, what="the sandbox")
            assert process.poll() is None, (tmp_path / "sandbox.err").read_text()
            yield Sandbox(process, f"http://127.0.0.1:{int(port_file.read_text())}")
        finally:
            process.terminate()
            process.wait(timeout=10)


def _progress(store: Store, sandbox: Sandbox) -> tuple[int, int]:
    """(work orders LUNA holds, txns successful in the store)."""
    with store.session() as session:
        successful = luna_admin.count_by_state(session).get("successful", 0)
    return int(sandbox.stats()["work_orders"]), successful


def _scan_stderr(pushers: list[Pusher]) -> list[str]:
    bad = []
    for pusher in pushers:
        for log in pusher.logs:
            for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
                if any(word in line.lower() for word in FORBIDDEN):
                    bad.append(f"{log.name}: {line}")
    return bad


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_four_pushers_killed_at_random_never_deadlock_and_send_each_txn_once(
    db_url: str, tmp_path: Path, sandbox: Sandbox
) -> None:
    make_payplus_db(tmp_path / "app.db", [{"id": i, "status": "USED"} for i in range(1, TOPUPS + 1)])
    store = open_store(db_url)  # migrated once, so that no pusher starts on a half-made schema
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "APP_DB_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "LUNA_BASE_URL": sandbox.url,
        "LUNA_USERNAME": "camsync",
        "LUNA_PASSWORD": "sandbox-password",
        "LUNA_POLL_INITIAL_SECONDS": "0.2",
        "LUNA_POLL_MAX_SECONDS": "0.5",
        "LUNA_CONCURRENCY": "4",
        "BATCH_SIZE": "10",
    }
    env.pop("CAMSYNC_FAILPOINTS", None)
    command = [sys.executable, "-m", "camsync", "-v", "luna", "push", "--wait", "--timeout", PUSH_TIMEOUT]
    pushers = [Pusher(slot, command, env, tmp_path) for slot in range(PUSHERS)]
    rng = random.Random(SEED)
    # progress runs from 0 to 2 × TOPUPS (created, then successful): kills fall among creates and polls alike
    kill_points = sorted(rng.sample(range(5, 2 * TOPUPS - 20), KILLS))
    kills: list[tuple[int, int]] = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        for pusher in pushers:
            pusher.start()
        while True:
            created, successful = _progress(store, sandbox)
            for pusher in pushers:
                if pusher.process is not None and not pusher.running():
                    pusher.reap(pusher.process.returncode)
            while kill_points and created + successful >= kill_points[0]:
                point = kill_points.pop(0)
                alive = [pusher for pusher in pushers if pusher.running()]
                if alive:
                    victim = rng.choice(alive)
                    victim.kill()
                    kills.append((point, victim.slot))
                    victim.start()  # its successor frees the dead claims first thing
            if successful == TOPUPS and not any(pusher.running() for pusher in pushers):
                break
            if not any(pusher.running() for pusher in pushers):
                # every pusher ended with work left: leases of a killed one whose successor started while the
                # dead connection still held its rows. A new push releases them (a condition, not a delay).
                pushers[0].start()
            assert time.monotonic() < deadline, (
                f"not drained in {DEADLINE_SECONDS}s: {created} created, {successful} successful, kills {kills}"
            )
            time.sleep(TICK)
        stats = sandbox.stats()
        with store.session() as session:
            states = luna_admin.count_by_state(session)
            leased = luna_admin.leased(session, now=utcnow())
    finally:
        for pusher in pushers:
            pusher.stop()
        store.dispose()

    assert _scan_stderr(pushers) == []
    exits = [code for pusher in pushers for code in pusher.exits]
    assert set(exits) <= {0, -signal.SIGKILL}, exits
    assert len(kills) == KILLS and exits.count(-signal.SIGKILL) == KILLS, (kills, exits)
    assert stats["duplicates"] == []
    assert stats["by_reference"] == {f"TXN-{i}": 1 for i in range(1, TOPUPS + 1)}
    assert stats["work_orders"] == TOPUPS
    assert states["successful"] == TOPUPS and sum(states.values()) == TOPUPS, states
    assert leased == []
