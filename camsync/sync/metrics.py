"""Monitoring: each job's health from the ledger, the Prometheus textfile, and the heartbeat ping after run-all.

The textfile (for node_exporter's textfile collector) is written atomically: a temporary file in the same folder,
renamed over the old one, so the collector never reads half a file. It holds, per job, the last run's status,
duration, end time and counts and the last success's end time, then each registered job's own families (see
`camsync.sync.jobs`). A timestamp of 0 means "never".
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from camsync.clients.heartbeat import HeartbeatClient, redacted_url
from camsync.errors import CamsyncError, UpstreamError, UsageError
from camsync.logs import get_logger
from camsync.settings import Settings
from camsync.store import metrics as queries
from camsync.store.base import utcnow
from camsync.store.engine import Store
from camsync.store.metrics import RunFacts
from camsync.store.runs import COUNTERS
from camsync.sync.exposition import Family, render
from camsync.sync.jobs import default_jobs, integrations

log = get_logger(__name__)

STATUS_VALUES = ("SUCCESS", "FAILED", "PARTIAL")
_DURATION = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class MonitoredJob:
    """A job as run-all names it, the ledger job/run type its runs are recorded under, and whether it is set up."""

    name: str
    ledger_job: str
    run_type: str
    configured: Callable[[Settings], bool] = lambda _settings: True


RUN_ALL = MonitoredJob("run-all", "run-all", "run-all")


def monitored_jobs() -> list[MonitoredJob]:
    """The jobs run-all runs, in its order, then run-all itself."""
    jobs = [MonitoredJob(j.name, j.ledger_job, j.ledger_run_type, j.configured) for j in default_jobs()]
    return [*jobs, RUN_ALL]


@dataclass(frozen=True)
class JobHealth:
    """A job's newest finished run, newest success, whether it is running now and whether it is set up at all."""

    name: str
    last: RunFacts | None
    last_success: RunFacts | None
    running: bool
    configured: bool = True

    def success_age(self, now: datetime) -> timedelta | None:
        """Time since the last success ended (None when it never succeeded)."""
        return None if self.last_success is None else now - _ended(self.last_success)

    def verdict(self, now: datetime, max_age: timedelta | None) -> str:
        """OFF (its upstream is not configured: not checked), NEVER (no success), STALE (last success older
        than `max_age`) or OK."""
        if not self.configured:
            return "OFF"
        age = self.success_age(now)
        if age is None:
            return "NEVER"
        return "STALE" if max_age is not None and age > max_age else "OK"

    def as_dict(self, now: datetime, max_age: timedelta | None) -> dict[str, Any]:
        """Plain JSON-ready values (for `camsync status --json`)."""
        age = self.success_age(now)
        return {
            "job": self.name,
            "verdict": self.verdict(now, max_age),
            "running": self.running,
            "configured": self.configured,
            "last_run_id": self.last.id if self.last else None,
            "last_status": self.last.status if self.last else None,
            "last_started_at": self.last.started_at.isoformat() if self.last else None,
            "last_finished_at": _iso(self.last.finished_at) if self.last else None,
            "last_error": self.last.error_message if self.last else None,
            "last_success_run_id": self.last_success.id if self.last_success else None,
            "last_success_at": _ended(self.last_success).isoformat() if self.last_success else None,
            "success_age_seconds": round(age.total_seconds(), 3) if age is not None else None,
        }


@dataclass(frozen=True)
class StatusReport:
    """Every selected job's health, judged against `max_age` at `now`."""

    now: datetime
    max_age: timedelta | None
    jobs: list[JobHealth] = field(default_factory=list)

    @property
    def unhealthy(self) -> list[JobHealth]:
        """The configured jobs failing the check (only with `max_age`): never succeeded, or too long ago."""
        if self.max_age is None:
            return []
        return [job for job in self.jobs if job.verdict(self.now, self.max_age) in ("NEVER", "STALE")]

    def as_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "max_age_seconds": self.max_age.total_seconds() if self.max_age is not None else None,
            "ok": not self.unhealthy,
            "jobs": [job.as_dict(self.now, self.max_age) for job in self.jobs],
        }


