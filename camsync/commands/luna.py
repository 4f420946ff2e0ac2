"""`camsync luna`: report PAY+ top-ups to LUNA OASYS as LoadCredit work orders, exactly once."""

from __future__ import annotations

import typer

app = typer.Typer(help="Push USED PAY+ top-ups to LUNA OASYS as LoadCredit work orders and follow them.",
                  no_args_is_help=True)
