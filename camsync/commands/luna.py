"""`camsync luna`: report PAY+ top-ups to LUNA OASYS as LoadCredit work orders, exactly once."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from camsync.commands.context import get_context
from camsync.commands.options import DryRunOption, JsonOption
from camsync.errors import ExitCode

app = typer.Typer(
    help="Push USED PAY+ top-ups to LUNA OASYS as LoadCredit work orders and follow them.", no_args_is_help=True
)

TxnArgument = Annotated[str, typer.Argument(help="The top-up's txn_id (its LUNA client reference).")]


@app.command("push")
def push(
    ctx: typer.Context,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="Create at most N work orders.")] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", "-c", min=1, max=64, help="Requests in flight at once (default: LUNA_CONCURRENCY)."
        ),
    ] = None,
    dry_run: DryRunOption = False,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow the work orders until all are terminal (or --timeout).")
    ] = True,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds --wait follows before it stops (state is kept).")
    ] = 600.0,
    txn: Annotated[str | None, typer.Option("--txn", help="Push only this txn_id.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Scan the app DB for USED top-ups, create one LUNA work order each (exactly once), and follow them.

    Exit 0: all went well (with --no-wait, work orders may still be in flight).

    Exit 3: some txns failed, are held as unknown, or were in flight at the --timeout.

    App DB rows that cannot be pushed are recorded as rejected (see `luna status`) and logged, never sent.

    Exit 1: the run itself failed (LUNA refused the credentials, the store is unreachable …).
    """
    from camsync.commands.render import print_json
    from camsync.sync.luna import push as run_push
    from camsync.sync.luna_engine import PushOptions

    context = get_context(ctx)
    options = PushOptions.from_settings(
        context.settings, limit=limit, concurrency=concurrency, wait=wait, timeout=timeout, txn_id=txn
    )
    report = run_push(context.settings, context.store, options=options, dry_run=dry_run, trigger=context.trigger)
    print_json(report.as_dict()) if as_json else _print_push(report)
    if report.status == "PARTIAL":
        raise typer.Exit(ExitCode.PARTIAL)


@app.command("status")
def status(
    ctx: typer.Context,
    state: Annotated[
        str | None,
        typer.Option("--state", "-s", help="List the txns in this state (discovered … unknown, rejected)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=100000, help="Show at most N rows.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Counts per state, and the txns needing attention (or those of --state)."""
    from camsync.commands.render import print_json
    from camsync.sync.luna_admin import status as query

    data = query(get_context(ctx).store, state=state, limit=limit)
    print_json(data) if as_json else _print_status(data)


@app.command("show")
def show(ctx: typer.Context, txn_id: TxnArgument, as_json: JsonOption = False) -> None:
    """One txn: its state, work order, and its whole history (requests, answers, polls, operator actions)."""
    from camsync.commands.render import print_json
    from camsync.sync.luna_admin import show as query

    data = query(get_context(ctx).store, txn_id=txn_id)
    print_json(data) if as_json else _print_txn(txn_id, data)


@app.command("replay")
def replay(
    ctx: typer.Context,
    txn_id: TxnArgument,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Push it even when successful, or send again an unknown one that cannot be looked up."
        ),
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="Seconds to follow it.")] = 60.0,
) -> None:
    """Re-push one txn now. An unknown one is looked up in LUNA first (adopted if found, else sent)."""
    from camsync.commands.render import console
    from camsync.sync.luna import replay as run_replay

    context = get_context(ctx)
    result = run_replay(context.settings, context.store, txn_id=txn_id, force=force, timeout=timeout)
    wo = f" (work order {result.work_order_id})" if result.work_order_id else ""
    console.print(f"{result.message}{wo}")
    if result.after not in ("successful", "created"):
        raise typer.Exit(ExitCode.PARTIAL)


# --- rendering -------------------------------------------------------------------------------------------------


def _print_push(report: Any) -> None:
    from camsync.commands.render import console, print_table

    scan, counts = report.scan, report.counts
    console.print(
        f"App DB: {scan.rows} rows read in {scan.seconds * 1000:.1f} ms, {scan.discovered} new txns, "
        f"{scan.rejected} rejected, {scan.already_known} already known, {scan.watched} watched."
    )
    if report.dry_run:
        due = report.due
        console.print(
            f"Dry run: {due['to_send']} to send, {due['to_settle']} to settle, {due['to_poll']} to poll. "
            "Nothing was written or sent."
        )
        return
    finished = ", ".join(f"{n} {state}" for state, n in counts.finished.items() if n) or "none"
    console.print(
        f"Run {report.run_id} {report.status} in {report.seconds:.1f} s: {counts.created} work orders created, "
        f"{counts.adopted} adopted, {counts.polls} polls, {counts.retries} retries, {counts.requests} requests; "
        f"finished: {finished}; unknown: {counts.unknown}; left in flight: {counts.left_in_flight}."
    )
    print_table("LUNA state", ("state", "txns"), ([k, v] for k, v in report.states.items() if v))
    if report.message:
        console.print(f"[yellow]{report.message}[/yellow]")


def _print_status(data: dict[str, Any]) -> None:
    from camsync.commands.render import console, fmt_time, print_table

    print_table("LUNA state", ("state", "txns"), ([k, v] for k, v in data["counts"].items()))
    if data.get("duplicate_work_orders"):
        console.print(
            f"[red]{data['duplicate_work_orders']} txns have several work orders in LUNA (credited more than once?): "
            "see `camsync luna show TXN_ID`.[/red]"
        )
    scan = data["scan"]
    console.print(f"App DB scanned up to tuis.id {scan['last_tui_id']}; {scan['watched']} rows watched (not USED yet).")
    if data["state"] == "rejected" or data["rejects"]:
        rows = data["txns"] if data["state"] == "rejected" else data["rejects"]
        print_table(
            "Rejected app DB rows (never sent)",
            ("tuis.id", "txn_id", "status", "meter", "amount", "reason"),
            ([r["tui_id"], r["txn_id"], r["tui_status"], r["meter"], r["amount_raw"], r["reason"]] for r in rows),
        )
    if data["state"] == "rejected":
        return
    print_table(
        f"Txns {data['state']}" if data["state"] else "Txns needing attention",
        ("txn_id", "state", "work order", "LUNA status", "attempts", "updated", "last error"),
        (
            [
                t["txn_id"],
                t["state"],
                t["work_order_id"],
                t["remote_status"],
                t["attempts"],
                fmt_time(t["updated_at"]),
                (t["last_error"] or "")[:80],
            ]
            for t in data["txns"]
        ),
    )


def _print_txn(txn_id: str, data: dict[str, Any]) -> None:
    from camsync.commands.render import fmt_time, print_fields, print_table

    if data["txn"]:
        print_fields(f"Txn {txn_id}", ((k, v) for k, v in data["txn"].items() if k != "id"))
    for reject in data["rejects"]:
        print_fields(f"Rejected app DB row {reject['tui_id']}", reject.items())
    print_table(
        "History",
        ("at", "event", "state", "HTTP", "work order", "message", "by"),
        (
            [fmt_time(e["at"]), e["kind"], e["state"], e["http_status"], e["work_order_id"], e["message"], e["actor"]]
            for e in data["history"]
        ),
    )
