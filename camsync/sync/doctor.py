"""`camsync doctor`: is this installation ready to run its jobs? Every check reads; none writes.

The checks cover the settings, the store (reachable, at the newest schema), the PAY+ app database (readable,
opened read-only, the expected tables and columns), LUNA OASYS and SmartUp (reachable, credentials accepted) and
the SmartUp call budget. The store is never migrated: its revision is read through a read-only connection (a
SQLite file is opened `mode=ro`, and `immutable` when no other process has it open, so that not even a `-wal` or
`-shm` file appears). A job whose settings are empty is SKIP, not FAIL. SmartUp has no free call, so its probe
spends one reference call (an inventory export filtered on a code that matches nothing), and says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import quote

from camsync.clients.http import RetryPolicy
from camsync.clients.luna import LookupUnavailable, LunaAuthError, LunaClient, LunaError
from camsync.clients.smartup import BudgetClass, Limits, SmartupAuthError, SmartupBudgetError, SmartupClient
from camsync.errors import CamsyncError, ConfigError, UpstreamError
from camsync.logs import get_logger, redact, register_secret
from camsync.settings import Settings, mask
from camsync.source.payplus import PayplusSource
from camsync.store import migrate

log = get_logger(__name__)

PROBE_REFERENCE = "camsync-doctor-probe"
SETTINGS = "settings"
STORE = "store"
APP_DB = "PAY+ app database"
LUNA = "LUNA OASYS"
LUNA_LOOKUP = "LUNA lookup"
SMARTUP = "SmartUp"
SMARTUP_BUDGET = "SmartUp budget"
CHECK_NAMES = (SETTINGS, STORE, APP_DB, LUNA, LUNA_LOOKUP, SMARTUP, SMARTUP_BUDGET)
_ONE_TRY = RetryPolicy(attempts=1)  # a doctor reports what it sees; it does not wait out an outage
_DEFAULT_APP_DB_URL = Settings().app_db_url
UPGRADE_FIX = "Run `camsync db upgrade`"


class Status(StrEnum):
    """The outcome of one check."""

    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report: what was checked, how it went, and what to do about it."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        """The check as JSON-ready values."""
        return {"check": self.name, "status": self.status.value, "detail": self.detail, "fix": self.fix}


def _ok(name: str, detail: str) -> Check:
    return Check(name, Status.OK, detail)


def _warn(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.WARN, detail, fix)


def _fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.FAIL, detail, fix)


def _skip(name: str, detail: str) -> Check:
    return Check(name, Status.SKIP, detail)


def any_failed(checks: list[Check]) -> bool:
    """Whether any check failed (the doctor then exits 1)."""
    return any(check.status is Status.FAIL for check in checks)


def diagnose(load_settings: Callable[[], Settings], *, transports: Mapping[str, Any] | None = None) -> list[Check]:
    """Load the settings and run every check; settings that do not load are one FAIL, the rest SKIP."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        reason = _fail(SETTINGS, exc.reason, exc.hint or "Fix the setting in the environment or the env file")
        return [_redacted(reason)] + [_skip(name, "the settings did not load") for name in CHECK_NAMES[1:]]
    return run_checks(settings, transports=transports)


def run_checks(settings: Settings, *, transports: Mapping[str, Any] | None = None) -> list[Check]:
    """Every check, in order: settings, store, app database, LUNA (and its lookup), SmartUp (and its budget).

    `transports` maps "luna" and "smartup" to an httpx transport for tests; by default the clients connect.
    """
    for secret in settings.secret_values():
        register_secret(secret)
    transports = transports or {}
    checks = [
        _guarded(SETTINGS, lambda: check_settings(settings)),
        _guarded(STORE, lambda: check_store(settings)),
        _guarded(APP_DB, lambda: check_app_db(settings)),
        *_guarded_pair(LUNA, LUNA_LOOKUP, lambda: check_luna(settings, transport=transports.get("luna"))),
        *_guarded_pair(SMARTUP, SMARTUP_BUDGET, lambda: check_smartup(settings, transport=transports.get("smartup"))),
    ]
    return [_redacted(check) for check in checks]


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    """The check's result; an error it did not expect becomes its FAIL instead of ending the report."""
    try:
        return check()
    except Exception as exc:  # the report goes on: one broken check must not hide the others
        return _failure(name, exc)


