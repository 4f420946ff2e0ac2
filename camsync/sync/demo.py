"""The one-command demo: both sandboxes, a sample PAY+ app database, and run-all into an embedded SQLite store.

Everything lives in one demo folder (recreated on each run): the app database, the store, its lock files, and
`demo.env` with the settings that point camsync at the sandboxes. The user's own `.env`, environment and store
are never read or written, so the demo cannot reach a real LUNA or SmartUp.
"""

from __future__ import annotations

import shlex
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from camsync import shutdown
from camsync.errors import CamsyncError, UsageError
from camsync.logs import register_secret
from camsync.sandbox.luna import LunaSandboxConfig, start_luna_sandbox
from camsync.sandbox.server import RunningSandbox
from camsync.sandbox.smartup import SmartupSandboxConfig, start_smartup_sandbox
from camsync.settings import Settings, load_settings
from camsync.source.payplus_sample import create_sample_app_db
from camsync.store import demo as demo_queries
from camsync.store import runs as run_queries
from camsync.store.engine import Store, open_store
from camsync.store.models import SyncRun
from camsync.sync import luna_admin
from camsync.sync.jobs import default_jobs
from camsync.sync.runall import RunAllResult, run_all

MARKER = ".camsync-demo"
APP_DB = "payplus.db"
STORE_DB = "camsync.db"
ENV_FILE = "demo.env"
LOG_FILE = "demo.log"  # where the command writes the logs of a demo run
SMARTUP_USER, SMARTUP_PASSWORD = "demo", "demo-smartup-password"
LUNA_USER, LUNA_PASSWORD = "camsync", "demo-luna-password"
# Work orders pass Waiting and InProgress in about a second each; the first poll comes soon after a create.
LUNA_TRANSITION_SECONDS = 1.0
LUNA_LATENCY_SECONDS = 0.005
REJECTS_SHOWN = 100
DEMO_SETTINGS = {
    "SYNC_ORDERS_DAYS_BACK": "60",  # the sandbox's orders reach back about six weeks: fetch them all
    "LUNA_POLL_INITIAL_SECONDS": "0.5",
    "LUNA_POLL_MAX_SECONDS": "2",
}


@dataclass(frozen=True)
class DemoOptions:
    """What the demo builds: where, and how big the sandboxes' data and the sample app database are."""

    directory: Path = Path("camsync-demo")
    products: int = 300
    orders: int = 300
    topups: int = 300
    seed: int = 7
    messy: bool = True  # a few bad app DB rows, to show that they are rejected with a reason and never sent
    transition_seconds: float = LUNA_TRANSITION_SECONDS


