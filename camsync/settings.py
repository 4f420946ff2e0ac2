"""One settings object, read lazily from the environment and an env file.

Every variable of the two programs camsync replaces keeps its name and meaning. Each field of `Settings`
carries a `Var` that names its environment variable, its kind, its range and its help; the same table feeds
validation, the docs and `camsync doctor`. Values from the process environment win over the env file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from camsync.errors import ConfigError
from camsync.redaction import hide_url_credentials
from camsync.setting_spec import Var, parse_value, var


def default_sqlite_path() -> Path:
    """Where the embedded SQLite store lives when `DATABASE_URL` is not set."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "camsync" / "camsync.db"


@dataclass(frozen=True)
class Settings:
    """Every setting camsync reads. Build it with `load_settings`; never read `os.environ` elsewhere."""

    # --- store -------------------------------------------------------------------------------------------
    database_url: str = var(
        "DATABASE_URL",
        "url",
        "",
        "camsync's own store. Empty: an embedded SQLite file at "
        "$XDG_DATA_HOME/camsync/camsync.db (~/.local/share/camsync/camsync.db). postgresql:// and postgres:// "
        "URLs are used through psycopg 3.",
        "store",
    )
    auto_migrate: bool = var(
        "CAMSYNC_AUTO_MIGRATE", "bool", True, "Migrate the store to the newest schema on first use.", "store"
    )
    run_stale_seconds: int = var(
        "CAMSYNC_RUN_STALE_SECONDS",
        "int",
        900,
        "A RUNNING run whose heartbeat is older than this is marked FAILED (abandoned) by the next run.",
        "store",
        min=60,
        max=86400,
    )
    # --- scheduling (both old programs) ------------------------------------------------------------------
    sync_interval_seconds: int = var(
        "SYNC_INTERVAL_SECONDS",
        "int",
        600,
        "Seconds between two run-all passes of `camsync worker`.",
        "schedule",
        min=60,
        max=86400,
    )
    sync_mode: str = var(
        "SYNC_MODE",
        "choice",
        "daemon",
        "What the container entrypoint does: daemon (worker loop), cron "
        "(one pass per cron call) or once (one pass, then exit).",
        "schedule",
        choices=("daemon", "cron", "once"),
    )
    # --- SmartUp -----------------------------------------------------------------------------------------
    smartup_base_url: str = var(
        "SMARTUP_BASE_URL",
        "http_url",
        "",
        "SmartUp API base URL, with the tenant's path prefix if any.",
        "smartup",
        required_for="smartup",
    )
    smartup_basic_user: str = var(
        "SMARTUP_BASIC_USER", "str", "", "SmartUp login (HTTP Basic).", "smartup", required_for="smartup"
    )
    smartup_basic_pass: str = var(
        "SMARTUP_BASIC_PASS", "secret", "", "SmartUp password (HTTP Basic).", "smartup", required_for="smartup"
    )
    smartup_project_code: str = var(
        "SMARTUP_PROJECT_CODE", "str", "trade", "`project_code` header sent with every SmartUp call.", "smartup"
    )
    smartup_filial_id: str = var(
        "SMARTUP_FILIAL_ID", "str", "", "`filial_id` header sent with every SmartUp call.", "smartup"
    )
    smartup_filial_code: str = var(
        "SMARTUP_FILIAL_CODE", "str", "", "Narrows orders to one organisation (`filial_code`; empty: all).", "smartup"
    )
    smartup_inventory_export_url: str = var(
        "SMARTUP_INVENTORY_EXPORT_URL",
        "http_url",
        "",
        "Products export URL. Empty: {SMARTUP_BASE_URL}/b/anor/mxsx/mr/inventory$export.",
        "smartup",
    )
    smartup_orders_export_url: str = var(
        "SMARTUP_ORDERS_EXPORT_URL",
        "http_url",
        "",
        "Orders export URL. Empty: {SMARTUP_BASE_URL}/b/trade/txs/tdeal/order$export.",
        "smartup",
    )
    smartup_prices_export_url: str = var(
        "SMARTUP_PRICES_EXPORT_URL",
        "http_url",
        "",
        "Prices export URL. Empty: {SMARTUP_BASE_URL}/b/anor/api/v2/mkf/product_price$export.",
        "smartup",
    )
    smartup_groups_export_url: str = var(
        "SMARTUP_GROUPS_EXPORT_URL",
        "http_url",
        "",
        "Product groups export URL. Empty: {SMARTUP_BASE_URL}/b/anor/mxsx/mr/product_group$export.",
        "smartup",
    )
    smartup_balance_export_url: str = var(
        "SMARTUP_BALANCE_EXPORT_URL",
        "http_url",
        "",
        "Stock (balance) export URL. Empty: {SMARTUP_BASE_URL}/b/anor/mxsx/mkw/balance$export.",
        "smartup",
    )
    smartup_timezone: str = var(
        "SMARTUP_TIMEZONE", "tz", "Asia/Tashkent", "Time zone of the tenant's local dates (deal_time).", "smartup"
    )
    sync_orders_days_back: int = var(
        "SYNC_ORDERS_DAYS_BACK",
        "int",
        7,
        "Days of orders fetched when there is no earlier successful sync.",
        "smartup",
        min=1,
        max=90,
    )
    smartup_day_range_limit: int = var(
        "SMARTUP_DAY_RANGE_LIMIT",
        "int",
        7,
        "Widest date range of one SmartUp call, in days (the API's day_range_limit).",
        "smartup",
        min=1,
        max=90,
    )
    smartup_call_reserve: int = var(
        "SMARTUP_CALL_RESERVE",
        "int",
        10,
        "Calls of each daily budget class left untouched for other users of "
        "the account; a run that would go below it stops first.",
        "smartup",
        min=0,
        max=10000,
    )
    smartup_products_interval_seconds: int = var(
        "SMARTUP_PRODUCTS_INTERVAL_SECONDS",
        "int",
        3600,
        "Least time between two product syncs in run-all "
        "(3600 keeps 24 calls/day inside the 100-call reference budget).",
        "smartup",
        min=0,
        max=604800,
    )
    smartup_stock_interval_seconds: int = var(
        "SMARTUP_STOCK_INTERVAL_SECONDS",
        "int",
        900,
        "Least time between two stock syncs in run-all (900 is 96 calls/day of the 500-call documents budget).",
        "smartup",
        min=0,
        max=604800,
    )
    smartup_orders_interval_seconds: int = var(
        "SMARTUP_ORDERS_INTERVAL_SECONDS",
        "int",
        0,
        "Least time between two order syncs in run-all (0: every call).",
        "smartup",
        min=0,
        max=604800,
    )
    # --- LUNA OASYS --------------------------------------------------------------------------------------
    luna_base_url: str = var("LUNA_BASE_URL", "http_url", "", "LUNA OASYS REST base URL.", "luna", required_for="luna")
    luna_create_url: str = var(
        "LUNA_CREATE_URL", "template", "", "Create URL template. Empty: {LUNA_BASE_URL}/workorders.", "luna"
    )
    luna_status_url: str = var(
        "LUNA_STATUS_URL",
        "template",
        "",
        "Status URL template with {id}. Empty: {LUNA_BASE_URL}/workorders/{id}.",
        "luna",
    )
    luna_lastread_url: str = var(
        "LUNA_LASTREAD_URL",
        "template",
        "",
        "Meter last-readout URL template with {meter}. Empty: {LUNA_BASE_URL}/meters/{meter}/lastreadout.",
        "luna",
    )
    luna_lookup_url: str = var(
        "LUNA_LOOKUP_URL",
        "template",
        "",
        "Lookup-by-reference URL template with {ref}. Empty: "
        "{LUNA_BASE_URL}/workorders?ClientReference={ref}; `none` when the server has no lookup.",
        "luna",
    )
    luna_token: str = var("LUNA_TOKEN", "secret", "", "Bearer token; when set, Basic auth is not used.", "luna")
    luna_username: str = var("LUNA_USERNAME", "str", "", "HTTP Basic user (when no token).", "luna")
    luna_password: str = var("LUNA_PASSWORD", "secret", "", "HTTP Basic password (when no token).", "luna")
    luna_amount_field: str = var(
        "LUNA_AMOUNT_FIELD", "str", "CreditAmount", "Name of the amount inside WorkOrderInputs.", "luna"
    )
    luna_client_ref_field: str = var(
        "LUNA_CLIENT_REF_FIELD", "str", "ClientReference", "Body field carrying the txn_id.", "luna"
    )
    luna_status_field: str = var("LUNA_STATUS_FIELD", "str", "Status", "Field read for a work order's status.", "luna")
    luna_status_success: str = var(
        "LUNA_STATUS_SUCCESS", "str", "Successful", "Status meaning the credit was loaded.", "luna"
    )
    luna_status_waiting: str = var(
        "LUNA_STATUS_WAITING", "str", "Waiting", "Status of a work order not started yet.", "luna"
    )
    luna_status_failed: tuple[str, ...] = var(
        "LUNA_STATUS_FAILED",
        "list",
        ("Failed", "Cancelled", "Expired"),
        "Terminal statuses meaning the credit was not loaded.",
        "luna",
    )
    luna_unknown_outcome: str = var(
        "LUNA_UNKNOWN_OUTCOME",
        "choice",
        "hold",
        "After a create whose outcome is unknown and cannot be looked "
        "up: hold (state unknown, operator decides) or resend.",
        "luna",
        choices=("hold", "resend"),
    )
    luna_poll_timeout: int = var(
        "LUNA_POLL_TIMEOUT",
        "int",
        86400,
        "Seconds after which a work order that is still not terminal is marked expired locally (never re-created).",
        "luna",
        min=10,
        max=30 * 86400,
    )
    luna_concurrency: int = var(
        "LUNA_CONCURRENCY", "int", 8, "Creates and polls in flight at once.", "luna", min=1, max=64
    )
    luna_max_amount: float = var(
        "LUNA_MAX_AMOUNT",
        "float",
        1_000_000.0,
        "Largest amount pushed without review: a top-up above it is held (state held) until an operator "
        "releases it with `luna replay TXN --force`.",
        "luna",
        min=1,
    )
    luna_sweep_interval_seconds: int = var(
        "LUNA_SWEEP_INTERVAL_SECONDS",
        "int",
        86400,
        "Least time between two full sweeps inside `luna push`: every USED row of the app DB compared with "
        "the store, so a row the incremental scan missed is pushed (0: only with `luna push --sweep`).",
        "luna",
        min=0,
        max=366 * 86400,
    )
    luna_currency: str = var("LUNA_CURRENCY", "str", "XAF", "Currency when the app's topup row has none.", "luna")
    verify_tls: bool = var("VERIFY_TLS", "bool", True, "Verify TLS certificates of LUNA and SmartUp.", "http")
    timeout_seconds: float = var(
        "TIMEOUT_SECONDS", "float", 20.0, "Timeout of one HTTP request, in seconds.", "http", min=1, max=600
    )
    batch_size: int = var(
        "BATCH_SIZE", "int", 25, "Top-ups claimed per batch by `luna push`.", "luna", min=1, max=10000
    )
    app_db_url: str = var(
        "APP_DB_URL", "url", "sqlite:////data/camwater.db", "The PAY+ app database, opened read-only.", "luna"
    )
    app_db_tuis_table: str = var(
        "APP_DB_TUIS_TABLE", "str", "tuis", "Table of TUIs (card writes) in the app DB.", "luna"
    )
    app_db_topups_table: str = var("APP_DB_TOPUPS_TABLE", "str", "topups", "Table of top-ups in the app DB.", "luna")
    app_db_meters_table: str = var("APP_DB_METERS_TABLE", "str", "meters", "Table of meters in the app DB.", "luna")
    app_db_columns: str = var(
        "APP_DB_COLUMNS",
        "str",
        "",
        "Column renames in the app DB, as table.column=name pairs separated by "
        "commas (e.g. tuis.amount=amount_text,meters.meter_number=serial).",
        "luna",
    )
    luna_poll_initial_seconds: float = var(
        "LUNA_POLL_INITIAL_SECONDS",
        "float",
        1.0,
        "First status poll this long after a create; later polls back off.",
        "luna",
        min=0.05,
        max=3600,
    )
    luna_poll_max_seconds: float = var(
        "LUNA_POLL_MAX_SECONDS",
        "float",
        60.0,
        "Longest wait between two polls of one work order.",
        "luna",
        min=0.1,
        max=86400,
    )
    state_path: str = var(
        "STATE_PATH", "str", "/data/state.json", "The old agent's state file, for `camsync state import-json`.", "luna"
    )
    # --- operations --------------------------------------------------------------------------------------
    heartbeat_url: str = var(
        "HEARTBEAT_URL",
        "secret",
        "",
        "URL pinged after each run-all (GET URL on success, URL/fail otherwise); empty: off. Treated as "
        "a secret: it often carries a token.",
        "operations",
    )

    @property
    def store_url(self) -> str:
        """The SQLAlchemy URL of the store, with the embedded default and psycopg 3 applied."""
        return normalize_db_url(self.database_url or f"sqlite:///{default_sqlite_path()}")

    def secret_values(self) -> list[str]:
        """Every secret value set, so logs can redact them wherever they appear."""
        values = [getattr(self, f.name) for f in fields(self) if f.metadata["var"].secret]
        return [v for v in values if isinstance(v, str) and v]

    def require(self, group: str) -> None:
        """Refuse to go on when a variable needed by `group` is empty."""
        for f in fields(self):
            spec: Var = f.metadata["var"]
            if spec.required_for == group and not getattr(self, f.name):
                raise ConfigError(f"{spec.env} is not set", f"Set it in the environment or the env file ({spec.help})")


