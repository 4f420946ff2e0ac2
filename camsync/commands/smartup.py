"""`camsync smartup`: pull products, product groups, orders and stock from the SmartUp ERP into the store."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from camsync.commands.context import get_context
from camsync.commands.options import DryRunOption, JsonOption

if TYPE_CHECKING:
    from camsync.sync.smartup.result import SyncResult

app = typer.Typer(
    help="Pull products, product groups, orders and stock from the SmartUp ERP into PostgreSQL (or SQLite).",
    no_args_is_help=True,
)

FullOption = Annotated[
    bool, typer.Option("--full", help="Full product refresh: every product and price; flags products gone upstream.")
]


@app.command("products")
def products(
    ctx: typer.Context, full: FullOption = False, dry_run: DryRunOption = False, as_json: JsonOption = False
) -> None:
    """Pull products changed since the last sync (a full refresh on --full, the first run, or daily).

    The product groups follow (their own run) after a full refresh, or when a product names a classification
    value the store does not hold yet.
    """
    from camsync.sync.smartup.pull import sync_products

    context = get_context(ctx)
    context.settings.require("smartup")
    result = sync_products(
        context.store, context.settings, full=full, dry_run=dry_run, trigger=context.trigger, lock=True
    )
    _render(result, as_json)


@app.command("orders")
def orders(
    ctx: typer.Context,
    days_back: Annotated[
        int | None, typer.Option("--days-back", min=1, max=90, help="Back-fill orders modified in the last N days.")
    ] = None,
    since: Annotated[
        datetime | None,
        typer.Option("--since", formats=["%Y-%m-%d"], help="Bounded window start (YYYY-MM-DD); the cursor stays."),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option("--until", formats=["%Y-%m-%d"], help="Bounded window end (YYYY-MM-DD), with --since."),
    ] = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Pull orders modified since the last sync, in windows of at most day_range_limit days."""
    from camsync.sync.smartup.pull import sync_orders

    context = get_context(ctx)
    context.settings.require("smartup")
    result = sync_orders(
        context.store,
        context.settings,
        days_back=days_back,
        since=since.date() if since else None,
        until=until.date() if until else None,
        dry_run=dry_run,
        trigger=context.trigger,
        lock=True,
    )
    _render(result, as_json)


@app.command("order")
def order(
    ctx: typer.Context,
    deal_id: Annotated[str, typer.Argument(help="The SmartUp deal_id of the order.")],
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Pull and upsert one order by its deal_id (the orders cursor does not move)."""
    from camsync.sync.smartup.pull import sync_order

    context = get_context(ctx)
    context.settings.require("smartup")
    result = sync_order(
        context.store, context.settings, deal_id=deal_id, dry_run=dry_run, trigger=context.trigger, lock=True
    )
    _render(result, as_json)


@app.command("groups")
def groups(ctx: typer.Context, dry_run: DryRunOption = False, as_json: JsonOption = False) -> None:
    """Pull the product groups: every classification (brand, category …) with its values.

    One call of the reference budget. A group the export no longer lists is flagged missing_upstream.
    """
    from camsync.sync.smartup.pull import sync_groups

    context = get_context(ctx)
    context.settings.require("smartup")
    result = sync_groups(context.store, context.settings, dry_run=dry_run, trigger=context.trigger, lock=True)
    _render(result, as_json)


@app.command("stock")
def stock(ctx: typer.Context, dry_run: DryRunOption = False, as_json: JsonOption = False) -> None:
    """Pull the stock as of today and replace the stored snapshot (one row per warehouse and product).

    One call of the documents budget. Counts are warehouse × product rows against the previous snapshot.
    """
    from camsync.sync.smartup.pull import sync_stock

    context = get_context(ctx)
    context.settings.require("smartup")
    result = sync_stock(context.store, context.settings, dry_run=dry_run, trigger=context.trigger, lock=True)
    _render(result, as_json)


@app.command("sync")
def sync(
    ctx: typer.Context, full: FullOption = False, dry_run: DryRunOption = False, as_json: JsonOption = False
) -> None:
    """Products (with their groups), orders and stock as one run with a child run each (PARTIAL when one fails)."""
    from camsync.sync.smartup.pull import sync_all

    context = get_context(ctx)
    context.settings.require("smartup")
    result = sync_all(context.store, context.settings, full=full, dry_run=dry_run, trigger=context.trigger, lock=True)
    _render(result, as_json)


def _render(result: SyncResult, as_json: bool) -> None:
    """Print the run (and its child runs) as a table or JSON; exit 3 when PARTIAL, 1 when FAILED."""
    from camsync.commands.render import console, err_console, fmt_status, print_json, print_table
    from camsync.sync.smartup.job import worst

    if as_json:
        print_json(result.as_dict())
    else:
        rows = [result, *result.children] if result.children else [result]
        print_table(
            "SmartUp sync (dry run: nothing written)" if result.dry_run else "SmartUp sync",
            ("run", "type", "status", "fetched", *_written_columns(result), "unchanged", "failed", "window"),
            (
                [
                    r.run_id,
                    r.run_type,
                    fmt_status(r.status),
                    r.counts["fetched"],
                    *_written(r),
                    r.counts["unchanged"],
                    r.counts["failed"],
                    _window(r),
                ]
                for r in rows
            ),
        )
        warnings = sum(r.details.get("warnings", 0) for r in rows)
        if warnings:
            noun = "odd value" if warnings == 1 else "odd values"
            console.print(f"{warnings} {noun} stored as given (negative quantities …): see --json warning_items.")
    status = worst([result.status, *(child.status for child in result.children)])
    if status != "SUCCESS":
        parts = [result] if result.run_type == "full" else [result, *result.children]  # a full run names its parts
        errors = "; ".join(f"{r.run_type}: {r.error}" for r in parts if r.error)
        err_console.print(f"{status}: {errors}", markup=False)
        raise typer.Exit(3 if status == "PARTIAL" else 1)


def _written_columns(result: SyncResult) -> tuple[str, str]:
    return ("would insert", "would update") if result.dry_run else ("inserted", "updated")


def _written(result: SyncResult) -> tuple[int, int]:
    if result.dry_run:
        return result.details.get("would_insert", 0), result.details.get("would_update", 0)
    return result.counts["inserted"], result.counts["updated"]


def _window(result: SyncResult) -> str:
    from camsync.commands.render import fmt_time

    if result.window_end is None:
        return ""
    return f"{fmt_time(result.window_start) or 'everything'} → {fmt_time(result.window_end)}"
