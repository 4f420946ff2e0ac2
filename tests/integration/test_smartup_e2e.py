"""`camsync smartup …` end to end: the real CLI against the sandbox server, on both databases."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from camsync.errors import ExitCode
from camsync.sandbox.smartup import SmartupSandboxConfig, start_smartup_sandbox


def sandbox_env(db_url: str, sandbox: Any, **extra: str) -> dict[str, str]:
    """The settings of a pull from `sandbox` into `db_url`."""
    return {
        "DATABASE_URL": db_url,
        "SMARTUP_BASE_URL": sandbox.url,
        "SMARTUP_BASIC_USER": "sandbox",
        "SMARTUP_BASIC_PASS": "sandbox",
        "SMARTUP_FILIAL_ID": "100",
        "SMARTUP_CALL_RESERVE": "0",
        "SYNC_ORDERS_DAYS_BACK": "45",
        **extra,
    }


@pytest.fixture
def env(db_url: str) -> Iterator[dict[str, str]]:
    sandbox = start_smartup_sandbox(SmartupSandboxConfig(products=30, orders=40, seed=11))
    try:
        yield sandbox_env(db_url, sandbox)
    finally:
        sandbox.stop()


def as_json(result: Any) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_products_and_orders_fill_the_store_and_a_second_run_is_unchanged(run_cli, env: dict[str, str]) -> None:
    products = as_json(run_cli("smartup", "products", "--json", env=env))
    orders = as_json(run_cli("smartup", "orders", "--json", env=env))
    assert (products["status"], products["inserted"], products["fetched"]) == ("SUCCESS", 30, 30)
    assert orders["status"] == "SUCCESS" and orders["inserted"] == orders["fetched"] == 40
    again = as_json(run_cli("smartup", "products", "--full", "--json", env=env))
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 30)
    orders_again = as_json(run_cli("smartup", "orders", "--days-back", "45", "--json", env=env))
    assert (orders_again["inserted"], orders_again["updated"], orders_again["unchanged"]) == (0, 0, 40)
    runs = as_json(run_cli("runs", "list", "--job", "smartup", "--json", env=env))
    assert [(r["run_type"], r["status"], r["inserted"], r["unchanged"]) for r in runs] == [
        ("orders", "SUCCESS", 0, 40),
        ("groups", "SUCCESS", 0, 4),  # the full refresh brings the groups again: unchanged
        ("products", "SUCCESS", 0, 30),
        ("orders", "SUCCESS", 40, 0),
        ("groups", "SUCCESS", 4, 0),
        ("products", "SUCCESS", 30, 0),
    ]
    assert runs[-1]["details"]["budget"]["calls"] == {"reference": 2}  # products and prices
    assert runs[-2]["details"]["budget"]["calls"] == {"reference": 1}  # the groups


def test_table_output_and_sync_with_a_child_run_per_export(run_cli, env: dict[str, str]) -> None:
    result = run_cli("--trigger", "cron", "smartup", "sync", env=env)
    assert result.exit_code == 0, result.stderr
    assert "products" in result.stdout and "orders" in result.stdout and "SUCCESS" in result.stdout
    parent = as_json(run_cli("runs", "list", "--job", "full", "--json", env=env))[0]
    shown = as_json(run_cli("runs", "show", str(parent["id"]), "--json", env=env))
    assert [c["run_type"] for c in shown["children"]] == ["products", "groups", "orders", "stock"]
    assert {parent["trigger"], *(c["trigger"] for c in shown["children"])} == {"cron"}


def test_dry_run_and_single_order(run_cli, env: dict[str, str]) -> None:
    dry = run_cli("smartup", "orders", "--dry-run", "--days-back", "45", env=env)
    assert dry.exit_code == 0, dry.stderr
    assert "would insert" in dry.stdout
    one = as_json(run_cli("smartup", "order", "5000001", "--json", env=env))
    assert (one["status"], one["inserted"], one["cursor_after"]) == ("SUCCESS", 1, None)
    missing = run_cli("smartup", "order", "424242", env=env)
    assert missing.exit_code == ExitCode.FAILED
    assert "no order with deal_id 424242" in missing.stderr


def test_exit_codes_for_partial_failed_and_config(run_cli, env: dict[str, str]) -> None:
    partial = run_cli("smartup", "products", env={**env, "SMARTUP_CALL_RESERVE": "99"})
    assert partial.exit_code == ExitCode.PARTIAL == 3  # products fetched, prices stopped by the reserve
    assert "reference budget" in partial.stderr
    bad_password = run_cli("smartup", "orders", env={**env, "SMARTUP_BASIC_PASS": "wrong-secret"})
    assert bad_password.exit_code == ExitCode.FAILED
    assert "SMARTUP_BASIC_USER" in bad_password.stderr and "wrong-secret" not in bad_password.stderr
    usage = run_cli("smartup", "orders", "--since", "2026-06-01", env=env)
    assert usage.exit_code == ExitCode.USAGE
    unset = run_cli("smartup", "products", env={**env, "SMARTUP_BASE_URL": ""})
    assert unset.exit_code == ExitCode.CONFIG


# --- the four catalogue tables and a narrower server, against the sandbox in its real shapes -------------------


def exported(sandbox: Any, path: str, root: str, body: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """What the sandbox itself answers an export: the description the tables must match."""
    import httpx

    answer = httpx.post(
        f"{sandbox.url}{path}",
        json=body or {},
        auth=("sandbox", "sandbox"),
        headers={"project_code": "trade", "filial_id": "100"},
    )
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()[root]
    return items


def table(db_url: str, sql: str) -> set[tuple[Any, ...]]:
    import sqlalchemy as sa

    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return {tuple(row) for row in conn.execute(sa.text(sql))}
    finally:
        engine.dispose()


def test_sync_fills_the_four_tables_as_smartup_describes_them_and_every_backfilled_order_lands(
    run_cli, db_url: str
) -> None:
    from decimal import Decimal

    # a tenant whose range limit (3 days) is narrower than the client's (7), answering wider ranges empty
    sandbox = start_smartup_sandbox(
        SmartupSandboxConfig(products=60, orders=120, seed=5, day_range_limit=3, range_mode="empty")
    )
    try:
        env = sandbox_env(db_url, sandbox, SMARTUP_DAY_RANGE_LIMIT="7", SYNC_ORDERS_DAYS_BACK="35")
        result = as_json(run_cli("smartup", "sync", "--json", env=env))
        groups = exported(sandbox, "/b/anor/mxsx/mr/product_group$export", "product_group")
        products = exported(sandbox, "/b/anor/mxsx/mr/inventory$export", "inventory")
        today = sandbox.app.today().strftime("%d.%m.%Y")
        balance = exported(
            sandbox, "/b/anor/mxsx/mkw/balance$export", "balance", {"begin_date": today, "end_date": today}
        )
        orders_run = next(c for c in result["children"] if c["run_type"] == "orders")
        windows = [(date.fromisoformat(a), date.fromisoformat(b)) for a, b in orders_run["details"]["windows"]]
        expected_orders = {o["deal_id"] for first, last in windows for o in _orders_modified(sandbox, first, last)}
        first_day, today_day = windows[0][0], sandbox.app.today()
    finally:
        sandbox.stop()
    assert result["status"] == "SUCCESS", result
    assert orders_run["details"]["server_day_range_limit"] == 3
    assert all((b - a).days < 3 for a, b in windows)  # every window within what the server allows …
    assert all(later[0] == earlier[1] + timedelta(days=1) for earlier, later in itertools.pairwise(windows))
    assert (windows[-1][1], (today_day - first_day).days + 1) == (today_day, 35)  # … and together the 35 days
    assert table(db_url, "SELECT source_external_id FROM orders") == {(d,) for d in expected_orders}
    assert len(expected_orders) > 50  # a back-fill that a 7-day window would have answered empty

    assert table(db_url, "SELECT product_group_id, code, name, state FROM product_groups") == {
        (g["product_group_id"], g["code"], g["name"], g["state"]) for g in groups
    }
    assert table(db_url, "SELECT product_group_id, product_type_id, code, name, state FROM product_group_types") == {
        (g["product_group_id"], t["product_type_id"], t["code"], t["name"], t["state"])
        for g in groups
        for t in g["product_group_types"]
    }
    assert table(db_url, "SELECT product_id, product_group_id, product_type_id FROM product_classifications") == {
        (p["product_id"], e["group_id"], e["type_id"]) for p in products for e in p.get("groups") or []
    }
    sums: dict[tuple[str, str], list[Any]] = {}
    for row in balance:
        pair = sums.setdefault((row["warehouse_id"], row["product_id"]), [Decimal(0), 0])
        pair[0] += Decimal(row["quantity"])
        pair[1] += 1
    stored = table(db_url, "SELECT warehouse_id, product_id, quantity, batches FROM stock_balances")
    assert {(w, p, Decimal(str(q)).normalize(), b) for w, p, q, b in stored} == {
        (w, p, q.normalize(), b) for (w, p), (q, b) in sums.items()
    }
    assert len({w for w, _ in sums}) == 3  # every warehouse kept apart, the defective one too


def _orders_modified(sandbox: Any, first: date, last: date) -> list[dict[str, Any]]:
    """The orders modified from `first` to `last` (within the server's limit), as the sandbox answers them."""
    body = {
        "filial_codes": [],
        "begin_modified_on": first.strftime("%d.%m.%Y"),
        "end_modified_on": last.strftime("%d.%m.%Y"),
    }
    return exported(sandbox, "/b/trade/txs/tdeal/order$export", "order", body)


def test_groups_and_stock_commands_dry_run_json_and_a_changed_stock(run_cli, env: dict[str, str]) -> None:
    dry = as_json(run_cli("smartup", "groups", "--dry-run", "--json", env=env))
    assert (dry["status"], dry["dry_run"], dry["details"]["would_insert"]) == ("SUCCESS", True, 4)
    groups = as_json(run_cli("smartup", "groups", "--json", env=env))
    assert (groups["run_type"], groups["inserted"], groups["details"]["values_written"] > 10) == ("groups", 4, True)
    table_out = run_cli("smartup", "stock", "--dry-run", env=env)
    assert table_out.exit_code == 0 and "would insert" in table_out.stdout and "stock" in table_out.stdout
    stock = as_json(run_cli("smartup", "stock", "--json", env=env))
    assert stock["status"] == "SUCCESS" and stock["inserted"] == stock["details"]["rows"] > 0
    again = as_json(run_cli("smartup", "stock", "--json", env=env))
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, stock["inserted"])
    assert again["details"]["budget"]["calls"] == {"documents": 1}
