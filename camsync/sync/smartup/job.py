"""The SmartUp pull as the job registry knows it: products (hourly by default) and orders (every call)."""

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

    return sync_products(store, settings, trigger=trigger, parent_id=parent_id).status


def _orders(store: Store, settings: Settings, trigger: str, parent_id: int) -> str:
    from camsync.sync.smartup.pull import sync_orders

    return sync_orders(store, settings, trigger=trigger, parent_id=parent_id).status


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
    summary="the SmartUp pull (products, prices and orders into PostgreSQL)",
    jobs=(
        Job(
            "smartup-products",
            LEDGER_JOB,
            "products",
            lambda s: s.smartup_products_interval_seconds,
            _products,
            configured=_configured,
            summary="SmartUp products (hourly by default)",
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
    ),
    in_use=_in_use,
    enable_hint="SMARTUP_BASE_URL (SmartUp pull)",
    checks=(CheckGroup(("SmartUp", "SmartUp budget"), _checks),),
    metrics=_metrics,
    demo=_demo,
    other_run_types=("full",),
)
