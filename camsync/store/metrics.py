"""Read-only queries behind the monitoring outputs: each job's newest runs and the details its runs recorded.

Dry runs (`details.dry_run` true) are recorded in the ledger but synced nothing, so they never count as a job's
last run or last success here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from camsync.store.models import SyncRun
from camsync.store.runs import COUNTERS

FINISHED = ("SUCCESS", "FAILED", "PARTIAL")


@dataclass(frozen=True)
class RunFacts:
    """What monitoring needs of one finished run."""

    id: int
    status: str
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    counts: dict[str, int]
    error_message: str | None


@dataclass(frozen=True)
class JobRuns:
    """A job's newest finished run, its newest successful run, and whether a run of it is in progress."""

    last: RunFacts | None
    last_success: RunFacts | None
    running: bool


def _not_dry_run() -> Any:
    return or_(SyncRun.details.is_(None), SyncRun.details["dry_run"].as_boolean().is_not(True))


def _facts(run: SyncRun | None) -> RunFacts | None:
    if run is None:
        return None
    recorded = (run.details or {}).get("duration_seconds")
    if isinstance(recorded, int | float):
        duration: float | None = float(recorded)
    elif run.finished_at is not None:
        duration = (run.finished_at - run.started_at).total_seconds()
    else:
        duration = None
    return RunFacts(
        id=run.id,
        status=run.status,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_seconds=duration,
        counts={name: int(getattr(run, name) or 0) for name in COUNTERS},
        error_message=run.error_message,
    )


def _newest(session: Session, *, job: str, run_type: str, statuses: tuple[str, ...]) -> SyncRun | None:
    query = (
        select(SyncRun)
        .where(SyncRun.job == job, SyncRun.run_type == run_type, SyncRun.status.in_(statuses), _not_dry_run())
        .order_by(SyncRun.id.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def job_runs(session: Session, *, job: str, run_type: str) -> JobRuns:
    """The newest finished and the newest successful run of a ledger job/run type (dry runs left out)."""
    running = session.scalar(
        select(SyncRun.id).where(SyncRun.job == job, SyncRun.run_type == run_type, SyncRun.status == "RUNNING").limit(1)
    )
    return JobRuns(
        last=_facts(_newest(session, job=job, run_type=run_type, statuses=FINISHED)),
        last_success=_facts(_newest(session, job=job, run_type=run_type, statuses=("SUCCESS",))),
        running=running is not None,
    )


def recent_details(session: Session, *, job: str, limit: int = 50) -> list[dict[str, Any]]:
    """The `details` of the newest finished runs of a ledger job, newest first."""
    query = (
        select(SyncRun.details)
        .where(SyncRun.job == job, SyncRun.status.in_(FINISHED), SyncRun.details.is_not(None))
        .order_by(SyncRun.id.desc())
        .limit(limit)
    )
    return [details for details in session.scalars(query) if isinstance(details, dict)]
