"""`camsync sandbox smartup`: serve the SmartUp simulator on loopback until Ctrl-C or SIGTERM."""

from __future__ import annotations

from typing import Annotated

import typer

from camsync.commands.sandbox_serve import chance, serve_until_stopped


def _chance(what: str) -> typer.models.OptionInfo:
    return chance(help=f"Chance (0..1) of {what}.")


def smartup(
    host: Annotated[str, typer.Option(help="Loopback address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: a free one).")] = 8089,
    products: Annotated[int, typer.Option(min=0, help="Products to generate.")] = 200,
    orders: Annotated[int, typer.Option(min=0, help="Orders to generate.")] = 300,
    seed: Annotated[int, typer.Option(help="Seed of the generated data (same seed, same data).")] = 42,
    user: Annotated[str, typer.Option(help="HTTP Basic login.")] = "sandbox",
    password: Annotated[str, typer.Option(help="HTTP Basic password.")] = "sandbox",
    project_code: Annotated[
        str, typer.Option(help="Expected `project_code` header (/b/anor/ paths also take `anor`).")
    ] = "trade",
    filial_id: Annotated[str, typer.Option(help="The organisation's `filial_id` header value.")] = "100",
    filial_codes: Annotated[str, typer.Option(help="Comma-separated filial codes of the orders.")] = "TASH,SAMR,BUKH",
    single_organisation: Annotated[
        bool, typer.Option(help="One organisation: a foreign filial_code answers A02-24-048.")
    ] = False,
    day_range_limit: Annotated[int, typer.Option(min=1, max=366, help="Widest order date range, in days.")] = 7,
    range_mode: Annotated[
        str, typer.Option(help="A wider range: clamp (silently, like SmartUp), error, or empty (no items, HTTP 200).")
    ] = "clamp",
    warehouses: Annotated[
        int, typer.Option(min=1, max=50, help="Warehouses of the stock (from 3 on, the last keeps defective goods).")
    ] = 3,
    reference_budget: Annotated[int, typer.Option(min=0, help="Daily calls: inventory, prices, groups.")] = 100,
    documents_budget: Annotated[int, typer.Option(min=0, help="Daily calls: orders, balance.")] = 500,
    rare_budget: Annotated[int, typer.Option(min=0, help="Daily calls: rarely used documents.")] = 300,
    budget_status: Annotated[int, typer.Option(help="HTTP status once the budget is spent (200 or 429).")] = 200,
    limits_as_numbers: Annotated[bool, typer.Option(help="Send `limits` values as numbers.")] = False,
    limits_first: Annotated[bool, typer.Option(help="Put `limits` before the array.")] = False,
    latency: Annotated[float, typer.Option(min=0.0, help="Seconds added to every answer.")] = 0.0,
    server_error: Annotated[float, _chance("a 500/502/503")] = 0.0,
    rate_limit: Annotated[float, _chance("a 429 with Retry-After")] = 0.0,
    retry_after: Annotated[int, typer.Option(min=0, help="Retry-After of the 429, in seconds.")] = 1,
    slow: Annotated[float, _chance("a slow answer")] = 0.0,
    slow_seconds: Annotated[float, typer.Option(min=0.0, help="Extra seconds of a slow answer.")] = 2.0,
    malformed: Annotated[float, _chance("a truncated JSON body")] = 0.0,
    bad_request: Annotated[float, _chance("a plain-text 400")] = 0.0,
    drop: Annotated[float, _chance("a dropped connection")] = 0.0,
    error_json: Annotated[float, _chance("error JSON under HTTP 200")] = 0.0,
) -> None:
    """Serve a simulated SmartUp tenant on loopback; prints the env lines that point camsync at it."""
    from camsync.errors import UsageError
    from camsync.sandbox.smartup import SmartupFaults, SmartupSandboxConfig, start_smartup_sandbox

    faults = SmartupFaults(
        server_error=server_error, rate_limit=rate_limit, retry_after=retry_after, slow=slow,
        slow_seconds=slow_seconds, malformed=malformed, bad_request=bad_request, drop=drop,
        error_json=error_json, latency=latency,
    )  # fmt: skip
    try:
        config = SmartupSandboxConfig(
            products=products, orders=orders, seed=seed, user=user, password=password, project_code=project_code,
            filial_id=filial_id, filial_codes=tuple(c.strip() for c in filial_codes.split(",") if c.strip()),
            single_organisation=single_organisation, day_range_limit=day_range_limit, range_mode=range_mode,
            warehouses=warehouses,
            reference_budget=reference_budget, documents_budget=documents_budget, rare_budget=rare_budget,
            budget_status=budget_status,
            limits_as_numbers=limits_as_numbers, limits_first=limits_first, faults=faults,
        )  # fmt: skip
        running = start_smartup_sandbox(config, host=host, port=port)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot serve on {host}:{port} ({exc.strerror})", "Choose another --port") from None

    def announce() -> None:
        typer.echo(f"SmartUp sandbox serving on {running.url} ({products} products, {orders} orders, seed {seed})")
        typer.echo(f"SMARTUP_BASE_URL={running.url}")
        typer.echo(f"SMARTUP_BASIC_USER={user}")
        typer.echo(f"SMARTUP_BASIC_PASS={password}")
        typer.echo(f"SMARTUP_PROJECT_CODE={project_code}")
        typer.echo(f"SMARTUP_FILIAL_ID={filial_id}")
        typer.echo("Press Ctrl-C to stop.")

    try:
        serve_until_stopped(running, announce=announce)
    finally:
        running.stop()
    typer.echo("SmartUp sandbox stopped.")
