"""`camsync status`: every job's last run and last success, and a freshness check for monitoring scripts."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from camsync.commands.context import get_context
from camsync.commands.options import JsonOption
from camsync.sync.jobs import job_names

if TYPE_CHECKING:
    from camsync.sync.metrics import StatusReport

MaxAgeOption = Annotated[
    str | None,
    typer.Option(
        "--max-age",
        metavar="AGE",
        help="Exit 1 when a configured job's last success is older than AGE (90s, 45m, 2h, 1d; a bare number "
        "is seconds) or when it never succeeded.",
    ),
]
JobOption = Annotated[
    list[str] | None,
    typer.Option("--job", metavar="JOB", help=f"Only this job (repeatable): {job_names()}, run-all."),
]


def status(
    ctx: typer.Context, max_age: MaxAgeOption = None, job: JobOption = None, as_json: JsonOption = False
) -> None:
    """Summarise every job: its last run, that run's status, its last success and how long ago that was.

    Reads the ledger only. Exit 0, or 1 with --max-age when a configured job's last success is too old or
    missing; a job whose upstream is not configured (its base URL is empty) is shown, not judged.
    """
    from camsync.commands.render import err_console, print_json, print_table
    from camsync.sync.metrics import status_report

    app_ctx = get_context(ctx)
    report = status_report(app_ctx.store, app_ctx.settings, names=job or (), max_age=max_age)
    if as_json:
        print_json(report.as_dict())
    else:
        print_table("jobs", ("job", "last run", "status", "last success", "age", "check"), _rows(report))
    for health in report.unhealthy:
        age = health.success_age(report.now)
        why = "never succeeded" if age is None else f"last succeeded {_age(age)} ago"
        err_console.print(f"{health.name}: {why} (allowed: {_age(report.max_age)})")
    if report.unhealthy:
        raise typer.Exit(1)


def _rows(report: StatusReport) -> list[list[str]]:
    from camsync.commands.render import fmt_status, fmt_time

    rows = []
    for health in report.jobs:
        last, success = health.last, health.last_success
        rows.append(
            [
                health.name,
                f"#{last.id} {fmt_time(last.started_at)}" if last else "never",
                (fmt_status(last.status) if last else "") + (" (running now)" if health.running else ""),
                fmt_time(success.finished_at or success.started_at) if success else "never",
                _age(health.success_age(report.now)),
                _verdict(health.verdict(report.now, report.max_age)),
            ]
        )
    return rows


def _verdict(verdict: str) -> str:
    styles = {"OK": "[green]OK[/green]", "STALE": "[red]STALE[/red]", "NEVER": "[yellow]NEVER[/yellow]"}
    return styles.get(verdict, "off (not configured)")


def _age(age: timedelta | None) -> str:
    """The two largest units: `3d 4h`, `2h 5m`, `2h`, `4m 10s`, `12s`."""
    if age is None:
        return ""
    seconds = max(int(age.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    units = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    while len(units) > 1 and units[0][0] == 0:
        units.pop(0)
    shown = [f"{number}{unit}" for number, unit in units[:2] if number]
    return " ".join(shown) or "0s"
