"""How one `luna push` behaves (`PushOptions`, read from the LUNA_* settings) and what it did (`PushCounts`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from camsync.clients.http import RetryPolicy
from camsync.settings import Settings
from camsync.sync.luna.states import TERMINAL, TxnState


def lease_seconds_for(timeout_seconds: float, policy: RetryPolicy | None = None) -> float:
    """A lease comfortably longer than the worst case of one create: a lookup and a POST, each of them
    `attempts` tries of `timeout_seconds` with the longest Retry-After honoured between them."""
    policy = policy or RetryPolicy()
    worst_send = policy.attempts * (timeout_seconds + policy.max_retry_after)
    return max(300.0, 2 * worst_send + 60.0)


@dataclass(frozen=True)
class PushOptions:
    """How one push behaves; `from_settings` reads the LUNA_* settings, keyword overrides win."""

    concurrency: int = 8
    batch_size: int = 25
    limit: int | None = None
    wait: bool = True
    timeout: float | None = None
    txn_id: str | None = None
    poll_initial: float = 1.0
    poll_max: float = 60.0
    poll_timeout: float = 86400.0
    unknown_outcome: str = "hold"
    success_status: str = "Successful"
    failed_statuses: tuple[str, ...] = ("Failed", "Cancelled", "Expired")
    require_terminal: bool = True  # with wait: txns still in flight at the timeout make the run PARTIAL
    lease_seconds: float = 300.0
    retry_base: float = 1.0
    retry_max: float = 300.0
    max_amount: Decimal = Decimal(1_000_000)
    suspect_after: int = 3  # this many first creates of a run rejected alike stop it and are held for review
    unreachable_give_up: float = 60.0  # a run whose every request finds LUNA unreachable this long stops (exit 1)
    sweep: bool = False  # sweep the whole app DB in this push, due or not
    sweep_interval: float = 86400.0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> PushOptions:
        """The options the settings describe, with `overrides` (None values ignored) applied."""
        values: dict[str, Any] = {
            "concurrency": settings.luna_concurrency,
            "batch_size": settings.batch_size,
            "poll_initial": settings.luna_poll_initial_seconds,
            "poll_max": settings.luna_poll_max_seconds,
            "poll_timeout": float(settings.luna_poll_timeout),
            "unknown_outcome": settings.luna_unknown_outcome,
            "success_status": settings.luna_status_success,
            "failed_statuses": tuple(settings.luna_status_failed),
            "lease_seconds": lease_seconds_for(settings.timeout_seconds),
            "max_amount": Decimal(repr(settings.luna_max_amount)),
            "sweep_interval": float(settings.luna_sweep_interval_seconds),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def terminal_state(self, status: str | None) -> TxnState | None:
        """The local state a LUNA status ends in, or None while it is not terminal."""
        folded = (status or "").casefold()
        if folded == self.success_status.casefold():
            return TxnState.SUCCESSFUL
        if folded not in {s.casefold() for s in self.failed_statuses}:
            return None
        if folded.startswith("cancel"):
            return TxnState.CANCELLED
        return TxnState.EXPIRED if folded.startswith("expir") else TxnState.FAILED


@dataclass
class PushCounts:
    """What one push did."""

    creates: int = 0
    created: int = 0
    adopted: int = 0
    polls: int = 0
    lookups: int = 0
    retries: int = 0
    requests: int = 0
    finished: dict[str, int] = field(default_factory=lambda: {state.value: 0 for state in TERMINAL})
    rejected_by_luna: int = 0
    unknown: int = 0
    duplicates: int = 0
    orphans: int = 0
    left_in_flight: int = 0
    fatal: str | None = None  # the run stopped: an answer about the endpoint, not about a txn
    fatal_is_config: bool = True  # the fix is a setting (exit 4); False: LUNA is unreachable (exit 1)
    unreachable: str | None = None  # why the last request did not reach LUNA, while no later one did
    suspect_rejections: int = 0  # rejected creates held back for review by the defence in depth

    @property
    def reached_terminal(self) -> int:
        return sum(self.finished.values())

    @property
    def not_successful(self) -> int:
        return self.reached_terminal - self.finished[TxnState.SUCCESSFUL] + self.unknown
