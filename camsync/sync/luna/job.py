"""The LUNA push as the job registry knows it: one push on every run-all call.

Inside run-all the push follows its work orders for at most `RUN_ALL_LUNA_WAIT_SECONDS`; whatever is still in
flight then is polled by the next pass (and does not make the run PARTIAL).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from camsync.sync.jobs import CheckGroup, Integration, Job

if TYPE_CHECKING:
    from camsync.settings import Settings
    from camsync.store.engine import Store
    from camsync.sync.checks import Check
    from camsync.sync.demo import DemoPart, DemoRequest
    from camsync.sync.exposition import Family

LEDGER_JOB = "luna"
RUN_ALL_LUNA_WAIT_SECONDS = 120.0


def _push(store: Store, settings: Settings, trigger: str, parent_id: int) -> str:
    from camsync.sync.luna.options import PushOptions
    from camsync.sync.luna.push import push

    options = PushOptions.from_settings(settings, wait=True, timeout=RUN_ALL_LUNA_WAIT_SECONDS, require_terminal=False)
    return push(settings, store, options=options, trigger=trigger, parent_id=parent_id).status


def _in_use(settings: Settings) -> bool:
    from camsync.sync.luna.doctor import luna_configured

    return luna_configured(settings)


def _app_db_checks(settings: Settings, transport: Any) -> list[Check]:
    from camsync.sync.luna.doctor import app_db_checks

    return app_db_checks(settings, transport)


def _luna_checks(settings: Settings, transport: Any) -> list[Check]:
    from camsync.sync.luna.doctor import luna_checks

    return luna_checks(settings, transport)


def _metrics(store: Store) -> list[Family]:
    from camsync.sync.luna.metrics import txn_families

    return txn_families(store)


def _demo(request: DemoRequest) -> DemoPart:
    from camsync.sync.luna.demo import start

    return start(request)


LUNA = Integration(
    key=LEDGER_JOB,
    title="LUNA push",
    summary="the LUNA push (PAY+ top-ups reported to LUNA OASYS)",
    jobs=(
        Job(
            "luna-push",
            LEDGER_JOB,
            "push",
            lambda _s: 0,
            _push,
            configured=lambda s: bool(s.luna_base_url),
            summary="the LUNA push",
        ),
    ),
    in_use=_in_use,
    enable_hint="LUNA_BASE_URL (LUNA push)",
    checks=(
        CheckGroup(("PAY+ app database",), _app_db_checks),
        CheckGroup(("LUNA OASYS", "LUNA create route", "LUNA lookup"), _luna_checks),
    ),
    metrics=_metrics,
    demo=_demo,
)
