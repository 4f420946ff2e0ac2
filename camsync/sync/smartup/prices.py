"""The prices export of a full product refresh: fetched while the products are still written, written after them
(a price links to the product with its code)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from camsync.clients.smartup_limits import BudgetClass
from camsync.store import smartup_reads as reads
from camsync.store import smartup_writes as writes
from camsync.store.smartup import ProductPrice, text_limits
from camsync.sync.smartup.fast_mapping import PriceMapper
from camsync.sync.smartup.items import ItemError
from camsync.sync.smartup.run import batches

if TYPE_CHECKING:
    from camsync.sync.smartup.run import PullRun

_PRICE_LIMITS = {**text_limits(ProductPrice), "inventory_code": text_limits(ProductPrice)["product_code"]}


class PricesPull:
    """The prices part of a products run: its counts go to `details.prices`, its bad items to the failures."""

    def __init__(self, run: PullRun) -> None:
        self.run = run
        self.mapper = PriceMapper(_PRICE_LIMITS)
        self.code_ids: dict[str, int] | None = None

    def pull(self, now: datetime) -> None:
        """Fetch every price and hand its batches to the writer once every product handed before is written."""
        run = self.run
        assert run.handle is not None
        run.budget.check(BudgetClass.REFERENCE)
        tally = {"fetched": 0, "inserted": 0, "updated": 0, "failed": 0}
        with run.source.export_prices() as export:
            # Prices link to products by code: the products handed to the writer are written first.
            run.writer.drain()
            if not run.dry_run:
                with run.store.session() as session:
                    self.code_ids = reads.all_product_ids_by_code(session)
            seen: dict[tuple[str, str], Any] = {}
            for batch in batches(export):
                rows = self._rows(batch, tally, seen)
                if rows and not run.dry_run:
                    run.writer.submit(self._write, rows, tally, now)
            run.budget.saw(export)
        run.handle.details["prices"] = tally

    def _write(self, rows: list[dict[str, Any]], tally: dict[str, int], now: datetime) -> None:
        run = self.run
        with run.store.writer() as session:
            counts = writes.upsert_prices(
                session,
                rows=rows,
                now=now,
                assume_new="product_prices" in run.fresh,
                product_ids=self.code_ids,
            )
        with run.lock:
            tally["inserted"] += counts.inserted
            tally["updated"] += counts.updated

    def _rows(self, batch: list[Any], tally: dict[str, int], seen: dict[tuple[str, str], Any]) -> list[dict[str, Any]]:
        """The price rows of a batch. A (product, price type) seen before in the answer is written once: the same
        price again is dropped quietly, a different one is counted failed and the first is kept."""
        rows = []
        for item in batch:
            tally["fetched"] += 1
            try:
                mapped = self.mapper(item)
            except ItemError as error:
                tally["failed"] += 1
                self.run.fail_item(error, counted=False)
                continue
            for row in mapped:
                key = (row["product_code"], row["price_type_code"])
                first = seen.get(key)
                if first is None:
                    seen[key] = row["price"]
                    rows.append(row)
                elif first != row["price"]:
                    tally["failed"] += 1
                    reason = f"price type {row['price_type_code']} has two prices; the first is kept"
                    self.run.fail_item(ItemError(row["product_code"], reason), counted=False)
        return rows
