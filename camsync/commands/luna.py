"""`camsync luna`: report PAY+ top-ups to LUNA OASYS as LoadCredit work orders, exactly once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from camsync.commands.context import get_context
from camsync.commands.options import DryRunOption, JsonOption
from camsync.errors import ExitCode, UsageError

app = typer.Typer(
    help="Push USED PAY+ top-ups to LUNA OASYS as LoadCredit work orders and follow them.", no_args_is_help=True
)

RECONCILE_SHOWN = 50  # differences listed in the table; --json and --csv list all
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
    sweep: Annotated[
        bool,
        typer.Option(
            "--sweep",
            help="Also compare every USED row of the app DB with the store, due or not (see "
            "LUNA_SWEEP_INTERVAL_SECONDS), and push the rows the scan had missed.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Scan the app DB for USED top-ups, create one LUNA work order each (exactly once), and follow them.

    Exit 0: all went well (with --no-wait, work orders may still be in flight).

    Exit 3: some txns failed or were in flight at the --timeout, or txns need an operator: held for review
    (amounts that disagree, over LUNA_MAX_AMOUNT) or unknown; the message names the command that resolves them.

    App DB rows that cannot be pushed are recorded as rejected (see `luna status`) and logged, never sent.

    Exit 4: an answer about the endpoint, not about a txn (no such route, a redirect, refused credentials, a
    certificate that does not verify): the run stops, no txn is marked failed; fix the setting it names.

    Exit 1: the run itself failed (LUNA unreachable for a minute, the store is unreachable …).
    """
    from camsync.commands.render import print_json
    from camsync.sync.luna.options import PushOptions
    from camsync.sync.luna.push import push as run_push

    context = get_context(ctx)
    options = PushOptions.from_settings(
        context.settings, limit=limit, concurrency=concurrency, wait=wait, timeout=timeout, txn_id=txn, sweep=sweep
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
    from camsync.sync.luna.admin import status as query

    data = query(get_context(ctx).store, state=state, limit=limit)
    print_json(data) if as_json else _print_status(data)


@app.command("show")
def show(ctx: typer.Context, txn_id: TxnArgument, as_json: JsonOption = False) -> None:
    """One txn: its state, work order, and its whole history (requests, answers, polls, operator actions)."""
    from camsync.commands.render import print_json
    from camsync.sync.luna.admin import show as query

    data = query(get_context(ctx).store, txn_id=txn_id)
    print_json(data) if as_json else _print_txn(txn_id, data)


@app.command("replay")
def replay(
    ctx: typer.Context,
    txn_id: Annotated[
        str | None, typer.Argument(help="The txn_id to replay (or --state for every txn of a state).")
    ] = None,
    state: Annotated[
        str | None,
        typer.Option("--state", "-s", help="Replay every txn in this state: failed, unknown or held."),
    ] = None,
    since: Annotated[
        datetime | None,
        typer.Option("--since", formats=["%Y-%m-%d"], help="With --state: only txns changed since (YYYY-MM-DD)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="With --state: do not ask before replaying.")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="One txn: push it even when successful, release it when held, or send again an unknown one "
            "that cannot be looked up.",
        ),
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="Seconds to follow them.")] = 60.0,
) -> None:
    """Re-push one txn now, or every txn of a --state (it shows what it will do and asks first).

    An unknown txn is looked up in LUNA first (adopted if found, else sent). A held txn is sent only after a
    review: `--force` for one txn, the confirmed plan for --state held. A successful txn is never re-sent in bulk.

    Exit 0: every replayed txn is successful or followed; 3: some are not (or a held txn without --force).
    """
    from camsync.commands.render import console
    from camsync.sync.luna.replay import replay as run_replay
    from camsync.sync.luna.states import TxnState

    context = get_context(ctx)
    if (txn_id is None) == (state is None):
        raise UsageError("pass either a TXN_ID or --state STATE", "See `camsync luna replay --help`")
    if state is not None:
        _replay_state(context, state=state, since=since, yes=yes, timeout=timeout)
        return
    assert txn_id is not None
    result = run_replay(context.settings, context.store, txn_id=txn_id, force=force, timeout=timeout)
    wo = f" (work order {result.work_order_id})" if result.work_order_id else ""
    console.print(f"{result.message}{wo}")
    if result.after not in (TxnState.SUCCESSFUL, TxnState.CREATED):
        raise typer.Exit(ExitCode.PARTIAL)


