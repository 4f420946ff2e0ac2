"""The root Typer app: global options, the command groups, and the one place errors become exit codes."""

from __future__ import annotations

import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from camsync import __version__
from camsync.commands import db, demo, doctor, luna, runall, runs, sandbox, smartup, state, status
from camsync.commands.context import AppContext
from camsync.commands.progress import run_progress, wanted
from camsync.errors import CamsyncError, ExitCode
from camsync.sync.jobs import describe

app = typer.Typer(
    name="camsync",
    help=f"Keep your apps in sync with the systems they depend on: {describe()}, with a run ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(luna.app, name="luna")
app.add_typer(smartup.app, name="smartup")
app.add_typer(state.app, name="state")
app.add_typer(runs.app, name="runs")
app.add_typer(db.app, name="db")
app.add_typer(sandbox.app, name="sandbox")
app.command("run-all")(runall.run_all)
app.command("worker")(runall.worker)
app.command("demo")(demo.demo)
app.command("doctor")(doctor.doctor)
app.command("status")(status.status)

_state = {"verbosity": 0}


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class Trigger(StrEnum):
    cli = "cli"
    cron = "cron"
    worker = "worker"


def _version(value: bool) -> None:
    if value:
        print(f"camsync {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    env_file: Annotated[
        Path | None,
        typer.Option(
            "--env-file",
            help="Read settings from this file (default: ./.env when present). The environment wins.",
            dir_okay=False,
        ),
    ] = None,
    log_format: Annotated[
        LogFormat, typer.Option("--log-format", help="Log lines as `text` (key=value) or `json`.")
    ] = LogFormat.text,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose", "-v", count=True, help="More detail: debug logs, and tracebacks of unexpected errors."
        ),
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors in the logs.")] = False,
    trigger: Annotated[
        Trigger, typer.Option("--trigger", help="Recorded in the run ledger: who started the run.")
    ] = Trigger.cli,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """camsync: every job, with a run ledger, in one tool."""
    from camsync.logs import setup_logging

    _state["verbosity"] = verbose
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    setup_logging(fmt=log_format.value, level=level)
    context = AppContext(env_file=env_file, log_format=log_format.value, verbosity=verbose, trigger=trigger.value)
    ctx.obj = context
    ctx.call_on_close(context.close)
    ctx.with_resource(run_progress(wanted(quiet=quiet, log_format=log_format.value)))


def _print_error(message: str) -> None:
    from camsync.logs import redact

    print(redact(message), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; the error boundary of the whole program."""
    try:
        result = app(args=argv, prog_name="camsync", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        _print_error("Aborted.")
        return ExitCode.FAILED
    except typer.TyperException as exc:  # usage errors: bad option, missing argument, bad value
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            _print_error(f"Error: {exc}")
        return int(getattr(exc, "exit_code", ExitCode.USAGE))
    except CamsyncError as exc:
        reason = exc.reason.rstrip(".")
        _print_error(f"Error: {reason}." + (f" {exc.hint.rstrip('.')}." if exc.hint else ""))
        return exc.exit_code
    except KeyboardInterrupt:
        _print_error("Interrupted.")
        return ExitCode.INTERRUPTED
    except Exception as exc:  # the boundary: anything unexpected ends here
        _print_error(f"Unexpected error: {type(exc).__name__}: {exc}")
        if _state["verbosity"]:
            import traceback

            _print_error("".join(traceback.format_exception(exc)))
        else:
            _print_error("Run again with -v for the traceback.")
        return ExitCode.FAILED
    return int(result) if isinstance(result, int) else ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
