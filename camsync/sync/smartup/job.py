"""The SmartUp pull as the job registry knows it: products with their groups (hourly by default), orders (every
call) and stock (every 15 minutes by default)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from camsync.sync.jobs import CheckGroup, Integration, Job

if TYPE_CHECKING:
    from camsync.settings import Settings
    from camsync.store.engine import Store
    from camsync.sync.checks import Check
    from camsync.sync.demo import DemoPart, DemoRequest
    from camsync.sync.exposition import Family

LEDGER_JOB = "smartup"


def _products(store: Store, settings: Settings, trigger: str, parent_id: int) -> str:
    from camsync.sync.smartup.pull import sync_products

    result = sync_products(store, settings, trigger=trigger, parent_id=parent_id)
    return worst([result.status, *(child.status for child in result.children)])


def _orders(store: Store, settings: Settings, trigger: str, parent_id: int) -> str:
    from camsync.sync.smartup.pull import sync_orders

    return sync_orders(store, settings, trigger=trigger, parent_id=parent_id).status


def _stock(store: Store, settings: Settings, trigger: str, parent_id: int) -> str:
    from camsync.sync.smartup.pull import sync_stock

    return sync_stock(store, settings, trigger=trigger, parent_id=parent_id).status


def worst(statuses: list[str]) -> str:
    """The status of runs taken together: SUCCESS when all are, FAILED when all failed, else PARTIAL."""
    if all(status == "SUCCESS" for status in statuses):
        return "SUCCESS"
    return "FAILED" if all(status == "FAILED" for status in statuses) else "PARTIAL"


def _configured(settings: Settings) -> bool:
    return bool(settings.smartup_base_url)


def _in_use(settings: Settings) -> bool:
    from camsync.sync.smartup.doctor import smartup_configured

    return smartup_configured(settings)


def _checks(settings: Settings, transport: Any) -> list[Check]:
    from camsync.sync.smartup.doctor import smartup_checks

    return smartup_checks(settings, transport)


def _metrics(store: Store) -> list[Family]:
    from camsync.sync.smartup.metrics import budget_families

    return budget_families(store)


def _demo(request: DemoRequest) -> DemoPart:
    from camsync.sync.smartup.demo import start

    return start(request)


SMARTUP = Integration(
    key=LEDGER_JOB,
    title="SmartUp pull",
    summary="the SmartUp pull (products, prices, product groups, orders and stock into PostgreSQL)",
    jobs=(
        Job(
            "smartup-products",
            LEDGER_JOB,
            "products",
            lambda s: s.smartup_products_interval_seconds,
            _products,
            configured=_configured,
            summary="SmartUp products and their groups (hourly by default)",
        ),
        Job(
            "smartup-orders",
            LEDGER_JOB,
            "orders",
            lambda s: s.smartup_orders_interval_seconds,
            _orders,
            configured=_configured,
            summary="SmartUp orders",
        ),
        Job(
            "smartup-stock",
            LEDGER_JOB,
            "stock",
            lambda s: s.smartup_stock_interval_seconds,
            _stock,
            configured=_configured,
            summary="SmartUp stock (every 15 minutes by default)",
        ),
    ),
    in_use=_in_use,
    enable_hint="SMARTUP_BASE_URL (SmartUp pull)",
    checks=(CheckGroup(("SmartUp", "SmartUp budget"), _checks),),
    metrics=_metrics,
    demo=_demo,
    other_run_types=("full", "groups"),
)
