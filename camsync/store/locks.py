"""One lock per job, so overlapping cron runs and a worker never run one job twice at once.

PostgreSQL: a session-level advisory lock held on a dedicated connection for the job's duration, keyed on the
store (database and schema) and the job, so stores in two schemas of one database never block each other; it is
freed by the server when the process (and so its connection) dies. SQLite: an exclusive `flock` on a file beside the
database; the kernel frees it when the process dies. Either way a dead process's lock frees itself.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, text

from camsync.errors import LockedError
from camsync.store.engine import Store, open_private


def lock_key(name: str, store_id: str = "") -> int:
    """A stable signed 64-bit key for a job name within one store (its database and schema on PostgreSQL)."""
    seed = f"camsync:{store_id}:{name}" if store_id else f"camsync:{name}"
    return int.from_bytes(hashlib.blake2b(seed.encode(), digest_size=8).digest(), "big", signed=True)


def _pg_store_id(conn: Connection) -> str:
    """Advisory locks are database-wide: two stores in two schemas of one database must not share a key."""
    row = conn.execute(text("SELECT current_database(), current_schema()")).one()
    conn.commit()
    return f"{row[0]}/{row[1]}"


def _lock_path(store: Store, name: str) -> Path:
    database = store.engine.url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        base = Path(os.environ.get("XDG_RUNTIME_DIR") or "/tmp") / "camsync"
        base.mkdir(parents=True, exist_ok=True)
        return base / f"{name}.lock"
    return Path(f"{database}.{name}.lock")


def _poll(try_once: Callable[[], bool], wait: float, sleep: Callable[[float], None]) -> bool:
    deadline = time.monotonic() + wait
    while True:
        if try_once():
            return True
        if time.monotonic() >= deadline:
            return False
        sleep(min(0.2, max(deadline - time.monotonic(), 0.0)))


def _holder_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


@contextmanager
def job_lock(
    store: Store, name: str, *, wait: float = 0.0, sleep: Callable[[float], None] = time.sleep
) -> Iterator[None]:
    """Hold the lock of job `name` for the block; raise LockedError when it is still taken after `wait` seconds."""
    if store.dialect == "postgresql":
        with store.engine.connect() as conn:
            key = lock_key(name, _pg_store_id(conn))

            def try_pg() -> bool:
                got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
                conn.commit()
                return got

            if not _poll(try_pg, wait, sleep):
                raise LockedError(
                    f"another camsync run holds the {name} lock", "Wait for it to finish, or pass --wait-lock SECONDS"
                )
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        return
    path = _lock_path(store, name)
    with open_private(path) as handle:

        def try_file() -> bool:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        if not _poll(try_file, wait, sleep):
            holder = _holder_text(path)
            raise LockedError(
                f"another camsync run holds the {name} lock" + (f" ({holder})" if holder else ""),
                "Wait for it to finish, or pass --wait-lock SECONDS",
            )
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
