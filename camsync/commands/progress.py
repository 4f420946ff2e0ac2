"""Live progress bars for long work in a terminal: one bar per ledger run, fed by the run's counts.

Only on a terminal (stderr is a TTY) and not with `--quiet` or `--log-format json`; elsewhere the structured log
lines are the progress. A run's bar shows what it has processed so far and its counts; it completes when the run
ends, with the run's status.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from camsync.sync.ledger import RunHandle


def wanted(*, quiet: bool, log_format: str) -> bool:
    """Whether to draw bars: a terminal, people's log format, not quiet."""
    return sys.stderr.isatty() and not quiet and log_format == "text"


class RunBars:
    """Turns ledger events into rich progress tasks."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.tasks: dict[int, Any] = {}
        self.started = False

    def __call__(self, event: str, handle: RunHandle) -> None:
        kind = handle.job if handle.job == handle.run_type else f"{handle.job} {handle.run_type}"
        label = f"{kind} #{handle.id}"
        if event == "start":
            if not self.started:  # the live display starts with the first run, not before (prompts stay plain)
                self.progress.start()
                self.started = True
            self.tasks[handle.id] = self.progress.add_task(label, total=None, counts="")
            return
        task = self.tasks.get(handle.id)
        if task is None:
            return
        c = handle.counts
        done = c["inserted"] + c["updated"] + c["unchanged"] + c["failed"]
        counts = " ".join(f"{k}={v}" for k, v in c.items() if v)
        live = handle.details.get("live")  # a job's own view while it works (a worker pool's)
        if isinstance(live, dict) and event != "end":
            done = int(live.get("finished", done))
            counts = " ".join(f"{k}={v}" for k, v in live.items() if v)
        total = handle.details.get("total")
        if event == "end":
            self.progress.update(
                task, total=max(done, 1), completed=max(done, 1), description=f"{label} {handle.status}", counts=counts
            )
            return
        self.progress.update(task, completed=done, total=total if isinstance(total, int) else None, counts=counts)


@contextmanager
def run_progress(enabled: bool) -> Iterator[None]:
    """Show a bar per run while the block runs (when `enabled`)."""
    if not enabled:
        yield
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from camsync.commands.render import err_console
    from camsync.sync.ledger import add_listener, remove_listener

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[counts]}"),
        console=err_console,
        transient=False,
        redirect_stderr=True,
        redirect_stdout=False,
    )
    bars = RunBars(progress)
    add_listener(bars)
    try:
        yield
    finally:
        remove_listener(bars)
        if bars.started:
            progress.stop()
