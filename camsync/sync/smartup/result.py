"""What a SmartUp run did, as its ledger row says it: for rendering (`SyncResult`) and for its log line."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from camsync.sync.ledger import RunHandle


@dataclass
class SyncResult:
    """What a SmartUp run did: its ledger row's content, for rendering."""

    run_id: int
    run_type: str
    status: str
    error: str | None
    counts: dict[str, int]
    details: dict[str, Any]
    window_start: datetime | None = None
    window_end: datetime | None = None
    cursor_before: str | None = None
    cursor_after: str | None = None
    dry_run: bool = False
    children: list[SyncResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (for `--json`)."""
        return {
            "run_id": self.run_id,
            "run_type": self.run_type,
            "status": self.status,
            "error": self.error,
            **self.counts,
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "window_end": self.window_end.isoformat() if self.window_end else None,
            "cursor_before": self.cursor_before,
            "cursor_after": self.cursor_after,
            "dry_run": self.dry_run,
            "details": self.details,
            "children": [child.as_dict() for child in self.children],
        }


def result_of(run: RunHandle, *, dry_run: bool) -> SyncResult:
    """The result of a run as its handle holds it now."""
    return SyncResult(
        run_id=run.id,
        run_type=run.run_type,
        status=run.status,
        error=run.error_message,
        counts=dict(run.counts),
        details=run.details,
        window_start=run.window_start,
        window_end=run.window_end,
        cursor_after=run.cursor_after,
        dry_run=dry_run,
    )


def summary(run: RunHandle) -> str:
    """`N fetched, N inserted, …`: the counts of a run for its log line."""
    c = run.counts
    warnings = run.details.get("warnings", 0)
    return (
        f"{c['fetched']} fetched, {c['inserted']} inserted, {c['updated']} updated, "
        f"{c['unchanged']} unchanged, {c['failed']} failed" + (f", {warnings} warnings" if warnings else "")
    )
