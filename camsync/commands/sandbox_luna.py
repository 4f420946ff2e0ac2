"""`camsync sandbox luna`: serve the LUNA OASYS simulator on loopback until Ctrl-C or SIGTERM."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from camsync.commands.sandbox_serve import chance, loopback, serve_until_stopped, write_port_file


class OnOff(StrEnum):
    on = "on"
    off = "off"


class DuplicateMode(StrEnum):
    same = "same"
    conflict = "409"


class AuthMode(StrEnum):
    basic = "basic"
    bearer = "bearer"
    none = "none"


def luna(
    host: Annotated[str, typer.Option("--host", callback=loopback, help="Loopback address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to bind; 0 picks a free one.")] = 8470,
    latency: Annotated[float, typer.Option("--latency", min=0.0, help="Seconds slept in every API request.")] = 0.0,
    waiting_seconds: Annotated[
        float, typer.Option("--waiting-seconds", min=0.0, help="Seconds a new work order stays Waiting.")
    ] = 1.0,
    in_progress_seconds: Annotated[
        float, typer.Option("--in-progress-seconds", min=0.0, help="Seconds it then stays InProgress.")
    ] = 1.0,
    failure_rate: Annotated[float, chance("--failure-rate", help="Share of work orders that end Failed.")] = 0.0,
    idempotency: Annotated[
        OnOff, typer.Option("--idempotency", help="on: a repeated client reference creates no new work order.")
    ] = OnOff.on,
    duplicate_mode: Annotated[
        DuplicateMode,
        typer.Option("--duplicate-mode", help="A repeat answers 200 with the same work order, or 409."),
    ] = DuplicateMode.same,
    lookup: Annotated[
        bool, typer.Option("--lookup/--no-lookup", help="Offer GET /workorders?ClientReference=… (off: 405).")
    ] = True,
    envelope: Annotated[bool, typer.Option("--envelope/--no-envelope", help='Wrap success bodies as {"data": …}.')] = (
        False
    ),
    auth: Annotated[AuthMode, typer.Option("--auth", help="basic, bearer (static token and /auth/login), none.")] = (
        AuthMode.basic
    ),
    user: Annotated[str, typer.Option("--user", help="Basic and /auth/login user name.")] = "camsync",
    password: Annotated[str, typer.Option("--password", help="Basic and /auth/login password.")] = "sandbox-password",
    token: Annotated[str, typer.Option("--token", help="Static bearer token.")] = "sandbox-token",
    meter_conflicts: Annotated[
        bool,
        typer.Option(
            "--meter-conflicts/--no-meter-conflicts", help="409 while another load on the same meter is not done."
        ),
    ] = False,
    unknown_meters: Annotated[
        str, typer.Option("--unknown-meters", help="Comma list of meter numbers answered 404 METER_NOT_FOUND.")
    ] = "",
    error_rate: Annotated[float, chance("--error-rate", help="Share of 503 answers.")] = 0.0,
    rate_limit_rate: Annotated[float, chance("--rate-limit-rate", help="Share of 429 answers.")] = 0.0,
    retry_after: Annotated[
        float, typer.Option("--retry-after", min=0.0, help="Retry-After seconds sent with a 429.")
    ] = 1.0,
    drop_after_commit_rate: Annotated[
        float, chance("--drop-after-commit-rate", help="Share of creates stored, then left unanswered.")
    ] = 0.0,
    malformed_rate: Annotated[float, chance("--malformed-rate", help="Share of success bodies cut in half.")] = 0.0,
    slow_poll_seconds: Annotated[
        float, typer.Option("--slow-poll-seconds", min=0.0, help="Extra seconds slept in every status poll.")
    ] = 0.0,
    amount_field: Annotated[
        str, typer.Option("--amount-field", help="Amount field inside WorkOrderInputs.")
    ] = "CreditAmount",
    client_ref_field: Annotated[
        str, typer.Option("--client-ref-field", help="Body field carrying the client reference.")
    ] = "ClientReference",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the failure and fault draws.")] = 0,
    port_file: Annotated[
        Path | None, typer.Option("--port-file", dir_okay=False, help="Write the bound port to this file.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--log-requests", help="Log every request to stderr.")] = False,
) -> None:
    """Serve the LUNA OASYS simulator on loopback until Ctrl-C or SIGTERM."""
    from camsync.sandbox.luna import LunaSandboxConfig, start_luna_sandbox
    from camsync.sandbox.luna_config import split_meters

    config = LunaSandboxConfig(
        latency=latency,
        waiting_seconds=waiting_seconds,
        in_progress_seconds=in_progress_seconds,
        failure_rate=failure_rate,
        idempotency=idempotency is OnOff.on,
        duplicate_mode=duplicate_mode.value,
        lookup=lookup,
        envelope=envelope,
        auth=auth.value,
        username=user,
        password=password,
        token=token,
        meter_conflicts=meter_conflicts,
        unknown_meters=split_meters(unknown_meters),
        error_rate=error_rate,
        rate_limit_rate=rate_limit_rate,
        retry_after=retry_after,
        drop_after_commit_rate=drop_after_commit_rate,
        malformed_rate=malformed_rate,
        slow_poll_seconds=slow_poll_seconds,
        amount_field=amount_field,
        client_ref_field=client_ref_field,
        seed=seed,
    )
    running = start_luna_sandbox(config, host=host, port=port, verbose=verbose)

    def announce() -> None:
        if port_file is not None:
            write_port_file(port_file, running.server.server_address[1])
        typer.echo(f"LUNA OASYS sandbox serving on {running.url} (Ctrl-C to stop). Use it with:")
        for line in config.env_lines(running.url):
            typer.echo(f"  {line}")

    try:
        serve_until_stopped(running, announce=announce)
    finally:
        running.stop()
