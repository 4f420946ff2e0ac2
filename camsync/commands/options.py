"""Options shared by many commands, defined once so that they mean the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Fetch and report what would change; write nothing.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
LimitOption = Annotated[int, typer.Option("--limit", "-n", min=1, max=100000, help="Show at most N rows.")]
