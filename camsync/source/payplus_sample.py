"""PAY+-shaped app databases for tests, the demo and the benchmark.

`PAYPLUS_METADATA` mirrors the PAY+ backend's `tuis`, `topups` and `meters` tables (without the foreign keys and
with a plain, non-unique index on `tuis.txn_id`, so that messy data — duplicate txn_ids, dangling meters — can
be written). `make_payplus_db` writes a few hand-described rows; `create_sample_app_db` writes a realistic
database of any size, quickly (executemany in big transactions).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

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
    tuis.amount text, default "1500"), `status` (USED), `meter` (meter number, default `M-<id>`; None: the topup
    points at a meter row that does not exist), `currency` (XAF; None: NULL), `topup` (False: no topup row),
    `created_at` (a datetime). A txn_id repeated over rows gets one topup row (the first row's).
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
                    "amount": None,
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

BAD_KINDS = (
    "bad_amount",
    "zero_amount",
    "negative_amount",
    "missing_topup",
    "missing_meter",
    "null_txn_id",
    "duplicate_txn_id",
)
_STATUS_WEIGHTS = (("USED", 80), ("READY", 15), ("EXPIRED", 5))
_CHUNK = 50_000


def create_sample_app_db(path: Path, *, topups: int, seed: int = 1, messy: bool = True) -> dict[str, int]:
    """Create a realistic PAY+ SQLite file at `path` with `topups` top-ups (one TUI each) and return counts per kind.

    Statuses are about 80 % USED, 15 % READY, 5 % EXPIRED. When `messy`, a few USED rows of each bad kind
    (`BAD_KINDS`) are mixed in; a duplicate txn_id spoils two rows (both counted). `pushable` counts the USED
    rows a correct reader accepts. The file must not exist yet.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} already exists")
    rng = random.Random(seed)
    kinds = _bad_rows(rng, topups) if messy else {}
    plan = _SamplePlan(rng, topups, kinds)
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            PAYPLUS_METADATA.create_all(conn)
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("PRAGMA synchronous = OFF")
            meter_sql = _insert_sql(METERS, ("id", "meter_number", "user_id", "created_at"))
            for chunk in _chunks(plan.meters(), _CHUNK):
                cursor.executemany(meter_sql, chunk)
            for table, columns, rows in plan.tables():
                for chunk in _chunks(rows, _CHUNK):
                    cursor.executemany(_insert_sql(table, columns), chunk)
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


def _bad_rows(rng: random.Random, topups: int) -> dict[int, str]:
    """Row numbers (1-based) turned bad, by kind: a few of each, spread over the whole table."""
    per_kind = max(1, min(5, topups // 100))
    wanted = per_kind * (len(BAD_KINDS) + 1)  # a duplicate spoils two rows
    if topups < wanted:
        return {}
    picked = rng.sample(range(2, topups + 1), wanted)
    kinds: dict[int, str] = {}
    for i, kind in enumerate(BAD_KINDS):
        for number in picked[i * per_kind : (i + 1) * per_kind]:
            kinds[number] = kind
    originals = picked[len(BAD_KINDS) * per_kind :]
    duplicates = [n for n, k in kinds.items() if k == "duplicate_txn_id"]
    for copy, original in zip(duplicates, originals, strict=True):
        kinds[original] = "duplicate_original"
        kinds[copy] = f"duplicate_of:{original}"
    return kinds


class _SamplePlan:
    """The rows of a sample database, generated lazily so a million rows never sit in memory at once."""

    def __init__(self, rng: random.Random, topups: int, kinds: dict[int, str]) -> None:
        self.rng = rng
        self.topups = topups
        self.kinds = kinds
        self.meter_count = max(1, topups // 4)
        self.statuses = [s for s, w in _STATUS_WEIGHTS for _ in range(w)]
        self.row_status = {n: "USED" for n in kinds}
        self.status_counts: dict[str, int] = {}

    def meters(self) -> Iterator[tuple[Any, ...]]:
        for meter_id in range(1, self.meter_count + 1):
            yield (meter_id, f"CW-{10_000_000 + meter_id}", meter_id, _stamp(meter_id // 10))

    def tables(self) -> Iterator[tuple[sa.Table, tuple[str, ...], Iterator[tuple[Any, ...]]]]:
        topup_columns = ("id", "txn_id", "user_id", "meter_id", "amount", "currency", "method", "status", "created_at")
        tui_columns = ("id", "topup_id", "txn_id", "meter_id", "user_id", "amount", "status", "created_at")
        yield TOPUPS, topup_columns, self._topups()
        yield TUIS, tui_columns, self._tuis()

    def _meter_of(self, number: int) -> int:
        return (number * 7919) % self.meter_count + 1

    def _amount(self, number: int) -> int:
        return 500 * (1 + (number * 31) % 40)

    def _topups(self) -> Iterator[tuple[Any, ...]]:
        for number in range(1, self.topups + 1):
            kind = self.kinds.get(number, "")
            if kind == "missing_topup" or kind.startswith("duplicate_of:"):
                continue
            meter_id = self._meter_of(number)
            if kind == "missing_meter":
                meter_id = self.meter_count + 1_000_000 + number
            method = "stripe" if number % 3 else "flutterwave"
            yield (
                number,
                _txn(number),
                meter_id,
                meter_id,
                self._amount(number),
                "XAF",
                method,
                "LOADED_TO_CARD",
                _stamp(number),
            )

    def _tuis(self) -> Iterator[tuple[Any, ...]]:
        for number in range(1, self.topups + 1):
            kind = self.kinds.get(number, "")
            status = "USED" if kind else self.rng.choice(self.statuses)
            self.status_counts[status] = self.status_counts.get(status, 0) + 1
            txn: str | None = _txn(number)
            amount = _amount_text(self._amount(number), number)
            if kind == "bad_amount":
                amount = ("1,5x", "abc", "", "15OO")[number % 4]
            elif kind == "zero_amount":
                amount = ("0", "0.00")[number % 2]
            elif kind == "negative_amount":
                amount = "-" + amount
            elif kind == "null_txn_id":
                txn = None
            elif kind.startswith("duplicate_of:"):
                txn = _txn(int(kind.split(":")[1]))
            topup_id = None if kind in ("missing_topup",) or kind.startswith("duplicate_of:") else number
            meter_id = self._meter_of(number)
            yield (number, topup_id, txn, meter_id, meter_id, amount, status, _stamp(number))

    def counts(self) -> dict[str, int]:
        bad: dict[str, int] = dict.fromkeys(BAD_KINDS, 0)
        for kind in self.kinds.values():
            bad["duplicate_txn_id" if kind.startswith("duplicate") else kind] += 1
        used = self.status_counts.get("USED", 0)
        return {
            "tuis": self.topups,
            "topups": self.topups - bad["missing_topup"] - bad["duplicate_txn_id"] // 2,
            "meters": self.meter_count,
            "used": used,
            "ready": self.status_counts.get("READY", 0),
            "expired": self.status_counts.get("EXPIRED", 0),
            **bad,
            "rejected": sum(bad.values()),
            "pushable": used - sum(bad.values()),
        }


def _txn(number: int) -> str:
    return f"PP-{number:09d}"


_EPOCH_SECONDS = int(_EPOCH.replace(tzinfo=UTC).timestamp())


def _stamp(number: int) -> int:
    return _EPOCH_SECONDS + 37 * number


def _amount_text(amount: int, number: int) -> str:
    """The amount as PAY+ stores it: "1500", "1,500" or "1500.00"."""
    style = number % 3
    if style == 1:
        return f"{amount:,}"
    if style == 2:
        return f"{amount}.00"
    return str(amount)
