"""Alembic, driven from camsync: the migrations ship inside the package, and `alembic` works in a checkout."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import Connection

import camsync
from camsync.store.engine import open_private

# The newest revision; tests/store/test_migrations.py checks it against the scripts.
SCHEMA_HEAD = "0006"
_PG_LOCK_KEY = 0x63616D73  # "cams"


def migrations_dir() -> Path:
    """`camsync/migrations` in an installed wheel, `migrations/` at the top of a checkout."""
    package = Path(camsync.__file__).resolve().parent
    for candidate in (package / "migrations", package.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("the migrations folder is missing from this installation")


def _config(conn: Connection | None = None):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["connection"] = conn
    config.attributes["configure_logging"] = False
    return config


def current_revision(conn: Connection) -> str | None:
    """The store's schema revision, or None for an empty database."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """One migrating process at a time: an advisory lock on PostgreSQL, a lock file beside a SQLite file."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            conn.commit()
            try:
                yield conn
            finally:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
        return
    database = engine.url.database or ""
    if not database or database == ":memory:":
        with engine.connect() as conn:
            yield conn
        return
    with open_private(f"{database}.migrate-lock") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the store up to `revision`."""
    from alembic import command

    with _migration_lock(engine) as conn:
        command.upgrade(_config(conn), revision)
        conn.commit()


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the store down to `revision` (`base` removes every camsync table)."""
    from alembic import command

    with _migration_lock(engine) as conn:
        command.downgrade(_config(conn), revision)
        conn.commit()


@dataclass(frozen=True)
class Revision:
    revision: str
    down_revision: str | None
    doc: str
    is_head: bool


def history() -> list[Revision]:
    """Every revision, newest first."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(_config())
    out = []
    for script in scripts.walk_revisions():
        down = (
            script.down_revision
            if isinstance(script.down_revision, str) or script.down_revision is None
            else ",".join(script.down_revision)
        )
        out.append(Revision(script.revision, down, (script.doc or "").strip(), script.is_head))
    return out


def store_revision(url: str) -> str | None:
    """The schema revision of the store at `url`."""
    from camsync.store.engine import temporary_engine

    with temporary_engine(url) as engine, engine.connect() as conn:
        return current_revision(conn)


def upgrade_store(url: str, revision: str = "head") -> str | None:
    """Migrate the store at `url` up to `revision`; returns the revision it is at afterwards."""
    from camsync.store.engine import temporary_engine

    with temporary_engine(url) as engine:
        upgrade(engine, revision)
    return store_revision(url)


def downgrade_store(url: str, revision: str) -> str | None:
    """Migrate the store at `url` down to `revision`; returns the revision it is at afterwards."""
    from camsync.store.engine import temporary_engine

    with temporary_engine(url) as engine:
        downgrade(engine, revision)
    return store_revision(url)


def script_head() -> str | None:
    """The head revision as the scripts on disk say."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()