def _guarded_pair(first: str, second: str, checks: Callable[[], tuple[Check, Check]]) -> tuple[Check, Check]:
    try:
        return checks()
    except Exception as exc:
        return _failure(first, exc), _skip(second, f"the {first} check did not finish")


def _failure(name: str, exc: Exception) -> Check:
    if isinstance(exc, CamsyncError):
        return _fail(name, exc.reason, exc.hint or "")
    log.warning("doctor_check_error", f"the {name} check broke: {type(exc).__name__}", check=name)
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return _fail(name, f"the check itself broke: {type(exc).__name__}: {first}", "Report this as a camsync bug")


def _redacted(check: Check) -> Check:
    return Check(check.name, check.status, redact(check.detail), redact(check.fix))


# --- settings ------------------------------------------------------------------------------------------------


def luna_configured(settings: Settings) -> bool:
    """Whether any LUNA setting that a push needs is set (none set: the LUNA push is off)."""
    return any((settings.luna_base_url, settings.luna_token, settings.luna_username, settings.luna_password))


def smartup_configured(settings: Settings) -> bool:
    """Whether any SmartUp setting that a pull needs is set (none set: the SmartUp pull is off)."""
    return any(
        (
            settings.smartup_base_url,
            settings.smartup_basic_user,
            settings.smartup_basic_pass,
            settings.smartup_inventory_export_url,
            settings.smartup_orders_export_url,
        )
    )


def check_settings(settings: Settings) -> Check:
    """The settings loaded (every value allowed); warns about choices that weaken a run."""
    jobs = [
        name
        for name, on in (("LUNA push", luna_configured(settings)), ("SmartUp pull", smartup_configured(settings)))
        if on
    ]
    if not jobs:
        return _warn(
            SETTINGS,
            "every value is allowed, but no job is configured",
            "Set LUNA_BASE_URL (LUNA push) and/or SMARTUP_BASE_URL (SmartUp pull)",
        )
    detail = "every value is allowed; configured: " + ", ".join(jobs)
    if not settings.verify_tls:
        return _warn(
            SETTINGS,
            detail + "; VERIFY_TLS is off, so the certificates of LUNA and SmartUp are not checked",
            "Set VERIFY_TLS=true unless a test server needs it off",
        )
    return _ok(SETTINGS, detail)


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
        return _warn(STORE, "the store is in memory: nothing outlives a run", "Set DATABASE_URL to a file or a server")
    read_url = url
    if path is not None and not path.startswith("file:"):
        file = Path(path).expanduser().resolve()
        where = str(file)
        if not file.is_file():
            return _fail(STORE, f"there is no store at {file} yet{_auto_note(settings)}", UPGRADE_FIX)
        read_url = read_only_sqlite_url(file)
    try:
        revision = migrate.store_revision(read_url)
    except CamsyncError as exc:
        return _fail(STORE, exc.reason.replace(mask(read_url), where), exc.hint or "Check DATABASE_URL")
    return _schema_check(where, revision, settings)


def _auto_note(settings: Settings) -> str:
    return " (the next run creates it, as CAMSYNC_AUTO_MIGRATE is on)" if settings.auto_migrate else ""


def _schema_check(where: str, revision: str | None, settings: Settings) -> Check:
    head = migrate.SCHEMA_HEAD
    if revision == head:
        return _ok(STORE, f"{where}: reachable, schema {revision} (the newest)")
    if revision is None:
        return _fail(STORE, f"{where}: reachable, but it holds no camsync schema{_auto_note(settings)}", UPGRADE_FIX)
    known = {entry.revision for entry in migrate.history()}
    if revision not in known:
        return _fail(
            STORE,
            f"{where}: schema {revision} is newer than this camsync knows ({head})",
            "Run the camsync version that migrated this store; never downgrade a store in use",
        )
    return _fail(STORE, f"{where}: schema {revision}, camsync needs {head}{_auto_note(settings)}", UPGRADE_FIX)


# --- PAY+ app database ---------------------------------------------------------------------------------------


