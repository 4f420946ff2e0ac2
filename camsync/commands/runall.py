"""`camsync run-all` and `camsync worker`: what cron, systemd and a background worker call."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from camsync.commands.context import get_context
from camsync.sync.jobs import job_names

OnlyOption = Annotated[list[str] | None, typer.Option("--only", help=f"Run only this job (repeatable): {job_names()}.")]
SkipOption = Annotated[list[str] | None, typer.Option("--skip", help="Do not run this job (repeatable).")]
MetricsFileOption = Annotated[
    Path | None,
    typer.Option(
        "--metrics-file",
        dir_okay=False,
        metavar="PATH",
        help="After each pass, write Prometheus metrics to PATH (atomically; for node_exporter's textfile collector).",
    ),
]
WaitLockOption = Annotated[
    float,
    typer.Option(
        "--wait-lock",
        min=0,
        help="Wait up to SECONDS for a lock held by another run instead of giving up at once (exit 75).",
    ),
]


def run_all(
    ctx: typer.Context,
    only: OnlyOption = None,
    skip: SkipOption = None,
    wait_lock: WaitLockOption = 0.0,
    force: Annotated[bool, typer.Option("--force", help="Run every selected job even if it is not due.")] = False,
    metrics_file: MetricsFileOption = None,
) -> None:
    """Run every due job once, each at its own cadence (its interval setting; 0 runs it on every call).

    Exit 0 when all that ran succeeded, 3 when some failed, 1 when all failed, 75 when another run-all is active.
    """
    from camsync.commands.render import fmt_status, print_table
    from camsync.sync.jobs import default_jobs
    from camsync.sync.metrics import publish_outcome
    from camsync.sync.runall import run_all as run
    from camsync.sync.runall import select_jobs

    app_ctx = get_context(ctx)
    jobs = select_jobs(default_jobs(), only=only or (), skip=skip or ())
    result = run(app_ctx.store, app_ctx.settings, jobs, trigger=app_ctx.trigger, wait_lock=wait_lock, force=force)
    publish_outcome(app_ctx.store, app_ctx.settings, result.status, metrics_file=metrics_file)
    print_table(
        f"run-all #{result.run_id}: {fmt_status(result.status)}",
        ("job", "outcome", "detail"),
        ([o.name, fmt_status(o.status), o.message] for o in result.outcomes),
    )
    raise typer.Exit({"SUCCESS": 0, "PARTIAL": 3}.get(result.status, 1))


def worker(ctx: typer.Context, metrics_file: MetricsFileOption = None) -> None:
    """Run run-all every SYNC_INTERVAL_SECONDS (±10 %) until SIGTERM or SIGINT, then exit 0 after the work in hand."""
    from camsync.sync.jobs import default_jobs
    from camsync.sync.metrics import publish_outcome
    from camsync.sync.worker import install_signal_handlers, serve

    app_ctx = get_context(ctx)
    install_signal_handlers()

    def after_pass(status: str) -> None:
        publish_outcome(app_ctx.store, app_ctx.settings, status, metrics_file=metrics_file)

    serve(app_ctx.store, app_ctx.settings, default_jobs(), after_pass=after_pass)