@dataclass
class DemoSandboxes:
    """The two sandboxes the demo serves on loopback."""

    smartup: RunningSandbox
    luna: RunningSandbox
    smartup_config: SmartupSandboxConfig
    luna_config: LunaSandboxConfig

    def env(self) -> dict[str, str]:
        """The settings that point camsync at these sandboxes."""
        smartup = {
            "SMARTUP_BASE_URL": self.smartup.url,
            "SMARTUP_BASIC_USER": self.smartup_config.user,
            "SMARTUP_BASIC_PASS": self.smartup_config.password,
            "SMARTUP_FILIAL_ID": self.smartup_config.filial_id,
            "SMARTUP_PROJECT_CODE": self.smartup_config.project_code,
        }
        luna = dict(line.split("=", 1) for line in self.luna_config.env_lines(self.luna.url))
        return {**smartup, **luna}

    def work_orders_per_reference(self) -> dict[str, int]:
        """The LUNA sandbox's own count of work orders per client reference."""
        stats: dict[str, Any] = self.luna.app.stats()  # type: ignore[attr-defined]
        return dict(stats["by_reference"])

    def stop(self) -> None:
        """Stop both sandboxes."""
        self.smartup.stop()
        self.luna.stop()


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
    sample: dict[str, int]
    run_all: RunAllResult
    runs: list[RunRow]
    smartup_rows: dict[str, int]
    luna: dict[str, Any]
    txns: dict[str, tuple[str, str | None]]
    work_orders: dict[str, int]
    sandboxes: DemoSandboxes | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every job SUCCESS, every pushable top-up loaded, no reference with two work orders."""
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

    def duplicates(self) -> list[str]:
        """References the LUNA sandbox holds more than one work order for."""
        return sorted(ref for ref, count in self.work_orders.items() if count > 1)

    def references_by_work_orders(self) -> dict[int, int]:
        """How many references got 1, 2, … work orders on the sandbox."""
        return dict(sorted(Counter(self.work_orders.values()).items()))

    def example_txn(self) -> str | None:
        """A successfully pushed txn to look at, if any."""
        return next((txn for txn, (state, _wo) in self.txns.items() if state == "successful"), None)


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
    progress("Starting the SmartUp and LUNA sandboxes on loopback")
    sandboxes = start_sandboxes(options)
    try:
        result = _run_in(directory, sandboxes, options, progress)
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


def start_sandboxes(options: DemoOptions) -> DemoSandboxes:
    """Serve the SmartUp and LUNA sandboxes on free loopback ports."""
    smartup_config = SmartupSandboxConfig(
        products=options.products,
        orders=options.orders,
        seed=options.seed,
        user=SMARTUP_USER,
        password=SMARTUP_PASSWORD,
    )
    luna_config = LunaSandboxConfig(
        latency=LUNA_LATENCY_SECONDS,
        waiting_seconds=options.transition_seconds,
        in_progress_seconds=options.transition_seconds,
        lookup=True,
        username=LUNA_USER,
        password=LUNA_PASSWORD,
        seed=options.seed,
    )
    smartup = start_smartup_sandbox(smartup_config)
    try:
        luna = start_luna_sandbox(luna_config)
    except BaseException:
        smartup.stop()
        raise
    return DemoSandboxes(smartup=smartup, luna=luna, smartup_config=smartup_config, luna_config=luna_config)


def demo_env(directory: Path, sandboxes: DemoSandboxes) -> dict[str, str]:
    """Every setting of the demo: the sandboxes, the sample app database and the store in `directory`."""
    return {
        **sandboxes.env(),
        "APP_DB_URL": f"sqlite:///{directory / APP_DB}",
        "DATABASE_URL": f"sqlite:///{directory / STORE_DB}",
        **DEMO_SETTINGS,
    }


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """Write `env` as an env file usable with `camsync --env-file`."""
    path.write_text("".join(f"{key}={value}\n" for key, value in env.items()), encoding="utf-8")


def _run_in(
    directory: Path, sandboxes: DemoSandboxes, options: DemoOptions, progress: Callable[[str], None]
) -> DemoResult:
    bad = " (a few rows deliberately bad)" if options.messy else ""
    progress(f"Creating a sample PAY+ app database with {options.topups} top-ups{bad}")
    sample = create_sample_app_db(directory / APP_DB, topups=options.topups, seed=options.seed, messy=options.messy)
    env = demo_env(directory, sandboxes)
    write_env_file(directory / ENV_FILE, env)
    settings = demo_settings(env, directory / ENV_FILE)
    progress("Running run-all: SmartUp products, SmartUp orders, LUNA push (waiting for the work orders)")
    store = open_store(settings.store_url)
    try:
        outcome = run_all(store, settings, default_jobs(), trigger="cli", force=True)
        result = DemoResult(
            directory=directory,
            env=env,
            sample=sample,
            run_all=outcome,
            runs=collect_runs(store, run_id=outcome.run_id),
            smartup_rows=_read(store, demo_queries.count_smartup_rows),
            luna=luna_admin.status(store, limit=REJECTS_SHOWN),
            txns=_read(store, demo_queries.txn_work_orders),
            work_orders=sandboxes.work_orders_per_reference(),
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


def _read(store: Store, query: Callable[[Any], Any]) -> Any:
    with store.session() as session:
        return query(session)


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
    """What keeps the demo from being a success: jobs not SUCCESS, top-ups not loaded, duplicate work orders."""
    job_errors = job_run_errors(result.runs, run_all_id=result.run_all.run_id)
    problems = [
        f"{o.name} ended {o.status}" + _why(o.message or job_errors.get(o.name))
        for o in result.run_all.outcomes
        if o.status != "SUCCESS"
    ]
    unloaded = sorted(txn for txn, (state, _wo) in result.txns.items() if state != "successful")
    if unloaded:
        problems.append(f"{len(unloaded)} top-up(s) not loaded on LUNA (e.g. {', '.join(unloaded[:3])})")
    duplicates = result.duplicates()
    if duplicates:
        problems.append(f"LUNA holds more than one work order for {', '.join(duplicates[:5])}")
    return problems


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