def _replay_state(context: Any, *, state: str, since: datetime | None, yes: bool, timeout: float) -> None:
    from camsync.commands.render import console, print_table
    from camsync.sync.luna.replay import plan_bulk, replay_many
    from camsync.sync.luna.states import TxnState

    plan = plan_bulk(context.settings, context.store, state=state, since=since.replace(tzinfo=UTC) if since else None)
    if not plan.txns:
        console.print(f"No txn is {state}" + (f" since {since:%Y-%m-%d}" if since else "") + ": nothing to replay.")
        return
    print_table(
        f"{len(plan.txns)} txns {state}: {plan.action}",
        ("txn_id", "meter", "amount", "work order", "updated", "last error"),
        (
            [t["txn_id"], t["meter"], t["amount"], t["work_order_id"], t["updated_at"], (t["last_error"] or "")[:80]]
            for t in plan.txns[:50]
        ),
    )
    if len(plan.txns) > 50:
        console.print(f"… and {len(plan.txns) - 50} more.")
    if plan.refused:
        raise UsageError(plan.refused)
    if not yes:
        typer.confirm(f"Replay these {len(plan.txns)} txns?", abort=True)
    report = replay_many(context.settings, context.store, plan, timeout=timeout)
    after = ", ".join(f"{n} {s}" for s, n in sorted(report.after.items()))
    console.print(f"Replayed {report.replayed} txns {state}; now: {after}.")
    for line in report.skipped:
        console.print(f"[yellow]Skipped {line}[/yellow]")
    if set(report.after) - {TxnState.SUCCESSFUL.value, TxnState.CREATED.value}:
        raise typer.Exit(ExitCode.PARTIAL)


@app.command("reconcile")
def reconcile(
    ctx: typer.Context,
    date_from: Annotated[
        datetime | None,
        typer.Option("--from", formats=["%Y-%m-%d"], help="First day (YYYY-MM-DD, UTC) of the app rows' created_at."),
    ] = None,
    date_to: Annotated[
        datetime | None,
        typer.Option("--to", formats=["%Y-%m-%d"], help="Last day (YYYY-MM-DD, UTC), included."),
    ] = None,
    as_json: JsonOption = False,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="Print CSV (one line per day total and per difference).")
    ] = False,
    lookup: Annotated[
        bool,
        typer.Option(
            "--lookup",
            help="Also ask LUNA (one lookup by client reference per row the store does not know): work orders "
            "for app rows that are not USED, and not-sent rows LUNA already holds. Needs LUNA_LOOKUP_URL.",
        ),
    ] = False,
) -> None:
    """Per day, the USED top-ups of the app DB against the successful work orders of the store, and every difference.

    Differences: not sent (no txn), rejected, a txn in any state but successful (failed, unknown, held …),
    a txn whose app row is gone or no longer USED, and with --lookup a work order at LUNA for an app row that is
    not USED (luna_only).

    Exit 0: every day matches. Exit 3: there are differences.
    """
    from camsync.commands.render import print_json
    from camsync.sync.luna.reconcile import reconcile_app_db

    if as_json and as_csv:
        raise typer.BadParameter("choose one of --json and --csv")
    context = get_context(ctx)
    report = reconcile_app_db(
        context.settings,
        context.store,
        date_from=date_from.date() if date_from else None,
        date_to=date_to.date() if date_to else None,
        lookup=lookup,
    )
    if as_json:
        print_json(report.as_dict())
    elif as_csv:
        _print_reconcile_csv(report)
    else:
        _print_reconcile(report)
    if not report.matches:
        raise typer.Exit(ExitCode.PARTIAL)


# --- rendering -------------------------------------------------------------------------------------------------


