"""`camsync demo`: the main job end to end on local sandboxes, shown in tables, with where to look next."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from camsync.commands.context import AppContext, get_context

if TYPE_CHECKING:
    from camsync.sync.demo import DemoResult, DemoSandboxes, DemoSection, RunRow

DirOption = Annotated[
    Path,
    typer.Option(
        "--dir",
        file_okay=False,
        help="The demo folder: deleted and recreated on each run (a folder the demo did not make is refused).",
    ),
]
KeepOption = Annotated[
    bool, typer.Option("--keep", help="Leave both sandboxes serving afterwards, until Ctrl-C or SIGTERM.")
]
ProductsOption = Annotated[int, typer.Option("--products", min=1, max=100_000, help="Products the sandbox serves.")]
OrdersOption = Annotated[int, typer.Option("--orders", min=1, max=100_000, help="Orders the sandbox serves.")]
TopupsOption = Annotated[int, typer.Option("--topups", min=1, max=100_000, help="Top-ups in the sample app database.")]
# The sizes above go to the jobs' demo parts by name; a job whose size has no option here gets the default.


def demo(
    ctx: typer.Context,
    dir: DirOption = Path("camsync-demo"),
    keep: KeepOption = False,
    products: ProductsOption = 300,
    orders: OrdersOption = 300,
    topups: TopupsOption = 300,
) -> None:
    """Run every job end to end: each job's sandbox and sample data, run-all into an embedded store.

    Everything lives in the demo folder; your own store and settings (environment, `.env`, --env-file) are
    never used. Logs go to demo.log in that folder (with -v: to the terminal). Exit 0 when every job ends
    SUCCESS with each top-up loaded exactly once, 1 otherwise.
    """
    from camsync.sync.demo import DemoOptions, demo_failure, run_demo

    log_file = _DemoLog(get_context(ctx))
    try:
        sizes = {"products": products, "orders": orders, "topups": topups}
        options = DemoOptions(directory=dir, sizes=sizes)
        result = run_demo(options, keep=keep, progress=_progress, on_directory=log_file.start)
        render_result(result)
        if result.sandboxes is not None:
            _serve_until_stopped(result, result.sandboxes)
    finally:
        log_file.close()
    failure = demo_failure(result)
    if failure is not None:
        raise failure


class _DemoLog:
    """The demo's logs go into its folder, so the terminal shows only the tables (unless -v)."""

    def __init__(self, app_ctx: AppContext) -> None:
        self.app_ctx = app_ctx
        self.stream: TextIO | None = None
        self.level = 0

    def start(self, directory: Path) -> None:
        """Say where the demo lives, then send the logs into its folder."""
        import logging

        from camsync.logs import setup_logging
        from camsync.sync.demo import LOG_FILE

        _progress(f"Demo folder: {_plain(directory)} (recreated on each run; your own store and settings are not used)")
        if self.app_ctx.verbosity:
            return
        self.level = logging.getLogger("camsync").getEffectiveLevel()
        self.stream = (directory / LOG_FILE).open("a", encoding="utf-8")
        setup_logging(fmt=self.app_ctx.log_format, level=logging.INFO, stream=self.stream)

    def close(self) -> None:
        from camsync.logs import setup_logging

        if self.stream is not None:
            setup_logging(fmt=self.app_ctx.log_format, level=self.level)
            self.stream.close()
            self.stream = None


def _progress(message: str) -> None:
    from camsync.commands.render import err_console

    err_console.print(f"[dim]→[/dim] {message}")


def render_result(result: DemoResult) -> None:
    """Every table of the demo, then where to look next."""
    from camsync.commands.render import console

    _runs_table(result)
    for report in result.reports.values():
        for section in report.sections:
            _section(section)
    _where_next(result)
    if result.ok:
        done = "; ".join(report.summary for report in result.reports.values() if report.summary)
        explained = sorted(name for report in result.reports.values() for name in report.expected_partial)
        headline = (
            f"Every job did what the sample data asks ({', '.join(explained)} PARTIAL, as meant)"
            if explained
            else "Every job SUCCESS"
        )
        console.print(f"[green]{headline}[/green]" + (f": {_plain(done)}." if done else "."))


def _runs_table(result: DemoResult) -> None:
    from camsync.commands.render import fmt_status, print_table

    def row(run: RunRow) -> list[object]:
        name = f"{run.job} {run.run_type}" if run.job != run.run_type else run.job
        indent = "" if run.parent_id is None else "└ "
        seconds = f"{run.seconds:.1f}" if run.seconds is not None else ""
        return [run.id, indent + name, fmt_status(run.status), *run.counts.values(), seconds, _plain(run.error)]

    counters = list(result.runs[0].counts) if result.runs else []
    print_table(
        f"run-all #{result.run_all.run_id} and its jobs",
        ("id", "run", "status", *counters, "seconds", "error"),
        [row(run) for run in result.runs],
    )


def _section(section: DemoSection) -> None:
    from camsync.commands.render import console, print_table

    print_table(_plain(section.title), section.columns, [[_plain(cell) for cell in row] for row in section.rows])
    for note in section.notes:
        console.print(_plain(note))


def _where_next(result: DemoResult) -> None:
    from camsync.commands.render import console
    from camsync.sync.demo import store_command

    prefix = store_command(result.store_url)
    commands = ["runs list", f"runs show {result.run_all.run_id}"]
    commands += [command for report in result.reports.values() for command in report.next_commands]
    lines = [f"{prefix} {command}" for command in commands]
    if result.log_file.exists():
        lines.append(f"less {shlex.quote(str(result.log_file))}")
    console.print("\n[bold]Where to look next[/bold]")
    for line in lines:
        console.print(f"  {_plain(line)}", soft_wrap=True)


def _serve_until_stopped(result: DemoResult, sandboxes: DemoSandboxes) -> None:
    import threading

    from camsync.commands.render import console
    from camsync.sync.demo import keep_serving
    from camsync.sync.worker import install_signal_handlers

    console.print("\n[bold]The sandboxes keep serving[/bold]; point camsync at them with these lines")
    console.print(
        f"(also in {_plain(str(result.env_file))}: `camsync --env-file {_plain(str(result.env_file))} …`; "
        "variables set in your environment win over the file):"
    )
    for key, value in result.env.items():
        console.print(f"  {_plain(f'{key}={value}')}", soft_wrap=True)
    console.print("Press Ctrl-C (or send SIGTERM) to stop them.")
    if threading.current_thread() is threading.main_thread():
        install_signal_handlers()
    keep_serving(sandboxes)
    console.print("Sandboxes stopped.")


def _plain(text: object) -> str:
    """Text from data, shown as is (brackets are not rich markup)."""
    from rich.markup import escape

    return "" if text is None else escape(str(text))
