"""The read-only reader of the PAY+ app database: TUIs joined to their top-up and meter.

SQLite is opened through a `mode=ro` URI (never created, never written, its journal mode untouched); any other
database runs every transaction READ ONLY. Rows are read by id in short transactions of one batch each, so the
app's writers are never held up. Bad rows are never skipped: they come out with a `reject_reason`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from camsync.errors import CamsyncError, ConfigError
from camsync.logs import get_logger
from camsync.settings import Settings, mask, normalize_db_url
from camsync.source.payplus_values import (
    MAX_AMOUNT_TEXT,
    Undecodable,
    decode_text,
    parse_amount,
    parse_plain_amount,
    text_value,
    undecodable_column,
)

log = get_logger(__name__)

# The columns the reader needs, by logical table; the optional ones read as NULL when the table lacks them.
NEEDED_COLUMNS: dict[str, tuple[str, ...]] = {
    "tuis": ("id", "txn_id", "amount", "status", "created_at"),
    "topups": ("txn_id", "meter_id", "currency", "amount"),
    "meters": ("id", "meter_number"),
}
OPTIONAL_COLUMNS = frozenset({("tuis", "created_at"), ("topups", "currency"), ("topups", "amount")})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
_IN_CHUNK = 500


class SourceUnavailable(CamsyncError):
    """The PAY+ app database cannot be read right now."""


@dataclass(frozen=True)
class SourceRow:
    """One `tuis` row joined to its topup and meter; `reject_reason` is None when it can be pushed."""

    tui_id: int
    txn_id: str | None
    status: str
    meter_number: str | None
    amount: Decimal | None
    amount_raw: str | None
    currency: str
    created_at: str | None
    reject_reason: str | None
    topup_amount: Decimal | None = None  # topups.amount, for the money checks
    has_topup_amount: bool = False  # False when the app DB has no topups.amount column


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


class PayplusSource:
    """The PAY+ app database, read-only."""

    def __init__(self, url: str, *, names: SourceNames | None = None, default_currency: str = "XAF") -> None:
        self.names = names or SourceNames()
        self.default_currency = default_currency
        self.url = normalize_db_url(url)
        self.engine = _read_only_engine(self.url)
        self._tables: dict[str, _Table] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> PayplusSource:
        """The source named by APP_DB_URL, with the names of APP_DB_* and the default LUNA_CURRENCY."""
        return cls(
            settings.app_db_url, names=SourceNames.from_settings(settings), default_currency=settings.luna_currency
        )

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    def __enter__(self) -> PayplusSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- schema ----------------------------------------------------------------------------------------------

    def check(self) -> None:
        """Make sure the tables and columns exist and can be read; ConfigError naming what is missing."""
        self._tables = None
        self._schema()

    def _schema(self) -> dict[str, _Table]:
        if self._tables is None:
            with self._reading() as conn:
                self._tables = _reflect(conn, self.names)
        return self._tables

    # --- reads -----------------------------------------------------------------------------------------------

    def max_tui_id(self) -> int:
        """The highest `tuis.id` (0 for an empty table)."""
        tuis = self._schema()["tuis"]
        with self._reading() as conn:
            return int(conn.execute(sa.select(sa.func.max(tuis.columns["id"]))).scalar() or 0)

    def scan(self, *, after_id: int = 0, ids: Collection[int] = (), batch_size: int = 5000) -> Iterator[SourceRow]:
        """The rows with id > `after_id` (every status) and those whose id is in `ids`, in id order.

        Each batch of `batch_size` rows is read in its own short transaction; between batches nothing is held.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        earlier = sorted({int(i) for i in ids if int(i) <= after_id})
        for start in range(0, len(earlier), batch_size):
            yield from self._batch(ids=earlier[start : start + batch_size])[0]
        cursor = after_id
        while True:
            rows, fetched = self._batch(after_id=cursor, limit=batch_size)
            if fetched < batch_size:
                yield from rows
                return
            if len(rows) > 1:  # the last row's joined records may go on past the limit: read it again next time
                rows.pop()
            yield from rows
            cursor = rows[-1].tui_id

    def _batch(
        self, *, after_id: int | None = None, limit: int | None = None, ids: Sequence[int] = ()
    ) -> tuple[list[SourceRow], int]:
        """The rows of one batch, read in one short transaction, and how many joined records were fetched."""
        tables = self._schema()
        query = _joined_query(tables)
        tui_id = tables["tuis"].columns["id"]
        query = query.where(tui_id.in_(ids)) if after_id is None else query.where(tui_id > after_id).limit(limit)
        with self._reading() as conn:
            records = conn.execute(query.order_by(tui_id)).all()
            if after_id is not None and records:  # a range: one query finds its shared txn_ids, in the database
                shared = _shared_in_range(conn, tables["tuis"], after_id, records[-1].id)
            else:
                txn_ids = {t for r in records if _plain_text(t := text_value(r.txn_id))}
                shared = _shared_txn_ids(conn, tables["tuis"], txn_ids)
        log.debug("app_db_batch", "read a batch of the PAY+ app DB", after_id=after_id, ids=len(ids), rows=len(records))
        rows: dict[int, SourceRow] = {}
        for record in records:
            if record.id in rows:  # topups.txn_id is not unique here: which meter to credit is unclear
                rows[record.id] = replace(rows[record.id], reject_reason=_several_topups(record.txn_id, shared))
            else:
                rows[record.id] = self._guarded_row(record, shared)
        return list(rows.values()), len(records)

    def _guarded_row(self, record: Any, shared: dict[str, list[int]]) -> SourceRow:
        """The row, or, when it cannot be read, a reject naming it: no single row can fail a scan."""
        try:
            return self._row(_Decoded(record), shared)
        except Exception as exc:  # a value of a type or size nothing expected: this row only is refused
            reason = f"row cannot be read: {type(exc).__name__}: {str(exc)[:120]}"
            log.warning("app_db_row", f"tuis.id={record.id} {reason}")
            return SourceRow(int(record.id), None, "", None, None, None, self.default_currency, None, reason)

    def _row(self, record: Any, shared: dict[str, list[int]]) -> SourceRow:
        undecodable = undecodable_column(record)
        currency = self.default_currency if isinstance(record.currency, Undecodable) else None
        currency = currency or str(record.currency or "").strip()[:8] or self.default_currency
        amount, amount_reason = parse_amount(record.amount, currency=currency)
        topup_amount, _ = parse_plain_amount(record.topup_amount) if record.topup_amount is not None else (None, None)
        txn_id = record.txn_id
        return SourceRow(
            tui_id=int(record.id),
            txn_id=None if txn_id is None else str(txn_id),
            status=str(record.status or ""),
            meter_number=None if record.meter_number is None else str(record.meter_number),
            amount=amount if amount_reason is None and undecodable is None else None,
            amount_raw=None if record.amount is None else str(record.amount)[:MAX_AMOUNT_TEXT],
            currency=currency,
            created_at=_text_time(record.created_at),
            reject_reason=undecodable or _reject_reason(record, shared, amount_reason),
            topup_amount=topup_amount,
            has_topup_amount="amount" in self._schema()["topups"].columns,
        )

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A connection in one short read-only transaction; driver errors become SourceUnavailable."""
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except DBAPIError as exc:
            raise _unavailable(self.url, exc) from None


def _unavailable(url: str, exc: DBAPIError) -> SourceUnavailable:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
    return SourceUnavailable(
        f"cannot read the PAY+ app database at {mask(url)}: {reason}",
        "Check APP_DB_URL and that the database is reachable",
    )


# --- engine -----------------------------------------------------------------------------------------------------


def _read_only_engine(url: str) -> sa.Engine:
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
        dbapi_conn.text_factory = decode_text  # a value that is not UTF-8 is refused with its row, not the scan

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


# --- schema and query -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    """A table() of the app DB and its columns by logical name (absent optional columns are missing)."""

    clause: sa.TableClause
    columns: dict[str, sa.ColumnClause[Any]]

    def col(self, logical: str) -> sa.ColumnElement[Any]:
        """The column, labelled with its logical name; NULL when it is an absent optional column."""
        column = self.columns.get(logical)
        return sa.null().label(logical) if column is None else column.label(logical)


def _reflect(conn: Connection, names: SourceNames) -> dict[str, _Table]:
    """The three tables as lightweight clauses, every name checked against the real schema."""
    inspector = sa.inspect(conn)
    missing: list[str] = []
    tables: dict[str, _Table] = {}
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
        tables[logical] = _Table(clause, {key: clause.c[col.name] for key, col in columns.items()})
    if missing:
        raise ConfigError(
            "the PAY+ app database lacks " + ", ".join(missing),
            "Check APP_DB_URL, APP_DB_TUIS_TABLE, APP_DB_TOPUPS_TABLE, APP_DB_METERS_TABLE and APP_DB_COLUMNS",
        )
    return tables


def _joined_query(tables: dict[str, _Table]) -> sa.Select[Any]:
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


def _shared_txn_ids(conn: Connection, tuis: _Table, txn_ids: set[str]) -> dict[str, list[int]]:
    """The txn_ids among `txn_ids` carried by more than one row of the whole table, with those rows' ids."""
    owners: dict[str, list[int]] = {}
    ordered = sorted(txn_ids)
    for start in range(0, len(ordered), _IN_CHUNK):
        chunk = ordered[start : start + _IN_CHUNK]
        query = sa.select(tuis.columns["txn_id"], tuis.columns["id"]).where(tuis.columns["txn_id"].in_(chunk))
        for txn_id, tui_id in conn.execute(query).all():
            owners.setdefault(str(txn_id), []).append(int(tui_id))
    return {txn: sorted(ids) for txn, ids in owners.items() if len(ids) > 1}


