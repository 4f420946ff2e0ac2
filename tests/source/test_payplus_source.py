"""The read-only PAY+ reader: read-only proof, reject reasons, renamed names, batching, concurrency, PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pg_support import drop_pg_schema, new_pg_schema

from camsync.errors import ConfigError
from camsync.settings import load_settings
from camsync.source.payplus import PayplusSource, SourceNames, parse_amount
from camsync.source.payplus_sample import (
    BAD_KINDS,
    HELD_KINDS,
    create_sample_app_db,
    make_payplus_db,
    sample_row_kinds,
    write_payplus_rows,
)
from camsync.source.payplus_sample_rows import REJECTED_KINDS
from camsync.sync.luna.scan import LOOKBACK, hold_reason


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def app_db(tmp_path: Path) -> Path:
    path = tmp_path / "app" / "camwater.db"
    path.parent.mkdir()
    make_payplus_db(path, [{"id": i, "amount": "1,500" if i % 2 else "2000.00"} for i in range(1, 8)])
    return path


def read_all(path: Path, **kwargs: Any) -> list[Any]:
    with PayplusSource(sqlite_url(path)) as source:
        return list(source.scan(**kwargs))


def fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


# --- read-only ---------------------------------------------------------------------------------------------------


def test_reading_changes_nothing_and_leaves_no_journal(app_db: Path) -> None:
    before = fingerprint(app_db)
    with PayplusSource(sqlite_url(app_db)) as source:
        source.check()
        assert source.max_tui_id() == 7
        assert len(list(source.scan(batch_size=3))) == 7
        with pytest.raises(sa.exc.OperationalError, match="readonly"), source.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM tuis"))
        with source.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
    assert fingerprint(app_db) == before
    assert sorted(p.name for p in app_db.parent.iterdir()) == ["camwater.db"]


def test_missing_file_is_a_config_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "camwater.db"
    with pytest.raises(ConfigError) as info:
        PayplusSource(sqlite_url(missing))
    assert "APP_DB_URL" in str(info.value)
    assert not missing.exists() and not missing.parent.exists()


def test_not_a_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="APP_DB_URL"):
        PayplusSource("::not a url::")


# --- rows and reject reasons -------------------------------------------------------------------------------------


def test_a_good_row(app_db: Path) -> None:
    row = read_all(app_db)[0]
    assert (row.tui_id, row.txn_id, row.status, row.meter_number) == (1, "TXN-1", "USED", "M-1")
    assert (row.amount, row.amount_raw, row.currency, row.reject_reason) == (Decimal("1500"), "1,500", "XAF", None)
    assert row.created_at and row.created_at.startswith("2026-01-01")


def test_every_reject_reason(tmp_path: Path) -> None:
    path = tmp_path / "messy.db"
    make_payplus_db(
        path,
        [
            {"id": 1, "amount": "1,5x"},
            {"id": 2, "amount": "0"},
            {"id": 3, "amount": "-1,500"},
            {"id": 4, "topup": False},
            {"id": 5, "meter": None},
            {"id": 6, "txn_id": None},
            {"id": 7, "txn_id": "DUP"},
            {"id": 8, "txn_id": ""},
            {"id": 9, "txn_id": "DUP", "status": "READY"},
            {"id": 10, "amount": None},
            {"id": 11, "status": "READY"},
        ],
    )
    reasons = {row.tui_id: row.reject_reason for row in read_all(path)}
    assert reasons == {
        1: "amount '1,5x' does not parse",
        2: "amount 0 is not positive",
        3: "amount -1,500 is not positive",
        4: "no topup row with txn_id 'TXN-4'",
        5: "no meter row with id 900000005 (topup 'TXN-5')",
        6: "txn_id is NULL",
        7: "txn_id 'DUP' appears on several tuis rows (ids 7, 9)",
        8: "txn_id is empty",
        9: "txn_id 'DUP' appears on several tuis rows (ids 7, 9)",
        10: "amount is NULL",
        11: None,
    }


def test_duplicates_are_found_outside_the_batch(tmp_path: Path) -> None:
    path = tmp_path / "dup.db"
    make_payplus_db(path, [{"id": 1, "txn_id": "SAME"}, {"id": 2}, {"id": 3, "txn_id": "SAME"}])
    rows = read_all(path, after_id=2)
    assert [(r.tui_id, r.reject_reason) for r in rows] == [(3, "txn_id 'SAME' appears on several tuis rows (ids 1, 3)")]


def test_missing_currency_falls_back_to_luna_currency(tmp_path: Path) -> None:
    path = tmp_path / "cur.db"
    make_payplus_db(path, [{"id": 1, "currency": None}, {"id": 2, "currency": "EUR"}])
    settings = load_settings({"APP_DB_URL": sqlite_url(path), "LUNA_CURRENCY": "XOF"}, None)
    with PayplusSource.from_settings(settings) as source:
        assert [r.currency for r in source.scan()] == ["XOF", "EUR"]


@pytest.mark.parametrize(
    ("raw", "amount", "reason"),
    [
        ("1500", Decimal("1500"), None),
        ("1,500", Decimal("1500"), None),
        ("1500.00", Decimal("1500.00"), None),
        (" 1 500 ", Decimal("1500"), None),
        ("1\u00a0500.50", Decimal("1500.50"), None),
        ("12,345,678.5", Decimal("12345678.5"), None),
        (Decimal("250.00"), Decimal("250.00"), None),
        (750, Decimal("750"), None),
        ("1,5", None, "amount '1,5' does not parse"),
        ("1,50,000", None, "amount '1,50,000' does not parse"),
        ("1,500 000", None, "amount '1,500 000' does not parse"),
        ("1e3", None, "amount '1e3' does not parse"),
        ("NaN", None, "amount 'NaN' does not parse"),
        ("", None, "amount '' does not parse"),
        ("abc", None, "amount 'abc' does not parse"),
        ("0", Decimal("0"), "amount 0 is not positive"),
        ("0.00", Decimal("0.00"), "amount 0.00 is not positive"),
        ("-5", Decimal("-5"), "amount -5 is not positive"),
        (None, None, "amount is NULL"),
    ],
)
def test_amount_parsing(raw: Any, amount: Decimal | None, reason: str | None) -> None:
    assert parse_amount(raw) == (amount, reason)


@pytest.mark.parametrize(
    ("raw", "currency", "amount", "reason"),
    [
        ("1.500", "XAF", None, "amount '1.500' is ambiguous in XAF (a thousands dot, or a decimal point?)"),
        ("1250.50", "XAF", Decimal("1250.50"), None),
        ("1,500.5", "xaf", Decimal("1500.5"), None),
        (Decimal("12.25"), "XAF", Decimal("12.25"), None),
        (1250.5, "XAF", Decimal("1250.5"), None),
        (b"1250.50", "XAF", Decimal("1250.50"), None),
        ("9" * 33, "XAF", None, "amount text is 33 characters long (at most 32): not parsed"),
        pytest.param(
            "1" * 10_000_000,
            "XAF",
            None,
            "amount text is 10000000 characters long (at most 32): not parsed",
            id="10MB-text",
        ),
        pytest.param(10**5000, "XAF", None, "amount has more than 30 digits: not parsed", id="5000-digit-int"),
        ("1500.00", "XAF", Decimal("1500.00"), None),
        ("1,500", "XAF", Decimal("1500"), None),
        (Decimal("1500.000"), "XAF", Decimal("1500.000"), None),
        ("1.500", "EUR", Decimal("1.500"), None),
        ("1500.50", "EUR", Decimal("1500.50"), None),
    ],
)
def test_amounts_are_exact_fractions_included_and_huge_texts_refused_unparsed(
    raw: Any, currency: str, amount: Any, reason: Any
) -> None:
    assert parse_amount(raw, currency=currency) == (amount, reason)


def test_an_ambiguous_xaf_amount_is_rejected_with_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "dots.db"
    make_payplus_db(path, [{"id": 1, "amount": "1.500"}, {"id": 2, "amount": "1.500", "currency": "EUR"}])
    rows = read_all(path)
    assert rows[0].amount is None and "ambiguous in XAF" in (rows[0].reject_reason or "")
    assert (rows[1].amount, rows[1].reject_reason) == (Decimal("1.500"), None)


# --- scan semantics --------------------------------------------------------------------------------------------


def test_after_id_and_ids(app_db: Path) -> None:
    assert [r.tui_id for r in read_all(app_db, after_id=5)] == [6, 7]
    assert [r.tui_id for r in read_all(app_db, after_id=5, ids=[6, 2, 99, 2])] == [2, 6, 7]
    assert [r.tui_id for r in read_all(app_db, after_id=7, ids=[1, 3])] == [1, 3]
    assert read_all(app_db, after_id=7) == []
    assert [r.tui_id for r in read_all(app_db, batch_size=2)] == list(range(1, 8))
    assert [r.tui_id for r in read_all(app_db, after_id=3, ids=[1, 2], batch_size=1)] == [1, 2, 4, 5, 6, 7]


@pytest.mark.parametrize("batch_size", [1, 2, 3, 100])
def test_a_txn_with_several_topup_rows_is_rejected_and_batches_go_on(tmp_path: Path, batch_size: int) -> None:
    path = tmp_path / "loose.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE tuis (id INTEGER PRIMARY KEY, txn_id TEXT, amount TEXT, status TEXT, created_at TEXT);
            CREATE TABLE topups (id INTEGER PRIMARY KEY, txn_id TEXT, meter_id INTEGER, currency TEXT);
            CREATE TABLE meters (id INTEGER PRIMARY KEY, meter_number TEXT);
            INSERT INTO meters VALUES (1, 'M1'), (2, 'M2');
            INSERT INTO topups VALUES (1, 'T1', 1, 'XAF'), (2, 'T2', 1, 'XAF'), (3, 'T2', 2, 'XAF'),
                                      (4, 'T3', 1, 'XAF'), (5, 'T4', 2, 'XAF');
            INSERT INTO tuis VALUES (1, 'T1', '10', 'USED', NULL), (2, 'T2', '10', 'USED', NULL),
                                    (3, 'T3', '10', 'USED', NULL), (4, 'T4', '10', 'USED', NULL);
            """
        )
    conn.close()
    rows = read_all(path, batch_size=batch_size)
    assert [r.tui_id for r in rows] == [1, 2, 3, 4]
    if batch_size > 1:
        assert rows[1].reject_reason == "txn_id 'T2' has several topup rows"
    assert [r.reject_reason for r in rows if r.tui_id != 2] == [None, None, None]


