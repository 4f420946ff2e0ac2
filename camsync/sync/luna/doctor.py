"""The LUNA push's doctor checks: the PAY+ app database (read-only, the expected tables), LUNA OASYS (reachable,
credentials accepted: a GET of a work order that does not exist) and its lookup by client reference."""

from __future__ import annotations

from typing import Any

from camsync.clients.http import RetryPolicy
from camsync.clients.luna_target import LookupUnavailable, LunaAuthError, LunaEndpointError, LunaError, OpenTarget
from camsync.errors import UpstreamError
from camsync.settings import Settings, mask
from camsync.source.payplus import PayplusSource
from camsync.sync.checks import Check, Status, fail, ok, skip, warn
from camsync.sync.luna.target import open_target

PROBE_REFERENCE = "camsync-doctor-probe"
APP_DB = "PAY+ app database"
LUNA = "LUNA OASYS"
LUNA_LOOKUP = "LUNA lookup"
LUNA_CREATE = "LUNA create route"
_ONE_TRY = RetryPolicy(attempts=1)  # a doctor reports what it sees; it does not wait out an outage
_DEFAULT_APP_DB_URL = Settings().app_db_url


def luna_configured(settings: Settings) -> bool:
    """Whether any LUNA setting that a push needs is set (none set: the LUNA push is off)."""
    return any((settings.luna_base_url, settings.luna_token, settings.luna_username, settings.luna_password))


def app_db_checks(settings: Settings, _transport: Any = None) -> list[Check]:
    """The app database check, as the registry runs it."""
    return [check_app_db(settings)]


def luna_checks(settings: Settings, transport: Any = None) -> list[Check]:
    """LUNA, its create route and its lookup, as the registry runs them."""
    return list(check_luna(settings, transport=transport))


def check_app_db(settings: Settings) -> Check:
    """The PAY+ app database opens read-only and has the tables and columns the LUNA push reads."""
    if not luna_configured(settings) and settings.app_db_url == _DEFAULT_APP_DB_URL:
        return skip(APP_DB, "not needed: the LUNA push is not configured (LUNA_BASE_URL is empty)")
    source = PayplusSource.from_settings(settings)
    try:
        source.check()
        highest = source.max_tui_id()
    finally:
        source.close()
    how = "mode=ro" if source.url.startswith("sqlite") else "READ ONLY transactions"
    names = source.names
    return ok(
        APP_DB,
        f"{mask(source.url)}: opened read-only ({how}); tables {names.tuis}, {names.topups}, {names.meters} "
        f"as expected; highest {names.tuis}.id is {highest}",
    )


# --- LUNA OASYS ----------------------------------------------------------------------------------------------


def check_luna(settings: Settings, *, transport: Any = None) -> tuple[Check, Check, Check]:
    """LUNA answers and accepts the credentials (a GET of a work order that does not exist), its create route
    exists (a GET of it: nothing is created), and its lookup."""
    if not luna_configured(settings):
        off = "not configured: LUNA_BASE_URL is empty (the LUNA push is off)"
        return skip(LUNA, off), skip(LUNA_CREATE, "LUNA is not configured"), skip(LUNA_LOOKUP, "LUNA is not configured")
    client = open_target(settings, 1, transport=transport, policy=_ONE_TRY)
    try:
        reached = _probe_luna(client, settings)
        if reached.status is Status.FAIL:
            return reached, skip(LUNA_CREATE, "LUNA could not be probed"), skip(LUNA_LOOKUP, "LUNA could not be probed")
        return reached, _probe_create(client), _probe_lookup(client)
    finally:
        client.close()


def _probe_create(client: OpenTarget) -> Check:
    try:
        answered = client.probe_create_route()
    except LunaEndpointError as exc:
        return fail(LUNA_CREATE, f"no such route: {exc.reason}", exc.hint or "Check LUNA_BASE_URL and LUNA_CREATE_URL")
    except UpstreamError as exc:
        return warn(LUNA_CREATE, exc.reason, "Check LUNA_CREATE_URL")
    return ok(LUNA_CREATE, f"the create route exists (a GET of it answered {answered}; nothing was created)")


def luna_auth_fix(settings: Settings) -> str:
    """What to check when LUNA refuses the credentials, naming the variables in use."""
    if settings.luna_token:
        return "Check LUNA_TOKEN (it wins over LUNA_USERNAME/LUNA_PASSWORD)"
    if not settings.luna_username:
        return "Set LUNA_USERNAME/LUNA_PASSWORD or LUNA_TOKEN: no credentials are configured"
    return "Check LUNA_USERNAME/LUNA_PASSWORD or LUNA_TOKEN"


def _probe_luna(client: OpenTarget, settings: Settings) -> Check:
    where = mask(settings.luna_base_url.strip().rstrip("/"))
    try:
        client.get_work_order(PROBE_REFERENCE)
    except LunaAuthError as exc:
        return fail(LUNA, f"LUNA answered {exc.status}: the credentials were refused", luna_auth_fix(settings))
    except LunaEndpointError as exc:
        return fail(LUNA, f"no such route: {exc.reason}", exc.hint or "Check LUNA_BASE_URL and LUNA_STATUS_URL")
    except LunaError as exc:
        if exc.status == 404 and exc.code:
            return ok(LUNA, f"{where}: reachable, credentials accepted (probe work order unknown: {exc.code})")
        if exc.status == 404:
            return warn(
                LUNA,
                f"{where}: the probe GET answered 404 without an error code; this may not be LUNA's status endpoint",
                "Check LUNA_BASE_URL and LUNA_STATUS_URL",
            )
        return fail(LUNA, exc.reason, exc.hint or "Check LUNA_BASE_URL and LUNA_STATUS_URL")
    except UpstreamError as exc:
        return fail(LUNA, exc.reason, "Check LUNA_BASE_URL and that LUNA can be reached from this host")
    return ok(LUNA, f"{where}: reachable, credentials accepted")


def _probe_lookup(client: OpenTarget) -> Check:
    if not client.lookup_available:
        return ok(LUNA_LOOKUP, "off (LUNA_LOOKUP_URL=none): a create whose outcome is lost is held for an operator")
    try:
        client.lookup(PROBE_REFERENCE)
    except LookupUnavailable as exc:
        return warn(
            LUNA_LOOKUP,
            exc.reason,
            "Set LUNA_LOOKUP_URL to this server's lookup template, or to none (lost outcomes are held for an operator)",
        )
    except UpstreamError as exc:
        return warn(LUNA_LOOKUP, exc.reason, exc.hint or "Check LUNA_LOOKUP_URL")
    return ok(LUNA_LOOKUP, "work orders can be looked up by client reference (lost outcomes settle themselves)")
