"""Monitoring on both databases: job health from the ledger, the Prometheus textfile, and the post-run-all hook."""

from __future__ import annotations

import io
import logging
import os
import stat
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from camsync.errors import CamsyncError, UsageError
from camsync.logs import setup_logging
from camsync.settings import load_settings
from camsync.store import luna_scan, luna_txns
from camsync.store import runs as run_queries
from camsync.sync import metrics
from camsync.sync.luna import moves
from camsync.sync.metrics import (
    parse_duration,
    publish_outcome,
    render_metrics,
    status_report,
    write_metrics,
)

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
TOKEN = "0f3c9a7e-5b1d-4e2a-9c8f-7d6e5a4b3c2d"
HEARTBEAT = f"https://hc-ping.example/{TOKEN}"
BOTH_APIS = {"SMARTUP_BASE_URL": "http://127.0.0.1:9/smartup", "LUNA_BASE_URL": "http://127.0.0.1:9/luna"}


def add_run(
    store: Any,
    *,
    job: str,
    run_type: str,
    status: str,
    started: datetime,
    seconds: float = 10.0,
    details: dict[str, Any] | None = None,
    **counts: int,
) -> int:
    """A finished ledger run at fixed times (RUNNING when `status` is RUNNING)."""
    with store.session() as session:
        run = run_queries.create_run(session, job=job, run_type=run_type, trigger="cron", host="h", pid=1, now=started)
        if status != "RUNNING":
            values = {**counts, "details": {"duration_seconds": seconds, **(details or {})}}
            run_queries.finish_run(
                session, run_id=run.id, status=status, now=started + timedelta(seconds=seconds), values=values
            )
        return run.id


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a text exposition, parsed by the Prometheus client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(parsed: dict[Any, float], name: str, **labels: str) -> float | None:
    return parsed.get((name, tuple(sorted(labels.items()))))


# --- the textfile --------------------------------------------------------------------------------------------


def test_an_empty_store_reports_every_job_as_never_run(store) -> None:
    text = render_metrics(store, now=T0)
    parsed = samples(text)
    for job in ("smartup-products", "smartup-orders", "smartup-stock", "luna-push", "run-all"):
        assert value(parsed, "camsync_job_last_success_timestamp_seconds", job=job) == 0
        assert value(parsed, "camsync_job_last_run_timestamp_seconds", job=job) == 0
        assert value(parsed, "camsync_job_last_run_status", job=job, status="SUCCESS") == 0
        assert value(parsed, "camsync_job_last_run_duration_seconds", job=job) is None
    assert value(parsed, "camsync_luna_txns", state="discovered") == 0
    assert value(parsed, "camsync_metrics_generated_timestamp_seconds") == T0.timestamp()


def test_every_family_has_help_and_type_lines(store) -> None:
    text = render_metrics(store, now=T0)
    names = {line.split()[0].split("{")[0] for line in text.splitlines() if not line.startswith("#")}
    for name in names:
        assert f"# HELP {name} " in text
        assert f"# TYPE {name} gauge" in text


def test_last_run_and_last_success_of_each_job(store) -> None:
    add_run(store, job="smartup", run_type="products", status="SUCCESS", started=T0, seconds=4, fetched=5)
    add_run(
        store,
        job="smartup",
        run_type="products",
        status="FAILED",
        started=T0 + timedelta(hours=1),
        seconds=2.5,
        fetched=7,
        inserted=3,
        updated=2,
        unchanged=1,
        failed=1,
    )
    add_run(store, job="luna", run_type="push", status="PARTIAL", started=T0, seconds=1)
    add_run(store, job="run-all", run_type="run-all", status="RUNNING", started=T0 + timedelta(hours=2))

    parsed = samples(render_metrics(store, now=T0 + timedelta(hours=3)))

    products = {"job": "smartup-products"}
    assert value(parsed, "camsync_job_last_run_status", status="FAILED", **products) == 1
    assert value(parsed, "camsync_job_last_run_status", status="SUCCESS", **products) == 0
    assert value(parsed, "camsync_job_last_run_duration_seconds", **products) == 2.5
    ended = (T0 + timedelta(hours=1, seconds=2.5)).timestamp()
    assert value(parsed, "camsync_job_last_run_timestamp_seconds", **products) == ended
    assert (
        value(parsed, "camsync_job_last_success_timestamp_seconds", **products)
        == (T0 + timedelta(seconds=4)).timestamp()
    )
    counts = {k: value(parsed, "camsync_job_last_run_items", kind=k, **products) for k in run_queries.COUNTERS}
    assert counts == {"fetched": 7, "inserted": 3, "updated": 2, "unchanged": 1, "failed": 1}
    assert value(parsed, "camsync_job_last_run_status", job="luna-push", status="PARTIAL") == 1
    assert value(parsed, "camsync_job_last_success_timestamp_seconds", job="luna-push") == 0
    assert value(parsed, "camsync_job_running", job="run-all") == 1
    assert value(parsed, "camsync_job_running", job="luna-push") == 0
    assert value(parsed, "camsync_job_last_run_timestamp_seconds", job="smartup-orders") == 0


