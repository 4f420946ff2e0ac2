"""The sample PAY+ app database has the shapes the real backend writes (spec: payplus-app-db.md), and its
messy rows really hold what they claim: invalid UTF-8 bytes, disagreeing amounts, an absurd amount."""

from __future__ import annotations

import re
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from camsync.source.payplus_sample import (
    BAD_KINDS,
    HELD_KINDS,
    HOSTILE_KINDS,
    create_sample_app_db,
    make_payplus_db,
    sample_row_kinds,
    sample_txn_id,
)

HEX24 = re.compile(r"^[0-9a-f]{24}$")
TWO_DECIMALS = re.compile(r"^\d+\.\d{2}$")


def raw(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.text_factory = bytes  # read what is stored, valid UTF-8 or not
    return conn


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    path = tmp_path_factory.mktemp("sample") / "clean.db"
    return path, create_sample_app_db(path, topups=800, seed=5, messy=False)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    path = tmp_path_factory.mktemp("sample") / "hostile.db"
    return path, create_sample_app_db(path, topups=800, seed=5, hostile=True, absurd_amount_bytes=100_000)


def test_txn_ids_are_24_lowercase_hex(clean: tuple[Path, dict[str, int]]) -> None:
    path, counts = clean
    with raw(path) as conn:
        txns = [row[0].decode() for row in conn.execute("SELECT txn_id FROM tuis ORDER BY id")]
    assert len(txns) == len(set(txns)) == counts["tuis"]
    assert all(HEX24.match(txn) for txn in txns)
    assert sample_txn_id(1) == txns[0]


def test_amounts_have_two_decimals_some_a_fraction_and_match_the_topup(clean: tuple[Path, dict[str, int]]) -> None:
    path, counts = clean
    with raw(path) as conn:
        rows = conn.execute(
            "SELECT t.amount, typeof(t.amount), p.amount, t.status FROM tuis t JOIN topups p ON p.txn_id = t.txn_id"
        ).fetchall()
    assert len(rows) == counts["tuis"]
    for text, kind, topup_amount, _status in rows:
        assert kind == b"text" and TWO_DECIMALS.match(text.decode()), text
        assert Decimal(text.decode()) == Decimal(str(topup_amount))  # NUMERIC(12,2) holds the same money
    fractions = [text for text, _k, _p, status in rows if not text.endswith(b".00") and status == b"USED"]
    assert len(fractions) == counts["fractions"] > 0
    assert b"1250.50" in {text for text, *_ in rows} or any(text.endswith(b".50") for text in fractions)
    assert counts["pushable"] == counts["used"]  # fractions are good rows


def test_meter_numbers_are_text_and_some_start_with_zero(clean: tuple[Path, dict[str, int]]) -> None:
    path, _counts = clean
    with raw(path) as conn:
        meters = conn.execute("SELECT meter_number, typeof(meter_number) FROM meters").fetchall()
    assert {kind for _m, kind in meters} == {b"text"}
    assert all(len(m) == 11 and m.isdigit() for m, _k in meters)
    leading = [m for m, _k in meters if m.startswith(b"0")]
    assert 0 < len(leading) < len(meters)


def test_messy_rows_are_counted_by_kind_and_held_rows_disagree(tmp_path: Path) -> None:
    path = tmp_path / "messy.db"
    counts = create_sample_app_db(path, topups=800, seed=5)
    kinds = sample_row_kinds(topups=800, seed=5)
    assert counts["rejected"] == sum(counts[k] for k in BAD_KINDS) == sum(k in BAD_KINDS for k in kinds.values())
    assert counts["held"] == counts["amount_mismatch"] == sum(k in HELD_KINDS for k in kinds.values()) > 0
    assert counts["pushable"] == counts["used"] - counts["rejected"] - counts["held"]
    with raw(path) as conn:
        disagree = {
            row[0]
            for row in conn.execute(
                "SELECT t.id FROM tuis t JOIN topups p ON p.id = t.topup_id WHERE CAST(t.amount AS REAL) != p.amount"
                " AND t.amount GLOB '[0-9]*.[0-9][0-9]'"
            )
        }
    assert disagree == {n for n, k in kinds.items() if k == "amount_mismatch"}


def test_invalid_utf8_is_really_stored(hostile: tuple[Path, dict[str, int]]) -> None:
    path, counts = hostile
    kinds = sample_row_kinds(topups=800, seed=5, hostile=True, absurd_amount_bytes=100_000)
    assert all(counts[kind] > 0 for kind in HOSTILE_KINDS)
    with raw(path) as conn:
        txn_rows = conn.execute(
            "SELECT t.id, t.txn_id, typeof(t.txn_id), p.txn_id FROM tuis t JOIN topups p ON p.id = t.topup_id"
        ).fetchall()
        amounts = dict(conn.execute("SELECT id, amount FROM tuis").fetchall())
        amount_types = dict(conn.execute("SELECT id, typeof(amount) FROM tuis").fetchall())
        meters = conn.execute("SELECT t.id, m.meter_number FROM tuis t JOIN meters m ON m.id = t.meter_id").fetchall()

    def invalid(value: bytes) -> bool:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return True
        return False

    bad_txns = {tui_id for tui_id, txn, kind, _p in txn_rows if txn is not None and invalid(txn) and kind == b"text"}
    assert bad_txns == {n for n, k in kinds.items() if k == "invalid_utf8_txn_id"}
    assert all(txn == topup_txn for tui_id, txn, _kind, topup_txn in txn_rows if tui_id in bad_txns)  # still joins
    bad_amounts = {n for n, value in amounts.items() if isinstance(value, bytes) and invalid(value)}
    assert bad_amounts == {n for n, k in kinds.items() if k == "invalid_utf8_amount"}
    assert {amount_types[n] for n in bad_amounts} == {b"text", b"blob"}  # both ways a column can hold them
    bad_meters = {tui_id for tui_id, number in meters if invalid(number)}
    assert bad_meters == {n for n, k in kinds.items() if k == "invalid_utf8_meter"}
    with pytest.raises(sqlite3.OperationalError, match="UTF-8"):  # what a plain str reader meets
        sqlite3.connect(path).execute("SELECT amount FROM tuis").fetchall()


def test_the_absurd_amount_is_as_long_as_asked(hostile: tuple[Path, dict[str, int]]) -> None:
    path, counts = hostile
    assert counts["absurd_amount"] == 1
    with raw(path) as conn:
        (length,) = conn.execute("SELECT max(length(amount)) FROM tuis WHERE typeof(amount) = 'text'").fetchone()
    assert length == 100_000
    assert counts["rejected"] == sum(counts[k] for k in (*BAD_KINDS, *HOSTILE_KINDS, "absurd_amount"))


def test_the_default_sample_has_no_hostile_rows(clean: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    counts = create_sample_app_db(tmp_path / "messy.db", topups=300, seed=2)
    assert all(counts[kind] == 0 for kind in (*HOSTILE_KINDS, "absurd_amount"))
    assert clean[1]["rejected"] == clean[1]["held"] == 0


def test_hand_described_rows_get_the_same_topup_amount_and_may_hold_bytes(tmp_path: Path) -> None:
    path = tmp_path / "rows.db"
    make_payplus_db(
        path,
        [
            {"id": 1, "amount": "1250.50"},
            {"id": 2, "amount": "1,500"},
            {"id": 3, "amount": "abc"},
            {"id": 4, "amount": "2000.00", "topup_amount": Decimal("20000.00")},
            {"id": 5, "amount": b"15\xff0", "txn_id": b"TXN-\xfe5", "meter": "0123"},
        ],
    )
    with raw(path) as conn:
        topups = dict(conn.execute("SELECT txn_id, amount FROM topups").fetchall())
        stored = conn.execute("SELECT typeof(amount), typeof(txn_id) FROM tuis WHERE id = 5").fetchone()
        meter = conn.execute("SELECT meter_number FROM meters WHERE meter_number LIKE '0%'").fetchone()
    assert topups[b"TXN-1"] == 1250.5 and topups[b"TXN-2"] == 1500 and topups[b"TXN-3"] is None
    assert topups[b"TXN-4"] == 20000
    assert stored == (b"blob", b"blob") and meter == (b"0123",)
