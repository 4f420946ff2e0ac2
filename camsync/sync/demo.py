"""The one-command demo: every job's sandbox, its sample data, and run-all into an embedded SQLite store.

Everything lives in one demo folder (recreated on each run): the jobs' sample data, the store, its lock files,
and `demo.env` with the settings that point camsync at the sandboxes. The user's own `.env`, environment and
store are never read or written, so the demo cannot reach a real upstream. Each registered job brings its own
part (`Integration.demo`): it starts its sandbox, writes its sample data, and reports what it finds afterwards.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from camsync import shutdown
from camsync.errors import CamsyncError, UsageError
from camsync.logs import register_secret
from camsync.settings import Settings, load_settings
from camsync.store import runs as run_queries
from camsync.store.engine import Store, open_store
from camsync.store.models import SyncRun
from camsync.sync.jobs import default_jobs, integrations
from camsync.sync.runall import RunAllResult, run_all

MARKER = ".camsync-demo"
STORE_DB = "camsync.db"
ENV_FILE = "demo.env"
LOG_FILE = "demo.log"  # where the command writes the logs of a demo run
DEFAULT_SIZE = 300


@dataclass(frozen=True)
class DemoOptions:
    """What the demo builds: where, how big each sandbox's data is (by name: products, orders, topups, …; a
    size not given is DEFAULT_SIZE), and how long a simulated upstream takes per step (`pace`, seconds)."""

    directory: Path = Path("camsync-demo")
    sizes: Mapping[str, int] = field(default_factory=dict)
    seed: int = 7
    messy: bool = True  # a few bad rows in the sample data, to show that they are rejected with a reason
    pace: float = 1.0


@dataclass(frozen=True)
class DemoRequest:
    """What one job's demo part is asked to build."""

    directory: Path
    options: DemoOptions

    def size(self, name: str) -> int:
        """The size asked for `name`, else DEFAULT_SIZE."""
        return int(self.options.sizes.get(name, DEFAULT_SIZE))


@dataclass
class DemoSection:
    """A table the demo shows, with plain lines printed after it."""

    title: str
    columns: tuple[str, ...]
    rows: list[list[Any]]
    notes: list[str] = field(default_factory=list)


@dataclass
class DemoReport:
    """What one job's part found after run-all: its tables, what went wrong, the numbers behind them, the
    commands worth trying next (without the `camsync` prefix) and a one-line summary of success."""

    sections: list[DemoSection] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    next_commands: list[str] = field(default_factory=list)
    summary: str = ""
    expected_partial: set[str] = field(default_factory=set)  # run-all jobs whose PARTIAL the sample data explains


class DemoPart(Protocol):
    """One job's part of the demo: its sandbox (already serving) and what it does before and after run-all."""

    key: str

    @property
    def url(self) -> str:
        """Where its sandbox serves."""
        ...

    @property
    def env(self) -> dict[str, str]:
        """The settings that point the job at its sandbox."""
        ...

    def prepare(self, progress: Callable[[str], None]) -> dict[str, str]:
        """Write the sample data into the demo folder; return the settings that point at it."""
        ...

    def report(self, store: Store) -> DemoReport:
        """Read what run-all did (the store and the sandbox's own counts)."""
        ...

    def stop(self) -> None:
        """Stop the sandbox."""
        ...


@dataclass
class DemoSandboxes:
    """The sandboxes the demo serves on loopback, one part per job."""

    parts: list[DemoPart]

    def env(self) -> dict[str, str]:
        """The settings that point camsync at these sandboxes."""
        return {key: value for part in self.parts for key, value in part.env.items()}

    def stop(self) -> None:
        """Stop every sandbox."""
        for part in self.parts:
            part.stop()


@dataclass(frozen=True)
class RunRow:
    """One ledger row of the demo's run-all pass."""

    id: int
    parent_id: int | None
    job: str
    run_type: str
    status: str
    counts: dict[str, int]
    seconds: float | None
    error: str | None


@dataclass
class DemoResult:
    """Everything the demo did and found; `sandboxes` is set only when they were kept running."""

    directory: Path
    env: dict[str, str]
    run_all: RunAllResult
    runs: list[RunRow]
    reports: dict[str, DemoReport]
    sandboxes: DemoSandboxes | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every job SUCCESS and no job's part found a problem."""
        return not self.problems

    @property
    def store_url(self) -> str:
        return self.env["DATABASE_URL"]

    @property
    def env_file(self) -> Path:
        return self.directory / ENV_FILE

    @property
    def log_file(self) -> Path:
        return self.directory / LOG_FILE


def _ignore(_value: object) -> None:
    pass


def run_demo(
    options: DemoOptions,
    *,
    keep: bool = False,
    progress: Callable[[str], None] = _ignore,
    on_directory: Callable[[Path], None] = _ignore,
) -> DemoResult:
    """Run the whole demo in `options.directory` (recreated); the sandboxes stop at the end unless `keep`.

    `progress` hears what is being done; `on_directory` is called once the folder is ready (to log into it).
    """
    directory = prepare_directory(options.directory)
    on_directory(directory)
    progress(f"Starting the sandboxes on loopback: {', '.join(i.title for i in integrations() if i.demo)}")
    sandboxes = start_sandboxes(DemoRequest(directory, options))
    try:
        result = _run_in(directory, sandboxes, progress)
    except BaseException:
        sandboxes.stop()
        raise
    if keep:
        result.sandboxes = sandboxes
    else:
        sandboxes.stop()
    return result


