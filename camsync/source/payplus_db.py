"""The PAY+ app database's schema as camsync reads it: the configured table and column names, a read-only
engine, the three tables reflected and checked, and the queries of the reader (the joined rows, the txn_ids that
several rows carry)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from camsync.errors import ConfigError
from camsync.settings import Settings, mask

# The columns the reader needs, by logical table; the optional ones read as NULL when the table lacks them.
NEEDED_COLUMNS: dict[str, tuple[str, ...]] = {
    "tuis": ("id", "txn_id", "amount", "status", "created_at"),
    "topups": ("txn_id", "meter_id", "currency", "amount"),
    "meters": ("id", "meter_number"),
}
OPTIONAL_COLUMNS = frozenset({("tuis", "created_at"), ("topups", "currency"), ("topups", "amount")})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
_IN_CHUNK = 500


@dataclass(frozen=True)
class SourceNames:
    """Table and column names of the app DB: the PAY+ defaults, or the renames of `APP_DB_*`."""

    tuis: str = "tuis"
    topups: str = "topups"
    meters: str = "meters"
    columns: dict[str, str] = field(default_factory=dict, hash=False)  # "tuis.amount" -> "amount_text"

    def __post_init__(self) -> None:
        for setting, name in (
            ("APP_DB_TUIS_TABLE", self.tuis),
            ("APP_DB_TOPUPS_TABLE", self.topups),
            ("APP_DB_METERS_TABLE", self.meters),
        ):
            _check_name(setting, name, dotted=True)
        for key, name in self.columns.items():
            table, _, column = key.partition(".")
            if column not in NEEDED_COLUMNS.get(table, ()):
                known = ", ".join(f"{t}.{c}" for t, cs in NEEDED_COLUMNS.items() for c in cs)
                raise ConfigError(f"APP_DB_COLUMNS renames unknown column {key!r}", f"Rename one of: {known}")
            _check_name("APP_DB_COLUMNS", name, dotted=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> SourceNames:
        """The names configured by APP_DB_TUIS_TABLE, APP_DB_TOPUPS_TABLE, APP_DB_METERS_TABLE, APP_DB_COLUMNS."""
        tables = {
            "tuis": settings.app_db_tuis_table.strip() or "tuis",
            "topups": settings.app_db_topups_table.strip() or "topups",
            "meters": settings.app_db_meters_table.strip() or "meters",
        }
        return cls(**tables, columns=parse_columns(settings.app_db_columns, tables))

    def table(self, logical: str) -> str:
        return str(getattr(self, logical))

    def column(self, logical_table: str, logical_column: str) -> str:
        return self.columns.get(f"{logical_table}.{logical_column}", logical_column)


def parse_columns(text: str, tables: dict[str, str] | None = None) -> dict[str, str]:
    """`APP_DB_COLUMNS` (`table.column=name,…`) as {"table.column": name}; a table may be named as renamed."""
    renamed = {real: logical for logical, real in (tables or {}).items()}
    columns: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, name = (piece.strip() for piece in item.partition("="))
        table, dot, column = key.partition(".")
        if not sep or not dot or not name:
            raise ConfigError(
                f"APP_DB_COLUMNS item {item!r} is not table.column=name",
                "Write it like tuis.amount=amount_text,meters.meter_number=serial",
            )
        columns[f"{renamed.get(table, table)}.{column}"] = name
    return columns


def _check_name(setting: str, name: str, *, dotted: bool) -> None:
    parts = name.split(".", 1) if dotted else [name]
    if not all(_NAME.match(part) for part in parts):
        raise ConfigError(
            f"{setting} names {name!r}, which is not a plain table or column name",
            "Use letters, digits and underscores (a table may be schema.table)",
        )


# --- engine -----------------------------------------------------------------------------------------------------


def read_only_engine(url: str) -> sa.Engine:
    """An engine that cannot write: a `mode=ro` SQLite URI, or READ ONLY transactions elsewhere."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"APP_DB_URL={mask(url)} is not a database URL", "Use sqlite:////path/to/camwater.db"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    try:
        engine = sa.create_engine(parsed, pool_pre_ping=True, pool_size=2)
    except (NoSuchModuleError, ImportError, ArgumentError) as exc:
        raise ConfigError(f"cannot use APP_DB_URL={mask(url)}: {exc}", "Use a sqlite:// or postgresql:// URL") from None
    if parsed.get_backend_name() == "postgresql":
        return engine.execution_options(postgresql_readonly=True)

    @sa.event.listens_for(engine, "begin")
    def _read_only(conn: Connection) -> None:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")

    return engine


def _sqlite_engine(parsed: URL) -> sa.Engine:
    database = parsed.database or ""
    if database.startswith("file:"):  # a SQLite URI: keep its path, and open it read-only whatever it asked
        database = unquote(urlsplit(database).path)
    if database in ("", ":memory:"):
        raise ConfigError(
            f"APP_DB_URL={parsed} does not name a SQLite file",
            "Use sqlite:////absolute/path/to/camwater.db (camsync opens it read-only itself)",
        )
    path = Path(database).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(
            f"APP_DB_URL names {path}, which does not exist",
            "Point APP_DB_URL at the PAY+ database file (it is never created)",
        )
    uri = URL.create("sqlite", database=f"file:{quote(str(path))}", query={"mode": "ro", "uri": "true"})
    engine = sa.create_engine(uri, connect_args={"timeout": 5, "check_same_thread": False}, poolclass=sa.NullPool)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, so a batch reads one snapshot

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