def _print_push(report: Any) -> None:
    from camsync.commands.render import console, print_table

    scan, counts = report.scan, report.counts
    console.print(
        f"App DB: {scan.rows} rows read in {scan.seconds * 1000:.1f} ms, {scan.discovered} new txns, "
        f"{scan.rejected} rejected, {scan.already_known} already known, {scan.watched} watched."
    )
    if report.sweep is not None:
        console.print(_sweep_line(report.sweep))
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


def _sweep_line(sweep: Any) -> str:
    if sweep.by_scan:
        return "Full sweep: this scan read every row of the app DB (nothing missed)."
    line = (
        f"Full sweep: {sweep.rows} rows read in {sweep.seconds:.1f} s, {sweep.used} USED, "
        f"{sweep.missed} the scan had missed ({sweep.discovered} new txns, {sweep.rejected} rejected)."
    )
    return f"[yellow]{line}[/yellow]" if sweep.missed else line


def _print_reconcile(report: Any) -> None:
    from camsync.commands.render import console, print_table
    from camsync.sync.luna.states import TxnState

    pending = sorted({state for day in report.days for state, n in day.states.items() if n})
    ok = TxnState.SUCCESSFUL.value
    extra = ("LUNA only",) if report.lookups else ()
    columns = ("day", "USED", "amount", ok, "amount", "not sent", "rejected", *pending, "no USED row", *extra)
    print_table(
        "App DB USED top-ups against successful LUNA work orders",
        columns,
        (
            [
                d.day,
                d.used,
                d.used_amount,
                d.successful,
                d.successful_amount,
                d.not_sent,
                d.rejected,
                *(d.states.get(s, 0) for s in pending),
                d.no_used_row,
                *((d.luna_only,) if extra else ()),
            ]
            for d in report.days
        ),
    )
    shown = report.differences[:RECONCILE_SHOWN]
    if shown:
        print_table(
            "Differences",
            ("day", "kind", "tuis.id", "txn_id", "amount", "detail"),
            ([d.day, d.kind, d.tui_id, d.txn_id, d.amount, d.detail] for d in shown),
        )
    if len(report.differences) > len(shown):
        console.print(f"… and {len(report.differences) - len(shown)} more: use --json or --csv for all of them.")
    verdict = (
        "[green]Every day matches.[/green]"
        if report.matches
        else f"[yellow]{len(report.differences)} differences.[/yellow]"
    )
    asked = f", {report.lookups} LUNA lookups" if report.lookups else ""
    console.print(f"{verdict} ({report.rows_read} app DB rows read{asked} in {report.seconds:.1f} s)")


def _print_reconcile_csv(report: Any) -> None:
    from camsync.commands.render import print_csv
    from camsync.sync.luna.states import TxnState

    rows: list[list[Any]] = []
    for day in report.days:
        rows.append([day.day, "used", day.used, day.used_amount, "", "", ""])
        rows.append([day.day, TxnState.SUCCESSFUL.value, day.successful, day.successful_amount, "", "", ""])
    for d in report.differences:
        rows.append([d.day, d.kind, 1, d.amount, d.tui_id, d.txn_id, d.detail])
    print_csv(("day", "kind", "count", "amount", "tui_id", "txn_id", "detail"), rows)


def _print_status(data: dict[str, Any]) -> None:
    from camsync.commands.render import console, fmt_time, print_table

    print_table("LUNA state", ("state", "txns"), ([k, v] for k, v in data["counts"].items()))
    if data.get("duplicate_work_orders"):
        console.print(
            f"[red]{data['duplicate_work_orders']} txns have several work orders in LUNA (credited more than once?): "
            "see `camsync luna show TXN_ID`.[/red]"
        )
    if data.get("possible_duplicates"):
        console.print(
            f"[red]{data['possible_duplicates']} txns were sent again after an unknown outcome "
            "(LUNA_UNKNOWN_OUTCOME=resend, no lookup): each may be credited twice; check them in LUNA "
            "(`camsync luna show TXN_ID` shows the resend).[/red]"
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
