"""The errors of the SmartUp client, and how an error answer, a refusal or a failed call becomes one.

A 200 answer is not proof of success: an `{"error_code", "message"}` object becomes a `SmartupApiError` whatever
the status, a `SmartupBudgetError` when it says the daily call budget is spent. Messages are excerpts of what
SmartUp sent, with secrets removed.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from camsync.clients.smartup_limits import BudgetClass
from camsync.errors import UpstreamError
from camsync.logs import redact

SERVICE = "SmartUp"
BUDGET_CODE = "A02-00-999"
EXCERPT_BYTES = 64 * 1024
EXCERPT_CHARS = 200
AUTH_HINT = (
    "Check SMARTUP_BASIC_USER and SMARTUP_BASIC_PASS, and SMARTUP_PROJECT_CODE and SMARTUP_FILIAL_ID "
    "(a wrong project_code or filial_id is also refused as an authorization error)"
)
FILIAL_HINT = "Check SMARTUP_FILIAL_CODE and SMARTUP_FILIAL_ID against the organisations of this SmartUp account"
_BUDGET_MESSAGE = re.compile(
    r"(?i)(limit|лимит).{0,60}(exhaust|exceed|spent|reached|over|исчерп|превыш|законч)"
    r"|(exhaust|exceed|spent|reached|исчерп|превыш|законч).{0,60}(limit|лимит)"
    r"|(call|request|запрос|обращен).{0,30}(limit|лимит)"
    r"|(daily|дневн|суточн).{0,30}(limit|лимит)"
)
_RANGE_MESSAGE = re.compile(r"(?i)range|диапазон|period|период|day_range")


class SmartupError(UpstreamError):
    """SmartUp answered with an error or could not be reached; `message` is SmartUp's own text when it sent one."""

    def __init__(
        self,
        reason: str,
        hint: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        message: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(reason, hint, service=SERVICE, status=status, code=code, retryable=retryable)
        self.message = message if message is not None else reason


class SmartupAuthError(SmartupError):
    """SmartUp refused the credentials or the context headers (HTTP 401/403)."""


class SmartupApiError(SmartupError):
    """SmartUp answered an `{"error_code", "message"}` object, even under HTTP 200."""


class SmartupBudgetError(SmartupApiError):
    """The daily call budget of a class is spent (an error answer, or HTTP 429 after every retry)."""


class SmartupResponseError(SmartupError):
    """The answer is not the document an export sends: malformed or cut JSON, no root key, a wrong shape."""


def is_budget_error(code: str, message: str) -> bool:
    """Whether an error answer says the daily call budget is spent."""
    if code == BUDGET_CODE:
        return True
    return bool(_BUDGET_MESSAGE.search(message)) and not _RANGE_MESSAGE.search(message)


def api_error(name: str, budget_class: BudgetClass, code: str, message: str, status: int | None) -> SmartupApiError:
    """The typed error of an `{"error_code", "message"}` answer."""
    reason = f"SmartUp {name} export failed: {code}" + (f" {excerpt(message)}" if message else "")
    if is_budget_error(code, message):
        return SmartupBudgetError(
            reason, _budget_hint(budget_class), status=status, code=code, message=redact(message), retryable=False
        )
    return SmartupApiError(reason, _code_hint(code), status=status, code=code, message=redact(message))


def _budget_hint(budget_class: BudgetClass) -> str:
    return (
        f"The daily SmartUp call budget for {budget_class.value} exports is spent; it is shared with every "
        "user of the account. Wait for the next day, or sync less often (SMARTUP_*_INTERVAL_SECONDS)"
    )


def _code_hint(code: str) -> str:
    if code in ("A02-24-042", "A02-24-048", "A02-24-070"):
        return FILIAL_HINT
    return "See SmartUp's message; the request may need other filters or settings"


def gave_up(exc: UpstreamError, name: str, budget_class: BudgetClass, attempts: int) -> SmartupError:
    """The error of a call that failed after every retry (HTTP 429 throughout: the budget is spent)."""
    if exc.status == 429:
        return SmartupBudgetError(
            f"SmartUp {name} export answered HTTP 429 (too many requests) {attempts} times",
            _budget_hint(budget_class),
            status=429,
        )
    return SmartupError(
        redact(f"{exc.reason} (gave up after {attempts} attempts)"), exc.hint, status=exc.status, retryable=True
    )


def refusal(response: httpx.Response, name: str, budget_class: BudgetClass) -> SmartupError:
    """The error of a non-2xx answer, from its status and the start of its body; the response is closed."""
    status = response.status_code
    text = _read_excerpt(response)
    error = _error_object(text)
    if status in (401, 403):
        return SmartupAuthError(
            f"SmartUp refused the {name} export (HTTP {status})" + (f": {excerpt(text)}" if text.strip() else ""),
            AUTH_HINT,
            status=status,
            code=error.get("error_code"),
            message=redact(error["message"]) if error else None,
        )
    if error.get("error_code"):
        return api_error(name, budget_class, error["error_code"], error.get("message", ""), status)
    return SmartupError(
        f"SmartUp {name} export answered HTTP {status}" + (f": {excerpt(text)}" if text.strip() else ""),
        _status_hint(status),
        status=status,
        message=excerpt(text) if text.strip() else None,
    )


def _status_hint(status: int) -> str:
    if status in (404, 405):
        return "Check SMARTUP_BASE_URL and the SMARTUP_*_EXPORT_URL settings"
    if 300 <= status < 400:
        return "SmartUp redirected the call; check SMARTUP_BASE_URL (https, tenant path prefix)"
    return "SmartUp refused the request; check the filters and SMARTUP_FILIAL_CODE"


def _read_excerpt(response: httpx.Response) -> str:
    """The start of a refusal's body as text; the response is closed."""
    data = b""
    try:
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) >= EXCERPT_BYTES:
                break
    except httpx.HTTPError:
        pass
    finally:
        response.close()
    return data[:EXCERPT_BYTES].decode(response.encoding or "utf-8", errors="replace")


def _error_object(text: str) -> dict[str, str]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(value, dict) or not text_of(value.get("error_code")):
        return {}
    return {"error_code": text_of(value.get("error_code")), "message": text_of(value.get("message"))}


def text_of(value: Any) -> str:
    """A field of an answer as stripped text ('' for null)."""
    return "" if value is None else str(value).strip()


def excerpt(text: str) -> str:
    """A short one-line excerpt of a message, with secrets removed."""
    flat = " ".join(redact(text).split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1] + "…"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text, with secrets removed."""
    text = str(exc).strip()
    return redact(text.splitlines()[0]) if text else type(exc).__name__
