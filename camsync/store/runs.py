"""Queries on the run ledger (`sync_runs`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from camsync.store.models import SyncRun

COUNTERS = ("fetched", "inserted", "updated", "unchanged", "failed")


def create_run(
    session: Session,
    *,
    job: str,
    run_type: str,
    trigger: str,
    host: str,
    pid: int,
    now: datetime,
    parent_id: int | None = None,
    cursor_before: str | None = None,
) -> SyncRun:
    """Insert a RUNNING run and return it with its id."""
    run = SyncRun(
        job=job,
        run_type=run_type,
        status="RUNNING",
        trigger=trigger,
        parent_id=parent_id,
        started_at=now,
        heartbeat_at=now,
        host=host,
        pid=pid,
        cursor_before=cursor_before,
        fetched=0,
        inserted=0,
        updated=0,
        unchanged=0,
        failed=0,
    )
    session.add(run)
    session.flush()
    return run


def heartbeat(session: Session, *, run_id: int, now: datetime, counts: dict[str, int] | None = None) -> None:
    """Record that a run is still alive, with its counts so far."""
    values: dict[str, Any] = {"heartbeat_at": now, **(counts or {})}
    session.execute(update(SyncRun).where(SyncRun.id == run_id, SyncRun.status == "RUNNING").values(**values))


def finish_run(session: Session, *, run_id: int, status: str, now: datetime, values: dict[str, Any]) -> None:
    """Close a run with its final status, counts, window, cursor, error and details."""
    session.execute(
        update(SyncRun).where(SyncRun.id == run_id).values(status=status, finished_at=now, heartbeat_at=now, **values)
    )


def reap_abandoned(
    session: Session,
    *,
    now: datetime,
    stale_before: datetime,
    host: str,
    alive: Callable[[int], bool],
) -> list[int]:
    """Mark FAILED every RUNNING run whose process is gone: checked directly on this host, by a stale heartbeat
    for runs of other hosts (containers, other machines)."""
    running = session.scalars(select(SyncRun).where(SyncRun.status == "RUNNING")).all()
    reaped = []
    for run in running:
        last_sign = run.heartbeat_at or run.started_at
        dead_here = run.host == host and not alive(run.pid)
        if dead_here or (run.host != host and last_sign < stale_before):
            why = "its process is gone" if dead_here else f"no heartbeat since {last_sign.isoformat()}"
            run.status = "FAILED"
            run.finished_at = now
            run.error_message = f"abandoned: {why} (host {run.host}, pid {run.pid})"
            reaped.append(run.id)
    session.flush()
    return reaped


def list_runs(
    session: Session, *, job: str | None = None, status: str | None = None, limit: int = 20
) -> Sequence[SyncRun]:
    """The newest runs first, optionally for one job and one status."""
    query = select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)
    if job:
        query = query.where(or_(SyncRun.job == job, SyncRun.run_type == job))
    if status:
        query = query.where(SyncRun.status == status.upper())
    return session.scalars(query).all()


def get_run(session: Session, *, run_id: int) -> SyncRun | None:
    """One run by id."""
    return session.get(SyncRun, run_id)


def child_runs(session: Session, *, parent_id: int) -> Sequence[SyncRun]:
    """The runs started inside a run (the parts of a job run in two, the jobs of a run-all pass)."""
    return session.scalars(select(SyncRun).where(SyncRun.parent_id == parent_id).order_by(SyncRun.id)).all()


def last_run(
    session: Session, *, job: str, run_type: str | None = None, statuses: tuple[str, ...] = ("SUCCESS",)
) -> SyncRun | None:
    """The newest finished run of a job (and run type) with one of `statuses`."""
    query = select(SyncRun).where(SyncRun.job == job, SyncRun.status.in_(statuses))
    if run_type:
        query = query.where(SyncRun.run_type == run_type)
    return session.scalars(query.order_by(SyncRun.id.desc()).limit(1)).first()


def last_cursor_run(session: Session, *, job: str, run_type: str) -> SyncRun | None:
    """The newest successful run of `job`/`run_type` that moved the cursor."""
    query = (
        select(SyncRun)
        .where(
            SyncRun.job == job,
            SyncRun.run_type == run_type,
            SyncRun.status == "SUCCESS",
            SyncRun.cursor_after.is_not(None),
        )
        .order_by(SyncRun.id.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def last_full_refresh(session: Session, *, job: str, run_type: str) -> SyncRun | None:
    """The newest successful run whose details say it was a full refresh."""
    query = (
        select(SyncRun)
        .where(
            SyncRun.job == job,
            SyncRun.run_type == run_type,
            SyncRun.status == "SUCCESS",
            SyncRun.details["full_refresh"].as_boolean().is_(True),
        )
        .order_by(SyncRun.id.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def recent_run_details(session: Session, *, job: str, limit: int = 50) -> list[dict[str, Any]]:
    """The details of the newest finished runs of `job`, newest first."""
    query = (
        select(SyncRun.details)
        .where(SyncRun.job == job, SyncRun.status != "RUNNING", SyncRun.details.is_not(None))
        .order_by(SyncRun.id.desc())
        .limit(limit)
    )
    return [details for details in session.scalars(query) if isinstance(details, dict)]
