"""Change-aware bulk writes, and the reads they plan with: the one place that writes a batch differently on
PostgreSQL and on SQLite.

A batch is written inside the caller's transaction (one transaction per batch). A stored row is only rewritten
when the table's `changed` condition holds for it, so an unchanged row is never touched.

- PostgreSQL: the rows whose key the caller did not find stored are COPYed straight into the table, with ids
  drawn from its sequence (inside a savepoint: should another writer have inserted one of them meanwhile, they
  all join the merge); the others are COPYed into a temporary table and merged with
  `INSERT … ON CONFLICT … DO UPDATE … WHERE changed RETURNING (xmax = 0)`, which tells inserted from updated
  rows exactly even with another writer about.
- SQLite: `INSERT … ON CONFLICT … DO UPDATE … WHERE changed RETURNING` over every row, after a look-up of the
  keys already stored, both inside the writer's `BEGIN IMMEDIATE`, where no other writer can come in between.

Rows come in as dicts keyed by column name, with JSON columns as JSON text (written as it is).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    JSON,
    Text,
    and_,
    column,
    delete,
    exists,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    table,
    text,
    tuple_,
    update,
)
from sqlalchemy import insert as insert_into
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import TableClause

if TYPE_CHECKING:
    from camsync.store.engine import Store

SQLITE_CHUNK = 900  # keys per `IN (…)` on SQLite, well under its limit of bound parameters

Written = tuple[Any, int, bool]  # (key, id, inserted?) of a row a write inserted or rewrote


@dataclass(frozen=True)
class Upsert:
    """How one table takes a batch of rows."""

    model: type[Any]  # the mapped class of the table
    columns: tuple[str, ...]  # the columns written (the id comes from the table's sequence)
    key: tuple[str, ...]  # what names a row within a batch (among `conflict`); returned with each written row
    conflict: tuple[str, ...]  # the unique key a row conflicts on
    update: tuple[str, ...]  # the columns a changed row takes from the batch
    changed: str  # SQL: when a stored row differs from the incoming one (`excluded`)
    reset: Mapping[str, str] = field(default_factory=dict)  # columns a changed row sets to an SQL constant

    @property
    def name(self) -> str:
        return str(self.model.__tablename__)


# --- writes --------------------------------------------------------------------------------------------------


def upsert(
    session: Session, plan: Upsert, *, rows: Sequence[Mapping[str, Any]], existing: Collection[Any]
) -> list[Written]:
    """Insert the new rows and rewrite the changed ones; returns (key, id, inserted?) of every row written.

    `existing`: the keys among `rows` the caller found stored. PostgreSQL COPYs the others straight in (a key
    stored after all only costs a merge); SQLite looks the keys up again itself, in this transaction.
    """
    if not rows:
        return []
    if is_postgres(session):
        return _pg_upsert(session, plan, rows, existing)
    return _sqlite_upsert(session, plan, rows)


def insert(session: Session, model: type[Any], *, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` as they are (COPY on PostgreSQL)."""
    if not rows:
        return
    if is_postgres(session):
        names = ", ".join(columns)
        row_of = itemgetter(*columns)
        target = model.__tablename__
        with driver(session).cursor() as cursor, cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row_of(row))
        return
    session.execute(_write_table(model, columns).insert(), list(rows))