def test_a_dry_run_is_neither_the_last_run_nor_a_success(store) -> None:
    add_run(store, job="smartup", run_type="orders", status="FAILED", started=T0)
    add_run(
        store,
        job="smartup",
        run_type="orders",
        status="SUCCESS",
        started=T0 + timedelta(hours=1),
        details={"dry_run": True},
    )
    parsed = samples(render_metrics(store, now=T0 + timedelta(hours=2)))
    assert value(parsed, "camsync_job_last_run_status", job="smartup-orders", status="FAILED") == 1
    assert value(parsed, "camsync_job_last_success_timestamp_seconds", job="smartup-orders") == 0


def test_budget_left_is_the_newest_value_reported_for_each_class(store) -> None:
    older = {"budget": {"left": {"reference": 80, "documents": 400}, "seen_at": {"reference": T0.isoformat()}}}
    newer_at = T0 + timedelta(hours=1)
    newer = {"budget": {"left": {"documents": 390}, "seen_at": {"documents": newer_at.isoformat()}}}
    add_run(store, job="smartup", run_type="products", status="SUCCESS", started=T0, details=older)
    add_run(store, job="smartup", run_type="orders", status="PARTIAL", started=newer_at, details=newer)
    add_run(
        store, job="luna", run_type="push", status="SUCCESS", started=newer_at, details={"budget": {"left": {"x": 1}}}
    )

    parsed = samples(render_metrics(store, now=T0 + timedelta(hours=2)))

    assert value(parsed, "camsync_smartup_budget_left_calls", budget_class="reference") == 80
    assert value(parsed, "camsync_smartup_budget_left_calls", budget_class="documents") == 390
    assert value(parsed, "camsync_smartup_budget_left_calls", budget_class="x") is None
    assert value(parsed, "camsync_smartup_budget_seen_timestamp_seconds", budget_class="documents") == (
        newer_at.timestamp()
    )
    assert value(parsed, "camsync_smartup_budget_seen_timestamp_seconds", budget_class="reference") == T0.timestamp()


def test_label_values_are_escaped(store) -> None:
    odd = 'we"ird\\class\nname'
    add_run(
        store, job="smartup", run_type="orders", status="SUCCESS", started=T0, details={"budget": {"left": {odd: 3}}}
    )
    parsed = samples(render_metrics(store, now=T0))
    assert value(parsed, "camsync_smartup_budget_left_calls", budget_class=odd) == 3


def test_luna_backlog_is_counted_per_state(store) -> None:
    found = [luna_scan.NewTxn(f"T{i}", i, f"M{i}", Decimal("1500"), "XAF") for i in range(1, 4)]
    reject = luna_scan.NewReject(9, None, "USED", "M9", "abc", "amount is not a number")
    with store.writer() as session:
        luna_scan.lock_scan_cursor(session)
        moves.apply_scan(session, now=T0, actor="test", last_id=9, found=found, rejects=[reject], watch=[], unwatch=[])
        luna_txns.transition(
            session,
            txn_id="T1",
            owner=None,
            from_states=("discovered",),
            now=T0,
            changes={"state": "unknown"},
            kind="test",
            message="test",
        )
    parsed = samples(render_metrics(store, now=T0))
    assert value(parsed, "camsync_luna_txns", state="discovered") == 2
    assert value(parsed, "camsync_luna_txns", state="unknown") == 1
    assert value(parsed, "camsync_luna_txns", state="successful") == 0
    assert value(parsed, "camsync_luna_rejects") == 1


