"""`camsync doctor`: is this installation ready to run its jobs? Every check reads; none writes.

The doctor checks the settings and the store (reachable, at the newest schema), then runs each registered job's
own checks (`camsync.sync.jobs`: its upstreams and sources, reachable and accepting the credentials). The store is
never migrated: its revision is read through a read-only connection (a SQLite file is opened `mode=ro`, and
`immutable` when no other process has it open, so that not even a `-wal` or `-shm` file appears). A job whose
settings are empty is SKIP, not FAIL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

from camsync.errors import CamsyncError, ConfigError
from camsync.logs import register_secret
from camsync.settings import Settings, mask
from camsync.store import migrate
from camsync.sync.checks import Check, Status, fail, guarded, ok, skip, warn
from camsync.sync.jobs import Integration, integrations

SETTINGS = "settings"
STORE = "store"
UPGRADE_FIX = "Run `camsync db upgrade`"


def check_names(registered: list[Integration] | None = None) -> tuple[str, ...]:
    """Every check of the report, in order: settings, store, then each job's own."""
    jobs = integrations() if registered is None else registered
    return (SETTINGS, STORE, *(name for job in jobs for name in job.check_names))


def any_failed(checks: list[Check]) -> bool:
    """Whether any check failed (the doctor then exits 1)."""
    return any(check.status is Status.FAIL for check in checks)


def diagnose(load_settings: Callable[[], Settings], *, transports: Mapping[str, Any] | None = None) -> list[Check]:
    """Load the settings and run every check; settings that do not load are one FAIL, the rest SKIP."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        reason = fail(SETTINGS, exc.reason, exc.hint or "Fix the setting in the environment or the env file")
        return [reason.redacted()] + [skip(name, "the settings did not load") for name in check_names()[1:]]
    return run_checks(settings, transports=transports)


def run_checks(settings: Settings, *, transports: Mapping[str, Any] | None = None) -> list[Check]:
    """Every check, in order: settings, store, then each registered job's checks.

    `transports` maps a job's key (its ledger job name) to an httpx transport for tests; by default the
    clients connect.
    """
    for secret in settings.secret_values():
        register_secret(secret)
    transports = transports or {}
    registered = integrations()
    checks = [
        *guarded((SETTINGS,), lambda: [check_settings(settings, registered)]),
        *guarded((STORE,), lambda: [check_store(settings)]),
    ]
    for job in registered:
        for group in job.checks:
            checks.extend(guarded(group.names, partial(group.run, settings, transports.get(job.key))))
    return [check.redacted() for check in checks]


# --- settings ------------------------------------------------------------------------------------------------


def check_settings(settings: Settings, registered: list[Integration]) -> Check:
    """The settings loaded (every value allowed); warns about choices that weaken a run."""
    jobs = [job.title for job in registered if job.in_use(settings)]
    if not jobs:
        return warn(
            SETTINGS,
            "every value is allowed, but no job is configured",
            "Set " + " and/or ".join(job.enable_hint for job in registered),
        )
    detail = "every value is allowed; configured: " + ", ".join(jobs)
    if not settings.verify_tls:
        return warn(
            SETTINGS,
            detail + "; VERIFY_TLS is off, so the certificates of the upstream servers are not checked",
            "Set VERIFY_TLS=true unless a test server needs it off",
        )
    return ok(SETTINGS, detail)


# --- store ---------------------------------------------------------------------------------------------------


def sqlite_file(url: str) -> str | None:
    """The file named by a `sqlite:///` URL (":memory:" for an in-memory store), or None for other databases."""
    if not url.startswith("sqlite"):
        return None
    rest = url.split("://", 1)[1] if "://" in url else ""
    path = rest[1:].split("?", 1)[0] if rest.startswith("/") else rest.split("?", 1)[0]
    return path or ":memory:"


def read_only_sqlite_url(path: Path) -> str:
    """A URL that opens the SQLite file read-only; `immutable` (no lock, no -wal/-shm files) when it is idle."""
    in_use = Path(f"{path}-wal").exists() and Path(f"{path}-shm").exists()
    query = "mode=ro&uri=true" if in_use else "mode=ro&immutable=1&uri=true"
    return f"sqlite:///file:{quote(str(path))}?{query}"


def check_store(settings: Settings) -> Check:
    """The store can be reached and is at the newest schema; it is neither created nor migrated."""
    url = settings.store_url
    where = mask(url)
    path = sqlite_file(url)
    if path == ":memory:":
        return warn(STORE, "the store is in memory: nothing outlives a run", "Set DATABASE_URL to a file or a server")
    read_url = url
    if path is not None and not path.startswith("file:"):
        file = Path(path).expanduser().resolve()
        where = str(file)
        if not file.is_file():
            return fail(STORE, f"there is no store at {file} yet{_auto_note(settings)}", UPGRADE_FIX)
        read_url = read_only_sqlite_url(file)
    try:
        revision = migrate.store_revision(read_url)
    except CamsyncError as exc:
        return fail(STORE, exc.reason.replace(mask(read_url), where), exc.hint or "Check DATABASE_URL")
    return _schema_check(where, revision, settings)


def _auto_note(settings: Settings) -> str:
    return " (the next run creates it, as CAMSYNC_AUTO_MIGRATE is on)" if settings.auto_migrate else ""


def _schema_check(where: str, revision: str | None, settings: Settings) -> Check:
    head = migrate.SCHEMA_HEAD
    if revision == head:
        return ok(STORE, f"{where}: reachable, schema {revision} (the newest)")
    if revision is None:
        return fail(STORE, f"{where}: reachable, but it holds no camsync schema{_auto_note(settings)}", UPGRADE_FIX)
    known = {entry.revision for entry in migrate.history()}
    if revision not in known:
        return fail(
            STORE,
            f"{where}: schema {revision} is newer than this camsync knows ({head})",
            "Run the camsync version that migrated this store; never downgrade a store in use",
        )
    return fail(STORE, f"{where}: schema {revision}, camsync needs {head}{_auto_note(settings)}", UPGRADE_FIX)
