"""`camsync luna reconcile` and `luna push --sweep` through the real CLI, against the LUNA sandbox and a PAY+ file."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from luna_cli_support import luna_env

from camsync.sandbox.server import RunningSandbox
from camsync.source.payplus_sample import write_payplus_rows

DAY1, DAY2 = datetime(2026, 3, 1, 9, 0), datetime(2026, 3, 2, 9, 0)
ROWS = [
    {"id": 1, "txn_id": "T1", "amount": "1500", "created_at": DAY1},
    {"id": 2, "txn_id": "T2", "amount": "700", "created_at": DAY2},
    {"id": 3, "txn_id": "T3", "status": "READY", "created_at": DAY2},
]


@pytest.fixture
def env(db_url: str, tmp_path: Path, sandbox: RunningSandbox) -> dict[str, str]:
    return luna_env(db_url, tmp_path / "app.db", sandbox, ROWS)


def add_row(tmp_path: Path, row: dict[str, object]) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    write_payplus_rows(engine, [{"created_at": DAY2, **row}])
    engine.dispose()


def test_reconcile_matches_after_a_push_in_all_three_formats(run_cli, env) -> None:
    assert run_cli("luna", "push", "--wait", env=env).exit_code == 0
    table = run_cli("luna", "reconcile", env=env)
    assert table.exit_code == 0, table.stderr
    assert "2026-03-01" in table.stdout and "Every day matches" in table.stdout
    data = json.loads(run_cli("luna", "reconcile", "--json", env=env).stdout)
    assert data["matches"] is True and data["differences"] == []
    assert [(d["day"], d["used"], d["successful"], d["used_amount"]) for d in data["days"]] == [
        ("2026-03-01", 1, 1, "1500"),
        ("2026-03-02", 1, 1, "700"),
    ]
    lines = list(csv.DictReader(io.StringIO(run_cli("luna", "reconcile", "--csv", env=env).stdout)))
    assert [(r["day"], r["kind"], r["count"]) for r in lines] == [
        ("2026-03-01", "used", "1"),
        ("2026-03-01", "successful", "1"),
        ("2026-03-02", "used", "1"),
        ("2026-03-02", "successful", "1"),
    ]
    assert run_cli("luna", "reconcile", "--json", "--csv", env=env).exit_code == 2


def test_reconcile_exits_3_on_a_missed_row_and_the_sweep_fixes_it(run_cli, env, tmp_path, sandbox) -> None:
    assert run_cli("luna", "push", "--wait", env=env).exit_code == 0
    add_row(tmp_path, {"id": 9000, "txn_id": "T10", "amount": "100"})
    assert run_cli("luna", "push", "--wait", env=env).exit_code == 0  # the cursor moves to 9000
    add_row(tmp_path, {"id": 5000, "txn_id": "T9", "amount": "1,000"})  # committed late, far below the cursor
    assert "0 new txns" in run_cli("luna", "push", "--wait", env=env).stdout
    table = run_cli("luna", "reconcile", "--from", "2026-03-02", env=env)
    assert table.exit_code == 3 and "not_sent" in table.stdout and "T9" in table.stdout
    data = json.loads(run_cli("luna", "reconcile", "--json", env=env).stdout)
    assert [(d["kind"], d["tui_id"]) for d in data["differences"]] == [("not_sent", 5000)]
    rows = list(csv.DictReader(io.StringIO(run_cli("luna", "reconcile", "--csv", env=env).stdout)))
    assert {"day": "2026-03-02", "kind": "not_sent", "tui_id": "5000", "txn_id": "T9"}.items() <= rows[-1].items()
    swept = run_cli("luna", "push", "--sweep", "--wait", env=env)
    assert swept.exit_code == 0, swept.stderr
    assert "1 the scan had missed" in swept.stdout and "full sweep" in swept.stderr
    assert sandbox.app.stats()["by_reference"]["T9"] == 1
    assert run_cli("luna", "reconcile", env=env).exit_code == 0
    early = run_cli("luna", "reconcile", "--to", "2026-03-01", "--json", env=env)
    assert [d["day"] for d in json.loads(early.stdout)["days"]] == ["2026-03-01"]


def test_reconcile_lookup_lists_a_work_order_at_luna_for_a_row_that_is_not_used(run_cli, env, sandbox) -> None:
    from camsync.clients.luna_rest import LunaClient
    from camsync.settings import load_settings

    assert run_cli("luna", "push", "--wait", env=env).exit_code == 0
    assert run_cli("luna", "reconcile", "--lookup", env=env).exit_code == 0
    client = LunaClient.from_settings(load_settings(env))
    try:  # another program loads credit for T3, whose app row is READY
        client.create_work_order(txn_id="T3", meter="0123456789", amount=Decimal("900"), currency="XAF")
    finally:
        client.close()
    assert run_cli("luna", "reconcile", env=env).exit_code == 0  # the store alone cannot see it
    table = run_cli("luna", "reconcile", "--lookup", env=env)
    assert table.exit_code == 3 and "luna_only" in table.stdout and "LUNA lookups" in table.stdout
    data = json.loads(run_cli("luna", "reconcile", "--lookup", "--json", env=env).stdout)
    assert [(d["kind"], d["tui_id"], d["txn_id"]) for d in data["differences"]] == [("luna_only", 3, "T3")]
    assert "app row is READY" in data["differences"][0]["detail"] and data["lookups"] == 1
    off = run_cli("luna", "reconcile", "--lookup", env={**env, "LUNA_LOOKUP_URL": "none"})
    assert off.exit_code == 2 and "LUNA_LOOKUP_URL" in off.stderr