def test_every_status_is_read(tmp_path: Path) -> None:
    path = tmp_path / "st.db"
    make_payplus_db(path, [{"id": 1, "status": "READY"}, {"id": 2}, {"id": 3, "status": "EXPIRED"}])
    assert [r.status for r in read_all(path)] == ["READY", "USED", "EXPIRED"]


def test_empty_table(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    make_payplus_db(path, [])
    with PayplusSource(sqlite_url(path)) as source:
        assert source.max_tui_id() == 0
        assert list(source.scan()) == []


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
def test_a_writer_commits_while_a_scan_is_in_progress(app_db: Path, journal_mode: str) -> None:
    with sqlite3.connect(app_db) as conn:
        conn.execute(f"PRAGMA journal_mode = {journal_mode}")
    conn.close()
    with PayplusSource(sqlite_url(app_db)) as source:
        rows = source.scan(batch_size=2)
        first = [next(rows), next(rows), next(rows)]
        writer = sqlite3.connect(app_db, timeout=0)  # no waiting: a held lock would fail at once
        try:
            writer.execute("INSERT INTO topups (id, txn_id, meter_id, currency) VALUES (100, 'NEW', 1, 'XAF')")
            writer.execute("INSERT INTO tuis (id, txn_id, amount, status) VALUES (100, 'NEW', '900', 'USED')")
            writer.execute("UPDATE tuis SET status = 'EXPIRED' WHERE id = 7")
            writer.commit()
        finally:
            writer.close()
        rest = list(rows)
    assert [r.tui_id for r in first + rest] == [1, 2, 3, 4, 5, 6, 7, 100]
    assert rest[-2].status == "EXPIRED" and rest[-1].amount == Decimal("900")


# --- names -----------------------------------------------------------------------------------------------------


def make_renamed_db(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE card_writes (id INTEGER PRIMARY KEY, txn TEXT, amount_text TEXT, state TEXT, created_at TEXT);
            CREATE TABLE payments (id INTEGER PRIMARY KEY, txn_id TEXT, meter_id INTEGER, currency TEXT);
            CREATE TABLE water_meters (id INTEGER PRIMARY KEY, serial TEXT);
            INSERT INTO water_meters VALUES (1, 'SER-1');
            INSERT INTO payments VALUES (1, 'T1', 1, 'XAF');
            INSERT INTO card_writes VALUES (1, 'T1', '2,500', 'USED', '2026-02-01');
            """
        )
    conn.close()


def test_renamed_tables_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "renamed.db"
    make_renamed_db(path)
    settings = load_settings(
        {
            "APP_DB_URL": sqlite_url(path),
            "APP_DB_TUIS_TABLE": "card_writes",
            "APP_DB_TOPUPS_TABLE": "payments",
            "APP_DB_METERS_TABLE": "water_meters",
            "APP_DB_COLUMNS": "card_writes.txn_id=txn, tuis.amount=amount_text,tuis.status=state,"
            "meters.meter_number=serial",
        },
        None,
    )
    with PayplusSource.from_settings(settings) as source:
        source.check()
        [row] = list(source.scan())
    assert (row.txn_id, row.amount, row.status, row.meter_number, row.reject_reason) == (
        "T1",
        Decimal("2500"),
        "USED",
        "SER-1",
        None,
    )


def test_missing_table_and_column_are_named(app_db: Path) -> None:
    names = SourceNames(meters="gauges", columns={"tuis.amount": "amount_text"})
    with PayplusSource(sqlite_url(app_db), names=names) as source, pytest.raises(ConfigError) as info:
        source.check()
    assert "table gauges" in info.value.reason and "column tuis.amount_text" in info.value.reason


@pytest.mark.parametrize(
    "env",
    [
        {"APP_DB_TUIS_TABLE": 't"; DROP TABLE topups;--'},
        {"APP_DB_METERS_TABLE": "meters; DELETE FROM tuis"},
        {"APP_DB_COLUMNS": 'tuis.amount=amount"--'},
        {"APP_DB_COLUMNS": "tuis.nonsense=x"},
        {"APP_DB_COLUMNS": "amount_text"},
    ],
)
def test_unsafe_or_unknown_names_are_refused_before_any_query(app_db: Path, env: dict[str, str]) -> None:
    before = fingerprint(app_db)
    settings = load_settings({"APP_DB_URL": sqlite_url(app_db), **env}, None)
    with pytest.raises(ConfigError):
        PayplusSource.from_settings(settings)
    assert fingerprint(app_db) == before
    assert len(read_all(app_db)) == 7


# --- the sample ------------------------------------------------------------------------------------------------


def test_sample_counts_match_what_the_reader_finds(tmp_path: Path) -> None:
    """Derived from the sample's own metadata: fractions ("1250.50") are good rows, read exactly; rows whose two
    amounts disagree are held for review; the bad ones are rejected with their reasons."""
    path = tmp_path / "sample.db"
    counts = create_sample_app_db(path, topups=2000, seed=7)
    kinds = sample_row_kinds(topups=2000, seed=7)
    rows = read_all(path)
    assert len(rows) == counts["tuis"] == 2000
    assert sum(r.status == "USED" for r in rows) == counts["used"]
    assert sum(r.status == "READY" for r in rows) == counts["ready"] > 0
    assert sum(r.status == "EXPIRED" for r in rows) == counts["expired"] > 0
    bad = {n for n, kind in kinds.items() if kind in BAD_KINDS}
    held = {n for n, kind in kinds.items() if kind in HELD_KINDS}
    assert len(bad) == counts["rejected"] == 40 and len(held) == counts["held"] > 0
    refused = {r.tui_id for r in rows if r.reject_reason is not None}
    assert refused == bad
    used = [r for r in rows if r.status == "USED" and r.reject_reason is None]
    holding = {r.tui_id for r in used if hold_reason(r, Decimal(1_000_000)) is not None}
    assert holding == held
    pushable = [r for r in used if r.tui_id not in held]
    assert len(pushable) == counts["pushable"] == counts["used"] - len(bad) - len(held)
    fractions = [r for r in pushable if r.amount != r.amount.to_integral_value()]
    assert len(fractions) == counts["fractions"] > 0
    assert all(r.amount == Decimal(r.amount_raw) for r in pushable)
    reasons = " | ".join(r.reject_reason or "" for r in rows)
    for fragment in ("does not parse", "is not positive", "no topup row", "no meter row", "NULL", "several"):
        assert fragment in reasons
    assert create_sample_app_db(tmp_path / "clean.db", topups=500, messy=False)["rejected"] == 0


def test_rows_that_are_not_utf8_or_absurd_are_rejected_alone_and_every_other_row_is_read(tmp_path: Path) -> None:
    path = tmp_path / "hostile.db"
    counts = create_sample_app_db(path, topups=600, seed=3, hostile=True, absurd_amount_bytes=10_000_000)
    kinds = sample_row_kinds(topups=600, seed=3, hostile=True, absurd_amount_bytes=10_000_000)
    rows = read_all(path)
    assert len(rows) == 600
    refused = {r.tui_id: r.reject_reason for r in rows if r.reject_reason is not None}
    expected = {n: kind for n, kind in kinds.items() if kind in REJECTED_KINDS}
    assert set(refused) == set(expected) and len(refused) == counts["rejected"]
    by_kind = {kind: [refused[n] for n, k in expected.items() if k == kind] for kind in set(expected.values())}
    assert all(reason.startswith("txn_id is not valid UTF-8: b'") for reason in by_kind["invalid_utf8_txn_id"])
    assert all(reason.startswith("meter_number is not valid UTF-8: b'") for reason in by_kind["invalid_utf8_meter"])
    assert all(reason.startswith("amount is not valid UTF-8: b'") for reason in by_kind["invalid_utf8_amount"])
    assert all("\\x" in reason for reason in by_kind["invalid_utf8_txn_id"])  # the bytes shown escaped
    assert by_kind["absurd_amount"] == ["amount text is 10000000 characters long (at most 32): not parsed"]
    good = [r for r in rows if r.status == "USED" and r.reject_reason is None and r.tui_id not in kinds]
    assert len(good) == counts["pushable"]


@pytest.mark.slow
def test_a_million_rows_are_written_fast_and_nothing_new_scans_in_milliseconds(tmp_path: Path) -> None:
    import time

    path = tmp_path / "big.db"
    started = time.perf_counter()
    counts = create_sample_app_db(path, topups=1_000_000)
    assert time.perf_counter() - started < 45
    assert counts["tuis"] == 1_000_000
    with PayplusSource(sqlite_url(path)) as source:
        source.check()
        top = source.max_tui_id()
        started = time.perf_counter()
        assert list(source.scan(after_id=top)) == []
        assert source.max_tui_id() == top
        assert time.perf_counter() - started < 0.2
        started = time.perf_counter()  # what a push with nothing new reads: the lookback window below the cursor
        assert len(list(source.scan(after_id=top - LOOKBACK))) == LOOKBACK
        assert time.perf_counter() - started < 0.5


# --- PostgreSQL ------------------------------------------------------------------------------------------------


def test_postgresql_source_is_read_only() -> None:
    schema, url = new_pg_schema()
    try:
        engine = sa.create_engine(url)
        write_payplus_rows(engine, [{"id": 1}, {"id": 2, "amount": "0"}, {"id": 3, "txn_id": None}])
        engine.dispose()
        with PayplusSource(url.replace("postgresql+psycopg://", "postgresql://")) as source:
            source.check()
            assert source.max_tui_id() == 3
            rows = list(source.scan(batch_size=2))
            assert [(r.tui_id, r.reject_reason) for r in rows] == [
                (1, None),
                (2, "amount 0 is not positive"),
                (3, "txn_id is NULL"),
            ]
            assert rows[0].amount == Decimal("1500") and rows[0].meter_number == "M-1"
            with pytest.raises(sa.exc.InternalError, match="read-only"), source.engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM tuis"))
    finally:
        drop_pg_schema(schema)


def test_memory_urls_are_refused_and_file_uris_are_opened_read_only(app_db: Path) -> None:
    folder = app_db.parent
    for url in ("sqlite://", "sqlite:///:memory:", f"sqlite:///file:{folder}/x.db?mode=rwc&uri=true"):
        with pytest.raises(ConfigError):
            PayplusSource(url)
    assert os.listdir(folder) == ["camwater.db"]
    with PayplusSource(f"sqlite:///file:{app_db}?mode=rw&uri=true") as source:
        assert source.max_tui_id() == 7
        with pytest.raises(sa.exc.OperationalError, match="readonly"), source.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM tuis"))


def test_postgresql_ids_committed_out_of_order_are_all_discovered(store) -> None:
    from camsync.store import luna_admin
    from camsync.store.base import utcnow
    from camsync.sync.luna.scan import discover

    schema, url = new_pg_schema()
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE meters (id serial PRIMARY KEY, meter_number varchar(64))"))
            conn.execute(sa.text("CREATE TABLE topups (id serial PRIMARY KEY, txn_id varchar(64), meter_id int)"))
            conn.execute(
                sa.text(
                    "CREATE TABLE tuis (id serial PRIMARY KEY, txn_id varchar(64), amount varchar(32),"
                    " status varchar(24), created_at timestamp)"
                )
            )
            conn.execute(sa.text("INSERT INTO meters (meter_number) VALUES ('M1')"))
            conn.execute(sa.text("INSERT INTO topups (txn_id, meter_id) VALUES ('A', 1), ('B', 1)"))
        with engine.connect() as slow, engine.connect() as fast:
            slow_tx = slow.begin()
            slow.execute(sa.text("INSERT INTO tuis (txn_id, amount, status) VALUES ('A', '100', 'USED')"))  # id 1
            with fast.begin():
                fast.execute(sa.text("INSERT INTO tuis (txn_id, amount, status) VALUES ('B', '100', 'USED')"))  # id 2
            with PayplusSource(url) as source:
                source.check()
                first = discover(store, source, actor="t", now=utcnow())
                slow_tx.commit()
                second = discover(store, source, actor="t", now=utcnow())
        assert (first.discovered, first.last_id, second.discovered) == (1, 2, 1)
        with store.session() as session:
            assert {row["txn_id"]: row["tui_id"] for row in luna_admin.list_txns(session)} == {"A": 1, "B": 2}
    finally:
        engine.dispose()
        drop_pg_schema(schema)
