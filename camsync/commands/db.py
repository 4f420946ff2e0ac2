"""`camsync db`: the store's schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from camsync.commands.context import get_context
from camsync.commands.options import JsonOption, YesOption

app = typer.Typer(
    help="Migrate the camsync store (SQLite or PostgreSQL) and show its schema revision.", no_args_is_help=True
)


@app.command("upgrade")
def upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Migrate the store up to REVISION (default: the newest)."""
    from camsync.commands.render import console
    from camsync.store.engine import describe_url
    from camsync.store.migrate import upgrade_store

    url = get_context(ctx).settings.store_url
    now = upgrade_store(url, revision)
    console.print(f"Store {describe_url(url)} is at revision {now}.")


@app.command("downgrade")
def downgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision; `base` removes every camsync table.")],
    yes: YesOption = False,
) -> None:
    """Migrate the store down to REVISION. Tables dropped on the way lose their data."""
    from camsync.commands.render import console
    from camsync.store.engine import describe_url
    from camsync.store.migrate import downgrade_store

    url = get_context(ctx).settings.store_url
    if not yes:
        typer.confirm(
            f"Downgrade the store {describe_url(url)} to {revision}? Data in dropped tables is lost", abort=True
        )
    now = downgrade_store(url, revision)
    console.print(f"Store {describe_url(url)} is at revision {now or 'base (empty)'}.")


@app.command("current")
def current(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show the store's revision and the newest one this camsync knows."""
    from camsync.commands.render import console, print_json
    from camsync.store.engine import describe_url
    from camsync.store.migrate import SCHEMA_HEAD, store_revision

    url = get_context(ctx).settings.store_url
    now = store_revision(url)
    data = {"url": describe_url(url), "current": now, "head": SCHEMA_HEAD, "up_to_date": now == SCHEMA_HEAD}
    if as_json:
        print_json(data)
        return
    state = "up to date" if data["up_to_date"] else "behind: run `camsync db upgrade`"
    console.print(f"{data['url']}: revision {now or 'none'} (head {SCHEMA_HEAD}, {state})")


@app.command("history")
def history(as_json: JsonOption = False) -> None:
    """List every schema revision, newest first."""
    from dataclasses import asdict

    from camsync.commands.render import print_json, print_table
    from camsync.store import migrate

    revisions = migrate.history()
    if as_json:
        print_json([asdict(r) for r in revisions])
        return
    print_table(
        "Schema revisions",
        ("revision", "after", "head", "description"),
        ([r.revision, r.down_revision or "base", "yes" if r.is_head else "", r.doc] for r in revisions),
    )