def insert_tuples(
    session: Session,
    model: type[Any],
    *,
    columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
    constants: Mapping[str, Any] | None = None,
    into: str | None = None,
) -> None:
    """Insert many rows given as tuples in the order of `columns`, each followed by the `constants` (the values
    every row shares), through the driver: COPY on PostgreSQL, one `executemany` on SQLite.

    The tuples' values go to the driver as they are (text, numbers, None); the constants are converted once by
    their columns' types (a timestamp, a boolean), so a row costs no conversion at all. `into`: another table
    shaped like the model's (a stage) to write to instead.
    """
    dialect = session.get_bind().dialect
    table_columns = model.__table__.columns
    shared = []
    for name, value in (constants or {}).items():
        processor = table_columns[name].type.dialect_impl(dialect).bind_processor(dialect)
        shared.append(processor(value) if processor is not None else value)
    names = [*columns, *(constants or {})]
    tail = tuple(shared)
    target = into or model.__tablename__
    if is_postgres(session):
        with driver(session).cursor() as cursor, cursor.copy(f"COPY {target} ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row + tail)
        return
    marks = ", ".join("?" * len(names))
    sql = f"INSERT INTO {target} ({', '.join(names)}) VALUES ({marks})"  # noqa: S608 - names are the model's
    driver(session).executemany(sql, (row + tail for row in rows) if tail else rows)


@contextmanager
def temporary_keys(session: Session, *, name: str, key: str, length: int, values: Iterable[str]) -> Iterator[None]:
    """A temporary one-column table `name` holding the distinct text keys `values`, for the block's statements."""
    cursor = driver(session)
    if is_postgres(session):
        with cursor.cursor() as pg:
            pg.execute(f"CREATE TEMP TABLE {name} ({key} varchar({length}) PRIMARY KEY) ON COMMIT DROP")
            with pg.copy(f"COPY {name} ({key}) FROM STDIN") as copy:
                for value in values:
                    copy.write_row((value,))
        yield
        return
    cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({key} TEXT PRIMARY KEY)")
    cursor.execute(f"DELETE FROM {name}")  # noqa: S608 - names are ours
    cursor.executemany(f"INSERT OR IGNORE INTO {name} VALUES (?)", ((value,) for value in values))  # noqa: S608
    yield
    cursor.execute(f"DROP TABLE {name}")


@dataclass(frozen=True)
class SnapshotChanges:
    """How a table's rows changed when a snapshot replaced them (rows compared by key, then by value)."""

    inserted: int  # keys the table did not have
    updated: int  # keys it had, with other values
    unchanged: int  # keys it had, with the same values
    removed: int  # keys the snapshot no longer has


def replace_snapshot(
    session: Session,
    model: type[Any],
    *,
    key: Sequence[str],
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    constants: Mapping[str, Any],
    apply: bool = True,
) -> SnapshotChanges:
    """Make the model's table hold exactly `rows` (tuples in the order of `columns`, one per `key`), every row
    taking the `constants`; returns how its rows changed. `apply=False` only counts, and writes nothing.

    An empty table is filled straight (COPY on PostgreSQL). Otherwise the rows go to a temporary stage and the
    table is brought to it in four set-wise statements (inside the caller's transaction, so readers see the
    old rows until it commits): removed keys are deleted, unchanged rows take only the constants, changed rows
    their new values too, and new keys are inserted; the numbers are compared by the database, as numbers.
    """
    target = model.__table__
    if apply and session.execute(select(literal(1)).select_from(target).limit(1)).first() is None:
        insert_tuples(session, model, columns=columns, rows=rows, constants=constants)
        return SnapshotChanges(inserted=len(rows), updated=0, unchanged=0, removed=0)
    stage = _snapshot_stage(session, model, key=key, columns=columns, rows=rows)
    same_key = and_(*(target.c[name] == stage.c[name] for name in key))
    values = [name for name in columns if name not in key]
    differ = or_(*(target.c[name].is_distinct_from(stage.c[name]) for name in values))
    has_key = exists().where(same_key)
    if not apply:
        matched = select(func.count()).select_from(target.join(stage, same_key))
        changed = session.execute(matched.where(differ)).scalar_one()
        same = session.execute(matched.where(not_(differ))).scalar_one()
        total = session.execute(select(func.count()).select_from(target)).scalar_one()
        new = session.execute(select(func.count()).select_from(stage).where(~has_key)).scalar_one()
        driver(session).execute(f"DROP TABLE {stage.name}")
        return SnapshotChanges(inserted=new, updated=changed, unchanged=same, removed=total - changed - same)
    removed = _rowcount(session, delete(target).where(~has_key))
    unchanged = _rowcount(session, update(target).where(same_key, not_(differ)).values(**constants))
    updated = _rowcount(
        session,
        update(target).where(same_key, differ).values(**{name: stage.c[name] for name in values}, **constants),
    )
    fill = select(
        *(stage.c[name] for name in columns),
        *(literal(value, target.c[name].type) for name, value in constants.items()),
    ).where(~has_key)
    session.execute(insert_into(target).from_select([*columns, *constants], fill))
    inserted = len(rows) - unchanged - updated  # every staged row is either matched above or new
    driver(session).execute(f"DROP TABLE {stage.name}")
    return SnapshotChanges(inserted=inserted, updated=updated, unchanged=unchanged, removed=removed)


def _snapshot_stage(
    session: Session, model: type[Any], *, key: Sequence[str], columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> TableClause:
    """A temporary table shaped like `columns` of the model's table, unique on `key`, holding `rows`."""
    name = f"stage_{model.__tablename__}"
    names = ", ".join(columns)
    raw = driver(session)
    if is_postgres(session):
        raw.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")
        raw.execute(
            f"CREATE TEMP TABLE {name} ON COMMIT DROP AS SELECT {names} FROM {model.__tablename__} WITH NO DATA"  # noqa: S608 - names are ours
        )
    else:
        raw.execute(f"DROP TABLE IF EXISTS temp.{name}")
        raw.execute(f"CREATE TEMP TABLE {name} AS SELECT {names} FROM {model.__tablename__} WHERE 0")  # noqa: S608
    insert_tuples(session, model, columns=columns, rows=rows, into=name)
    # The key's index lets SQLite join by it (PostgreSQL hashes); it also refuses a snapshot naming a key twice.
    raw.execute(f"CREATE UNIQUE INDEX {'' if is_postgres(session) else 'temp.'}ix_{name} ON {name} ({', '.join(key)})")
    if is_postgres(session):
        raw.execute(f"ANALYZE {name}")
    table_columns = model.__table__.columns
    return table(name, *(column(c, table_columns[c].type) for c in columns))


def _rowcount(session: Session, statement: Any) -> int:
    return int(
        cast(CursorResult[Any], session.execute(statement.execution_options(synchronize_session=False))).rowcount
    )


def analyze(session: Session, *, columns: Mapping[str, str]) -> None:
    """Refresh the planner statistics of some columns of some tables (`table → "col, col"`) on PostgreSQL after a
    large load; SQLite plans without them."""
    if is_postgres(session):
        for name, names in columns.items():
            driver(session).execute(f"ANALYZE {name} ({names})")


def parallel_writers(store: Store, wanted: int) -> int:
    """How many connections may write batches to the store side by side: `wanted` on PostgreSQL, one on SQLite
    (one writer at a time)."""
    return wanted if store.dialect == "postgresql" else 1


# --- reads ---------------------------------------------------------------------------------------------------


def rows_among(session: Session, sql: str, params: Sequence[Any], keys: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run `sql` for `keys`: `{mark}` is a parameter mark (taking `params` in order), `{among}` the test of the
    keys (`= ANY(…)` on PostgreSQL, chunked `IN (…)` on SQLite)."""
    if not keys:
        return []
    raw = driver(session)
    if is_postgres(session):
        with raw.cursor() as cursor:
            # A table filled within this run has stale statistics (and a plan prepared while it was empty would
            # stick): a seq scan would test every row against the whole key array. Every lookup column is
            # indexed, so plan afresh each time and steer the planner to the index.
            cursor.execute("SET LOCAL enable_seqscan = off")
            query = sql.format(mark="%s", among="= ANY(%s)")
            found: list[tuple[Any, ...]] = cursor.execute(query, (*params, list(keys)), prepare=False).fetchall()
            cursor.execute("SET LOCAL enable_seqscan = on")
            return found
    rows: list[tuple[Any, ...]] = []
    for chunk in chunks(keys, SQLITE_CHUNK):
        among = "IN (" + ",".join("?" * len(chunk)) + ")"
        rows.extend(raw.execute(sql.format(mark="?", among=among), (*params, *chunk)).fetchall())
    return rows


def fetch_all(session: Session, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Every row of `sql`, whose `{mark}`s take `params`, through the driver (no ORM on a whole-table read)."""
    mark = "%s" if is_postgres(session) else "?"
    rows: list[tuple[Any, ...]] = driver(session).execute(sql.format(mark=mark), tuple(params)).fetchall()
    return rows


def chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """`values` in consecutive slices of at most `size`."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def is_postgres(session: Session) -> bool:
    """Whether the session writes to PostgreSQL (else SQLite)."""
    return session.get_bind().dialect.name == "postgresql"


def driver(session: Session) -> Any:
    """The DBAPI connection under the session's transaction (psycopg or sqlite3)."""
    return session.connection().connection.driver_connection


# --- PostgreSQL ----------------------------------------------------------------------------------------------


def _pg_upsert(
    session: Session, plan: Upsert, values: Sequence[Mapping[str, Any]], existing: Collection[Any]
) -> list[Written]:
    import psycopg

    target = plan.name
    key_of = itemgetter(*plan.key)
    row_of = itemgetter(*plan.columns)

    new = [v for v in values if key_of(v) not in existing]
    old = [v for v in values if key_of(v) in existing]
    written: list[Written] = []
    raw = driver(session)
    # A batch need not wait for its WAL flush: the run's cursor only moves in the ledger write at the end of the
    # run, which is flushed (with every batch before it); a batch lost to a crash is re-done by the next run.
    raw.execute("SET LOCAL synchronous_commit = off")
    if new:
        try:
            with raw.transaction(), raw.cursor() as cursor:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", (target, len(new))
                )
                ids = [row[0] for row in cursor.fetchall()]
                names = ", ".join(("id", *plan.columns))
                with cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
                    for row_id, value in zip(ids, new, strict=True):
                        copy.write_row((row_id, *row_of(value)))
            written = [(key_of(value), row_id, True) for row_id, value in zip(ids, new, strict=True)]
        except psycopg.errors.UniqueViolation:
            old = list(values)
    if old:
        returned = _pg_merge(session, plan, old, returning=f"{', '.join(plan.key)}, id, (xmax = 0)")
        width = len(plan.key)
        written.extend((row[0] if width == 1 else tuple(row[:width]), row[width], row[width + 1]) for row in returned)
    return written


def _pg_merge(
    session: Session, plan: Upsert, values: Sequence[Mapping[str, Any]], *, returning: str
) -> list[tuple[Any, ...]]:
    """COPY `values` into a temporary table shaped like the target, then merge it; returns the RETURNING rows."""
    target = plan.name
    stage = f"stage_{target}"
    row_of = itemgetter(*plan.columns)
    names = ", ".join(plan.columns)
    assignments = ", ".join(
        [*(f"{c} = excluded.{c}" for c in plan.update), *(f"{c} = {v}" for c, v in plan.reset.items())]
    )
    with driver(session).cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{stage}")
        cursor.execute(
            f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {names} FROM {target} WITH NO DATA"  # noqa: S608
        )
        with cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
            for value in values:
                copy.write_row(row_of(value))
        cursor.execute(
            f"INSERT INTO {target} ({names}) SELECT {names} FROM {stage} "  # noqa: S608 - names are ours
            f"ON CONFLICT ({', '.join(plan.conflict)}) DO UPDATE SET {assignments} "
            f"WHERE {plan.changed} RETURNING {returning}"
        )
        merged: list[tuple[Any, ...]] = cursor.fetchall()
        return merged


# --- SQLite --------------------------------------------------------------------------------------------------


def _sqlite_upsert(session: Session, plan: Upsert, values: Sequence[Mapping[str, Any]]) -> list[Written]:
    stored = _sqlite_stored_keys(session, plan, values)
    target = _write_table(plan.model, (*plan.columns, *plan.reset, "id"))
    into = sqlite_dialect.insert(target)
    statement = into.on_conflict_do_update(
        index_elements=list(plan.conflict),
        set_={
            **{name: into.excluded[name] for name in plan.update},
            **{name: literal_column(value) for name, value in plan.reset.items()},
        },
        where=text(plan.changed),
    ).returning(*(target.c[name] for name in plan.key), target.c.id)
    width = len(plan.key)
    written: list[Written] = []
    for row in session.execute(statement, list(values)):
        key = row[0] if width == 1 else tuple(row[:width])
        written.append((key, row[width], key not in stored))
    return written


def _sqlite_stored_keys(session: Session, plan: Upsert, values: Sequence[Mapping[str, Any]]) -> set[Any]:
    """The keys of the rows among `values` already stored (by their unique key)."""
    target = _write_table(plan.model, (*plan.key, *plan.conflict))
    conflict_of = itemgetter(*plan.conflict)
    wanted = list(dict.fromkeys(conflict_of(value) for value in values))
    width = len(plan.key)
    if len(plan.conflict) == 1:
        test: Any = target.c[plan.conflict[0]]
    else:
        test = tuple_(*(target.c[name] for name in plan.conflict))
    stored: set[Any] = set()
    for chunk in chunks(wanted, SQLITE_CHUNK // len(plan.conflict)):
        query = select(*(target.c[name] for name in plan.key)).where(test.in_(chunk))
        stored.update(row[0] if width == 1 else tuple(row) for row in session.execute(query))
    return stored


def _write_table(model: type[Any], columns: Sequence[str]) -> TableClause:
    """The model's table for writing `columns`, with JSON columns taking JSON text as it is."""
    model_columns = model.__table__.columns
    return table(
        model.__tablename__,
        *(
            column(name, Text() if isinstance(model_columns[name].type, JSON) else model_columns[name].type)
            for name in dict.fromkeys(columns)
        ),
    )
