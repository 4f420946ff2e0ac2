"""Terminal output: rich tables for people, JSON for scripts. Only the CLI layer prints."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

# A pipe or a file gets wide lines rather than folded cells; scripts should prefer --json.
console = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, highlight=False)

STATUS_STYLE = {"SUCCESS": "green", "FAILED": "red", "PARTIAL": "yellow", "RUNNING": "cyan"}


def print_json(data: Any) -> None:
    """Write `data` as JSON on stdout (plain, never coloured)."""
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def print_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write `rows` as CSV on stdout, with a header line of `columns`."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(["" if cell is None else cell for cell in row] for row in rows)


def fmt_time(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def fmt_status(status: str) -> str:
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(title=title, show_lines=False, header_style="bold")
    for index, column in enumerate(columns):
        last = index == len(columns) - 1
        table.add_column(column, overflow="fold" if last else "ellipsis", no_wrap=not last)
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(table)


def print_fields(title: str, fields: Iterable[tuple[str, Any]]) -> None:
    table = Table(title=title, show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in fields:
        table.add_row(key, "" if value is None else str(value))
    console.print(table)
