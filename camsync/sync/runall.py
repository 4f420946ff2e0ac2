"""run-all: every due job in one invocation, each under its own lock, one run-all ledger row above them.

A job is due when no run of it started within its interval (each job's own setting; 0 runs it on every call).
A failing job does not stop the others. The outcome: SUCCESS when every job that ran succeeded, FAILED when all
failed, PARTIAL otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from camsync.errors import CamsyncError, LockedError
from camsync.logs import get_logger
from camsync.settings import Settings
from camsync.store import runs as run_queries
from camsync.store.base import utcnow
from camsync.store.engine import Store
from camsync.store.locks import job_lock
from camsync.sync.jobs import Job
from camsync.sync.ledger import recorded_run

log = get_logger(__name__)


@dataclass
class JobOutcome:
    name: str
    status: str  # SUCCESS | FAILED | PARTIAL | SKIPPED (not due, not configured) | LOCKED (another process runs it)
    message: str = ""


@dataclass
class RunAllResult:
    run_id: int
    status: str
    outcomes: list[JobOutcome] = field(default_factory=list)


def is_due(store: Store, job: Job, settings: Settings, now: datetime) -> bool:
    """Whether no run of `job` started within its interval."""
    interval = job.interval(settings)
    if interval <= 0:
        return True
    with store.session() as session:
        last = run_queries.last_run(
            session, job=job.ledger_job, run_type=job.ledger_run_type, statuses=("SUCCESS", "PARTIAL", "FAILED")
        )
    return last is None or now - last.started_at >= timedelta(seconds=interval)


def select_jobs(jobs: Sequence[Job], *, only: Sequence[str] = (), skip: Sequence[str] = ()) -> list[Job]:
    """The jobs named by --only (all when empty) minus those named by --skip; unknown names are refused."""
    known = {job.name for job in jobs}
    unknown = sorted((set(only) | set(skip)) - known)
    if unknown:
        from camsync.errors import UsageError

        raise UsageError(f"unknown job {', '.join(unknown)}", f"Jobs are {', '.join(sorted(known))}")
    return [job for job in jobs if (not only or job.name in only) and job.name not in skip]


def overall_status(outcomes: Sequence[JobOutcome]) -> str:
    """SUCCESS when every job that ran succeeded, FAILED when all failed, PARTIAL in between."""
    ran = [o for o in outcomes if o.status not in ("SKIPPED", "LOCKED")]
    if not ran or all(o.status == "SUCCESS" for o in ran):
        return "SUCCESS"
    if all(o.status == "FAILED" for o in ran):
        return "FAILED"
    return "PARTIAL"


def _run_one(store: Store, settings: Settings, job: Job, trigger: str, parent_id: int, wait_lock: float) -> JobOutcome:
    try:
        with job_lock(store, job.name, wait=wait_lock):
            status = job.run(store, settings, trigger, parent_id)
    except LockedError as exc:
        log.warning("job_locked", f"{job.name}: {exc.reason}; skipped this time", job_name=job.name)
        return JobOutcome(job.name, "LOCKED", exc.reason)
    except CamsyncError as exc:
        log.error("job_failed", f"{job.name} failed: {exc}", job_name=job.name)
        return JobOutcome(job.name, "FAILED", str(exc))
    except Exception as exc:  # one job's bug must not stop the others
        log.error(
            "job_failed",
            f"{job.name} failed unexpectedly: {type(exc).__name__}: {exc}",
            exc_info=True,
            job_name=job.name,
        )
        return JobOutcome(job.name, "FAILED", f"{type(exc).__name__}: {exc}")
    return JobOutcome(job.name, status)


def run_all(
    store: Store,
    settings: Settings,
    jobs: Sequence[Job],
    *,
    trigger: str = "cli",
    wait_lock: float = 0.0,
    force: bool = False,
    now: Callable[[], datetime] = utcnow,
) -> RunAllResult:
    """Run every due job of `jobs` once, under the run-all lock; raise LockedError if another run-all is active."""
    with (
        job_lock(store, "run-all", wait=wait_lock),
        recorded_run(
            store, job="run-all", run_type="run-all", trigger=trigger, stale_seconds=settings.run_stale_seconds
        ) as run,
    ):
        outcomes = []
        for job in jobs:
            if not job.configured(settings):
                outcomes.append(JobOutcome(job.name, "SKIPPED", "not configured"))
                continue
            if not force and not is_due(store, job, settings, now()):
                outcomes.append(JobOutcome(job.name, "SKIPPED", "not due"))
                continue
            outcomes.append(_run_one(store, settings, job, trigger, run.id, wait_lock))
        run.details["jobs"] = {o.name: o.status for o in outcomes}
        status = overall_status(outcomes)
        if status != "SUCCESS":
            failed = [f"{o.name}: {o.message or o.status}" for o in outcomes if o.status in ("FAILED", "PARTIAL")]
            run.fail("; ".join(failed), partial=status == "PARTIAL")
    return RunAllResult(run_id=run.id, status=status, outcomes=outcomes)
