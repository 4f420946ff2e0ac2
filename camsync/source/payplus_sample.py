"""PAY+-shaped app databases for tests, the demo and the benchmark.

`PAYPLUS_METADATA` mirrors the PAY+ backend's `tuis`, `topups` and `meters` tables (without the foreign keys and
with a plain, non-unique index on `tuis.txn_id`, so that messy data — duplicate txn_ids, dangling meters — can
be written). `make_payplus_db` writes a few hand-described rows; `create_sample_app_db` writes a realistic
database of any size, quickly (executemany in big transactions), from the rows `payplus_sample_rows` plans. What
"realistic" means is taken from /work/shared/specs/payplus-app-db.md ("spec" in comments there).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from camsync.source.payplus_sample_rows import (
    BAD_KINDS,
    HELD_KINDS,
    HOSTILE_KINDS,
    METER_COLUMNS,
    TOPUP_COLUMNS,
    TUI_COLUMNS,
    SamplePlan,
    sample_row_kinds,
    sample_txn_id,
)

PAYPLUS_METADATA = sa.MetaData()

METERS = sa.Table(
    "meters",
    PAYPLUS_METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("meter_number", sa.String(64), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer),
    sa.Column("alias", sa.String(64)),
    sa.Column("created_at", sa.DateTime),
)
TOPUPS = sa.Table(
    "topups",
    PAYPLUS_METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("txn_id", sa.String(64), unique=True),
    sa.Column("user_id", sa.Integer),
    sa.Column("meter_id", sa.Integer),
    sa.Column("amount", sa.Numeric(12, 2)),
    sa.Column("currency", sa.String(8)),
    sa.Column("method", sa.String(16)),
    sa.Column("status", sa.String(24)),
    sa.Column("gateway_ref", sa.String(128)),
    sa.Column("created_at", sa.DateTime),
)
TUIS = sa.Table(
    "tuis",
    PAYPLUS_METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("topup_id", sa.Integer),
    sa.Column("txn_id", sa.String(64), index=True),
    sa.Column("meter_id", sa.Integer),
    sa.Column("user_id", sa.Integer),
    sa.Column("amount", sa.String(32)),
    sa.Column("expires_at", sa.DateTime),
    sa.Column("card_uid_lock", sa.String(64)),
    sa.Column("signature", sa.Text),
    sa.Column("status", sa.String(24)),
    sa.Column("proof_hash", sa.String(128)),
    sa.Column("created_at", sa.DateTime),
)

_EPOCH = datetime(2026, 1, 1, 8, 0, 0)


def make_payplus_db(path: Path | str, rows: Iterable[dict[str, Any]]) -> None:
    """Write a PAY+ SQLite file at `path` (created, or added to) holding one TUI per row; see `write_payplus_rows`."""
    engine = sa.create_engine(f"sqlite:///{Path(path)}")
    try:
        write_payplus_rows(engine, rows)
    finally:
        engine.dispose()


def write_payplus_rows(engine: sa.Engine, rows: Iterable[dict[str, Any]]) -> None:
    """Create the PAY+ tables on `engine` when missing and insert one `tuis` row per dict, with its topup and meter.

    Keys of a row (all optional but `id`): `txn_id` (default `TXN-<id>`; None for a NULL txn_id), `amount` (the
    tuis.amount text, default "1500"), `topup_amount` (topups.amount; default the tuis amount when it reads as a
    plain number, as the backend writes both from one Decimal, else NULL), `status` (USED), `meter` (meter
    number, default `M-<id>`; None: the topup points at a meter row that does not exist), `currency` (XAF; None:
    NULL), `topup` (False: no topup row), `created_at` (a datetime). A txn_id repeated over rows gets one topup
    row (the first row's). `txn_id`, `amount` and `meter` may be bytes: stored as a BLOB, as they are given
    (bytes that are not UTF-8 included).
    """
    meters: dict[str, int] = {}
    topups: dict[str, dict[str, Any]] = {}
    tuis: list[dict[str, Any]] = []
    with engine.begin() as conn:
        PAYPLUS_METADATA.create_all(conn)
        meters.update({m.meter_number: m.id for m in conn.execute(sa.select(METERS.c.id, METERS.c.meter_number))})
        next_meter = (conn.execute(sa.select(sa.func.max(METERS.c.id))).scalar() or 0) + 1
        next_topup = (conn.execute(sa.select(sa.func.max(TOPUPS.c.id))).scalar() or 0) + 1
        new_meters: list[dict[str, Any]] = []
        for row in rows:
            tui_id = int(row["id"])
            txn_id = row.get("txn_id", f"TXN-{tui_id}")
            meter = row.get("meter", f"M-{tui_id}")
            created_at = row.get("created_at") or _EPOCH + timedelta(minutes=tui_id)
            meter_id = None
            if meter is not None:
                if meter not in meters:
                    meters[meter] = next_meter
                    new_meters.append({"id": next_meter, "meter_number": meter, "created_at": created_at})
                    next_meter += 1
                meter_id = meters[meter]
            topup_id = None
            if row.get("topup", True) and txn_id is not None and txn_id not in topups:
                topup_id = next_topup
                next_topup += 1
                topups[txn_id] = {
                    "id": topup_id,
                    "txn_id": txn_id,
                    "meter_id": meter_id if meter_id is not None else 900_000_000 + tui_id,
                    "amount": row["topup_amount"] if "topup_amount" in row else _same_amount(row.get("amount", "1500")),
                    "currency": row.get("currency", "XAF"),
                    "method": "stripe",
                    "status": "LOADED_TO_CARD",
                    "created_at": created_at,
                }
            tuis.append(
                {
                    "id": tui_id,
                    "topup_id": topup_id,
                    "txn_id": txn_id,
                    "meter_id": meter_id,
                    "amount": row.get("amount", "1500"),
                    "status": row.get("status", "USED"),
                    "created_at": created_at,
                }
            )
        for table, values in ((METERS, new_meters), (TOPUPS, list(topups.values())), (TUIS, tuis)):
            if values:
                conn.execute(table.insert(), values)


# --- the realistic sample ---------------------------------------------------------------------------------------

_CHUNK = 50_000


def create_sample_app_db(
    path: Path,
    *,
    topups: int,
    seed: int = 1,
    messy: bool = True,
    hostile: bool = False,
    absurd_amount_bytes: int = 0,
) -> dict[str, int]:
    """Create a realistic PAY+ SQLite file at `path` with `topups` top-ups (one TUI each) and return counts per kind.

    Rows are as the PAY+ backend writes them (see `payplus_sample_rows`): two-decimal amount strings, some with a
    fraction, 24-hex txn_ids, text meter numbers some starting with "0". Statuses are about 80 % USED, 15 %
    READY, 5 % EXPIRED. When `messy`, a few USED rows of each kind of `BAD_KINDS` and `HELD_KINDS` are mixed in;
    `hostile` adds `HOSTILE_KINDS` (bytes that are not UTF-8), `absurd_amount_bytes` one row whose amount is a
    string that long (10_000_000 for the spec's "10 MB amount"). `rejected` counts the rows a correct reader
    rejects, `held` those it holds for review, `pushable` the USED rows it pushes (`fractions` of them with a
    fraction). The file must not exist yet.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} already exists")
    plan = SamplePlan(topups=topups, seed=seed, messy=messy, hostile=hostile, absurd_amount_bytes=absurd_amount_bytes)
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            PAYPLUS_METADATA.create_all(conn)
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("PRAGMA synchronous = OFF")
            cursor.execute("PRAGMA cache_size = -262144")  # 256 MB: random txn_ids land all over the index
            for table, columns, rows in (
                (METERS, METER_COLUMNS, plan.meters()),
                (TOPUPS, TOPUP_COLUMNS, plan.topups()),
                (TUIS, TUI_COLUMNS, plan.tuis()),
            ):
                for chunk in _chunks(rows, _CHUNK):
                    cursor.executemany(_insert_sql(table, columns), chunk)
            for table_name, column, how, value, row_id in plan.patches():
                mark = "CAST(? AS TEXT)" if how == "text" else "?"  # CAST keeps the bytes, in a TEXT value
                cursor.execute(f"UPDATE {table_name} SET {column} = {mark} WHERE id = ?", (value, row_id))  # noqa: S608
            raw.commit()
        finally:
            raw.close()
    finally:
        engine.dispose()
    return plan.counts()


def _insert_sql(table: sa.Table, columns: tuple[str, ...]) -> str:
    """An INSERT whose `created_at` is given as Unix seconds and stored as PAY+ text ("2026-01-01 08:00:37")."""
    marks = ", ".join("datetime(?, 'unixepoch')" if c == "created_at" else "?" for c in columns)
    return f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 - fixed names


def _chunks(rows: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


_PLAIN_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def _same_amount(amount: Any) -> Decimal | None:
    """topups.amount for a hand-described row: its tuis amount when that is a plain number ("1,500" too)."""
    if not isinstance(amount, str):
        return None
    compact = amount.strip().replace(",", "").replace(" ", "")
    return Decimal(compact) if _PLAIN_NUMBER.match(compact) else None


__all__ = [
    "BAD_KINDS",
    "HELD_KINDS",
    "HOSTILE_KINDS",
    "METERS",
    "PAYPLUS_METADATA",
    "TOPUPS",
    "TUIS",
    "create_sample_app_db",
    "make_payplus_db",
    "sample_row_kinds",
    "sample_txn_id",
    "write_payplus_rows",
]