def _shared_in_range(conn: Connection, tuis: _Table, after_id: int, upto: int) -> dict[str, list[int]]:
    """`_shared_txn_ids` of the txn_ids of the rows with `after_id` < id <= `upto`, in one query that returns
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


def _reject_reason(record: Any, shared: dict[str, list[int]], amount_reason: str | None) -> str | None:
    txn_id = record.txn_id
    if txn_id is None:
        return "txn_id is NULL"
    if str(txn_id).strip() == "":
        return "txn_id is empty"
    if str(txn_id) in shared:
        ids = ", ".join(str(i) for i in shared[str(txn_id)])
        return f"txn_id {txn_id!r} appears on several tuis rows (ids {ids})"
    if record.topup_txn_id is None:
        return f"no topup row with txn_id {txn_id!r}"
    if record.meter_id is None:
        return f"topup {txn_id!r} has no meter_id"
    if record.meter_row_id is None:
        return f"no meter row with id {record.meter_id} (topup {txn_id!r})"
    if not str(record.meter_number or "").strip():
        return f"meter {record.meter_row_id} has no meter_number"
    return amount_reason


def _several_topups(txn_id: str, shared: dict[str, list[int]]) -> str:
    if str(txn_id) in shared:
        ids = ", ".join(str(i) for i in shared[str(txn_id)])
        return f"txn_id {txn_id!r} appears on several tuis rows (ids {ids})"
    return f"txn_id {txn_id!r} has several topup rows"


def _plain_text(value: Any) -> bool:
    """Whether a txn_id can be compared as text (not NULL, not empty, valid UTF-8)."""
    return isinstance(value, str) and value != "" and not isinstance(value, Undecodable)


class _Decoded:
    """A fetched record whose byte values read as text (`_text`)."""

    def __init__(self, record: Any) -> None:
        self._record = record

    def __getattr__(self, name: str) -> Any:
        return text_value(getattr(self._record, name))


def _text_time(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
