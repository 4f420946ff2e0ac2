"""Shared fixtures: an isolated environment, a store on SQLite and on PostgreSQL, and an in-process CLI runner.

PostgreSQL: `CAMSYNC_TEST_DATABASE_URL`, else the local server (postgres@127.0.0.1:5432/test) when reachable.
Each test gets its own schema, dropped afterwards, so parallel runs never see each other. Under `CI=true` an
unreachable PostgreSQL fails the run instead of skipping its half of the suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pg_support import drop_pg_schema, new_pg_schema

from camsync.settings import settings_vars


@pytest.fixture(autouse=True)
def clear_stop_request() -> Iterator[None]:
    """A stop request (the worker's SIGTERM path) is process-wide: no test inherits one from another."""
    from camsync import shutdown

    shutdown.clear()
    yield
    shutdown.clear()


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No test sees the developer's settings, .env or data dir: every camsync variable is cleared."""
    for _name, spec, _default in settings_vars():
        monkeypatch.delenv(spec.env, raising=False)
    for name in ("CAMSYNC_FAILPOINTS", "CAMSYNC_TRIGGER"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store URL, once on a SQLite file and once on a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    schema, url = new_pg_schema()
    try:
        yield url
    finally:
        drop_pg_schema(schema)


@pytest.fixture
def store(db_url: str) -> Iterator[object]:
    """A migrated store on each database."""
    from camsync.store.engine import open_store

    opened = open_store(db_url)
    try:
        yield opened
    finally:
        opened.dispose()


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run `camsync ARGS…` in-process through the real error boundary; env values are set for the call."""
    from camsync.cli import main

    def invoke(*args: str, env: dict[str, str] | None = None) -> CliResult:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return invoke