def _ended(run: RunFacts) -> datetime:
    return run.finished_at or run.started_at


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- job health and `camsync status` -------------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """`90s`, `45m`, `2h`, `1d` (or a bare number of seconds) as a timedelta; UsageError otherwise."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None or float(match["number"]) <= 0:
        raise UsageError(f"{text!r} is not a duration", "Write a positive number with s, m, h or d (90s, 45m, 2h, 1d)")
    return timedelta(seconds=float(match["number"]) * _UNIT_SECONDS[match["unit"]])


def select_monitored(names: Sequence[str] = ()) -> list[MonitoredJob]:
    """The monitored jobs named (all when none); unknown names are refused."""
    jobs = monitored_jobs()
    unknown = sorted(set(names) - {job.name for job in jobs})
    if unknown:
        raise UsageError(f"unknown job {', '.join(unknown)}", f"Jobs are {', '.join(j.name for j in jobs)}")
    return [job for job in jobs if not names or job.name in names]


def job_health(
    store: Store, *, settings: Settings | None = None, jobs: Sequence[MonitoredJob] | None = None
) -> list[JobHealth]:
    """Each job's newest finished run, newest success and running flag, read from the ledger; whether it is
    configured comes from `settings` (every job counts as configured without them)."""
    out = []
    with store.session() as session:
        for job in monitored_jobs() if jobs is None else jobs:
            runs = queries.job_runs(session, job=job.ledger_job, run_type=job.run_type)
            configured = settings is None or job.configured(settings)
            out.append(JobHealth(job.name, runs.last, runs.last_success, runs.running, configured))
    return out


def status_report(
    store: Store,
    settings: Settings,
    *,
    names: Sequence[str] = (),
    max_age: str | None = None,
    now: datetime | None = None,
) -> StatusReport:
    """The health of the named jobs (all when none), judged against `max_age` (`2h`, `45m`…) when given; a job
    whose upstream is not configured is shown but not judged."""
    limit = parse_duration(max_age) if max_age is not None else None
    jobs = select_monitored(names)
    return StatusReport(now=now or utcnow(), max_age=limit, jobs=job_health(store, settings=settings, jobs=jobs))


# --- the Prometheus textfile ---------------------------------------------------------------------------------


def _job_families(health: Sequence[JobHealth], *, with_configured: bool) -> list[Family]:
    configured = Family("camsync_job_configured", "1 when the job's upstream is configured (run-all runs it).")
    status = Family("camsync_job_last_run_status", "Status of the job's last finished run (1 for its status).")
    running = Family("camsync_job_running", "1 while a run of the job is in progress.")
    ended = Family("camsync_job_last_run_timestamp_seconds", "When the job's last finished run ended (0: never).")
    duration = Family("camsync_job_last_run_duration_seconds", "How long the job's last finished run took.")
    success = Family("camsync_job_last_success_timestamp_seconds", "When the job last succeeded (0: never).")
    items = Family("camsync_job_last_run_items", "Items of the job's last finished run, by outcome.")
    for job in health:
        for value in STATUS_VALUES:
            status.add(1 if job.last is not None and job.last.status == value else 0, job=job.name, status=value)
        running.add(1 if job.running else 0, job=job.name)
        configured.add(1 if job.configured else 0, job=job.name)
        ended.add(_ended(job.last).timestamp() if job.last else 0, job=job.name)
        success.add(_ended(job.last_success).timestamp() if job.last_success else 0, job=job.name)
        if job.last is None:
            continue
        if job.last.duration_seconds is not None:
            duration.add(job.last.duration_seconds, job=job.name)
        for kind in COUNTERS:
            items.add(job.last.counts.get(kind, 0), job=job.name, kind=kind)
    families = [status, running, ended, duration, success, items]
    return [configured, *families] if with_configured else families


def render_metrics(store: Store, *, settings: Settings | None = None, now: datetime | None = None) -> str:
    """The Prometheus text exposition of every job's health, then each registered job's own families; with
    `settings`, also whether each job is configured."""
    generated = Family("camsync_metrics_generated_timestamp_seconds", "When camsync wrote these metrics.")
    generated.add((now or utcnow()).timestamp())
    families = _job_families(job_health(store, settings=settings), with_configured=settings is not None)
    for integration in integrations():
        if integration.metrics is not None:
            families.extend(integration.metrics(store))
    return render([*families, generated])


def write_metrics(
    store: Store, path: Path | str, *, settings: Settings | None = None, now: datetime | None = None
) -> None:
    """Write `render_metrics` to `path` atomically (temporary file in the same folder, then rename)."""
    write_atomically(Path(path), render_metrics(store, settings=settings, now=now))


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so that a reader sees the old file or the new one, never a part."""
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _not_written(path, exc) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)  # node_exporter usually runs as another user
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise _not_written(path, exc) from None


def _not_written(path: Path, exc: OSError) -> CamsyncError:
    return CamsyncError(
        f"cannot write the metrics file {path}: {exc.strerror or type(exc).__name__}",
        "Check that its folder exists and camsync may write to it",
    )


# --- after a run-all pass ------------------------------------------------------------------------------------


def ping_heartbeat(settings: Settings, status: str, *, transport: Any = None) -> bool:
    """Ping HEARTBEAT_URL (…/fail unless `status` is SUCCESS) when it is set; True when the ping went through.

    A failed ping is logged as a warning and never raised: the monitor notices the missing ping by itself.
    """
    if not settings.heartbeat_url:
        return False
    ok = status == "SUCCESS"
    try:
        with HeartbeatClient(settings.heartbeat_url, transport=transport) as client:
            client.ping(ok=ok)
    except UpstreamError as exc:
        log.warning("heartbeat_failed", str(exc))
        return False
    except Exception as exc:  # a broken monitor must never break a run
        shown = redacted_url(settings.heartbeat_url)
        log.warning("heartbeat_failed", f"heartbeat ping to {shown} failed: {type(exc).__name__}")
        return False
    shown = redacted_url(settings.heartbeat_url)
    log.info("heartbeat_sent", f"heartbeat ping ({'success' if ok else 'failure'}) sent to {shown}", status=status)
    return True


def publish_outcome(
    store: Store,
    settings: Settings,
    status: str,
    *,
    metrics_file: Path | None = None,
    transport: Any = None,
) -> None:
    """After a run-all pass: write the metrics file (when given) and ping HEARTBEAT_URL (when set); never raises."""
    if metrics_file is not None:
        try:
            write_metrics(store, metrics_file, settings=settings)
        except Exception as exc:  # the jobs already committed their work; a monitoring failure must not undo that
            reason = str(exc) if isinstance(exc, CamsyncError) else f"{type(exc).__name__}: {exc}"
            log.error("metrics_not_written", reason)
    ping_heartbeat(settings, status, transport=transport)
