"""The change-aware bulk writes on both databases, through one table's plan (the prices': a two-column key)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text

from camsync.store import bulk
from camsync.store.engine import Store
from camsync.store.smartup import ProductPrice
from camsync.store.smartup_writes import PRICES

T0 = datetime(2026, 6, 25, 10, 0, tzinfo=UTC)


def price(code: str, amount: str, kind: str = "R") -> dict[str, Any]:
    return {
        "product_id": None,
        "product_code": code,
        "price_type_code": kind,
        "price": Decimal(amount),
        "updated_at": T0,
    }


def write(store: Store, rows: list[dict[str, Any]], existing: set[Any]) -> list[bulk.Written]:
    with store.writer() as session:
        return bulk.upsert(session, PRICES, rows=rows, existing=existing)


def stored(store: Store) -> dict[tuple[str, str], tuple[int, Decimal]]:
    with store.session() as session:
        rows = session.execute(
            select(ProductPrice.product_code, ProductPrice.price_type_code, ProductPrice.id, ProductPrice.price)
        )
        return {(code, kind): (row_id, amount) for code, kind, row_id, amount in rows}


def test_new_rows_are_inserted_changed_ones_rewritten_and_unchanged_ones_left_alone(store: Store) -> None:
    first = write(store, [price("A", "1"), price("B", "2")], existing=set())
    assert sorted((key, inserted) for key, _, inserted in first) == [(("A", "R"), True), (("B", "R"), True)]
    # The caller's belief is wrong about B (stored) and C (new): the counts stay exact all the same.
    again = write(store, [price("A", "1"), price("B", "2.5"), price("C", "3")], existing={("A", "R"), ("C", "R")})
    assert sorted((key, inserted) for key, _, inserted in again) == [(("B", "R"), False), (("C", "R"), True)]
    rows = stored(store)
    assert {key: amount for key, (_, amount) in rows.items()} == {
        ("A", "R"): Decimal("1"),
        ("B", "R"): Decimal("2.5"),
        ("C", "R"): Decimal("3"),
    }
    assert all(rows[key][0] == row_id for key, row_id, _ in [*first, *again])  # the ids returned are the rows'
    assert write(store, [], existing=set()) == []


def test_insert_writes_rows_as_they_are_and_rows_among_reads_past_a_chunk(store: Store) -> None:
    rows = [price(f"P{i:04d}", str(i)) for i in range(2 * bulk.SQLITE_CHUNK + 5)]
    with store.writer() as session:
        bulk.insert(session, ProductPrice, columns=PRICES.columns, rows=rows)
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(ProductPrice)) == len(rows)
        sql = "SELECT product_code FROM product_prices WHERE price_type_code = {mark} AND product_code {among}"
        found = bulk.rows_among(session, sql, ["R"], [row["product_code"] for row in rows])
        assert sorted(code for (code,) in found) == [row["product_code"] for row in rows]
        assert bulk.rows_among(session, sql, ["R"], []) == []
        assert len(bulk.fetch_all(session, "SELECT id FROM product_prices WHERE price > {mark}", [9])) == len(rows) - 10


def test_temporary_keys_live_for_the_block(store: Store) -> None:
    for _ in range(2):  # twice in a row on the same connection
        with (
            store.writer() as session,
            bulk.temporary_keys(session, name="seen_keys", key="k", length=64, values=["a", "b", "c"]),
        ):
            assert session.execute(text("SELECT count(*) FROM seen_keys")).scalar() == 3


def test_only_postgresql_writes_batches_side_by_side(store: Store) -> None:
    assert bulk.parallel_writers(store, 3) == (3 if store.dialect == "postgresql" else 1)