# --- the atomic write ----------------------------------------------------------------------------------------


def test_write_replaces_the_file_in_one_rename_readable_by_others(store, tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "camsync.prom"
    target.write_text("old\n")
    seen: list[tuple[Path, str, str]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        seen.append((Path(src), Path(src).read_text(), Path(dst).read_text()))
        real_replace(src, dst)

    monkeypatch.setattr(metrics.os, "replace", spy)
    write_metrics(store, target, now=T0)

    [(temporary, new_text, old_text_then)] = seen
    assert temporary.parent == tmp_path and not temporary.name.endswith(".prom")
    assert old_text_then == "old\n" and new_text.startswith("# HELP")
    assert target.read_text() == new_text
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir() if "prom" in p.name) == ["camsync.prom"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(store, tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "camsync.prom"
    target.write_text("old\n")

    def broken(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(metrics.os, "replace", broken)
    with pytest.raises(CamsyncError, match="No space left on device"):
        write_metrics(store, target, now=T0)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir() if "prom" in p.name] == ["camsync.prom"]


def test_a_missing_folder_is_a_clear_error(store, tmp_path: Path) -> None:
    with pytest.raises(CamsyncError, match=r"cannot write the metrics file .*missing"):
        write_metrics(store, tmp_path / "missing" / "camsync.prom")


# --- job health ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("45m", 2700), ("2h", 7200), ("1d", 86400), ("30", 30), (" 1.5h ", 5400), ("2H", 7200)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "h", "2w", "-5m", "0", "2 hours", "1h30m"])
def test_bad_durations_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text)


def test_status_report_flags_stale_and_never_succeeded_jobs(store) -> None:
    add_run(store, job="smartup", run_type="products", status="SUCCESS", started=T0, seconds=60)
    add_run(store, job="smartup", run_type="orders", status="SUCCESS", started=T0 + timedelta(hours=2), seconds=60)
    now = T0 + timedelta(hours=3)
    names = ("smartup-products", "smartup-orders", "luna-push")
    report = status_report(store, load_settings(BOTH_APIS), names=names, max_age="2h", now=now)
    verdicts = {job.name: job.verdict(report.now, report.max_age) for job in report.jobs}
    assert verdicts == {"smartup-products": "STALE", "smartup-orders": "OK", "luna-push": "NEVER"}
    assert [job.name for job in report.unhealthy] == ["smartup-products", "luna-push"]
    assert report.as_dict()["jobs"][0]["success_age_seconds"] == pytest.approx(3 * 3600 - 60)


def test_without_max_age_the_report_only_describes(store) -> None:
    report = status_report(store, load_settings(BOTH_APIS), now=T0)
    assert [job.name for job in report.jobs] == [
        "smartup-products",
        "smartup-orders",
        "smartup-stock",
        "luna-push",
        "run-all",
    ]
    assert {job.verdict(report.now, report.max_age) for job in report.jobs} == {"NEVER"}
    assert report.unhealthy == []
    assert report.as_dict()["ok"] is True


def test_a_job_whose_upstream_is_not_configured_is_shown_but_not_judged(store) -> None:
    only_luna = load_settings({"LUNA_BASE_URL": "http://127.0.0.1:9/luna"})
    add_run(store, job="luna", run_type="push", status="SUCCESS", started=T0)
    report = status_report(store, only_luna, max_age="1h", now=T0 + timedelta(minutes=5))
    verdicts = {job.name: job.verdict(report.now, report.max_age) for job in report.jobs}
    assert verdicts == {
        "smartup-products": "OFF",
        "smartup-orders": "OFF",
        "smartup-stock": "OFF",
        "luna-push": "OK",
        "run-all": "NEVER",
    }
    assert [job.name for job in report.unhealthy] == ["run-all"]


def test_the_configured_gauge_follows_the_settings(store) -> None:
    parsed = samples(render_metrics(store, settings=load_settings({"LUNA_BASE_URL": "http://127.0.0.1:9"}), now=T0))
    assert value(parsed, "camsync_job_configured", job="luna-push") == 1
    assert value(parsed, "camsync_job_configured", job="smartup-orders") == 0
    assert value(parsed, "camsync_job_configured", job="run-all") == 1


def test_an_unknown_job_is_refused(store) -> None:
    with pytest.raises(UsageError, match="unknown job nope"):
        status_report(store, load_settings({}), names=("nope",), now=T0)


# --- after a run-all pass ------------------------------------------------------------------------------------


@pytest.fixture
def log_stream() -> io.StringIO:
    out = io.StringIO()
    setup_logging(fmt="text", level=logging.DEBUG, stream=out)
    return out


def recorder(status_code: int = 200) -> tuple[list[httpx.Request], httpx.MockTransport]:
    requests: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(status_code, text="OK")

    return requests, httpx.MockTransport(handle)


@pytest.mark.parametrize(
    ("status", "path"), [("SUCCESS", f"/{TOKEN}"), ("PARTIAL", f"/{TOKEN}/fail"), ("FAILED", f"/{TOKEN}/fail")]
)
def test_the_heartbeat_signals_the_run_all_outcome(store, tmp_path: Path, status: str, path: str) -> None:
    requests, transport = recorder()
    settings = load_settings({"HEARTBEAT_URL": HEARTBEAT})
    publish_outcome(store, settings, status, metrics_file=tmp_path / "m.prom", transport=transport)
    assert [(r.method, r.url.path) for r in requests] == [("GET", path)]
    assert (tmp_path / "m.prom").read_text().startswith("# HELP")


def test_no_heartbeat_url_means_no_ping(store) -> None:
    requests, transport = recorder()
    publish_outcome(store, load_settings({}), "SUCCESS", transport=transport)
    assert requests == []


def test_a_failing_monitor_is_a_warning_without_the_token(store, log_stream: io.StringIO) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)

    settings = load_settings({"HEARTBEAT_URL": HEARTBEAT})
    publish_outcome(store, settings, "SUCCESS", transport=httpx.MockTransport(refuse))
    logged = log_stream.getvalue()
    assert "WARN" in logged and "heartbeat" in logged and "hc-ping.example" in logged
    assert TOKEN not in logged


def test_a_metrics_failure_is_logged_and_the_heartbeat_still_goes(store, tmp_path: Path, log_stream) -> None:
    requests, transport = recorder()
    settings = load_settings({"HEARTBEAT_URL": HEARTBEAT})
    publish_outcome(store, settings, "SUCCESS", metrics_file=tmp_path / "no" / "m.prom", transport=transport)
    assert "cannot write the metrics file" in log_stream.getvalue()
    assert len(requests) == 1


def test_after_a_real_run_all_the_file_shows_its_jobs(store, tmp_path: Path) -> None:
    from camsync.sync.jobs import Job
    from camsync.sync.ledger import recorded_run
    from camsync.sync.runall import run_all

    def push(store, settings, trigger, parent_id) -> str:  # type: ignore[no-untyped-def]
        with recorded_run(store, job="luna", run_type="push", trigger=trigger, parent_id=parent_id) as run:
            run.add(fetched=2, inserted=2)
        return run.status

    settings = load_settings({"HEARTBEAT_URL": HEARTBEAT})
    requests, transport = recorder()
    result = run_all(store, settings, [Job("luna-push", "luna", "push", lambda _s: 0, push)])
    publish_outcome(store, settings, result.status, metrics_file=tmp_path / "camsync.prom", transport=transport)

    parsed = samples((tmp_path / "camsync.prom").read_text())
    assert value(parsed, "camsync_job_last_run_status", job="run-all", status="SUCCESS") == 1
    assert value(parsed, "camsync_job_last_run_items", job="luna-push", kind="inserted") == 2
    assert value(parsed, "camsync_job_last_success_timestamp_seconds", job="luna-push") > 0
    assert [r.url.path for r in requests] == [f"/{TOKEN}"]
