"""The stock of the SmartUp simulator: `balance$export` rows, one per batch per warehouse, as of a day.

A main warehouse holds most products, a second one fewer, and a defective/returns warehouse a few, in small
quantities; a product without stock in a warehouse has no row there. Each batch has a receipt day: the answer
as of a day leaves out the batches received after it. Quantities are decimal strings (`"12.500"`, `"0.250"`),
about one row in 2,000 is negative (as real ERPs show), and the cost (`input_price`) is empty on some rows and
absent on a few. The rows are generated on the first request, from draws of their own that follow the products
as first generated, so edits made before that request change only the products they touch.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from json.encoder import encode_basestring as _q
from typing import Any

from camsync.sandbox.smartup_data import WAREHOUSES, ProductRecord, day_text, decode_item, encode_item, money

DAYS_BACK = 90  # the oldest batch still in stock was received this many days before the tenant was generated
NEGATIVE_CHANCE = 1 / 2000
EMPTY_PRICE_CHANCE = 0.08
ABSENT_PRICE_CHANCE = 0.02
FRACTION_CHANCE = 0.3
_FRACTIONS = (250, 500, 750, 125)


@dataclass(frozen=True)
class Warehouse:
    """A warehouse of the tenant and how much of the range it keeps."""

    warehouse_id: str
    code: str
    name: str
    stock_chance: float  # of a product having stock here
    most: int  # the largest whole quantity of a batch


def make_warehouses(count: int, seed: int) -> list[Warehouse]:
    """A main warehouse, then regular ones, and (from three on) a defective/returns one last."""
    ids = [str(n) for n in random.Random(f"smartup-warehouses:{seed}").sample(range(10_000, 100_000), count)]
    found = [Warehouse(ids[0], WAREHOUSES[0], "Основной склад", 0.85, 300)]
    regular = count - 1 if count < 3 else count - 2
    for i in range(1, 1 + regular):
        code, name = (WAREHOUSES[1], "Склад Север") if i == 1 else (f"WH-{i + 1:02d}", f"Склад №{i + 1}")
        found.append(Warehouse(ids[i], code, name, 0.45, 150))
    if count >= 3:
        found.append(Warehouse(ids[-1], "WH-DEFECT", "Склад брака и возвратов", 0.08, 6))
    return found


def signed_quantity(thousandths: int) -> str:
    """A quantity in thousandths as a decimal string, sign included: -250 -> "-0.250"."""
    sign = "-" if thousandths < 0 else ""
    whole, part = divmod(abs(thousandths), 1000)
    return f"{sign}{whole}.{part:03d}"


@dataclass(slots=True)
class BatchRow:
    """One row of the answer: the day its batch was received, and its encoded item."""

    received: int
    body: bytes


class StockBook:
    """The batches of every product in every warehouse, over the tenant's (live) product list."""

    def __init__(self, *, seed: int, warehouses: Sequence[Warehouse], born: int, products: list[ProductRecord]) -> None:
        self.seed = seed
        self.warehouses = list(warehouses)
        self.born = born  # the day the tenant was generated
        self._products = products
        self._first_ids = [record.product_id for record in products]
        self._stock: list[dict[str, list[BatchRow]]] | None = None

    def rows(self, until: int) -> list[bytes]:
        """The encoded rows of the batches received on or before `until`: by warehouse, product, receipt."""
        stock = self._book()
        found: list[bytes] = []
        for held in stock:
            for record in self._products:
                batches = held.get(record.product_id)
                if batches:
                    found.extend(row.body for row in batches if row.received <= until)
        return found

    def of_product(self, product_id: str) -> dict[str, list[dict[str, Any]]]:
        """A product's rows per warehouse code (every warehouse, an empty list where it has no stock).

        Each row as served, plus `received`: its batch's receipt day (`dd.mm.yyyy`), which the export does not send."""
        stock = self._book()
        return {
            warehouse.code: [
                {**decode_item(row.body), "received": day_text(row.received)} for row in held.get(product_id, ())
            ]
            for warehouse, held in zip(self.warehouses, stock, strict=True)
        }

    def set_batches(
        self, record: ProductRecord, warehouse_code: str, batches: Sequence[dict[str, Any]], *, today: int
    ) -> list[dict[str, Any]]:
        """Replace a product's batches in one warehouse (an empty list: no stock there); returns the new rows.

        Each batch: `quantity` (a number or decimal string), and optionally `batch_number`, `input_price` (absent
        when not given or None, `""` for an empty cost), `received` (`dd.mm.yyyy`, today by default) and
        `inventory_kind` (G)."""
        stock = self._book()
        at = self._warehouse_at(warehouse_code)
        warehouse = self.warehouses[at]
        rows = [self._given_row(warehouse, record, batch, k, today) for k, batch in enumerate(batches)]
        rows.sort(key=lambda row: row.received)
        if rows:
            stock[at][record.product_id] = rows
        else:
            stock[at].pop(record.product_id, None)
        return self.of_product(record.product_id)[warehouse.code]

    def recode(self, product_id: str, code: str) -> None:
        """A product's code changed: its rows say so too."""
        if self._stock is None:
            return  # not generated yet: the rows will be made with the new code
        for held in self._stock:
            for row in held.get(product_id, ()):
                item = decode_item(row.body)
                item["product_code"] = code
                row.body = encode_item(item)

    def _warehouse_at(self, code: str) -> int:
        for at, warehouse in enumerate(self.warehouses):
            if warehouse.code == code:
                return at
        raise KeyError(code)

    # ----- generation
    def _book(self) -> list[dict[str, list[BatchRow]]]:
        if self._stock is None:
            self._stock = self._generate()
        return self._stock

    def _generate(self) -> list[dict[str, list[BatchRow]]]:
        rng = random.Random(f"smartup-stock:{self.seed}")
        rand = rng.random
        codes = {record.product_id: record.code for record in self._products}
        stock: list[dict[str, list[BatchRow]]] = [{} for _ in self.warehouses]
        for product_id in self._first_ids:  # the draws of a removed product are made all the same
            code = codes.get(product_id, "")
            cost = 200_000 + int(rand() * 880) * 10_000
            for held, warehouse in zip(stock, self.warehouses, strict=True):
                if rand() >= warehouse.stock_chance:
                    continue
                prefix = self._prefix(warehouse, product_id, code)
                rows = [self._drawn_row(rng, warehouse, prefix, cost, k) for k in range(1 + int(rand() * 3))]
                if product_id in codes:
                    held[product_id] = sorted(rows, key=lambda row: row.received)
        return stock

    @staticmethod
    def _prefix(warehouse: Warehouse, product_id: str, code: str, kind: str = "G") -> str:
        return (
            f'{{"warehouse_id":"{warehouse.warehouse_id}","warehouse_code":{_q(warehouse.code)},'
            f'"product_id":{_q(product_id)},"product_code":{_q(code)},"inventory_kind":{_q(kind)}'
        )

    def _drawn_row(self, rng: random.Random, warehouse: Warehouse, prefix: str, cost: int, k: int) -> BatchRow:
        rand = rng.random
        received = self.born - int(rand() * DAYS_BACK)
        thousandths = int(rand() ** 2 * warehouse.most) * 1000
        if rand() < FRACTION_CHANCE:
            thousandths += _FRACTIONS[int(rand() * len(_FRACTIONS))]
        thousandths = thousandths or 1000
        if rand() < NEGATIVE_CHANCE:
            thousandths = -thousandths
        price_draw = rand()
        price: str | None = money(cost * (95 + int(rand() * 11)) // 100 // 100 * 100)
        if price_draw < ABSENT_PRICE_CHANCE:
            price = None
        elif price_draw < ABSENT_PRICE_CHANCE + EMPTY_PRICE_CHANCE:
            price = ""
        return _row(prefix, received, _batch_number(received, k), signed_quantity(thousandths), price)

    def _given_row(
        self, warehouse: Warehouse, record: ProductRecord, batch: dict[str, Any], k: int, today: int
    ) -> BatchRow:
        received = _received(batch.get("received"), today)
        number = str(batch.get("batch_number") or _batch_number(received, k))
        price = batch.get("input_price")
        kind = str(batch.get("inventory_kind") or "G")
        prefix = self._prefix(warehouse, record.product_id, record.code, kind)
        return _row(prefix, received, number, _quantity_text(batch.get("quantity")), None if price is None else price)


def _row(prefix: str, received: int, number: str, amount: str, price: Any) -> BatchRow:
    price_text = "" if price is None else f',"input_price":{_q(str(price))}'
    text = f'{prefix},"batch_number":{_q(number)},"quantity":"{amount}"{price_text}}}'
    return BatchRow(received, text.encode("utf-8"))


@lru_cache(maxsize=4096)
def _batch_number(received: int, k: int) -> str:
    return f"{date.fromordinal(received):%Y%m%d}-{k + 1}"


def _received(value: Any, today: int) -> int:
    if value is None or value == "":
        return today
    try:
        return datetime.strptime(str(value), "%d.%m.%Y").date().toordinal()
    except ValueError:
        raise ValueError(f"received must be dd.mm.yyyy, not {value!r}") from None


def _quantity_text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("a batch needs a quantity (a number or a decimal string)")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"quantity is not a number: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"quantity is not a number: {value!r}")
    return f"{amount:.3f}"
