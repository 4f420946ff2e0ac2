"""The job registry: every job camsync runs, and what each one brings to the shared machinery.

An `Integration` is one job of camsync — the LUNA push, the SmartUp pull — as a whole: the run-all jobs it is
made of (each with its ledger name, cadence and "configured?" test), its doctor checks, its metric families, its
demo seed and the one-line description that help texts show. run-all, the worker, doctor, metrics, status and
the demo iterate this registry and name no job themselves. Adding a job is one folder per layer and one line in
`integrations()`.

Each job's definition (its `job.py`) keeps its heavy imports inside the functions it declares, so reading the
registry (for help texts) costs no more than importing a few small modules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from camsync.settings import Settings
    from camsync.store.engine import Store
    from camsync.sync.checks import Check
    from camsync.sync.demo import DemoPart, DemoRequest
    from camsync.sync.exposition import Family


# (store, settings, trigger, parent run id) -> final status of the job's own run
JobRunner = Callable[["Store", "Settings", str, int], str]


@dataclass(frozen=True)
class Job:
    """A job run-all knows: its name, the ledger (job, run_type) that tells when it last ran, its interval."""

    name: str
    ledger_job: str
    ledger_run_type: str
    interval: Callable[[Settings], int]
    run: JobRunner
    configured: Callable[[Settings], bool] = lambda _settings: True
    summary: str = ""  # how help texts and progress lines name it ("orders of the day")


@dataclass(frozen=True)
class CheckGroup:
    """Doctor checks that run together: `run(settings, transport)` returns one Check per name, in order. When it
    raises, the first name FAILs and the others are SKIP."""

    names: tuple[str, ...]
    run: Callable[[Settings, Any], list[Check]]


@dataclass(frozen=True)
class Integration:
    """One job of camsync and everything the shared machinery needs to know of it."""

    key: str  # its ledger job name (sync_runs.job) and the key of its test transport in the doctor
    title: str  # "LUNA push": how reports name it
    summary: str  # one line, for help texts
    jobs: tuple[Job, ...]  # what run-all runs for it, in order
    in_use: Callable[[Settings], bool]  # any of its settings set (the doctor checks it; else SKIP)
    enable_hint: str  # the setting that turns it on, for "no job is configured"
    checks: tuple[CheckGroup, ...] = ()
    metrics: Callable[[Store], list[Family]] | None = None
    demo: Callable[[DemoRequest], DemoPart] | None = None
    other_run_types: tuple[str, ...] = ()  # run types of its ledger runs that run-all does not start (`full`)

    @property
    def check_names(self) -> tuple[str, ...]:
        """Every doctor check it has, in order."""
        return tuple(name for group in self.checks for name in group.names)


def integrations() -> list[Integration]:
    """Every job camsync knows, in the order run-all runs them."""
    from camsync.sync.luna.job import LUNA
    from camsync.sync.smartup.job import SMARTUP

    return [SMARTUP, LUNA]


def default_jobs(registered: Sequence[Integration] | None = None) -> list[Job]:
    """Every run-all job of every integration, in the order run-all runs them."""
    return [job for integration in registered or integrations() for job in integration.jobs]


def job_names() -> str:
    """The run-all job names as help texts list them: `smartup-products, smartup-orders, luna-push`."""
    return ", ".join(job.name for job in default_jobs())


def describe() -> str:
    """The jobs as one line for help texts: `the SmartUp pull (…) and the LUNA push (…)`."""
    return " and ".join(integration.summary for integration in integrations())


def ledger_names() -> tuple[list[str], list[str]]:
    """The ledger's job names (`smartup`, `luna`) and run types (`products`, `push`, …) of every registered job."""
    registered = integrations()
    run_types = dict.fromkeys(
        name
        for integration in registered
        for name in (*(job.ledger_run_type for job in integration.jobs), *integration.other_run_types)
    )
    return [integration.key for integration in registered], list(run_types)
