"""Engine and session set-up for SQLite and PostgreSQL, and `open_store`, the one way in."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from camsync.errors import ConfigError, StoreError
from camsync.settings import mask


def _sqlite_setup(engine: Engine) -> None:
    """Real transactions on SQLite: WAL, a busy timeout, foreign keys, and BEGIN emitted by us."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA cache_size = -65536")  # 64 MiB: a big first scan inserts into its indexes at random
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


def create_private(path: Path) -> None:
    """Create `path` empty, readable and writable by its owner only (0600), unless it exists already."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def open_private(path: Path | str) -> IO[str]:
    """Open `path` for appending and reading; created 0600 when missing (lock files beside the store)."""
    return os.fdopen(os.open(path, os.O_CREAT | os.O_RDWR | os.O_APPEND, 0o600), "a+")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; a SQLite file's folder is created when missing."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"DATABASE_URL={mask(url)} is not a database URL",
            "Use sqlite:///path/to/file.db or postgresql://user@host/db",
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            path = Path(parsed.database).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            create_private(path)  # SQLite gives its -wal and -shm files the database file's mode
        engine = create_engine(parsed, connect_args={"timeout": 30}, **kwargs)
        _sqlite_setup(engine)
        return engine
    try:
        return create_engine(parsed, pool_pre_ping=True, **kwargs)
    except Exception as exc:  # unknown dialect or missing driver
        raise ConfigError(
            f"cannot use DATABASE_URL={mask(url)}: {exc}", "Use a sqlite:// or postgresql:// URL"
        ) from None


class Store:
    """The store: an engine and its sessions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits at the end of the block, or rolls back on error."""
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def writer(self) -> Iterator[Session]:
        """A session that takes the write lock at once on SQLite (one writer at a time), plain elsewhere."""
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with Session(bind=conn, expire_on_commit=False) as session, session.begin():
                yield session

    def dispose(self) -> None:
        self.engine.dispose()


def describe_url(url: str) -> str:
    """The URL with its password masked, for messages."""
    return mask(url)


def unreachable(url: str, exc: OperationalError) -> StoreError:
    """The error for a store that cannot be connected to, without the driver's traceback."""
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
    return StoreError(
        f"cannot reach the store at {describe_url(url)}: {reason}",
        "Check DATABASE_URL and that the database server is running",
    )


@contextmanager
def temporary_engine(url: str) -> Iterator[Engine]:
    """An engine for one maintenance task, disposed afterwards; connection failures become StoreError."""
    engine = make_engine(url)
    try:
        yield engine
    except OperationalError as exc:
        raise unreachable(url, exc) from None
    finally:
        engine.dispose()


def open_store(url: str, *, auto_migrate: bool = True) -> Store:
    """Connect to the store and make sure its schema is the newest (migrating it when allowed)."""
    from camsync.store import migrate

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            version = migrate.current_revision(conn)
    except OperationalError as exc:
        engine.dispose()
        raise unreachable(url, exc) from None
    if version != migrate.SCHEMA_HEAD:
        if not auto_migrate:
            engine.dispose()
            raise StoreError(
                f"the store at {describe_url(url)} is at schema {version or 'none'}, "
                f"camsync needs {migrate.SCHEMA_HEAD}",
                "Run `camsync db upgrade` (CAMSYNC_AUTO_MIGRATE=0 is set)",
            )
        migrate.upgrade(engine, "head")
    return Store(engine)
