"""Typed errors and the exit-code contract.

Lower layers raise a `CamsyncError` subclass carrying a reason and a hint; only `camsync.cli` turns it into a
message and an exit code. Nothing below the CLI calls `sys.exit`.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The documented exit codes of every camsync command."""

    OK = 0
    FAILED = 1
    USAGE = 2
    PARTIAL = 3
    CONFIG = 4
    INTERRUPTED = 130
    LOCKED = 75


class CamsyncError(Exception):
    """An expected failure: printed as `Error: reason. hint.` without a traceback."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, reason: str, hint: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint

    def __str__(self) -> str:
        return self.reason if not self.hint else f"{self.reason}. {self.hint}"


class ConfigError(CamsyncError):
    """A setting is missing or has a value outside what it allows."""

    exit_code = ExitCode.CONFIG


class UsageError(CamsyncError):
    """The command was called with arguments that do not fit together."""

    exit_code = ExitCode.USAGE


class NotFoundError(CamsyncError):
    """A thing named on the command line does not exist."""

    exit_code = ExitCode.FAILED


class StoreError(CamsyncError):
    """The camsync store cannot be reached, migrated or written."""

    exit_code = ExitCode.FAILED


class LockedError(CamsyncError):
    """Another process holds the lock of the job this command wanted to run."""

    exit_code = ExitCode.LOCKED


class UpstreamError(CamsyncError):
    """An upstream API answered with an error or could not be reached.

    `service` names the API, `status` is the HTTP status when there was an answer, `code` the API's own error
    code when it sent one, and `retryable` says whether the same request may succeed later.
    """

    def __init__(
        self,
        reason: str,
        hint: str | None = None,
        *,
        service: str,
        status: int | None = None,
        code: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(reason, hint)
        self.service = service
        self.status = status
        self.code = code
        self.retryable = retryable


class EndpointError(UpstreamError):
    """A request could not be taken by the upstream it was meant for: a wrong URL (no such route, a scheme or
    host that cannot work), refused credentials, a certificate that does not verify. Nothing was done upstream;
    the fix is a setting."""

    exit_code = ExitCode.CONFIG
