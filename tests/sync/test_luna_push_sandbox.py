"""The push against the real LUNA sandbox (HTTP on loopback) with its faults, on both databases.

The sandbox's idempotency is OFF in these tests, so any second create of a txn shows as a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from camsync.clients.http import RetryPolicy
from camsync.clients.luna_rest import LunaClient
from camsync.sandbox.luna import LunaSandboxConfig, start_luna_sandbox
from camsync.sandbox.server import RunningSandbox
from camsync.settings import load_settings
from camsync.source.payplus import PayplusSource
from camsync.source.payplus_sample import make_payplus_db
from camsync.store import luna_admin
from camsync.sync.luna.options import PushOptions
from camsync.sync.luna.push import PushReport, push

FAST = {"waiting_seconds": 0.05, "in_progress_seconds": 0.05, "idempotency": False}


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    running = start_luna_sandbox(LunaSandboxConfig(**FAST))
    try:
        yield running
    finally:
        running.stop()


def run_push(store, sandbox: RunningSandbox, app_db: Path, **env: str) -> PushReport:
    settings = load_settings(
        {
            "LUNA_BASE_URL": sandbox.url,
            "LUNA_USERNAME": sandbox.app.config.username,
            "LUNA_PASSWORD": sandbox.app.config.password,
            "APP_DB_URL": f"sqlite:///{app_db}",
            "LUNA_POLL_INITIAL_SECONDS": "0.1",
            **env,
        }
    )
    client = LunaClient.from_settings(settings, policy=RetryPolicy(attempts=3, base_delay=0.01), sleep=lambda _s: None)
    source = PayplusSource.from_settings(settings)
    options = PushOptions.from_settings(settings, timeout=30.0, retry_base=0.05)
    try:
        return push(settings, store, options=options, client=client, source=source)
    finally:
        client.close()
        source.close()


def app_db(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "app.db"
    make_payplus_db(path, rows)
    return path


def local_states(store) -> dict[str, str]:
    with store.session() as session:
        return {row["txn_id"]: row["state"] for row in luna_admin.list_txns(session, limit=1000)}


def test_lost_answers_5xx_and_malformed_bodies_still_make_one_work_order_each(store, sandbox, tmp_path) -> None:
    path = app_db(tmp_path, [{"id": i} for i in range(1, 9)])
    sandbox.app.fail_next("drop_after_commit", 2, endpoint="create")
    sandbox.app.fail_next("error", 2, endpoint="create")
    sandbox.app.fail_next("malformed", 1, endpoint="create")
    sandbox.app.fail_next("rate_limit", 2, endpoint="status")
    report = run_push(store, sandbox, path)
    stats = sandbox.app.stats()
    assert stats["duplicates"] == [] and stats["work_orders"] == 8
    assert stats["faults"]["drop_after_commit"] == 2 and stats["faults"]["malformed"] == 1
    assert set(local_states(store).values()) == {"successful"} and report.status == "SUCCESS"
    assert report.counts.adopted == 3 and report.counts.lookups >= 3


def test_a_5xx_that_may_have_committed_is_looked_up_then_sent(store, sandbox, tmp_path) -> None:
    sandbox.app.configure(error_status=500)
    sandbox.app.fail_next("error", 1, endpoint="create")
    run_push(store, sandbox, app_db(tmp_path, [{"id": 1}]))
    stats = sandbox.app.stats()
    assert stats["by_reference"] == {"TXN-1": 1} and stats["requests"]["lookup"] == 1
    assert local_states(store) == {"TXN-1": "successful"}


def test_busy_meter_is_retried_until_its_earlier_load_ends(store, sandbox, tmp_path) -> None:
    sandbox.app.configure(meter_conflicts=True)
    report = run_push(store, sandbox, app_db(tmp_path, [{"id": i, "meter": "M-SAME"} for i in range(1, 4)]))
    assert sandbox.app.stats()["by_reference"] == {"TXN-1": 1, "TXN-2": 1, "TXN-3": 1}
    assert set(local_states(store).values()) == {"successful"} and report.counts.retries >= 2


def test_unknown_meter_fails_once_and_failed_work_orders_are_terminal(store, sandbox, tmp_path) -> None:
    sandbox.app.configure(unknown_meters=("M-404",), failure_rate=1.0)
    report = run_push(store, sandbox, app_db(tmp_path, [{"id": 1, "meter": "M-404"}, {"id": 2}]))
    assert local_states(store) == {"TXN-1": "failed", "TXN-2": "failed"}
    assert sandbox.app.stats()["requests"]["create"] == 2 and report.status == "PARTIAL"
    with store.session() as session:
        assert "METER_NOT_FOUND" in luna_admin.get_txn(session, txn_id="TXN-1")["last_error"]
        assert luna_admin.get_txn(session, txn_id="TXN-2")["last_error"] == "Meter did not acknowledge the credit"


def test_old_agent_settings_envelope_bearer_and_field_names(store, sandbox, tmp_path) -> None:
    sandbox.app.configure(envelope=True, auth="bearer", amount_field="Amount", client_ref_field="Ref")
    path = app_db(tmp_path, [{"id": 1, "amount": "2,500"}])
    run_push(
        store,
        sandbox,
        path,
        LUNA_TOKEN="sandbox-token",
        LUNA_AMOUNT_FIELD="Amount",
        LUNA_CLIENT_REF_FIELD="Ref",
        LUNA_LOOKUP_URL="{LUNA_BASE_URL}/workorders?Ref={ref}",
    )
    [order] = sandbox.app.work_orders("TXN-1")
    assert (order["Status"], local_states(store)) == ("Successful", {"TXN-1": "successful"})
