"""`camsync state`: inspect, forget and import the LUNA push state."""

from __future__ import annotations

import typer

app = typer.Typer(help="Forget or import LUNA push state (reset, import the old agent's state.json).",
                  no_args_is_help=True)
