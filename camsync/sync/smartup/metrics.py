"""The SmartUp pull's metric families: the calls SmartUp said were left today, per budget class."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from camsync.store import metrics as queries
from camsync.store.engine import Store
from camsync.sync.exposition import Family

LEDGER_JOB = "smartup"


@dataclass(frozen=True)
class BudgetLeft:
    """The calls SmartUp said were left today in one budget class, and when it said so."""

    left: int
    seen_at: datetime | None


def smartup_budget_left(store: Store) -> dict[str, BudgetLeft]:
    """Per budget class, the newest `left` a SmartUp run recorded in its details (`details.budget.left`)."""
    with store.session() as session:
        history = queries.recent_details(session, job=LEDGER_JOB)
    found: dict[str, BudgetLeft] = {}
    for details in history:
        budget = _mapping(details.get("budget"))
        seen = _mapping(budget.get("seen_at"))
        for name, left in _mapping(budget.get("left")).items():
            if name not in found and isinstance(left, int) and not isinstance(left, bool):
                found[name] = BudgetLeft(left, _parse_time(seen.get(name)))
    return found


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def budget_families(store: Store) -> list[Family]:
    """The budget left per class and when SmartUp last reported it."""
    budgets = smartup_budget_left(store)
    left = Family("camsync_smartup_budget_left_calls", "SmartUp calls left today per budget class, as last seen.")
    seen = Family("camsync_smartup_budget_seen_timestamp_seconds", "When SmartUp last reported that budget.")
    for name in sorted(budgets):
        left.add(budgets[name].left, budget_class=name)
        seen_at = budgets[name].seen_at
        if seen_at is not None:
            seen.add(seen_at.timestamp(), budget_class=name)
    return [left, seen]
