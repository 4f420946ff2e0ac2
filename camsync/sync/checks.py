"""The doctor's vocabulary: one checked thing, how it went, and what to do about it.

Shared by the doctor (settings, store) and by each job's own checks, which the job registry names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from camsync.errors import CamsyncError
from camsync.logs import get_logger, redact

log = get_logger(__name__)


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

    def redacted(self) -> Check:
        """The same check with every secret in its texts masked."""
        return Check(self.name, self.status, redact(self.detail), redact(self.fix))


def ok(name: str, detail: str) -> Check:
    return Check(name, Status.OK, detail)


def warn(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.WARN, detail, fix)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.FAIL, detail, fix)


def skip(name: str, detail: str) -> Check:
    return Check(name, Status.SKIP, detail)


def guarded(names: tuple[str, ...], checks: Callable[[], list[Check]]) -> list[Check]:
    """The checks' results; an error they did not expect becomes a FAIL of the first and a SKIP of the rest,
    instead of ending the report."""
    try:
        return checks()
    except Exception as exc:  # the report goes on: one broken check must not hide the others
        first, *rest = names
        return [failure(first, exc), *(skip(name, f"the {first} check did not finish") for name in rest)]


def failure(name: str, exc: Exception) -> Check:
    """The FAIL a check ends with when it raised."""
    if isinstance(exc, CamsyncError):
        return fail(name, exc.reason, exc.hint or "")
    log.warning("doctor_check_error", f"the {name} check broke: {type(exc).__name__}", check=name)
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return fail(name, f"the check itself broke: {type(exc).__name__}: {first}", "Report this as a camsync bug")
