"""`camsync luna …` and `camsync state …` through the real CLI, against the LUNA sandbox and a PAY+ SQLite file."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from luna_cli_support import luna_env

from camsync.sandbox.server import RunningSandbox

ROWS = [
    {"id": 1, "txn_id": "T1", "amount": "1,500"},
    {"id": 2, "txn_id": "T2", "amount": "1500.00", "meter": "M-9"},
    {"id": 3, "txn_id": "T3", "amount": "0"},
    {"id": 4, "txn_id": "T4", "status": "READY"},
]


@pytest.fixture
def env(db_url: str, tmp_path: Path, sandbox: RunningSandbox) -> dict[str, str]:
    return luna_env(db_url, tmp_path / "app.db", sandbox, ROWS)


def test_push_sends_each_good_row_once_logs_familiar_lines_and_reports_rejects(run_cli, env, sandbox) -> None:
    result = run_cli("luna", "push", "--wait", env=env)
    assert result.exit_code == 0, result.stderr
    assert "[create] txn=T1 meter=M-1 amount=1500 XAF" in result.stderr
    assert "[create] txn=T2 meter=M-9 amount=1500.00 XAF" in result.stderr
    assert "[status] txn=T2 wo=" in result.stderr and "status=Successful" in result.stderr
    assert "2 new txns, 1 rejected" in result.stdout
    assert env["LUNA_PASSWORD"] not in result.stdout + result.stderr
    assert sandbox.app.stats()["by_reference"] == {"T1": 1, "T2": 1}
    again = run_cli("luna", "push", "--wait", env=env)
    assert again.exit_code == 0 and "0 new txns" in again.stdout
    assert sandbox.app.stats()["requests"]["create"] == 2


def test_status_json_and_rejected_table(run_cli, env) -> None:
    run_cli("luna", "push", "--wait", env=env)
    data = json.loads(run_cli("luna", "status", "--json", env=env).stdout)
    assert (data["counts"]["successful"], data["counts"]["rejected"]) == (2, 1)
    assert data["scan"] == {"last_tui_id": 4, "watched": 1}
    assert data["rejects"][0]["reason"] == "amount 0 is not positive"
    table = run_cli("luna", "status", "--state", "rejected", env=env)
    assert table.exit_code == 0 and "amount 0 is not positive" in table.stdout
    assert run_cli("luna", "status", "--state", "bogus", env=env).exit_code == 2


def test_show_prints_the_history_of_one_txn(run_cli, env) -> None:
    run_cli("luna", "push", "--wait", env=env)
    data = json.loads(run_cli("luna", "show", "T1", "--json", env=env).stdout)
    assert data["txn"]["state"] == "successful" and data["txn"]["work_order_id"].startswith("WO-")
    assert [e["kind"] for e in data["history"]][:4] == ["discovered", "intent", "request", "answer"]
    text = run_cli("luna", "show", "T1", env=env)
    assert text.exit_code == 0 and "History" in text.stdout
    missing = run_cli("luna", "show", "NOPE", env=env)
    assert missing.exit_code == 1 and "txn NOPE is not known" in missing.stderr


def test_replay_refuses_a_successful_txn_unless_forced(run_cli, env, sandbox) -> None:
    run_cli("luna", "push", "--wait", env=env)
    refused = run_cli("luna", "replay", "T1", env=env)
    assert refused.exit_code == 2 and "--force" in refused.stderr
    forced = run_cli("luna", "replay", "T1", "--force", env=env)
    assert forced.exit_code == 0 and "successful → successful" in forced.stdout
    assert sandbox.app.stats()["by_reference"]["T1"] == 1  # the idempotent sandbox answered the same work order


def test_dry_run_writes_and_sends_nothing(run_cli, env, sandbox) -> None:
    result = run_cli("luna", "push", "--dry-run", env=env)
    assert result.exit_code == 0 and "2 to send" in result.stdout
    assert sandbox.app.stats()["requests"]["create"] == 0
    assert json.loads(run_cli("runs", "list", "--json", env=env).stdout) == []
    assert json.loads(run_cli("luna", "status", "--json", env=env).stdout)["counts"]["discovered"] == 0


def test_state_reset_shows_asks_and_forgets(run_cli, env, monkeypatch) -> None:
    run_cli("luna", "push", "--wait", env=env)
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    declined = run_cli("state", "reset", "--txn", "T1", env=env)
    assert declined.exit_code == 1 and "Will forget txn T1" in declined.stdout
    assert json.loads(run_cli("luna", "status", "--json", env=env).stdout)["counts"]["successful"] == 2
    done = run_cli("state", "reset", "--txn", "T1", "--yes", env=env)
    assert done.exit_code == 0 and "Forgot txn T1" in done.stdout
    assert json.loads(run_cli("luna", "status", "--json", env=env).stdout)["counts"]["successful"] == 1
    assert run_cli("state", "reset", env=env).exit_code == 2
    assert run_cli("state", "reset", "--txn", "T1", "--all", env=env).exit_code == 2


def test_state_reset_help_says_what_forgetting_means(run_cli) -> None:
    result = run_cli("state", "reset", "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "rediscovers the txn" in text and "looked up in LUNA first" in text


def test_import_json_reads_state_path_and_is_idempotent(run_cli, env, tmp_path: Path, sandbox) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"created": {"T1": "WO-OLD"}, "done": ["T2"]}))
    env = {**env, "STATE_PATH": str(state)}
    first = run_cli("state", "import-json", "--json", env=env)
    assert first.exit_code == 0, first.stderr
    assert {k: json.loads(first.stdout)[k] for k in ("created", "done", "already_known")} == {
        "created": 1,
        "done": 1,
        "already_known": 0,
    }
    second = json.loads(run_cli("state", "import-json", str(state), "--json", env=env).stdout)
    assert second["already_known"] == 2
    sandbox.app.configure(idempotency=False)
    run_cli("luna", "push", "--no-wait", env=env)
    assert sandbox.app.stats()["requests"]["create"] == 0  # T1 and T2 came from the old agent: never sent again
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert run_cli("state", "import-json", str(bad), env=env).exit_code == 4


def test_refused_credentials_fail_the_run_without_showing_the_password(run_cli, env, sandbox) -> None:
    env = {**env, "LUNA_PASSWORD": "wrong-secret-value"}
    result = run_cli("luna", "push", "--wait", env=env)
    assert result.exit_code == 4 and "refused the credentials" in result.stderr
    assert "wrong-secret-value" not in result.stdout + result.stderr
    data = json.loads(run_cli("luna", "status", "--json", env=env).stdout)
    assert data["counts"]["discovered"] == 2 and sandbox.app.stats()["work_orders"] == 0
    runs = json.loads(run_cli("runs", "list", "--json", env=env).stdout)
    assert [(r["job"], r["status"]) for r in runs] == [("luna", "FAILED")]


def test_status_shows_txns_with_several_work_orders(run_cli, env, db_url) -> None:
    from camsync.store import luna_txns
    from camsync.store.base import utcnow
    from camsync.store.engine import open_store

    assert run_cli("luna", "push", "--wait", env=env).exit_code == 0
    store = open_store(db_url)
    try:
        with store.writer() as session:
            luna_txns.add_event(
                session, txn_id="T1", kind="duplicate_work_orders", message="2", actor="t", now=utcnow()
            )
    finally:
        store.dispose()
    result = run_cli("luna", "status", env=env)
    assert "1 txns have several work orders in LUNA" in result.stdout
    data = json.loads(run_cli("luna", "status", "--json", env=env).stdout)
    assert data["duplicate_work_orders"] == 1


def test_a_wrong_base_path_exits_4_fails_no_txn_and_the_fixed_url_sends_them_all(run_cli, env, sandbox) -> None:
    wrong = {**env, "LUNA_BASE_URL": f"{sandbox.url}/api/v9"}  # the sandbox answers an HTML 404 there
    result = run_cli("luna", "push", "--wait", env=wrong)
    assert result.exit_code == 4, result.stderr
    assert "no such route" in result.stderr and "LUNA_BASE_URL" in result.stderr
    counts = json.loads(run_cli("luna", "status", "--json", env=env).stdout)["counts"]
    assert counts["discovered"] == 2 and counts["failed"] == 0 and counts["unknown"] == 0
    fixed = run_cli("luna", "push", "--wait", env=env)
    assert fixed.exit_code == 0, fixed.stderr
    assert sandbox.app.stats()["by_reference"] == {"T1": 1, "T2": 1}


def test_replay_by_state_shows_the_plan_asks_then_sends_every_failed_txn_once(run_cli, env, sandbox) -> None:
    sandbox.app.configure(unknown_meters="M-1,M-9")
    assert run_cli("luna", "push", "--wait", env=env).exit_code == 3
    assert json.loads(run_cli("luna", "status", "--json", env=env).stdout)["counts"]["failed"] == 2
    sandbox.app.configure(unknown_meters="")
    asked = run_cli("luna", "replay", "--state", "failed", env=env)  # no --yes, and nobody answers: nothing done
    assert asked.exit_code != 0 and "2 txns failed" in asked.stdout
    assert sandbox.app.stats()["requests"]["create"] == 2
    done = run_cli("luna", "replay", "--state", "failed", "--yes", env=env)
    assert done.exit_code == 0, done.stderr
    assert "Replayed 2 txns failed; now: 2 successful." in done.stdout
    assert run_cli("luna", "replay", "--state", "successful", "--yes", env=env).exit_code == 2
    assert run_cli("luna", "replay", env=env).exit_code == 2
