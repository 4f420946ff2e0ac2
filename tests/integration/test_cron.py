"""Debian's real cron daemon fires the shipped crontab line, and the run is found in the ledger.

The line of deploy/cron/camsync is installed in /etc/cron.d with only its paths and user rewritten (this venv's
camsync, a temporary env file and log, the current user) and its schedule set to every minute, so that one
firing comes within the wait. cron is installed from Debian's packages when missing; without it (or without
root, which /etc/cron.d needs) the test skips, and under CI=true it fails instead. The cron this test started is
stopped and the files it wrote are removed, whatever happens.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, suppress
from pathlib import Path
from typing import NoReturn

import pytest

pytestmark = pytest.mark.slow

CRONTAB = Path(__file__).resolve().parents[2] / "deploy" / "cron" / "camsync"
CRON_D = Path("/etc/cron.d")
CRON_PIDFILE = Path("/run/crond.pid")
SHIPPED_CAMSYNC = "/usr/local/bin/camsync"
SHIPPED_ENV_FILE = "/etc/camsync/camsync.env"
SHIPPED_LOG = "/var/log/camsync/camsync.log"
WAIT_SECONDS = 150.0
POLL_SECONDS = 1.0


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI=true, where the cron test must run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the cron test cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def find_cron() -> str | None:
    return shutil.which("cron") or next((p for p in ("/usr/sbin/cron", "/sbin/cron") if os.access(p, os.X_OK)), None)


def install_cron() -> str:
    """The cron binary, installed from Debian's packages when missing."""
    found = find_cron()
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        unavailable("cron is not installed and cannot be (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "cron"]
    for step in (install, ["apt-get", "update", "-qq"], install):
        result = subprocess.run(step, capture_output=True, text=True, env=env, timeout=600)
        if step is install and result.returncode == 0:
            break
    found = find_cron()
    if not found:
        unavailable(f"installing Debian's cron failed: {result.stderr.strip()[-500:]}")
    return found


def running_crons() -> list[int]:
    """Pids of live (not zombie) cron daemons."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if comm == "cron" and state != "Z":
            pids.append(int(entry.name))
    return pids


def pids_running(marker: str) -> list[int]:
    """Pids whose command line mentions `marker` (this test's unique env file)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def cron_d_text(camsync: Path, env_file: Path, log: Path, user: str) -> str:
    """The shipped file with its paths and user rewritten and its schedule set to every minute."""
    lines = [line.strip() for line in CRONTAB.read_text().splitlines()]
    settings = [line for line in lines if line and not line.startswith("#") and "=" in line.split()[0]]
    jobs = [line.split(None, 6) for line in lines if line and not line.startswith("#") and line not in settings]
    assert len(jobs) == 1, jobs
    *_schedule, shipped_user, command = jobs[0]
    for shipped in (SHIPPED_CAMSYNC, SHIPPED_ENV_FILE, SHIPPED_LOG):
        assert shipped in command, f"the shipped line no longer mentions {shipped}: update this test"
    command = (
        command.replace(SHIPPED_CAMSYNC, str(camsync))
        .replace(SHIPPED_ENV_FILE, str(env_file))
        .replace(SHIPPED_LOG, str(log))
    )
    assert shipped_user == "camsync"
    return "\n".join([*settings, f"* * * * * {user} {command}", ""])


@pytest.fixture
def cron_daemon(tmp_path: Path) -> Iterator[None]:
    """A running cron: the one already running, else one started here and stopped afterwards."""
    binary = install_cron()
    if running_crons():
        yield
        return
    had_pidfile = CRON_PIDFILE.exists()
    output = tmp_path / "cron.out"
    with output.open("w") as sink:
        process = subprocess.Popen([binary, "-f"], stdout=sink, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.5)
        if process.poll() is not None:
            unavailable(f"cron exited at once ({process.returncode}): {output.read_text()[-500:]}")
        yield
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if not had_pidfile:
            CRON_PIDFILE.unlink(missing_ok=True)


@pytest.fixture
def cron_file(tmp_path: Path) -> Iterator[Path]:
    """A unique /etc/cron.d file name, removed afterwards."""
    install_cron()  # the package creates /etc/cron.d
    if os.geteuid() != 0 or not os.access(CRON_D, os.W_OK):
        unavailable(f"{CRON_D} is not writable (the cron test needs root)")
    path = CRON_D / f"camsync-test-{uuid.uuid4().hex[:10]}"
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


Run = tuple[str, str, str, int | None, int]


def ledger_runs(store: Path) -> list[Run]:
    """(job, trigger, status, parent_id, id) of every run, or [] before the store exists."""
    if not store.exists():
        return []
    try:
        with closing(sqlite3.connect(store, timeout=5)) as conn:
            return list(conn.execute('SELECT job, "trigger", status, parent_id, id FROM sync_runs ORDER BY id'))
    except sqlite3.OperationalError:  # not migrated yet, or busy
        return []


def wait_for_cron_run_all(store: Path, log: Path, env_file: Path) -> list[Run]:
    """Poll the ledger until a finished run-all started by cron shows up and its process has ended."""
    deadline = time.monotonic() + WAIT_SECONDS
    runs: list[Run] = []
    while time.monotonic() < deadline:
        runs = ledger_runs(store)
        finished = any(
            job == "run-all" and trigger == "cron" and status != "RUNNING" for job, trigger, status, *_ in runs
        )
        running = pids_running(str(env_file))
        if finished and not running:
            return runs
        ran_and_ended = log.exists() and log.stat().st_size > 0 and not running
        if ran_and_ended and not ledger_runs(store):
            pytest.fail(f"cron ran the line but it wrote no run:\n{log.read_text()[-3000:]}")
        time.sleep(POLL_SECONDS)
    output = log.read_text()[-3000:] if log.exists() else "(no log: cron never ran the line)"
    pytest.fail(f"no finished cron run-all in the ledger after {WAIT_SECONDS:.0f} s: {runs}\n{output}")


def test_cron_fires_the_shipped_line_and_the_run_is_in_the_ledger(
    tmp_path: Path, cron_file: Path, cron_daemon: None
) -> None:
    camsync = Path(sys.executable).with_name("camsync")
    assert camsync.is_file(), f"{camsync} is missing: run `make venv`"
    store = tmp_path / "store.db"
    env_file = tmp_path / f"camsync-{uuid.uuid4().hex[:8]}.env"
    log = tmp_path / "camsync.log"
    # No upstream is configured and the app DB is missing: nothing is contacted, and run-all records its pass.
    env_file.write_text(f"DATABASE_URL=sqlite:///{store}\nAPP_DB_URL=sqlite:///{tmp_path / 'missing-app.db'}\n")
    user = pwd.getpwuid(os.geteuid()).pw_name
    try:
        cron_file.write_text(cron_d_text(camsync, env_file, log, user))
        cron_file.chmod(0o644)
        runs = wait_for_cron_run_all(store, log, env_file)
    finally:
        cron_file.unlink(missing_ok=True)
        for pid in pids_running(str(env_file)):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    run_all = [run for run in runs if run[0] == "run-all"]
    assert run_all[0][1] == "cron"
    assert run_all[0][2] in ("SUCCESS", "PARTIAL", "FAILED")
    assert f"run-all #{run_all[0][4]}" in log.read_text(), "the line's output goes to its log file"