# --- schema and query -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppTable:
    """A table() of the app DB and its columns by logical name (absent optional columns are missing)."""

    clause: sa.TableClause
    columns: dict[str, sa.ColumnClause[Any]]

    def col(self, logical: str) -> sa.ColumnElement[Any]:
        """The column, labelled with its logical name; NULL when it is an absent optional column."""
        column = self.columns.get(logical)
        return sa.null().label(logical) if column is None else column.label(logical)


def reflect(conn: Connection, names: SourceNames) -> dict[str, AppTable]:
    """The three tables as lightweight clauses, every name checked against the real schema."""
    inspector = sa.inspect(conn)
    missing: list[str] = []
    tables: dict[str, AppTable] = {}
    for logical, needed in NEEDED_COLUMNS.items():
        real = names.table(logical)
        schema, _, table_name = real.rpartition(".")
        if not inspector.has_table(table_name, schema=schema or None):
            missing.append(f"table {real}")
            continue
        present = {c["name"] for c in inspector.get_columns(table_name, schema=schema or None)}
        columns: dict[str, sa.ColumnClause[Any]] = {}
        for column in needed:
            actual = names.column(logical, column)
            if actual in present:
                columns[column] = sa.column(actual)
            elif (logical, column) not in OPTIONAL_COLUMNS:
                missing.append(f"column {real}.{actual}")
        clause = sa.table(table_name, *columns.values(), schema=schema or None)
        tables[logical] = AppTable(clause, {key: clause.c[col.name] for key, col in columns.items()})
    if missing:
        raise ConfigError(
            "the PAY+ app database lacks " + ", ".join(missing),
            "Check APP_DB_URL, APP_DB_TUIS_TABLE, APP_DB_TOPUPS_TABLE, APP_DB_METERS_TABLE and APP_DB_COLUMNS",
        )
    return tables


def joined_query(tables: dict[str, AppTable]) -> sa.Select[Any]:
    tuis, topups, meters = tables["tuis"], tables["topups"], tables["meters"]
    joined = tuis.clause.outerjoin(topups.clause, topups.columns["txn_id"] == tuis.columns["txn_id"]).outerjoin(
        meters.clause, meters.columns["id"] == topups.columns["meter_id"]
    )
    return sa.select(
        tuis.col("id"),
        tuis.col("txn_id"),
        tuis.col("status"),
        tuis.col("amount"),
        tuis.col("created_at"),
        topups.columns["txn_id"].label("topup_txn_id"),
        topups.col("meter_id"),
        topups.col("currency"),
        topups.col("amount").label("topup_amount"),
        meters.columns["id"].label("meter_row_id"),
        meters.col("meter_number"),
    ).select_from(joined)


def shared_txn_ids(conn: Connection, tuis: AppTable, txn_ids: set[str]) -> dict[str, list[int]]:
    """The txn_ids among `txn_ids` carried by more than one row of the whole table, with those rows' ids."""
    owners: dict[str, list[int]] = {}
    ordered = sorted(txn_ids)
    for start in range(0, len(ordered), _IN_CHUNK):
        chunk = ordered[start : start + _IN_CHUNK]
        query = sa.select(tuis.columns["txn_id"], tuis.columns["id"]).where(tuis.columns["txn_id"].in_(chunk))
        for txn_id, tui_id in conn.execute(query).all():
            owners.setdefault(str(txn_id), []).append(int(tui_id))
    return {txn: sorted(ids) for txn, ids in owners.items() if len(ids) > 1}


def shared_in_table(conn: Connection, tuis: AppTable) -> dict[str, list[int]]:
    """The txn_ids carried by more than one row of the whole table, with those rows' ids: one pass over the
    txn_id index."""
    txn_id, tui_id = tuis.columns["txn_id"], tuis.columns["id"]
    several = sa.select(txn_id).where(txn_id != "").group_by(txn_id).having(sa.func.count() > 1).scalar_subquery()
    owners: dict[str, list[int]] = {}
    for shared_id, owner in conn.execute(sa.select(txn_id, tui_id).where(txn_id.in_(several))).all():
        owners.setdefault(str(shared_id), []).append(int(owner))
    return {txn: sorted(ids) for txn, ids in owners.items()}


def shared_in_range(conn: Connection, tuis: AppTable, after_id: int, upto: int) -> dict[str, list[int]]:
    """`shared_txn_ids` of the txn_ids of the rows with `after_id` < id <= `upto`, in one query that returns
    only the shared ones."""
    txn_id, tui_id = tuis.columns["txn_id"], tuis.columns["id"]
    inner = sa.alias(tuis.clause, "batch")
    in_range = (
        sa.select(inner.c[txn_id.name])
        .where(inner.c[tui_id.name] > after_id, inner.c[tui_id.name] <= upto, inner.c[txn_id.name] != "")
        .scalar_subquery()
    )
    counted = sa.alias(tuis.clause, "counted")
    several = (
        sa.select(counted.c[txn_id.name])
        .where(counted.c[txn_id.name].in_(in_range))
        .group_by(counted.c[txn_id.name])
        .having(sa.func.count() > 1)
        .scalar_subquery()
    )
    owners: dict[str, list[int]] = {}
    for shared_id, owner in conn.execute(sa.select(txn_id, tui_id).where(txn_id.in_(several))).all():
        owners.setdefault(str(shared_id), []).append(int(owner))
    return {txn: sorted(ids) for txn, ids in owners.items()}
