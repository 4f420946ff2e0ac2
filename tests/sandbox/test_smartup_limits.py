"""The SmartUp simulator's `project_code` per path, and a tenant whose range limit is narrower than the client's."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from test_smartup_sandbox import INVENTORY, ORDERS, PRICES, TODAY, Tenant, day

GROUPS = "/b/anor/mxsx/mr/product_group$export"
BALANCE = "/b/anor/mxsx/mkw/balance$export"


def status(tenant: Tenant, path: str, project_code: str) -> int:
    answer = tenant.client.post(path, json={}, headers={"project_code": project_code})
    return answer.status_code


@pytest.mark.parametrize("path", [INVENTORY, PRICES, GROUPS, BALANCE])
def test_anor_paths_take_trade_or_anor(make_tenant: Any, path: str) -> None:
    tenant = make_tenant()
    assert [status(tenant, path, code) for code in ("trade", "anor", "clinic", "")] == [200, 200, 401, 401]


def test_trade_paths_take_only_the_configured_code(make_tenant: Any) -> None:
    tenant = make_tenant()
    assert [status(tenant, ORDERS, code) for code in ("trade", "anor", "clinic")] == [200, 401, 401]
    assert tenant.app.stats()["refused"]["auth"] == 2


def test_another_configured_code_is_taken_with_anor_on_anor_paths(make_tenant: Any) -> None:
    tenant = make_tenant(project_code="telecom")
    assert [status(tenant, INVENTORY, code) for code in ("telecom", "anor", "trade")] == [200, 200, 401]
    assert [status(tenant, ORDERS, code) for code in ("telecom", "anor", "trade")] == [200, 401, 401]


# ----- range_mode "empty"


def orders_answer(tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    answer = tenant.export(ORDERS, body)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


@pytest.mark.parametrize(
    "body",
    [
        {"begin_modified_on": day(-10), "end_modified_on": day(0)},
        {"begin_deal_date": day(-5), "end_deal_date": day(-1)},
        {"begin_created_on": day(-4), "end_created_on": ""},
        {"begin_created_on": "", "end_created_on": day(-1)},
    ],
    ids=["modified", "deal", "created-open-end", "created-open-begin"],
)
def test_a_too_wide_range_is_an_empty_answer_announcing_the_limit(make_tenant: Any, body: dict[str, Any]) -> None:
    tenant = make_tenant(range_mode="empty", day_range_limit=3)
    answer = orders_answer(tenant, body)
    assert answer["order"] == []
    assert answer["limits"]["day_range_limit"] == "3"
    assert answer["limits"]["object_count"] == "0"
    assert "error_code" not in answer


def test_a_range_within_the_limit_is_served_whole_in_empty_mode(make_tenant: Any) -> None:
    tenant = make_tenant(range_mode="empty", day_range_limit=3)
    records = tenant.app.data.orders
    low = TODAY.toordinal() - 2
    answer = orders_answer(tenant, {"begin_modified_on": day(-2), "end_modified_on": day(0)})
    expected = {r.deal_id for r in records if low <= r.modified}
    assert expected
    assert {o["deal_id"] for o in answer["order"]} == expected
    assert len(orders_answer(tenant, {})["order"]) == len(records)


def test_the_limit_applies_to_the_order_ranges_only(make_tenant: Any) -> None:
    tenant = make_tenant(range_mode="empty", day_range_limit=2, limits_as_numbers=True)
    wide = {"begin_modified_on": day(-30), "end_modified_on": day(0)}
    assert tenant.export(INVENTORY, wide).json()["inventory"]
    stock = tenant.export(BALANCE, {"begin_date": day(-30), "end_date": day(0)}).json()
    assert stock["balance"]
    assert stock["limits"]["day_range_limit"] == 2


def test_the_command_takes_range_mode_empty_and_the_warehouses() -> None:
    from typer.testing import CliRunner

    import camsync.commands.sandbox_smartup as command

    seen: dict[str, Any] = {}

    def fake_start(config: Any, **_kwargs: Any) -> Any:
        seen["config"] = config
        raise OSError(98, "Address in use")

    runner = CliRunner()
    app = _one_command_app(command.smartup)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("camsync.sandbox.smartup.start_smartup_sandbox", fake_start)
        result = runner.invoke(app, ["--range-mode", "empty", "--day-range-limit", "3", "--warehouses", "5"])
    assert result.exit_code != 0
    config = seen["config"]
    assert (config.range_mode, config.day_range_limit, config.warehouses) == ("empty", 3, 5)
    refused = runner.invoke(app, ["--range-mode", "sometimes"])
    assert refused.exit_code == 2
    assert "range_mode" in refused.output


def _one_command_app(function: Any) -> Any:
    import typer

    app = typer.Typer()
    app.command()(function)
    return app


def test_stats_of_a_refused_project_code_cost_nothing(make_tenant: Any) -> None:
    tenant = make_tenant()
    with httpx.Client(base_url=tenant.running.url, auth=("sandbox", "sandbox")) as client:
        answer = client.post(ORDERS, json={}, headers={"project_code": "anor", "filial_id": "100"})
    assert answer.status_code == 401
    assert tenant.app.stats()["calls"]["documents"] == 0
