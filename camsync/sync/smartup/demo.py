"""The SmartUp pull's part of the demo: the SmartUp sandbox, and afterwards the rows synced into the store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from camsync.sandbox.server import RunningSandbox
from camsync.sandbox.smartup import SmartupSandboxConfig, start_smartup_sandbox
from camsync.store import smartup_catalog_writes as catalog
from camsync.store import smartup_reads
from camsync.store.engine import Store
from camsync.sync.demo import DemoReport, DemoRequest, DemoSection

SMARTUP_USER, SMARTUP_PASSWORD = "demo", "demo-smartup-password"
SETTINGS = {"SYNC_ORDERS_DAYS_BACK": "60"}  # the sandbox's orders reach back about six weeks: fetch them all


def start(request: DemoRequest) -> SmartupDemo:
    """Serve the SmartUp sandbox on a free loopback port."""
    config = SmartupSandboxConfig(
        products=request.size("products"),
        orders=request.size("orders"),
        seed=request.options.seed,
        user=SMARTUP_USER,
        password=SMARTUP_PASSWORD,
    )
    return SmartupDemo(config, start_smartup_sandbox(config))


@dataclass
class SmartupDemo:
    """The SmartUp sandbox serving."""

    config: SmartupSandboxConfig
    sandbox: RunningSandbox
    key: str = "smartup"

    @property
    def url(self) -> str:
        return self.sandbox.url

    @property
    def env(self) -> dict[str, str]:
        """The settings that point the pull at this sandbox."""
        return {
            "SMARTUP_BASE_URL": self.sandbox.url,
            "SMARTUP_BASIC_USER": self.config.user,
            "SMARTUP_BASIC_PASS": self.config.password,
            "SMARTUP_FILIAL_ID": self.config.filial_id,
            "SMARTUP_PROJECT_CODE": self.config.project_code,
            **SETTINGS,
        }

    def prepare(self, progress: Callable[[str], None]) -> dict[str, str]:
        """Nothing to write: the sandbox holds its data."""
        return {}

    def report(self, store: Store) -> DemoReport:
        """How many rows of each table the pull wrote."""
        with store.session() as session:
            rows = {**smartup_reads.count_rows(session), **catalog.catalogue_counts(session)}
        table = DemoSection("SmartUp rows in the store", ("table", "rows"), [list(item) for item in rows.items()])
        return DemoReport(sections=[table], facts={"rows": rows})

    def stop(self) -> None:
        self.sandbox.stop()
