"""The LUNA push's part of the demo: the LUNA sandbox, a sample PAY+ app database (with a few deliberately bad
rows), and afterwards what was pushed, what was rejected and the sandbox's own count of work orders."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from camsync.sandbox.luna import LunaSandboxConfig, start_luna_sandbox
from camsync.sandbox.server import RunningSandbox
from camsync.source.payplus_sample import create_sample_app_db
from camsync.store import luna_admin as luna_store
from camsync.store.engine import Store
from camsync.sync.demo import DemoReport, DemoRequest, DemoSection
from camsync.sync.luna import admin as luna_admin
from camsync.sync.luna.states import TxnState

APP_DB = "payplus.db"
LUNA_USER, LUNA_PASSWORD = "camsync", "demo-luna-password"
LUNA_LATENCY_SECONDS = 0.005
REJECTS_SHOWN = 100
# The first poll comes soon after a create; work orders pass Waiting and InProgress in `pace` seconds each.
SETTINGS = {"LUNA_POLL_INITIAL_SECONDS": "0.5", "LUNA_POLL_MAX_SECONDS": "2"}
SHOWN = (TxnState.SUCCESSFUL, luna_store.REJECTED)
STATE_MEANING = {
    TxnState.SUCCESSFUL: "work order Successful: the credit is loaded",
    luna_store.REJECTED: "bad app DB row: recorded with its reason, never sent",
    TxnState.FAILED: "LUNA says the credit was not loaded",
    TxnState.UNKNOWN: "create outcome unknown: held for an operator",
    TxnState.HELD: "money checks failed (tuis and topups amounts disagree): held for review, never sent",
    TxnState.CREATED: "work order created, not terminal yet",
    TxnState.SENDING: "create in flight",
}


def start(request: DemoRequest) -> LunaDemo:
    """Serve the LUNA sandbox on a free loopback port."""
    options = request.options
    config = LunaSandboxConfig(
        latency=LUNA_LATENCY_SECONDS,
        waiting_seconds=options.pace,
        in_progress_seconds=options.pace,
        lookup=True,
        username=LUNA_USER,
        password=LUNA_PASSWORD,
        seed=options.seed,
    )
    return LunaDemo(request, config, start_luna_sandbox(config))


@dataclass
class LunaDemo:
    """The LUNA sandbox serving, and the sample app database it is fed from."""

    request: DemoRequest
    config: LunaSandboxConfig
    sandbox: RunningSandbox
    key: str = "luna"
    sample: dict[str, int] = field(default_factory=dict)  # what the sample app database holds, once written

    @property
    def url(self) -> str:
        return self.sandbox.url

    @property
    def env(self) -> dict[str, str]:
        """The settings that point the push at this sandbox."""
        return {**dict(line.split("=", 1) for line in self.config.env_lines(self.sandbox.url)), **SETTINGS}

    def prepare(self, progress: Callable[[str], None]) -> dict[str, str]:
        """Write the sample PAY+ app database; its URL is APP_DB_URL."""
        options, path = self.request.options, self.request.directory / APP_DB
        bad = " (a few rows deliberately bad)" if options.messy else ""
        topups = self.request.size("topups")
        progress(f"Creating a sample PAY+ app database with {topups} top-ups{bad}")
        self.sample = create_sample_app_db(
            path, topups=topups, seed=options.seed, messy=options.messy, hostile=options.messy
        )
        return {"APP_DB_URL": f"sqlite:///{path}"}

    def work_orders_per_reference(self) -> dict[str, int]:
        """The LUNA sandbox's own count of work orders per client reference."""
        stats: dict[str, Any] = self.sandbox.app.stats()  # type: ignore[attr-defined]
        return dict(stats["by_reference"])

    def report(self, store: Store) -> DemoReport:
        """What was pushed and loaded, the rejected rows, and the sandbox's own count of work orders."""
        from camsync.sync.luna.job import LUNA  # the registry entry imports this module lazily

        luna = luna_admin.status(store, limit=REJECTS_SHOWN)
        with store.session() as session:
            txns = luna_store.txn_work_orders(session)
        work_orders = self.work_orders_per_reference()
        facts = {"sample": self.sample, "luna": luna, "txns": txns, "work_orders": work_orders}
        loaded = luna["counts"].get(TxnState.SUCCESSFUL, 0)
        example = next((txn for txn, (state, _wo) in txns.items() if state == TxnState.SUCCESSFUL), "TXN_ID")
        held = sum(1 for state, _wo in txns.values() if state == TxnState.HELD)
        # exactly the rows the sample made to disagree
        expected_held = held == self.sample.get("held", 0)  # not a txn state: the sample's count
        review = f"luna status --state {TxnState.HELD}"
        commands = ["luna status", f"luna show {example}"] + ([review] if held else [])
        return DemoReport(
            sections=_sections(self.sample, luna, work_orders),
            problems=_problems(txns, work_orders, held_expected=expected_held),
            facts=facts,
            next_commands=commands,
            summary=f"{loaded} top-ups loaded on LUNA, exactly once each"
            + (f"; {held} held for review, as the sample meant" if held and expected_held else ""),
            expected_partial={job.name for job in LUNA.jobs} if held and expected_held else set(),
        )

    def stop(self) -> None:
        self.sandbox.stop()


