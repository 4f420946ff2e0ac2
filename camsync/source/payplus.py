"""The read-only reader of the PAY+ app database: TUIs joined to their top-up and meter.

SQLite is opened through a `mode=ro` URI (never created, never written, its journal mode untouched); any other
database runs every transaction READ ONLY. Rows are read by id in short transactions of one batch each, so the
app's writers are never held up. Bad rows are never skipped: they come out with a `reject_reason`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from camsync.errors import CamsyncError
from camsync.logs import get_logger
from camsync.settings import Settings, mask, normalize_db_url
from camsync.source.payplus_db import (
    AppTable,
    SourceNames,
    joined_query,
    read_only_engine,
    reflect,
    shared_in_range,
    shared_in_table,
    shared_txn_ids,
)
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

_ODD_TYPES = frozenset({bytes, bytearray, memoryview, Undecodable})  # values to decode before reading a row
_LONG_RANGE = 50_000  # a scan over more ids than this finds the shared txn_ids of the whole table first
# The values of a joined record, in the order of `joined_query`.
_FIELDS = (
    "id", "txn_id", "status", "amount", "created_at", "topup_txn_id", "meter_id", "currency", "topup_amount",
    "meter_row_id", "meter_number",
)  # fmt: skip


class SourceUnavailable(CamsyncError):
    """The PAY+ app database cannot be read right now."""


class SourceRow(NamedTuple):
    """One `tuis` row joined to its topup and meter; `reject_reason` is None when it can be pushed (a tuple: a
    scan makes one per row of the app DB)."""

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


class PayplusSource:
    """The PAY+ app database, read-only."""

    def __init__(self, url: str, *, names: SourceNames | None = None, default_currency: str = "XAF") -> None:
        self.names = names or SourceNames()
        self.default_currency = default_currency
        self.url = normalize_db_url(url)
        self.engine = read_only_engine(self.url)
        self._tables: dict[str, AppTable] | None = None

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

    def _schema(self) -> dict[str, AppTable]:
        if self._tables is None:
            with self._reading() as conn:
                self._tables = reflect(conn, self.names)
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
        A long range (a first scan, a sweep) first finds the txn_ids shared by several rows of the whole table in
        one pass over its index, instead of once per batch.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        earlier = sorted({int(i) for i in ids if int(i) <= after_id})
        for start in range(0, len(earlier), batch_size):
            yield from self._batch(ids=earlier[start : start + batch_size])[0]
        known = self._shared_everywhere() if self.max_tui_id() - after_id > _LONG_RANGE else None
        cursor = after_id
        while True:
            rows, fetched = self._batch(after_id=cursor, limit=batch_size, known=known)
            if fetched < batch_size:
                yield from rows
                return
            if len(rows) > 1:  # the last row's joined records may go on past the limit: read it again next time
                rows.pop()
            yield from rows
            cursor = rows[-1].tui_id

    def _shared_everywhere(self) -> _SharedTxnIds:
        """The txn_ids carried by several rows of the whole table, as of its highest id now."""
        tuis = self._schema()["tuis"]
        with self._reading() as conn:
            upto = int(conn.execute(sa.select(sa.func.max(tuis.columns["id"]))).scalar() or 0)
            return _SharedTxnIds(upto, shared_in_table(conn, tuis))

    def _batch(
        self,
        *,
        after_id: int | None = None,
        limit: int | None = None,
        ids: Sequence[int] = (),
        known: _SharedTxnIds | None = None,
    ) -> tuple[list[SourceRow], int]:
        """The rows of one batch, read in one short transaction, and how many joined records were fetched."""
        tables = self._schema()
        query = joined_query(tables)
        tui_id = tables["tuis"].columns["id"]
        query = query.where(tui_id.in_(ids)) if after_id is None else query.where(tui_id > after_id).limit(limit)
        try:
            records, shared = self._fetch(query.order_by(tui_id), after_id, known, decode_bytes=False)
        except _NotUtf8:  # a value of this batch is not UTF-8: read it again, bytes kept, to refuse that row only
            records, shared = self._fetch(query.order_by(tui_id), after_id, known, decode_bytes=True)
        log.debug("app_db_batch", "read a batch of the PAY+ app DB", after_id=after_id, ids=len(ids), rows=len(records))
        rows: dict[int, SourceRow] = {}
        has_topup_amount = "amount" in tables["topups"].columns
        for record in records:
            if record[0] in rows:  # topups.txn_id is not unique here: which meter to credit is unclear
                rows[record[0]] = rows[record[0]]._replace(reject_reason=_several_topups(record[1], shared))
            else:
                rows[record[0]] = self._guarded_row(record, shared, has_topup_amount)
        return list(rows.values()), len(records)

    def _fetch(
        self, query: sa.Select[Any], after_id: int | None, known: _SharedTxnIds | None, *, decode_bytes: bool
    ) -> tuple[Sequence[Any], dict[str, list[int]]]:
        """The joined records of `query` and the shared txn_ids among them, in one short transaction."""
        tuis = self._schema()["tuis"]
        with self._reading(decode_bytes=decode_bytes) as conn:
            records = conn.execute(query).all()
            if not records:
                return records, {}
            if after_id is not None and known is not None and records[-1][0] <= known.upto:
                return records, known.owners
            if after_id is not None:  # a range: one query finds its shared txn_ids, in the database
                return records, shared_in_range(conn, tuis, after_id, records[-1][0])
            txn_ids = {t for r in records if _plain_text(t := text_value(r[1]))}
            return records, shared_txn_ids(conn, tuis, txn_ids)

    def _guarded_row(self, record: Any, shared: dict[str, list[int]], has_topup_amount: bool) -> SourceRow:
        """The row, or, when it cannot be read, a reject naming it: no single row can fail a scan."""
        try:
            if not _ODD_TYPES.isdisjoint(map(type, record)):
                values = tuple(text_value(value) for value in record)  # bytes read as text where they are UTF-8
                named = dict(zip(_FIELDS, values, strict=True))
                return self._row(values, shared, has_topup_amount, undecodable_column(named))
            return self._row(record, shared, has_topup_amount, None)
        except Exception as exc:  # a value of a type or size nothing expected: this row only is refused
            reason = f"row cannot be read: {type(exc).__name__}: {str(exc)[:120]}"
            log.warning("app_db_row", f"tuis.id={record[0]} {reason}")
            return SourceRow(int(record[0]), None, "", None, None, None, self.default_currency, None, reason)

    def _row(
        self, record: Sequence[Any], shared: dict[str, list[int]], has_topup_amount: bool, undecodable: str | None
    ) -> SourceRow:
        """One joined record (its values in the order of `_FIELDS`) as a row."""
        (tui_id, txn_id, status, amount_value, created_at, topup_txn_id, meter_id, currency_value) = record[:8]
        topup_amount_value, meter_row_id, meter_number = record[8:]
        if isinstance(currency_value, Undecodable) or not currency_value:
            currency = self.default_currency
        else:
            currency = str(currency_value).strip()[:8] or self.default_currency
        amount, amount_reason = parse_amount(amount_value, currency=currency)
        topup_amount = None if topup_amount_value is None else parse_plain_amount(topup_amount_value)[0]
        if undecodable is None:
            reason = _reject_reason(txn_id, topup_txn_id, meter_id, meter_row_id, meter_number, shared, amount_reason)
        else:
            reason = undecodable
        return SourceRow(
            tui_id=int(tui_id),
            txn_id=None if txn_id is None else str(txn_id),
            status=str(status or ""),
            meter_number=None if meter_number is None else str(meter_number),
            amount=amount if amount_reason is None and undecodable is None else None,
            amount_raw=None if amount_value is None else str(amount_value)[:MAX_AMOUNT_TEXT],
            currency=currency,
            created_at=created_at if created_at is None or type(created_at) is str else _text_time(created_at),
            reject_reason=reason,
            topup_amount=topup_amount,
            has_topup_amount=has_topup_amount,
        )

    @contextmanager
    def _reading(self, *, decode_bytes: bool = False) -> Iterator[Connection]:
        """A connection in one short read-only transaction; driver errors become SourceUnavailable.

        SQLite text is decoded by the driver as UTF-8 (fast; a value that is not raises `_NotUtf8`), or with
        `decode_bytes` by `decode_text`, which turns such a value into an `Undecodable` naming its bytes.
        """
        try:
            with self.engine.connect() as conn:
                if self.engine.dialect.name == "sqlite":
                    conn.connection.driver_connection.text_factory = decode_text if decode_bytes else str  # type: ignore[union-attr]
                with conn.begin():
                    yield conn
        except DBAPIError as exc:
            if _not_utf8(exc):
                raise _NotUtf8 from None
            raise _unavailable(self.url, exc) from None


class _NotUtf8(Exception):
    """A SQLite text value that is not UTF-8 (read again with `decode_bytes`)."""


def _not_utf8(exc: DBAPIError) -> bool:
    return "could not decode to utf-8" in str(exc.orig).lower()


@dataclass(frozen=True)
class _SharedTxnIds:
    """The txn_ids carried by several rows (with those rows' ids), as found over every id up to `upto`."""

    upto: int
    owners: dict[str, list[int]]


def _unavailable(url: str, exc: DBAPIError) -> SourceUnavailable:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
    return SourceUnavailable(
        f"cannot read the PAY+ app database at {mask(url)}: {reason}",
        "Check APP_DB_URL and that the database is reachable",
    )


def _reject_reason(
    txn_id: Any,
    topup_txn_id: Any,
    meter_id: Any,
    meter_row_id: Any,
    meter_number: Any,
    shared: dict[str, list[int]],
    amount_reason: str | None,
) -> str | None:
    if txn_id is None:
        return "txn_id is NULL"
    text = str(txn_id)
    if text.strip() == "":
        return "txn_id is empty"
    if text in shared:
        ids = ", ".join(str(i) for i in shared[text])
        return f"txn_id {txn_id!r} appears on several tuis rows (ids {ids})"
    if topup_txn_id is None:
        return f"no topup row with txn_id {txn_id!r}"
    if meter_id is None:
        return f"topup {txn_id!r} has no meter_id"
    if meter_row_id is None:
        return f"no meter row with id {meter_id} (topup {txn_id!r})"
    if meter_number is None or not str(meter_number).strip():
        return f"meter {meter_row_id} has no meter_number"
    return amount_reason


def _several_topups(txn_id: str, shared: dict[str, list[int]]) -> str:
    if str(txn_id) in shared:
        ids = ", ".join(str(i) for i in shared[str(txn_id)])
        return f"txn_id {txn_id!r} appears on several tuis rows (ids {ids})"
    return f"txn_id {txn_id!r} has several topup rows"


def _plain_text(value: Any) -> bool:
    """Whether a txn_id can be compared as text (not NULL, not empty, valid UTF-8)."""
    return isinstance(value, str) and value != "" and not isinstance(value, Undecodable)


def _text_time(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