def normalize_db_url(url: str) -> str:
    """Point postgres:// and postgresql:// URLs at the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def mask(value: str, spec: Var | None = None) -> str:
    """Show a value in a message without the secret inside it."""
    if spec is not None and spec.secret:
        return "****" if value else ""
    return hide_url_credentials(value)


def settings_vars() -> list[tuple[str, Var, Any]]:
    """(field name, Var, default) for every setting, in declaration order."""
    return [(f.name, f.metadata["var"], f.default) for f in fields(Settings)]


def read_env_file(path: Path | None) -> dict[str, str]:
    """The variables of an env file (`./.env` when `path` is None and it exists)."""
    if path is None:
        path = Path(".env")
        if not path.is_file():
            return {}
    elif not path.is_file():
        raise ConfigError(f"env file {path} does not exist", "Pass an existing file to --env-file")
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def load_settings(environ: Mapping[str, str] | None = None, env_file: Path | None = None) -> Settings:
    """Build the settings from the env file, then the environment (which wins); refuse any bad value."""
    merged = read_env_file(env_file)
    merged.update(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    for name, spec, _default in settings_vars():
        raw = merged.get(spec.env)
        if raw is None or (raw.strip() == "" and spec.kind not in ("str", "secret", "url", "http_url", "template")):
            continue
        try:
            values[name] = parse_value(spec, raw)
        except ValueError:
            raise ConfigError(
                f"{spec.env}={mask(raw, spec)!s} is not allowed: it must be {spec.allowed()}",
                f"Fix {spec.env} in the environment or the env file",
            ) from None
    return Settings(**values)
