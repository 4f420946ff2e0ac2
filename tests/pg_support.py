"""PostgreSQL for the tests: the server's URL, a skip (a failure under CI=true) when it is unreachable, schemas.

PostgreSQL: `CAMSYNC_TEST_DATABASE_URL`, else the local server (postgres@127.0.0.1:5432/test) when reachable.
A module of its own (not conftest.py) so that any test directory can import it by one unambiguous name.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import quote

import pytest

from camsync.settings import normalize_db_url

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
_pg_state: dict[str, object] = {}


def pg_base_url() -> str:
    return normalize_db_url(os.environ.get("CAMSYNC_TEST_DATABASE_URL") or PG_DEFAULT)


def _pg_reachable() -> str | None:
    """None when PostgreSQL answers, else why not (checked once per test process)."""
    if "error" not in _pg_state:
        import sqlalchemy as sa

        try:
            engine = sa.create_engine(pg_base_url(), connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            engine.dispose()
            _pg_state["error"] = None
        except Exception as exc:
            _pg_state["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return _pg_state["error"]  # type: ignore[return-value]


def require_postgres() -> str:
    """The base PostgreSQL URL, or skip (fail under CI=true) when it is unreachable."""
    error = _pg_reachable()
    if error:
        message = f"PostgreSQL at {pg_base_url()} is unreachable ({error})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI must run the PostgreSQL half of the suite", pytrace=False)
        pytest.skip(message)
    return pg_base_url()


def new_pg_schema() -> tuple[str, str]:
    """Create a fresh schema; returns (schema, URL whose search_path is that schema)."""
    import sqlalchemy as sa

    base = require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    sep = "&" if "?" in base else "?"
    return schema, f"{base}{sep}options={quote(f'-csearch_path={schema}')}"


def drop_pg_schema(schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(pg_base_url())
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()
