"""The settings of a `camsync luna …` CLI test: a PAY+ app DB of given rows, pushed to a LUNA sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from camsync.sandbox.server import RunningSandbox
from camsync.source.payplus_sample import make_payplus_db


def luna_env(db_url: str, app_db: Path, sandbox: RunningSandbox, rows: list[dict[str, Any]]) -> dict[str, str]:
    """Write the PAY+ app DB of `rows` at `app_db`; the settings of a push from it to `sandbox` into `db_url`."""
    make_payplus_db(app_db, rows)
    return {
        "DATABASE_URL": db_url,
        "APP_DB_URL": f"sqlite:///{app_db}",
        "LUNA_BASE_URL": sandbox.url,
        "LUNA_USERNAME": sandbox.app.config.username,
        "LUNA_PASSWORD": sandbox.app.config.password,
        "LUNA_POLL_INITIAL_SECONDS": "0.1",
    }
