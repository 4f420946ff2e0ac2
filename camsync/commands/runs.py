"""`camsync runs`: the run ledger of every job."""

from __future__ import annotations

from typing import Annotated

import typer

from camsync.commands.context import get_context
from camsync.commands.options import JsonOption, LimitOption
from camsync.sync.jobs import ledger_names

app = typer.Typer(
    help="Show the run ledger: every run of every job, with its counts and outcome.", no_args_is_help=True
)

_LEDGER_JOBS, _RUN_TYPES = ledger_names()
STATUSES = ("RUNNING", "SUCCESS", "FAILED", "PARTIAL")


def _check_status(value: str | None) -> str | None:
    if value is not None and value.upper() not in STATUSES:
        raise typer.BadParameter(f"must be one of {', '.join(STATUSES)}")
    return value.upper() if value else None


@app.command("list")
def list_runs(
    ctx: typer.Context,
    job: Annotated[
        str | None,
        typer.Option(
            "--job",
            "-j",
            help=f"Only this job ({', '.join([*_LEDGER_JOBS, 'run-all'])}) or run type ({', '.join(_RUN_TYPES)}).",
        ),
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            "-s",
            callback=_check_status,
            help="Only runs with this status: RUNNING, SUCCESS, FAILED, PARTIAL.",
        ),
    ] = None,
    limit: LimitOption = 20,
    as_json: JsonOption = False,
) -> None:
    """List the newest runs first."""
    from camsync.commands.render import console, fmt_status, fmt_time, print_json, print_table
    from camsync.store.runs import list_runs as query

    with get_context(ctx).store.session() as session:
        runs = [run.as_dict() for run in query(session, job=job, status=status, limit=limit)]
    if as_json:
        print_json(runs)
        return
    if not runs:
        console.print("No runs recorded yet" + (" for this filter." if job or status else "."))
        return
    print_table(
        "Runs",
        (
            "id",
            "job",
            "type",
            "status",
            "trigger",
            "started",
            "seconds",
            "fetched",
            "inserted",
            "updated",
            "unchanged",
            "failed",
            "error",
        ),
        (
            [
                r["id"],
                r["job"],
                r["run_type"],
                fmt_status(r["status"]),
                r["trigger"],
                fmt_time(r["started_at"]),
                (r["details"] or {}).get("duration_seconds", ""),
                r["fetched"],
                r["inserted"],
                r["updated"],
                r["unchanged"],
                r["failed"],
                (r["error_message"] or "")[:80],
            ]
            for r in runs
        ),
    )


@app.command("show")
def show_run(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(help="The run's id, as `runs list` shows it.")],
    as_json: JsonOption = False,
) -> None:
    """Show one run in full, with the runs it started."""
    from camsync.commands.render import fmt_status, fmt_time, print_fields, print_json, print_table
    from camsync.errors import NotFoundError
    from camsync.store.runs import child_runs, get_run

    with get_context(ctx).store.session() as session:
        run = get_run(session, run_id=run_id)
        if run is None:
            raise NotFoundError(f"run {run_id} does not exist", "See `camsync runs list` for the ids")
        data = run.as_dict()
        data["children"] = [child.as_dict() for child in child_runs(session, parent_id=run_id)]
    if as_json:
        print_json(data)
        return
    shown = {
        **data,
        "status": fmt_status(data["status"]),
        "started_at": fmt_time(data["started_at"]),
        "finished_at": fmt_time(data["finished_at"]),
        "heartbeat_at": fmt_time(data["heartbeat_at"]),
    }
    print_fields(f"Run {run_id}", ((k, v) for k, v in shown.items() if k != "children"))
    if data["children"]:
        print_table(
            "Started by this run",
            ("id", "type", "status", "fetched", "inserted", "updated", "unchanged", "failed", "error"),
            (
                [
                    c["id"],
                    c["run_type"],
                    fmt_status(c["status"]),
                    c["fetched"],
                    c["inserted"],
                    c["updated"],
                    c["unchanged"],
                    c["failed"],
                    c["error_message"] or "",
                ]
                for c in data["children"]
            ),
        )
