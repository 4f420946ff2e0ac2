"""The jobs run-all and the worker know: SmartUp products, SmartUp orders, and the LUNA push.

Each adapter runs one job as a child of the run-all run and returns its final status. A job whose upstream is
not configured at all (no base URL) is skipped, so a deployment that uses only one of the two APIs stays green.
Inside run-all the LUNA push follows its work orders for at most `RUN_ALL_LUNA_WAIT_SECONDS`; whatever is still
in flight then is polled by the next pass (and does not make the run PARTIAL).
"""

from __future__ import annotations

from camsync.settings import Settings
from camsync.store.engine import Store
from camsync.sync.runall import Job

RUN_ALL_LUNA_WAIT_SECONDS = 120.0


def _smartup_products(store: Store, settings: Settings, trigger: str, parent_id: int) -> str:
    from camsync.sync.smartup import sync_products

    return sync_products(store, settings, trigger=trigger, parent_id=parent_id).status


def _smartup_orders(store: Store, settings: Settings, trigger: str, parent_id: int) -> str:
    from camsync.sync.smartup import sync_orders

    return sync_orders(store, settings, trigger=trigger, parent_id=parent_id).status


def _luna_push(store: Store, settings: Settings, trigger: str, parent_id: int) -> str:
    from camsync.sync.luna import push
    from camsync.sync.luna_engine import PushOptions

    options = PushOptions.from_settings(settings, wait=True, timeout=RUN_ALL_LUNA_WAIT_SECONDS, require_terminal=False)
    return push(settings, store, options=options, trigger=trigger, parent_id=parent_id).status


def default_jobs() -> list[Job]:
    """The jobs in the order run-all runs them."""
    return [
        Job(
            "smartup-products",
            "smartup",
            "products",
            lambda s: s.smartup_products_interval_seconds,
            _smartup_products,
            configured=lambda s: bool(s.smartup_base_url),
        ),
        Job(
            "smartup-orders",
            "smartup",
            "orders",
            lambda s: s.smartup_orders_interval_seconds,
            _smartup_orders,
            configured=lambda s: bool(s.smartup_base_url),
        ),
        Job("luna-push", "luna", "push", lambda _s: 0, _luna_push, configured=lambda s: bool(s.luna_base_url)),
    ]
