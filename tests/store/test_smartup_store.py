"""SmartUp tables and their change-aware upserts, on SQLite and PostgreSQL, with hand-made rows."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text

from camsync.store import smartup_reads as reads
from camsync.store import smartup_writes as writes
from camsync.store.engine import Store
from camsync.store.runs import create_run, finish_run, last_cursor_run, last_full_refresh, recent_run_details
from camsync.store.smartup import Order, OrderLine, Product, ProductPrice, text_limits

T0 = datetime(2026, 6, 25, 10, 0, tzinfo=UTC)


def product(pid: str, *, code: str | None = None, name: str = "Water", digest: str | None = None, **extra: Any) -> dict:
    row = {
        "external_id": pid,
        "code": code or f"C{pid}",
        "name": name,
        "short_name": None,
        "article_code": None,
        "measure_code": "pc",
        "barcodes": extra.pop("barcodes", []),
        "state": "A",
        "active": True,
        "group_codes": ["G1"],
        "weight_netto": Decimal("1.5"),
        "weight_brutto": None,
        "litr": None,
        "box_type_code": None,
        "box_quant": Decimal("12"),
        "producer_code": None,
        "gtin": None,
        "ikpu": None,
        "raw": json.dumps({"product_id": pid, "name": name}),
        "content_hash": digest or f"h-{pid}-{name}"[:32],
    }
    row.update(extra)
    return row


def order(deal_id: str, *, digest: str = "v1", status: str = "B#N") -> dict:
    return {
        "source_external_id": deal_id,
        "external_id": None,
        "filial_id": "101",
        "filial_code": "TASH",
        "subfilial_code": None,
        "deal_time": datetime(2026, 6, 25, 9, 10, tzinfo=UTC),
        "delivery_date": date(2026, 6, 26),
        "booked_date": None,
        "delivery_number": None,
        "invoice_number": None,
        "status": status,
        "status_label": "new",
        "currency_code": "860",
        "total_amount": Decimal("15000.50"),
        "person_id": None,
        "person_code": None,
        "person_name": None,
        "person_tin": None,
        "room_code": None,
        "sales_manager_code": None,
        "payment_type_code": None,
        "note": None,
        "line_count": 2,
        "raw": json.dumps({"deal_id": deal_id, "v": digest}),
        "content_hash": f"{deal_id}-{digest}",
    }


def line(unit: str, *, code: str | None = None, barcode: str | None = None, quant: str = "2") -> dict:
    return {
        "product_unit_id": unit,
        "external_id": None,
        "product_code": code,
        "product_name": "x",
        "product_barcode": barcode,
        "inventory_kind": "G",
        "warehouse_code": "WH",
        "order_quant": Decimal(quant),
        "sold_quant": None,
        "return_quant": None,
        "product_price": Decimal("7500.25"),
        "price_type_code": "RETAIL",
        "vat_percent": Decimal("12"),
        "vat_amount": None,
        "sold_amount": None,
        "expiry_date": None,
    }


def write_products(store: Store, rows: list[dict], now: datetime = T0) -> writes.WriteCounts:
    with store.writer() as session:
        return writes.upsert_products(session, rows=rows, now=now)


def write_orders(store: Store, orders: list[dict], lines: dict[str, list[dict]]) -> writes.WriteCounts:
    with store.writer() as session:
        return writes.upsert_orders(session, orders=orders, lines=lines, now=T0)


def test_products_insert_then_unchanged_then_one_update(store: Store) -> None:
    counts = write_products(store, [product("1"), product("2"), product("3")])
    assert (counts.inserted, counts.updated) == (3, 0)
    with store.session() as session:
        first_updated = session.scalar(select(Product.updated_at).where(Product.external_id == "2"))
    counts = write_products(store, [product("1"), product("2"), product("3")], now=T0 + timedelta(hours=1))
    assert (counts.inserted, counts.updated) == (0, 0)
    counts = write_products(
        store, [product("1"), product("2", name="Juice"), product("3")], now=T0 + timedelta(hours=2)
    )
    assert (counts.inserted, counts.updated) == (0, 1)
    with store.session() as session:
        rows = {p.external_id: p for p in session.scalars(select(Product))}
    assert rows["2"].name == "Juice" and rows["2"].updated_at == T0 + timedelta(hours=2)
    assert rows["1"].updated_at == T0 == first_updated  # unchanged rows were not rewritten
    assert rows["1"].weight_netto == Decimal("1.5") and rows["1"].barcodes == [] and rows["1"].group_codes == ["G1"]
    assert rows["1"].raw == {"product_id": "1", "name": "Water"}
    assert rows["1"].external_source == "smartup" and rows["1"].missing_upstream is False


def test_missing_products_are_flagged_kept_and_unflagged_when_seen_again(store: Store) -> None:
    write_products(store, [product("1"), product("2"), product("3")])
    with store.writer() as session:
        assert writes.flag_missing_products(session, seen_ids={"1", "3"}, now=T0) == 1
    with store.writer() as session:
        assert writes.flag_missing_products(session, seen_ids={"1", "3"}, now=T0) == 0  # already flagged
    with store.session() as session:
        assert session.scalar(select(Product.missing_upstream).where(Product.external_id == "2")) is True
        assert session.scalar(select(Product.missing_since).where(Product.external_id == "2")) == T0
        assert reads.known_products(session, external_ids=["2"]) == {"2": ("h-2-Water", True)}
    counts = write_products(store, [product("2")])  # back upstream with the same content: rewritten, unflagged
    assert (counts.inserted, counts.updated) == (0, 1)
    with store.session() as session:
        assert session.scalar(select(Product.missing_upstream).where(Product.external_id == "2")) is False
        assert session.scalar(select(Product.missing_since).where(Product.external_id == "2")) is None


def test_order_lines_are_replaced_only_when_the_order_changed(store: Store) -> None:
    write_products(store, [product("1", code="W19"), product("2", code="W05", barcodes=["478000", "478001"])])
    lines = {"D1": [line("U1", code="W19"), line("U2", barcode="478001")], "D2": [line("U3", code="NOPE")]}
    counts = write_orders(store, [order("D1"), order("D2")], lines)
    assert (counts.inserted, counts.updated, counts.lines_written, counts.lines_unlinked) == (2, 0, 3, 1)
    with store.session() as session:
        before = {line.product_unit_id: line.id for line in session.scalars(select(OrderLine))}
    counts = write_orders(store, [order("D1"), order("D2")], lines)
    assert (counts.inserted, counts.updated, counts.lines_written) == (0, 0, 0)
    new_lines = {"D1": [line("U1", code="W19", quant="5")], "D2": lines["D2"]}
    counts = write_orders(store, [order("D1", digest="v2", status="B#S"), order("D2")], new_lines)
    assert (counts.inserted, counts.updated, counts.lines_written) == (0, 1, 1)
    with store.session() as session:
        after = {line.product_unit_id: line for line in session.scalars(select(OrderLine))}
        orders = {o.source_external_id: o for o in session.scalars(select(Order))}
        products = {p.code: p.id for p in session.scalars(select(Product))}
    assert set(after) == {"U1", "U3"}
    assert after["U3"].id == before["U3"]  # the unchanged order's line was left alone
    assert after["U1"].id != before["U1"] and after["U1"].order_quant == Decimal("5")
    assert after["U1"].product_id == products["W19"] and after["U3"].product_id is None
    assert orders["D1"].status == "B#S" and orders["D1"].total_amount == Decimal("15000.50")
    assert orders["D1"].deal_time == datetime(2026, 6, 25, 9, 10, tzinfo=UTC)
    assert orders["D1"].delivery_date == date(2026, 6, 26)


def test_line_links_to_product_by_barcode_when_code_is_empty(store: Store) -> None:
    write_products(store, [product("1", code="A"), product("2", code="B", barcodes=["111", "222"])])
    write_orders(store, [order("D1")], {"D1": [line("U1", code="", barcode="222"), line("U2", barcode="999")]})
    with store.session() as session:
        links = dict(session.execute(select(OrderLine.product_unit_id, OrderLine.product_id)).all())
        b_id = session.scalar(select(Product.id).where(Product.code == "B"))
    assert links == {"U1": b_id, "U2": None}


def test_prices_upsert_counts_and_links(store: Store) -> None:
    write_products(store, [product("1", code="A")])
    rows = [
        {"product_code": "A", "price_type_code": "RETAIL", "price": Decimal("100.00")},
        {"product_code": "A", "price_type_code": "DEALER", "price": Decimal("90")},
        {"product_code": "ZZ", "price_type_code": "RETAIL", "price": Decimal("5")},
    ]
    with store.writer() as session:
        counts = writes.upsert_prices(session, rows=rows, now=T0)
    assert (counts.inserted, counts.updated) == (3, 0)
    rows[1] = {**rows[1], "price": Decimal("95")}
    with store.writer() as session:
        counts = writes.upsert_prices(session, rows=rows, now=T0)
    assert (counts.inserted, counts.updated) == (0, 1)
    with store.session() as session:
        prices = {(p.product_code, p.price_type_code): p for p in session.scalars(select(ProductPrice))}
    assert prices[("A", "DEALER")].price == Decimal("95") and prices[("A", "DEALER")].product_id is not None
    assert prices[("ZZ", "RETAIL")].product_id is None


def test_a_failed_batch_writes_nothing(store: Store) -> None:
    bad = product("2", name="x" * 2000)  # longer than the column: PostgreSQL refuses, SQLite is stopped by the raise
    try:
        with store.writer() as session:
            writes.upsert_products(session, rows=[product("1")], now=T0)
            if store.dialect == "sqlite":
                raise RuntimeError("simulated failure inside the batch")
            writes.upsert_products(session, rows=[bad], now=T0)
    except Exception:
        pass
    with store.session() as session:
        assert session.scalars(select(Product)).all() == []


def test_ledger_queries_for_cursor_and_full_refresh(store: Store) -> None:
    def run(status: str, cursor: str | None, details: dict) -> int:
        with store.session() as session:
            row = create_run(session, job="smartup", run_type="products", trigger="cli", host="h", pid=1, now=T0)
            finish_run(
                session, run_id=row.id, status=status, now=T0, values={"cursor_after": cursor, "details": details}
            )
            return row.id

    full = run("SUCCESS", "2026-06-25T10:00:00+00:00", {"full_refresh": True})
    incremental = run("SUCCESS", "2026-06-25T11:00:00+00:00", {"full_refresh": False})
    run("FAILED", None, {"full_refresh": True})
    run("SUCCESS", None, {"dry_run": True})
    with store.session() as session:
        assert last_cursor_run(session, job="smartup", run_type="products").id == incremental
        assert last_full_refresh(session, job="smartup", run_type="products").id == full
        assert last_cursor_run(session, job="smartup", run_type="orders") is None
        assert len(recent_run_details(session, job="smartup")) == 4


def test_text_limits_come_from_the_columns() -> None:
    limits = text_limits(Product)
    assert limits["external_id"] == 64 and limits["state"] == 1 and "raw" not in limits


def test_a_row_inserted_by_another_writer_meanwhile_is_merged_not_duplicated(store: Store, monkeypatch: Any) -> None:
    if store.dialect != "postgresql":
        pytest.skip("SQLite writers are serialised by BEGIN IMMEDIATE: the lookup cannot go stale")
    write_products(store, [product("1")])
    monkeypatch.setattr(writes, "known_products", lambda session, *, external_ids: {})  # a stale lookup
    counts = write_products(store, [product("1", name="Juice"), product("2")])
    assert (counts.inserted, counts.updated) == (1, 1)
    with store.session() as session:
        assert sorted(session.scalars(select(Product.name))) == ["Juice", "Water"]


def test_whole_table_reads_for_a_full_refresh(store: Store) -> None:
    write_products(store, [product("1", code="A"), product("2", code="B"), product("3", code="A")])
    with store.writer() as session:
        writes.flag_missing_products(session, seen_ids=["1", "2"], now=T0)
    with store.session() as session:
        known = reads.all_known_products(session)
        ids = reads.all_product_ids_by_code(session)
        by_id = {p.external_id: p.id for p in session.scalars(select(Product))}
    assert {key: missing for key, (_digest, missing) in known.items()} == {"1": False, "2": False, "3": True}
    assert known["1"][0] == product("1", code="A")["content_hash"]
    assert ids == {"A": min(by_id["1"], by_id["3"]), "B": by_id["2"]}  # a repeated code links to the lowest id


def test_prices_link_through_a_given_code_map_without_a_lookup(store: Store, monkeypatch: Any) -> None:
    def no_lookup(*_args: Any, **_kwargs: Any) -> dict[str, int]:
        raise AssertionError("looked up")

    monkeypatch.setattr(writes, "product_ids_by_code", no_lookup)
    rows = [{"product_code": "A", "price_type_code": "RETAIL", "price": Decimal("7")}]
    with store.writer() as session:
        counts = writes.upsert_prices(session, rows=rows, now=T0, product_ids={"A": 41})
    assert counts.inserted == 1
    with store.session() as session:
        assert session.scalars(select(ProductPrice.product_id)).all() == [41]


def test_analyze_refreshes_statistics_on_postgresql_and_is_a_no_op_on_sqlite(store: Store) -> None:
    write_products(store, [product("1")])
    with store.writer() as session:
        writes.analyze(session, tables=["products", "orders"])
        with pytest.raises(ValueError, match="not a SmartUp table"):
            writes.analyze(session, tables=["sync_runs"])
    if store.dialect != "postgresql":
        return
    with store.session() as session:
        analyzed = session.execute(
            text(
                "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema()"
                " AND last_analyze IS NOT NULL ORDER BY relname"
            )
        ).scalars()
        assert list(analyzed) == ["orders", "products"]
