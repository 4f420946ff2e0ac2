"""`camsync smartup …` end to end: the real CLI against the sandbox server, on both databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from camsync.errors import ExitCode
from camsync.sandbox.smartup import SmartupSandboxConfig, start_smartup_sandbox


@pytest.fixture
def env(db_url: str) -> Iterator[dict[str, str]]:
    sandbox = start_smartup_sandbox(SmartupSandboxConfig(products=30, orders=40, seed=11))
    try:
        yield {
            "DATABASE_URL": db_url,
            "SMARTUP_BASE_URL": sandbox.url,
            "SMARTUP_BASIC_USER": "sandbox",
            "SMARTUP_BASIC_PASS": "sandbox",
            "SMARTUP_FILIAL_ID": "100",
            "SMARTUP_CALL_RESERVE": "0",
            "SYNC_ORDERS_DAYS_BACK": "45",
        }
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