def check_app_db(settings: Settings) -> Check:
    """The PAY+ app database opens read-only and has the tables and columns the LUNA push reads."""
    if not luna_configured(settings) and settings.app_db_url == _DEFAULT_APP_DB_URL:
        return _skip(APP_DB, "not needed: the LUNA push is not configured (LUNA_BASE_URL is empty)")
    source = PayplusSource.from_settings(settings)
    try:
        source.check()
        highest = source.max_tui_id()
    finally:
        source.close()
    how = "mode=ro" if source.url.startswith("sqlite") else "READ ONLY transactions"
    names = source.names
    return _ok(
        APP_DB,
        f"{mask(source.url)}: opened read-only ({how}); tables {names.tuis}, {names.topups}, {names.meters} "
        f"as expected; highest {names.tuis}.id is {highest}",
    )


# --- LUNA OASYS ----------------------------------------------------------------------------------------------


def check_luna(settings: Settings, *, transport: Any = None) -> tuple[Check, Check]:
    """LUNA answers and accepts the credentials (a GET of a work order that does not exist), and its lookup."""
    if not luna_configured(settings):
        off = "not configured: LUNA_BASE_URL is empty (the LUNA push is off)"
        return _skip(LUNA, off), _skip(LUNA_LOOKUP, "LUNA is not configured")
    client = LunaClient.from_settings(settings, transport=transport, policy=_ONE_TRY)
    try:
        reached = _probe_luna(client, settings)
        if reached.status is Status.FAIL:
            return reached, _skip(LUNA_LOOKUP, "LUNA could not be probed")
        return reached, _probe_lookup(client)
    finally:
        client.close()


def luna_auth_fix(settings: Settings) -> str:
    """What to check when LUNA refuses the credentials, naming the variables in use."""
    if settings.luna_token:
        return "Check LUNA_TOKEN (it wins over LUNA_USERNAME/LUNA_PASSWORD)"
    if not settings.luna_username:
        return "Set LUNA_USERNAME/LUNA_PASSWORD or LUNA_TOKEN: no credentials are configured"
    return "Check LUNA_USERNAME/LUNA_PASSWORD or LUNA_TOKEN"


def _probe_luna(client: LunaClient, settings: Settings) -> Check:
    where = mask(settings.luna_base_url.strip().rstrip("/"))
    try:
        client.get_work_order(PROBE_REFERENCE)
    except LunaAuthError as exc:
        return _fail(LUNA, f"LUNA answered {exc.status}: the credentials were refused", luna_auth_fix(settings))
    except LunaError as exc:
        if exc.status == 404 and exc.code:
            return _ok(LUNA, f"{where}: reachable, credentials accepted (probe work order unknown: {exc.code})")
        if exc.status == 404:
            return _warn(
                LUNA,
                f"{where}: the probe GET answered 404 without an error code; this may not be LUNA's status endpoint",
                "Check LUNA_BASE_URL and LUNA_STATUS_URL",
            )
        return _fail(LUNA, exc.reason, exc.hint or "Check LUNA_BASE_URL and LUNA_STATUS_URL")
    except UpstreamError as exc:
        return _fail(LUNA, exc.reason, "Check LUNA_BASE_URL and that LUNA can be reached from this host")
    return _ok(LUNA, f"{where}: reachable, credentials accepted")


def _probe_lookup(client: LunaClient) -> Check:
    if not client.lookup_available:
        return _ok(LUNA_LOOKUP, "off (LUNA_LOOKUP_URL=none): a create whose outcome is lost is held for an operator")
    try:
        client.lookup(PROBE_REFERENCE)
    except LookupUnavailable as exc:
        return _warn(
            LUNA_LOOKUP,
            exc.reason,
            "Set LUNA_LOOKUP_URL to this server's lookup template, or to none (lost outcomes are held for an operator)",
        )
    except UpstreamError as exc:
        return _warn(LUNA_LOOKUP, exc.reason, exc.hint or "Check LUNA_LOOKUP_URL")
    return _ok(LUNA_LOOKUP, "work orders can be looked up by client reference (lost outcomes settle themselves)")


# --- SmartUp -------------------------------------------------------------------------------------------------


