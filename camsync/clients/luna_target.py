"""The LUNA target: what the push asks of LUNA OASYS, whatever the transport (REST today, SOAP later).

A target creates a LoadCredit work order keyed by the txn_id, reads a work order's status, and looks work orders
up by client reference. Every transport returns the same typed results (`WorkOrder`) and raises the same typed
errors, so the push engine knows this module only: a new transport is a new client module implementing
`LunaTarget`, and no change to the engine.

The errors a target raises, and what the push does with them:
- `LunaRejected`: LUNA refused the work order; sending it again cannot succeed.
- `LunaBusy`: another work order runs on the same meter; send again later.
- `LunaEndpointError`: the answer is about the endpoint, not the txn (no such route, an HTML page, a redirect,
  a URL or certificate that cannot work); nothing was created, the run stops (exit 4) and no txn changes.
- `LunaAuthError` (a `LunaEndpointError`): the credentials were refused.
- `LunaResponseError`: an answer camsync cannot use (no work-order id, malformed); a create's outcome is unknown.
- `LookupUnavailable` / `LookupAmbiguous`: a reference cannot be looked up, or the answer does not say whose
  work orders it lists.
- `OutcomeUnknown` (of `camsync.clients.http`): a create may or may not have been committed (answer lost).
- any other `UpstreamError`: LUNA could not be reached or stayed busy; a create it raises created nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from camsync.clients.http import OutcomeUnknown
from camsync.errors import EndpointError, ExitCode, UpstreamError
from camsync.logs import redact

SERVICE = "LUNA"

__all__ = [
    "SERVICE",
    "LookupAmbiguous",
    "LookupUnavailable",
    "LunaAuthError",
    "LunaBusy",
    "LunaEndpointError",
    "LunaError",
    "LunaRejected",
    "LunaResponseError",
    "LunaTarget",
    "OpenTarget",
    "OutcomeUnknown",
    "WorkOrder",
]


@dataclass(frozen=True)
class WorkOrder:
    """A work order as LUNA described it; `raw` is the whole answer (envelope included)."""

    id: str
    status: str | None
    failure_reason: str | None
    raw: dict[str, Any]
    reference: str | None = None
    siblings: tuple[WorkOrder, ...] = ()  # every work order LUNA holds for the reference, when more than one


class LunaError(UpstreamError):
    """LUNA answered with an error, or with something camsync cannot use."""

    def __init__(
        self,
        reason: str,
        hint: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(redact(reason), hint, service=SERVICE, status=status, code=code, retryable=retryable)


class LunaRejected(LunaError):
    """LUNA refused the work order (validation, unknown meter …): sending it again cannot succeed."""


class LunaBusy(LunaError):
    """Another work order runs on the same meter: send this one again later."""


class LunaEndpointError(LunaError, EndpointError):
    """An answer about the endpoint, not about a txn: the fix is a setting (LUNA_BASE_URL, LUNA_*_URL,
    credentials, VERIFY_TLS). Nothing was created."""

    exit_code = ExitCode.CONFIG  # as EndpointError's: LunaError comes first in the lookup


class LunaAuthError(LunaEndpointError):
    """LUNA refused the credentials (401/403)."""


class LunaResponseError(LunaError):
    """A success answer that is not JSON, or carries no work-order id."""


class LookupUnavailable(LunaError):
    """Work orders cannot be looked up by client reference on this server."""


class LookupAmbiguous(LunaError):
    """A lookup answered work orders that do not carry the reference: whose they are is unknown."""


class LunaTarget(Protocol):
    """What the push engine asks of LUNA (the REST client implements it; tests pass fakes)."""

    @property
    def lookup_available(self) -> bool:
        """False when work orders cannot be looked up by reference: unknown outcomes cannot be settled."""
        ...

    def create_work_order(self, *, txn_id: str, meter: str, amount: Decimal, currency: str) -> WorkOrder:
        """Create the LoadCredit work order of one top-up, keyed by `txn_id` (a duplicate answers the existing
        one, with every work order of the reference as `siblings` when LUNA holds several)."""
        ...

    def get_work_order(self, work_order_id: str) -> WorkOrder:
        """The work order's current status."""
        ...

    def lookup(self, txn_id: str) -> list[WorkOrder]:
        """The work orders carrying client reference `txn_id` (empty when none)."""
        ...


class OpenTarget(LunaTarget, Protocol):
    """A target opened by camsync, holding connections until it is closed."""

    def close(self) -> None:
        """Give back the connections."""
        ...

    def probe_create_route(self) -> str:
        """Prove the create operation exists on the server without creating anything (what it answered);
        LunaEndpointError when it does not."""
        ...
