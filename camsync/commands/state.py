"""`camsync state`: inspect, forget and import the LUNA push state."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from camsync.commands.context import get_context
from camsync.commands.options import JsonOption, YesOption
from camsync.errors import UsageError

app = typer.Typer(
    help="Forget or import LUNA push state (reset, import the old agent's state.json).", no_args_is_help=True
)


@app.command("reset")
def reset(
    ctx: typer.Context,
    txn: Annotated[str | None, typer.Option("--txn", help="Forget this txn_id only.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Forget every txn, reject and the app DB scan position.")] = False,
    yes: YesOption = False,
) -> None:
    """Forget local LUNA state of one txn (--txn) or of all (--all), after showing what goes.

    Forgetting does not touch LUNA: the next `luna push` rediscovers the txn from the app DB.

    A txn whose work order is in its history is followed (polled) again, never sent again. Another txn sent
    before is looked up in LUNA first: adopted if LUNA has its work order, else sent.

    With LUNA_LOOKUP_URL=none those are held as unknown, for `luna replay` (or sent again if
    LUNA_UNKNOWN_OUTCOME=resend).

    The history of every txn is kept. Txns a running push is working on are refused.
    """
    from camsync.commands.render import console, print_table
    from camsync.sync.luna.admin import plan_reset
    from camsync.sync.luna.admin import reset as run_reset

    if bool(txn) == all_:
        raise UsageError("pass either --txn ID or --all", "See `camsync state reset --help`")
    store = get_context(ctx).store
    plan = plan_reset(store, txn_id=txn)
    what = f"txn {txn}" if txn else "ALL local LUNA state (the app DB is scanned again from the start)"
    print_table(f"Will forget {what}", ("state", "txns"), ([k, v] for k, v in plan.counts.items() if v))
    for warning in plan.warnings:
        console.print(f"[yellow]Warning: {warning}.[/yellow]")
    if not yes:
        typer.confirm(f"Forget {what}?", abort=True)
    run_reset(store, txn_id=txn)
    console.print(f"Forgot {what}. History is kept; `camsync luna push` rediscovers it.")


@app.command("import-json")
def import_json(
    ctx: typer.Context,
    path: Annotated[
        Path | None,
        typer.Argument(help="The old agent's state.json [default: STATE_PATH].", dir_okay=False),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Import the old agent's state.json: created → work orders to poll, done → successful. Safe to repeat.

    Nothing imported is ever sent to LUNA again.
    """
    from camsync.commands.render import console, print_json
    from camsync.sync.luna.admin import import_state

    context = get_context(ctx)
    result = import_state(
        context.store, path=path or Path(context.settings.state_path), currency=context.settings.luna_currency
    )
    if as_json:
        print_json(result)
        return
    created = result["created"]  # not a txn state: the old agent's word
    console.print(
        f"Imported {result['path']}: {result['entries']} txns; {created} created (to be polled), "
        f"{result['done']} done (successful), {result['already_known']} already known (left as they are)."
    )
