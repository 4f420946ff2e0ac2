"""`camsync doctor`: check the settings, the store and every job's upstreams and sources; write nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from camsync.commands.context import get_context
from camsync.commands.options import JsonOption
from camsync.errors import ExitCode

if TYPE_CHECKING:
    from rich.table import Table

    from camsync.sync.doctor import Check

STATUS_STYLE = {"OK": "green", "WARN": "yellow", "FAIL": "bold red", "SKIP": "dim"}


def doctor(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Check that camsync can run: the settings, the store, and each job's upstreams and sources.

    Writes nothing anywhere (an upstream without a free call may count one probe call against its budget: the
    check says so). Exit 1 when a check FAILs.
    """
    from camsync.commands.render import console, print_json
    from camsync.sync.doctor import any_failed, diagnose

    app_ctx = get_context(ctx)
    checks = diagnose(lambda: app_ctx.settings)
    failed = any_failed(checks)
    if as_json:
        print_json({"ok": not failed, "checks": [check.as_dict() for check in checks]})
    else:
        console.print(_report_table(checks))
        failures = sum(check.status.value == "FAIL" for check in checks)
        console.print(f"{failures} check(s) failed." if failed else "No check failed.")
    raise typer.Exit(ExitCode.FAILED if failed else ExitCode.OK)


def _report_table(checks: list[Check]) -> Table:
    """The checks as a table whose detail and fix fold rather than being cut."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="camsync doctor", header_style="bold", show_lines=True)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail", overflow="fold", ratio=3)
    table.add_column("fix", overflow="fold", ratio=2)
    for check in checks:
        style = STATUS_STYLE[check.status.value]
        status = f"[{style}]{check.status.value}[/{style}]"
        table.add_row(escape(check.name), status, escape(check.detail), escape(check.fix))
    return table
