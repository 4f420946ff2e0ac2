"""`camsync status` on both databases: the summary table, JSON, the --max-age check and its exit code, read-only."""

from __future__ import annotations

import json
import socket
from datetime import timedelta
from typing import Any

import pytest
import typer

from camsync import cli
from camsync.commands.status import status
from camsync.errors import ExitCode
from camsync.store import runs as run_queries
from camsync.store.base import utcnow
from camsync.store.engine import open_store


@pytest.fixture
def camsync(run_cli, monkeypatch: pytest.MonkeyPatch, db_url: str):  # type: ignore[no-untyped-def]
    """`camsync …` with `status` available (a tiny app around the real root until cli.py registers it)."""
    registered = {command.name for command in cli.app.registered_commands}
    if "status" not in registered:
        tiny = typer.Typer(pretty_exceptions_enable=False)
        tiny.callback()(cli.root)
        tiny.command("status")(status)
        monkeypatch.setattr(cli, "app", tiny)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("SMARTUP_BASE_URL", "http://127.0.0.1:9/smartup")  # configured, never contacted
    monkeypatch.setenv("LUNA_BASE_URL", "http://127.0.0.1:9/luna")
    return run_cli


@pytest.fixture
def ledger(db_url: str):  # type: ignore[no-untyped-def]
    opened = open_store(db_url)
    yield opened
    opened.dispose()


def add_run(store: Any, *, job: str, run_type: str, status: str, hours_ago: float, pid: int = 1) -> int:
    started = utcnow() - timedelta(hours=hours_ago)
    with store.session() as session:
        run = run_queries.create_run(
            session, job=job, run_type=run_type, trigger="cron", host=socket.gethostname(), pid=pid, now=started
        )
        if status != "RUNNING":
            finished = started + timedelta(seconds=30)
            run_queries.finish_run(session, run_id=run.id, status=status, now=finished, values={})
        return run.id


def fill(store: Any) -> None:
    add_run(store, job="smartup", run_type="products", status="SUCCESS", hours_ago=5)
    add_run(store, job="smartup", run_type="products", status="FAILED", hours_ago=1)
    add_run(store, job="smartup", run_type="orders", status="SUCCESS", hours_ago=0.5)
    add_run(store, job="run-all", run_type="run-all", status="SUCCESS", hours_ago=0.5)


def test_a_fresh_store_lists_every_job_as_never_and_exits_0(camsync) -> None:
    result = camsync("status")
    assert result.exit_code == 0, result.stderr
    for job in ("smartup-products", "smartup-orders", "smartup-stock", "luna-push", "run-all"):
        assert job in result.stdout
    assert result.stdout.count("never") == 10  # no last run and no last success, for each of the five jobs


def test_max_age_fails_on_a_stale_or_never_succeeded_job(camsync, ledger) -> None:
    fill(ledger)
    result = camsync("status", "--max-age", "2h")
    assert result.exit_code == ExitCode.FAILED
    assert "smartup-products: last succeeded 4h" in result.stderr
    assert "luna-push: never succeeded" in result.stderr
    assert "smartup-orders" not in result.stderr
    assert "STALE" in result.stdout and "NEVER" in result.stdout


def test_narrowed_to_fresh_jobs_it_exits_0(camsync, ledger) -> None:
    fill(ledger)
    result = camsync("status", "--max-age", "45m", "--job", "smartup-orders", "--job", "run-all")
    assert result.exit_code == 0, result.stderr
    assert "smartup-products" not in result.stdout and "smartup-orders" in result.stdout


def test_json_carries_every_job_and_the_verdicts(camsync, ledger) -> None:
    fill(ledger)
    result = camsync("status", "--max-age", "7200", "--json")
    assert result.exit_code == ExitCode.FAILED
    report = json.loads(result.stdout)
    verdicts = {job["job"]: job["verdict"] for job in report["jobs"]}
    assert verdicts == {
        "smartup-products": "STALE",
        "smartup-orders": "OK",
        "smartup-stock": "NEVER",
        "luna-push": "NEVER",
        "run-all": "OK",
    }
    products = report["jobs"][0]
    assert (products["last_status"], report["max_age_seconds"], report["ok"]) == ("FAILED", 7200, False)
    assert products["success_age_seconds"] == pytest.approx(5 * 3600 - 30, abs=60)


@pytest.mark.parametrize("args", [("--max-age", "2 weeks"), ("--job", "nope")])
def test_bad_arguments_are_usage_errors(camsync, args: tuple[str, str]) -> None:
    result = camsync("status", *args)
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("Error: ")


def test_a_job_not_configured_is_shown_off_and_not_judged(camsync, ledger, monkeypatch) -> None:
    monkeypatch.delenv("SMARTUP_BASE_URL")
    add_run(ledger, job="luna", run_type="push", status="SUCCESS", hours_ago=0.1)
    add_run(ledger, job="run-all", run_type="run-all", status="SUCCESS", hours_ago=0.1)
    result = camsync("status", "--max-age", "1h", "--json")
    assert result.exit_code == 0, result.stderr
    jobs = {job["job"]: (job["configured"], job["verdict"]) for job in json.loads(result.stdout)["jobs"]}
    assert jobs["smartup-orders"] == (False, "OFF") and jobs["luna-push"] == (True, "OK")


def test_status_writes_nothing(camsync, ledger) -> None:
    fill(ledger)
    abandoned = add_run(ledger, job="luna", run_type="push", status="RUNNING", hours_ago=3, pid=2**22 + 12345)
    with ledger.session() as session:
        before = [run.as_dict() for run in run_queries.list_runs(session, limit=100)]
    result = camsync("status", "--max-age", "1h")
    with ledger.session() as session:
        after = [run.as_dict() for run in run_queries.list_runs(session, limit=100)]
        still = run_queries.get_run(session, run_id=abandoned)
    assert result.exit_code == ExitCode.FAILED
    assert after == before and still is not None and still.status == "RUNNING"
    assert "running now" in result.stdout
