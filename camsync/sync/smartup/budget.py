"""The daily SmartUp call budgets as a run sees them: checked before each call, recorded in the run's details.

SmartUp counts calls per company and day and budget class. Before each call the newest `left_limit_quant` of its
class (from this run's answers, else from earlier runs since the last reset) is checked against
`SMARTUP_CALL_RESERVE`; a call that would go below it is not made (`BudgetStop`). A budget error from SmartUp
itself ends the run the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from camsync.clients.smartup import Export
from camsync.clients.smartup_errors import SmartupBudgetError
from camsync.clients.smartup_limits import BudgetClass
from camsync.errors import CamsyncError
from camsync.logs import get_logger
from camsync.settings import Settings
from camsync.store.engine import Store
from camsync.store.runs import recent_run_details
from camsync.sync.smartup.source import ExportSource

log = get_logger(__name__)


class BudgetStop(CamsyncError):
    """A call would take a daily budget class below the reserve (or SmartUp says it is spent)."""


class Budget:
    """The daily call budgets as this run sees them: checked before each call, recorded in the run's details."""

    def __init__(
        self, store: Store, settings: Settings, source: ExportSource, clock: Callable[[], datetime], *, job: str
    ) -> None:
        self.settings = settings
        self.source = source
        self.clock = clock
        self.tz = ZoneInfo(settings.smartup_timezone)
        self.calls_at_start = dict(source.calls)
        self.left: dict[str, int] = {}
        self.seen_at: dict[str, str] = {}
        self.range_limit: int | None = None
        self.completed = 0
        self._store = store
        self._job = job
        self._earlier: dict[str, int] | None = None

    def calls_made(self) -> int:
        return sum(self._calls().values())

    def _calls(self) -> dict[str, int]:
        return {
            budget.value: count - self.calls_at_start.get(budget, 0)
            for budget, count in self.source.calls.items()
            if count - self.calls_at_start.get(budget, 0)
        }

    def reset_at(self) -> datetime:
        """When the daily budgets start again: the next midnight in the tenant's time zone."""
        local = self.clock().astimezone(self.tz)
        return datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=self.tz)

    def newest_left(self, budget: BudgetClass) -> int | None:
        limits = self.source.last_limits.get(budget)
        if limits is not None:
            return limits.left_limit_quant if limits.has_limit else None
        return self._earlier_left().get(budget.value)

    def _earlier_left(self) -> dict[str, int]:
        """What earlier runs saw left today (since the last reset), newest first wins."""
        if self._earlier is None:
            since = self.reset_at() - timedelta(days=1)
            with self._store.session() as session:
                history = recent_run_details(session, job=self._job)
            self._earlier = {}
            for details in reversed(history):
                budget = details.get("budget") or {}
                for name, left in (budget.get("left") or {}).items():
                    seen = (budget.get("seen_at") or {}).get(name)
                    if isinstance(left, int) and seen and datetime.fromisoformat(seen) >= since:
                        self._earlier[name] = left
        return self._earlier

    def check(self, budget: BudgetClass) -> None:
        """Raise BudgetStop when one more call of this class would go below the reserve."""
        left = self.newest_left(budget)
        reserve = self.settings.smartup_call_reserve
        if left is not None and left - 1 < reserve:
            raise BudgetStop(
                f"SmartUp {budget.value} budget: {left} calls left today, reserve {reserve}; stopped before calling",
                f"The budget resets at {self.reset_at().strftime('%Y-%m-%d %H:%M')} {self.settings.smartup_timezone}"
                " (midnight); lower SMARTUP_CALL_RESERVE or sync less often",
            )

    def saw(self, export: Export) -> None:
        """Note the limits block of a finished export."""
        self.completed += 1
        limits = export.limits or self.source.last_limits.get(export.budget_class)
        if limits is None:
            return
        if limits.left_limit_quant is not None:
            self.left[export.budget_class.value] = limits.left_limit_quant
            self.seen_at[export.budget_class.value] = self.clock().isoformat()
        if limits.day_range_limit:
            self.range_limit = limits.day_range_limit

    def day_range_limit(self, remembered: int | None = None) -> int:
        """The widest date range of one call: the API's own value when seen (in this client's answers, else this
        run's), else the one the store `remembered` from an earlier run, else SMARTUP_DAY_RANGE_LIMIT."""
        limits = self.source.last_limits.get(BudgetClass.DOCUMENTS)
        if limits is not None and limits.day_range_limit and limits.day_range_limit >= 1:
            return limits.day_range_limit
        return self.range_limit or remembered or self.settings.smartup_day_range_limit

    def stopped(self, stop: CamsyncError) -> CamsyncError:
        """The error that ends the run for a budget stop (SmartUp's own budget error, with when it resets)."""
        if isinstance(stop, SmartupBudgetError):
            stop = BudgetStop(
                stop.reason,
                f"{stop.hint}. It resets at {self.reset_at().strftime('%Y-%m-%d %H:%M')} "
                f"{self.settings.smartup_timezone}",
            )
        log.error("budget_stop", str(stop))
        return stop

    def details(self) -> dict[str, Any]:
        """The run's `details.budget`: calls made, and what was left when, per budget class."""
        for budget, limits in self.source.last_limits.items():
            if (
                limits.left_limit_quant is not None
                and budget.value not in self.left
                and self._calls().get(budget.value)
            ):
                self.left[budget.value] = limits.left_limit_quant
                self.seen_at[budget.value] = self.clock().isoformat()
        return {"budget": {"calls": self._calls(), "left": dict(self.left), "seen_at": dict(self.seen_at)}}


def merge_budgets(budgets: list[dict[str, Any]]) -> dict[str, Any]:
    """The budget details of child runs as one (calls added up, the newest figures kept)."""
    merged: dict[str, Any] = {"calls": {}, "left": {}, "seen_at": {}}
    for budget in budgets:
        for name, count in (budget.get("calls") or {}).items():
            merged["calls"][name] = merged["calls"].get(name, 0) + count
        merged["left"].update(budget.get("left") or {})
        merged["seen_at"].update(budget.get("seen_at") or {})
    return merged