def check_smartup(settings: Settings, *, transport: Any = None) -> tuple[Check, Check]:
    """SmartUp answers and accepts the login (one reference call), and how much of the daily budget is left."""
    if not smartup_configured(settings):
        off = "not configured: SMARTUP_BASE_URL is empty (the SmartUp pull is off)"
        return _skip(SMARTUP, off), _skip(SMARTUP_BUDGET, "SmartUp is not configured")
    client = SmartupClient.from_settings(settings, transport=transport, policy=_ONE_TRY)
    try:
        return _probe_smartup(client, settings)
    finally:
        client.close()


def smartup_auth_fix(settings: Settings) -> str:
    """What to check when SmartUp refuses the login, naming the variables."""
    return (
        "Check SMARTUP_BASIC_USER/SMARTUP_BASIC_PASS; SmartUp refuses a wrong SMARTUP_PROJECT_CODE "
        f"(now {settings.smartup_project_code!r}) or SMARTUP_FILIAL_ID the same way"
    )


def _probe_smartup(client: SmartupClient, settings: Settings) -> tuple[Check, Check]:
    not_probed = _skip(SMARTUP_BUDGET, "unknown: the probe did not get through")
    try:
        client.export_products(code=PROBE_REFERENCE).close()  # the answer is read and checked as it comes
    except SmartupAuthError as exc:
        refused = _fail(SMARTUP, f"SmartUp answered {exc.status}: the login was refused", smartup_auth_fix(settings))
        return refused, not_probed
    except SmartupBudgetError as exc:
        reached = _warn(
            SMARTUP, "reachable, but the login is not proven: the daily budget is spent", "See the SmartUp budget check"
        )
        return reached, _fail(
            SMARTUP_BUDGET, f"the reference budget is spent for today ({exc.reason})", budget_fix(settings)
        )
    except UpstreamError as exc:
        return _fail(SMARTUP, exc.reason, _smartup_fix(exc, settings)), not_probed
    calls = client.calls[BudgetClass.REFERENCE]
    plural = "" if calls == 1 else "s"
    where = mask(settings.smartup_base_url.strip().rstrip("/") or client.urls.products)
    spent = f"this check spent {calls} reference call{plural} of the daily budget"
    reached = _ok(SMARTUP, f"{where}: reachable, login accepted ({spent})")
    return reached, budget_check(client.last_limits.get(BudgetClass.REFERENCE), settings)


def _smartup_fix(exc: UpstreamError, settings: Settings) -> str:
    if exc.status == 400 and not settings.smartup_filial_id:
        return "Set SMARTUP_FILIAL_ID (the numeric id of the organisation); it is empty"
    if exc.status is None:
        return "Check SMARTUP_BASE_URL and that SmartUp can be reached from this host"
    return exc.hint or "Check SMARTUP_BASE_URL"


def budget_fix(settings: Settings) -> str:
    """What to do when the reference budget runs low: wait for the tenant's next day, or sync less often."""
    return (
        f"Wait for the next day ({settings.smartup_timezone}); the budget is shared with every user of the account. "
        "Sync products less often (SMARTUP_PRODUCTS_INTERVAL_SECONDS) if this recurs"
    )


def budget_check(limits: Limits | None, settings: Settings) -> Check:
    """The reference budget left today, from the probe's `limits` block, against SMARTUP_CALL_RESERVE."""
    if limits is None:
        return _warn(
            SMARTUP_BUDGET,
            "SmartUp sent no limits block: the budget left is unknown",
            "Watch the runs for budget errors",
        )
    if not limits.has_limit:
        return _ok(SMARTUP_BUDGET, "SmartUp reports no daily limit on reference exports")
    left, total, reserve = limits.left_limit_quant, limits.limit_quant, settings.smartup_call_reserve
    if left is None:
        return _warn(SMARTUP_BUDGET, "SmartUp did not say how many calls are left", "Watch the runs for budget errors")
    of = f" of {total}" if total is not None else ""
    detail = f"{left}{of} reference calls left today (after this check's call); reserve {reserve}"
    fix = budget_fix(settings)
    if left == 0:
        return _fail(SMARTUP_BUDGET, detail + ": the budget is spent", fix)
    if left <= reserve:
        return _warn(SMARTUP_BUDGET, detail + ": at or under the reserve, so product syncs stop until tomorrow", fix)
    return _ok(SMARTUP_BUDGET, detail)
