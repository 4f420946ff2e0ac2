"""`camsync sandbox`: serve the local simulators of SmartUp and LUNA OASYS on loopback."""

from __future__ import annotations

import typer

from camsync.commands.sandbox_luna import luna
from camsync.commands.sandbox_smartup import smartup

app = typer.Typer(
    help="Serve local simulators of SmartUp and LUNA OASYS on loopback (tests, demo, rehearsals).", no_args_is_help=True
)
app.command("smartup")(smartup)
app.command("luna")(luna)
