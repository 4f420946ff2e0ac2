"""Migrations: the same revisions up and down on SQLite and PostgreSQL, matching the models, shipped in the wheel."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from camsync.store import migrate
from camsync.store.engine import make_engine

ROOT = Path(__file__).resolve().parents[2]


def test_schema_head_constant_matches_the_scripts() -> None:
    assert migrate.script_head() == migrate.SCHEMA_HEAD


def test_revisions_form_one_line() -> None:
    revisions = migrate.history()
    assert sum(r.is_head for r in revisions) == 1
    assert revisions[-1].down_revision is None


def test_upgrade_then_downgrade_to_base_and_back(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine, "head")
        with engine.connect() as conn:
            assert migrate.current_revision(conn) == migrate.SCHEMA_HEAD
            assert inspect(conn).has_table("sync_runs")
            assert "smartup_sync_runs" in inspect(conn).get_view_names()
        migrate.downgrade(engine, "base")
        with engine.connect() as conn:
            assert migrate.current_revision(conn) is None
            leftover = set(inspect(conn).get_table_names()) - {"alembic_version"}
            assert leftover == set()
            assert inspect(conn).get_view_names() == []
        migrate.upgrade(engine, "head")
        with engine.connect() as conn:
            assert migrate.current_revision(conn) == migrate.SCHEMA_HEAD
    finally:
        engine.dispose()


def test_models_and_migrations_agree(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import camsync.store
    from camsync.store.base import Base

    for module in pkgutil.iter_modules(camsync.store.__path__):  # every model module registers its tables
        importlib.import_module(f"camsync.store.{module.name}")
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine, "head")
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_orders_keep_their_raw_item_inline_on_postgresql(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("column storage is a PostgreSQL setting")
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine, "head")
        with engine.connect() as conn:
            storage = conn.execute(
                text(
                    "SELECT a.attstorage FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                    " WHERE c.oid = 'orders'::regclass AND a.attname = 'raw'"
                )
            ).scalar()
    finally:
        engine.dispose()
    assert storage == "m"


def test_alembic_cli_from_a_checkout(tmp_path: Path) -> None:
    db = tmp_path / "alembic.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}"}
    alembic = Path(sys.executable).parent / "alembic"
    out = subprocess.run(
        [str(alembic), "-c", str(ROOT / "alembic.ini"), "upgrade", "head"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.SCHEMA_HEAD
    engine.dispose()


@pytest.mark.slow
def test_wheel_ships_the_migrations_and_migrates_from_them(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    wheel = next(tmp_path.glob("camsync-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert "camsync/migrations/env.py" in names
        assert any(n.startswith("camsync/migrations/versions/0001_") for n in names)
        site = tmp_path / "site"
        zf.extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site), "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}"}
    run = subprocess.run(
        [sys.executable, "-c", "import sys, camsync.cli as c; sys.exit(c.main(['db', 'upgrade']))"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    check = subprocess.run(
        [sys.executable, "-c", "import camsync.store.migrate as m; print(m.migrations_dir())"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.stdout.strip() == str(site / "camsync" / "migrations")
