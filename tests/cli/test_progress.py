"""Progress bars follow the ledger: a bar per run, advanced by its counts, completed with its status."""

from __future__ import annotations

from typing import Any

from camsync.commands.progress import RunBars, run_progress, wanted
from camsync.sync.ledger import _listeners, recorded_run


class FakeProgress:
    def __init__(self) -> None:
        self.started = self.stopped = False
        self.tasks: dict[int, dict[str, Any]] = {}

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def add_task(self, description: str, **fields: Any) -> int:
        self.tasks[len(self.tasks)] = {"description": description, **fields}
        return len(self.tasks) - 1

    def update(self, task: int, **fields: Any) -> None:
        self.tasks[task].update(fields)


def test_a_bar_per_run_advances_with_counts_and_ends_with_status(store) -> None:
    from camsync.sync.ledger import add_listener, remove_listener

    progress = FakeProgress()
    bars = RunBars(progress)
    add_listener(bars)
    try:
        with recorded_run(store, job="smartup", run_type="products") as run:
            assert progress.started and progress.tasks[0]["description"] == f"smartup products #{run.id}"
            run.add(fetched=10, inserted=4, unchanged=3)
            assert progress.tasks[0]["completed"] == 7
            assert progress.tasks[0]["counts"] == "fetched=10 inserted=4 unchanged=3"
            run.details["total"] = 10
            run.add(failed=1)
            assert (progress.tasks[0]["completed"], progress.tasks[0]["total"]) == (8, 10)
    finally:
        remove_listener(bars)
    assert progress.tasks[0]["description"] == f"smartup products #{run.id} SUCCESS"


def test_no_bars_off_a_terminal_or_when_quiet_or_json(monkeypatch) -> None:
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not wanted(quiet=False, log_format="text")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert wanted(quiet=False, log_format="text")
    assert not wanted(quiet=True, log_format="text")
    assert not wanted(quiet=False, log_format="json")
    before = list(_listeners)
    with run_progress(False):
        assert _listeners == before


def test_a_jobs_live_view_drives_its_bar_while_it_works(store) -> None:
    from camsync.sync.ledger import add_listener, remove_listener

    progress = FakeProgress()
    bars = RunBars(progress)
    add_listener(bars)
    try:
        with recorded_run(store, job="luna", run_type="push") as run:
            run.details["live"] = {"created": 5, "finished": 3, "requests": 9}
            run.beat()
            assert progress.tasks[0]["completed"] == 3
            assert progress.tasks[0]["counts"] == "created=5 finished=3 requests=9"
    finally:
        remove_listener(bars)
