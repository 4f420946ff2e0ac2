"""The SmartUp pull's doctor checks: SmartUp answers and accepts the login (one reference call: SmartUp has no
free call, so the probe spends one, an inventory export filtered on a code that matches nothing, and says so),
and how much of the daily reference budget is left."""

from __future__ import annotations

from typing import Any

from camsync.clients.http import RetryPolicy
from camsync.clients.smartup import SmartupClient
from camsync.clients.smartup_errors import SmartupAuthError, SmartupBudgetError
from camsync.clients.smartup_limits import BudgetClass, Limits
from camsync.errors import UpstreamError
from camsync.settings import Settings, mask
from camsync.sync.checks import Check, fail, ok, skip, warn

PROBE_REFERENCE = "camsync-doctor-probe"
SMARTUP = "SmartUp"
SMARTUP_BUDGET = "SmartUp budget"
_ONE_TRY = RetryPolicy(attempts=1)  # a doctor reports what it sees; it does not wait out an outage


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


def smartup_checks(settings: Settings, transport: Any = None) -> list[Check]:
    """SmartUp and its budget, as the registry runs them."""
    return list(check_smartup(settings, transport=transport))


def check_smartup(settings: Settings, *, transport: Any = None) -> tuple[Check, Check]:
    """SmartUp answers and accepts the login (one reference call), and how much of the daily budget is left."""
    if not smartup_configured(settings):
        off = "not configured: SMARTUP_BASE_URL is empty (the SmartUp pull is off)"
        return skip(SMARTUP, off), skip(SMARTUP_BUDGET, "SmartUp is not configured")
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
    not_probed = skip(SMARTUP_BUDGET, "unknown: the probe did not get through")
    try:
        client.export_products(code=PROBE_REFERENCE).close()  # the answer is read and checked as it comes
    except SmartupAuthError as exc:
        refused = fail(SMARTUP, f"SmartUp answered {exc.status}: the login was refused", smartup_auth_fix(settings))
        return refused, not_probed
    except SmartupBudgetError as exc:
        reached = warn(
            SMARTUP, "reachable, but the login is not proven: the daily budget is spent", "See the SmartUp budget check"
        )
        return reached, fail(
            SMARTUP_BUDGET, f"the reference budget is spent for today ({exc.reason})", budget_fix(settings)
        )
    except UpstreamError as exc:
        return fail(SMARTUP, exc.reason, _smartup_fix(exc, settings)), not_probed
    calls = client.calls[BudgetClass.REFERENCE]
    plural = "" if calls == 1 else "s"
    where = mask(settings.smartup_base_url.strip().rstrip("/") or client.urls.products)
    spent = f"this check spent {calls} reference call{plural} of the daily budget"
    reached = ok(SMARTUP, f"{where}: reachable, login accepted ({spent})")
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
        return warn(
            SMARTUP_BUDGET,
            "SmartUp sent no limits block: the budget left is unknown",
            "Watch the runs for budget errors",
        )
    if not limits.has_limit:
        return ok(SMARTUP_BUDGET, "SmartUp reports no daily limit on reference exports")
    left, total, reserve = limits.left_limit_quant, limits.limit_quant, settings.smartup_call_reserve
    if left is None:
        return warn(SMARTUP_BUDGET, "SmartUp did not say how many calls are left", "Watch the runs for budget errors")
    of = f" of {total}" if total is not None else ""
    detail = f"{left}{of} reference calls left today (after this check's call); reserve {reserve}"
    fix = budget_fix(settings)
    if left == 0:
        return fail(SMARTUP_BUDGET, detail + ": the budget is spent", fix)
    if left <= reserve:
        return warn(SMARTUP_BUDGET, detail + ": at or under the reserve, so product syncs stop until tomorrow", fix)
    return ok(SMARTUP_BUDGET, detail)
