"""Alembic environment: runs on the connection camsync hands over, or on DATABASE_URL from a checkout."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from camsync.store.base import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name)

# Only for `alembic revision --autogenerate`: revisions themselves never import the models.
import importlib  # noqa: E402
import pkgutil  # noqa: E402

import camsync.store  # noqa: E402

for _module in pkgutil.iter_modules(camsync.store.__path__):
    importlib.import_module(f"camsync.store.{_module.name}")

target_metadata = Base.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from camsync.settings import load_settings
    from camsync.store.engine import make_engine

    url = config.get_main_option("sqlalchemy.url") or load_settings().store_url
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("camsync migrations run online only: point DATABASE_URL at the store")
run_migrations_online()