def _duplicates(work_orders: dict[str, int]) -> list[str]:
    return sorted(ref for ref, count in work_orders.items() if count > 1)


def _sections(sample: dict[str, int], luna: dict[str, Any], work_orders: dict[str, int]) -> list[DemoSection]:
    counts = luna["counts"]
    expired = sample["expired"]  # not a txn state: the app's own TUI status
    states = DemoSection(
        "PAY+ top-ups pushed to LUNA",
        ("LUNA state", "txns", "meaning"),
        [[state, number, STATE_MEANING.get(state, "")] for state, number in counts.items() if number or state in SHOWN],
        [
            f"The sample app DB has {sample['tuis']} TUIs: {sample['used']} USED ({sample['pushable']} pushable, "
            f"{sample['rejected']} bad), {sample['ready']} READY and {expired} EXPIRED (never pushed)."
        ],
    )
    sections = [states]
    held = [t for t in luna["txns"] if t["state"] == TxnState.HELD]
    if held:
        sections.append(
            DemoSection(
                "Held for review: never sent until an operator releases them (`luna replay TXN --force`)",
                ("txn_id", "amount", "reason"),
                [[t["txn_id"], t["amount"], t["last_error"]] for t in held],
            )
        )
    if luna["rejects"]:
        rows = [[r["tui_id"], r["txn_id"], r["amount_raw"], r["reason"]] for r in luna["rejects"]]
        sections.append(
            DemoSection(
                "Rejected app DB rows: recorded with their reason, never sent",
                ("tuis.id", "txn_id", "amount", "reason"),
                rows,
            )
        )
    duplicates = _duplicates(work_orders)
    spread = sorted(Counter(work_orders.values()).items())
    sections.append(
        DemoSection(
            "The LUNA sandbox's own count",
            ("work orders per client reference", "references"),
            [list(item) for item in spread],
            [f"Duplicates: {', '.join(duplicates)}" if duplicates else "No reference has two work orders."],
        )
    )
    return sections


def _problems(
    txns: dict[str, tuple[str, str | None]], work_orders: dict[str, int], *, held_expected: bool
) -> list[str]:
    problems = []
    fine = {TxnState.SUCCESSFUL, TxnState.HELD} if held_expected else {TxnState.SUCCESSFUL}
    unloaded = sorted(txn for txn, (state, _wo) in txns.items() if state not in fine)
    if unloaded:
        problems.append(f"{len(unloaded)} top-up(s) not loaded on LUNA (e.g. {', '.join(unloaded[:3])})")
    duplicates = _duplicates(work_orders)
    if duplicates:
        problems.append(f"LUNA holds more than one work order for {', '.join(duplicates[:5])}")
    return problems
