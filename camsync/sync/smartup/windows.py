"""What a SmartUp run pulls: a full product refresh or the products changed since a day, and the order windows.

Products: incremental by `begin_modified_on` from the last successful run's start minus a day; a full refresh
(no filter, then prices, then products not seen are flagged `missing_upstream`) when asked, on the first run, and
when the last full refresh is more than a day old. Orders: by modified date from the last successful run's
cursor minus a day up to today (or `SYNC_ORDERS_DAYS_BACK` days back on the first run), fetched in windows of at
most the server's `day_range_limit` days (see `orders`); `since`/`until` run a bounded window that leaves the
cursor alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from camsync.errors import UsageError

PRODUCTS_OVERLAP = timedelta(days=1)
ORDERS_OVERLAP_DAYS = 1
FULL_REFRESH_EVERY = timedelta(hours=24)


def products_window(
    *, full: bool, cursor: str | None, last_full_at: datetime | None, started: datetime, tz: ZoneInfo
) -> tuple[bool, date | None]:
    """Whether a products run is a full refresh and, when not, the day its changes are pulled from.

    `cursor`: the last successful run's (None before the first); `last_full_at`: when the last full refresh began.
    """
    full = full or cursor is None or last_full_at is None or started - last_full_at > FULL_REFRESH_EVERY
    return full, None if full else products_since(cursor, tz)


def products_since(cursor: str | None, tz: ZoneInfo) -> date | None:
    """The first day an incremental products run asks for: a day before the last successful run began."""
    if not cursor:
        return None
    return (datetime.fromisoformat(cursor) - PRODUCTS_OVERLAP).astimezone(tz).date()


@dataclass(frozen=True)
class OrdersRange:
    """The days an orders run pulls (inclusive), and how they were chosen."""

    start: date
    end: date
    mode: str  # incremental, back-fill or bounded
    bounded: bool  # since..until: the cursor does not move


def orders_range(
    *,
    today: date,
    cursor: str | None,
    days_back: int | None,
    since: date | None,
    until: date | None,
    first_days_back: int,
) -> OrdersRange:
    """The days an orders run pulls: since..until, the last `days_back` days, from the cursor minus a day to
    today, or the last `first_days_back` days on the first run."""
    if since is not None and until is not None:
        return OrdersRange(since, until, "bounded", True)
    if days_back is not None:
        return OrdersRange(today - timedelta(days=days_back - 1), today, "back-fill", False)
    if cursor:
        start = date.fromisoformat(cursor) - timedelta(days=ORDERS_OVERLAP_DAYS)
        return OrdersRange(min(start, today), today, "incremental", False)
    return OrdersRange(today - timedelta(days=first_days_back - 1), today, "incremental", False)


def check_window_options(days_back: int | None, since: date | None, until: date | None) -> None:
    """Raise UsageError for options that do not make one window."""
    if (since is None) != (until is None):
        raise UsageError("--since and --until go together", "Pass both dates of the window")
    if since is not None and days_back is not None:
        raise UsageError("--days-back cannot be combined with --since/--until", "Pass one or the other")
    if since is not None and until is not None and until < since:
        raise UsageError(f"--until {until} is before --since {since}", "Swap the dates")
    if days_back is not None and not 1 <= days_back <= 90:
        raise UsageError(f"--days-back {days_back} is outside 1..90", "Pass a number of days from 1 to 90")
