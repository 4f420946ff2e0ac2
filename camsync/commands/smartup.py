"""`camsync smartup`: pull products and orders from the SmartUp ERP into the store."""

from __future__ import annotations

import typer

app = typer.Typer(help="Pull products and orders from the SmartUp ERP into PostgreSQL (or SQLite).",
                  no_args_is_help=True)