def prepare_directory(directory: Path) -> Path:
    """Empty (or create) the demo folder; refuse a non-empty folder the demo did not create."""
    directory = directory.expanduser().resolve()
    if directory.exists():
        if not directory.is_dir():
            raise UsageError(f"{directory} is a file, not a folder", "Pass a folder to --dir")
        if any(directory.iterdir()) and not (directory / MARKER).is_file():
            raise UsageError(
                f"{directory} is not empty and was not made by `camsync demo`",
                "Pass a new or empty folder to --dir (the demo deletes and recreates its folder on each run)",
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MARKER).write_text("made by `camsync demo`; deleted and recreated on each run\n", encoding="utf-8")
    return directory


def start_sandboxes(request: DemoRequest) -> DemoSandboxes:
    """Serve every job's sandbox on a free loopback port (those started are stopped if one fails)."""
    sandboxes = DemoSandboxes(parts=[])
    try:
        for integration in integrations():
            if integration.demo is not None:
                sandboxes.parts.append(integration.demo(request))
    except BaseException:
        sandboxes.stop()
        raise
    return sandboxes


def demo_env(directory: Path, sandboxes: DemoSandboxes, prepared: dict[str, str]) -> dict[str, str]:
    """Every setting of the demo: the sandboxes, the sample data and the store in `directory`."""
    return {**sandboxes.env(), **prepared, "DATABASE_URL": f"sqlite:///{directory / STORE_DB}"}


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """Write `env` as an env file usable with `camsync --env-file`."""
    path.write_text("".join(f"{key}={value}\n" for key, value in env.items()), encoding="utf-8")


def _run_in(directory: Path, sandboxes: DemoSandboxes, progress: Callable[[str], None]) -> DemoResult:
    prepared: dict[str, str] = {}
    for part in sandboxes.parts:
        prepared.update(part.prepare(progress))
    env = demo_env(directory, sandboxes, prepared)
    write_env_file(directory / ENV_FILE, env)
    settings = demo_settings(env, directory / ENV_FILE)
    jobs = default_jobs()
    progress(f"Running run-all: {', '.join(job.summary or job.name for job in jobs)}")
    store = open_store(settings.store_url)
    try:
        outcome = run_all(store, settings, jobs, trigger="cli", force=True)
        result = DemoResult(
            directory=directory,
            env=env,
            run_all=outcome,
            runs=collect_runs(store, run_id=outcome.run_id),
            reports={part.key: part.report(store) for part in sandboxes.parts},
        )
    finally:
        store.dispose()
    result.problems = find_problems(result)
    return result


def demo_settings(env: dict[str, str], env_file: Path) -> Settings:
    """The demo's settings from `env` alone (the env file holds the same lines; `./.env` is never read)."""
    settings = load_settings(environ=env, env_file=env_file)
    for secret in settings.secret_values():
        register_secret(secret)
    return settings


def collect_runs(store: Store, *, run_id: int) -> list[RunRow]:
    """The run-all row and every run started inside it, parents before children."""
    with store.session() as session:
        parent = run_queries.get_run(session, run_id=run_id)
        if parent is None:
            return []
        rows, pending = [], [parent]
        while pending:
            run = pending.pop(0)
            rows.append(_run_row(run))
            pending.extend(run_queries.child_runs(session, parent_id=run.id))
    return rows


def _run_row(run: SyncRun) -> RunRow:
    seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
    return RunRow(
        id=run.id,
        parent_id=run.parent_id,
        job=run.job,
        run_type=run.run_type,
        status=run.status,
        counts={name: int(getattr(run, name) or 0) for name in run_queries.COUNTERS},
        seconds=seconds,
        error=run.error_message,
    )


def find_problems(result: DemoResult) -> list[str]:
    """What keeps the demo from being a success: jobs not SUCCESS, and what each job's part found wrong."""
    job_errors = job_run_errors(result.runs, run_all_id=result.run_all.run_id)
    explained = {name for report in result.reports.values() for name in report.expected_partial}
    problems = [
        f"{o.name} ended {o.status}" + _why(o.message or job_errors.get(o.name))
        for o in result.run_all.outcomes
        if o.status != "SUCCESS" and not (o.status == "PARTIAL" and o.name in explained)
    ]
    return problems + [problem for report in result.reports.values() for problem in report.problems]


def job_run_errors(runs: list[RunRow], *, run_all_id: int) -> dict[str, str]:
    """The error message of each job's own run inside the run-all pass, by run-all job name."""
    ledger_names = {(job.ledger_job, job.ledger_run_type): job.name for job in default_jobs()}
    return {
        ledger_names[(row.job, row.run_type)]: row.error
        for row in runs
        if row.parent_id == run_all_id and row.error and (row.job, row.run_type) in ledger_names
    }


def _why(message: str | None) -> str:
    return f" ({message})" if message else ""


def demo_failure(result: DemoResult) -> CamsyncError | None:
    """The error the demo command ends with when something did not succeed, else None."""
    if result.ok:
        return None
    return CamsyncError(
        "the demo did not succeed: " + "; ".join(result.problems),
        f"See the tables above and `{store_command(result.store_url)} runs show {result.run_all.run_id}`"
        + (f", and the logs in {result.log_file}" if result.log_file.exists() else ""),
    )


def store_command(store_url: str) -> str:
    """The shell prefix that runs camsync on the demo's store: `DATABASE_URL=… camsync`."""
    return f"DATABASE_URL={shlex.quote(store_url)} camsync"


def keep_serving(sandboxes: DemoSandboxes, *, wait: Callable[[float], bool] = shutdown.wait) -> None:
    """Serve the sandboxes until a stop is requested (SIGINT or SIGTERM), then stop them."""
    try:
        while not wait(3600.0):
            pass
    finally:
        sandboxes.stop()
