"""What the SmartUp pull needs of a SmartUp client (`SmartupClient`, or a fake in tests), and the real one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Protocol

from camsync.clients.smartup import Export, SmartupClient
from camsync.clients.smartup_limits import BudgetClass, Limits
from camsync.settings import Settings


class ExportSource(Protocol):
    """The exports the pull calls, with the calls made and the newest `limits` seen per budget class."""

    calls: dict[BudgetClass, int]
    last_limits: dict[BudgetClass, Limits]

    def export_products(
        self, *, begin_modified_on: date | None = None, end_modified_on: date | None = None, code: str = ""
    ) -> Export: ...

    def export_orders(
        self, *, begin_modified_on: date | None = None, end_modified_on: date | None = None, deal_id: str = ""
    ) -> Export: ...

    def export_prices(self) -> Export: ...

    def export_groups(self) -> Export: ...

    def export_balance(self, *, begin_date: date, end_date: date) -> Export: ...


@contextmanager
def client_scope(settings: Settings, client: ExportSource | None) -> Iterator[ExportSource]:
    """The injected client as it is, or a new real one closed at the end."""
    if client is not None:
        yield client
        return
    with SmartupClient.from_settings(settings) as real:
        yield real
