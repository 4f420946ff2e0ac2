"""A seeded generator of SmartUp-like data of any size: products, prices, product groups and orders.

Every item is kept already encoded as compact UTF-8 JSON next to the few fields the export filters need, so a
100,000-product, 50,000-order tenant fits in a few hundred megabytes and an answer is a join of ready bytes.
Days are proleptic ordinals (`date.toordinal()`) in the tenant's local calendar.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from json.encoder import encode_basestring
from typing import Any

from camsync.sandbox.smartup_groups import GroupAssigner, ProductGroups, generate_groups

PRODUCT_DAYS_BACK = 60
ORDER_DAYS_BACK = 42
ORDER_STATUSES = ("D", "B#N", "B#E", "B#W", "B#S", "B#V", "A", "C")
_STATUS_WEIGHTS = (3, 15, 10, 5, 15, 35, 12, 5)
PRICE_TYPES = (("1", "RETAIL", 100), ("2", "WHOLESALE", 92), ("3", "DEALER", 85))
WAREHOUSES = ("WH-MAIN", "WH-NORTH")
PAYMENT_TYPES = ("CASH", "TRANSFER", "CARD")

_KINDS = (
    ("Вода питьевая негазированная", "Сув", "шт", (0.5, 1.0, 1.5, 5.0, 10.0, 19.0)),
    ("Вода минеральная газированная", "Минерал", "шт", (0.5, 1.0, 1.5)),
    ("Напиток газированный", "Газ.нап", "шт", (0.33, 0.5, 1.0, 1.5, 2.0)),
    ("Сок фруктовый", "Сок", "шт", (0.2, 1.0)),
    ("Чай холодный", "Чай", "шт", (0.5, 1.0)),
    ("Молоко пастеризованное", "Молоко", "шт", (0.9, 1.0)),
    ("Кефир", "Кефир", "шт", (0.5, 0.9)),
    ("Масло подсолнечное", "Масло", "шт", (0.9, 1.8, 5.0)),
    ("Рис девзира", "Рис", "кг", (1.0, 5.0, 25.0)),
    ("Мука пшеничная", "Мука", "кг", (1.0, 2.0, 50.0)),
    ("Сахар-песок", "Сахар", "кг", (1.0, 5.0, 50.0)),
    ("Печенье сахарное", "Печенье", "уп", (0.2, 0.4)),
    ("Макароны спагетти", "Макароны", "уп", (0.4, 0.9)),
)
_BRANDS = (
    "Hydrolife", "Nestle", "Bonaqua", "Chortoq", "Sayhun", "Musaffo", "Coca-Cola", "Fanta", "Lipton", "Bliss",
    "Oila", "Makfa", "Zarafshon", "Sof", "Bravo", "Nur", "Tashkent Sut", "Anor",
)  # fmt: skip
_FIRST_NAMES = ("Азиз", "Бобур", "Дилноза", "Жасур", "Камола", "Лола", "Нодир", "Отабек", "Сардор", "Шахзод")
_LAST_NAMES = ("Каримов", "Юсупов", "Рахимова", "Алиев", "Турсунов", "Исмоилов", "Саидова", "Насруллаев")
_SHOP_WORDS = ("Магазин", "Супермаркет", "Минимаркет", "Дўкон", "Оптовик", "Кафе")
_STREETS = ("Амира Темура", "Навои", "Бабура", "Мустакиллик", "Фаробий", "Шота Руставели", "Бунёдкор")
_CITIES = ("Ташкент", "Самарканд", "Бухара", "Наманган", "Андижан", "Фергана")

_BARCODE_COUNTS = (0, 1, 1, 1, 1, 2, 2, 3)
_BOX_QUANTS = (1, 6, 6, 12, 12, 20, 24)
_SECTORS_ONE = '[{"sector_code":"S1"}]'
_SECTORS_TWO = '[{"sector_code":"S1"},{"sector_code":"S2"}]'
_PRICE_TYPE_TEXT = tuple(f'"price_type_id":"{pid}","price_type_code":"{code}"' for pid, code, _pct in PRICE_TYPES)

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_q = encode_basestring  # a JSON string literal, quotes included
_NOTE = _q("Позвонить перед доставкой")
_EMPTY = '""'


def encode_item(item: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON of one answer item."""
    return _ENCODER.encode(item).encode("utf-8")


def decode_item(body: bytes) -> dict[str, Any]:
    """The dict form of an encoded item (for edits)."""
    result: dict[str, Any] = json.loads(body)
    return result


@dataclass(slots=True)
class ProductRecord:
    """One inventory item: its encoded answer and what the filters look at."""

    product_id: str
    code: str
    created: int
    modified: int
    body: bytes


@dataclass(slots=True)
class PriceRecord:
    """The prices of one product (`inventory_code` is the product code)."""

    product_id: str
    code: str
    body: bytes


@dataclass(slots=True)
class OrderRecord:
    """One order (deal): its encoded answer and what the filters look at."""

    deal_id: str
    external_id: str
    filial_code: str
    status: str
    deal_day: int
    delivery_day: int
    created: int
    modified: int
    body: bytes


@dataclass(frozen=True)
class Filial:
    """An organisation of the tenant: the head one, or one of its filials."""

    filial_id: str
    code: str
    name: str

    @property
    def text(self) -> str:
        """Its id and code as JSON members of an order."""
        return f'"filial_id":{_q(self.filial_id)},"filial_code":{_q(self.code)}'


@dataclass
class SmartupData:
    """Everything the simulator serves."""

    products: list[ProductRecord] = field(default_factory=list)
    prices: list[PriceRecord] = field(default_factory=list)
    groups: ProductGroups = field(default_factory=lambda: ProductGroups([], {}, 0))
    orders: list[OrderRecord] = field(default_factory=list)


@lru_cache(maxsize=4096)
def day_text(day: int) -> str:
    """`dd.mm.yyyy` of a day ordinal."""
    return date.fromordinal(day).strftime("%d.%m.%Y")


def money(tiyin: int) -> str:
    """An amount in hundredths as a decimal string: 1250000 -> "12500.00"."""
    return f"{tiyin // 100}.{tiyin % 100:02d}"


def quantity(thousandths: int) -> str:
    """A quantity in thousandths as a decimal string: 12000 -> "12.000"."""
    return f"{thousandths // 1000}.{thousandths % 1000:03d}"


def ean13(rng: random.Random, prefix: str = "478") -> str:
    """A valid EAN-13 code (Uzbekistan GS1 prefix by default)."""
    body = prefix + f"{rng.getrandbits(40) % 10 ** (12 - len(prefix)):0{12 - len(prefix)}d}"
    total = sum(map(int, body[::2])) + 3 * sum(map(int, body[1::2]))
    return body + str((10 - total % 10) % 10)


def _digits(rng: random.Random, count: int) -> str:
    return f"{rng.getrandbits(64) % 10**count:0{count}d}"


@dataclass
class _Catalog:
    """Per-product facts the order generator needs (parallel lists)."""

    codes: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # code, name and barcode as JSON members of an order line
    lines_by_barcode: list[str] = field(default_factory=list)  # the same with an empty code ("" without barcode)
    prices: list[int] = field(default_factory=list)  # retail price in tiyin
    grams: list[int] = field(default_factory=list)  # net weight in grams


def _product(rng: random.Random, index: int, catalog: _Catalog, assigner: GroupAssigner) -> tuple[str, str, str]:
    """One inventory item and its price item, as JSON text, and the product code."""
    rand = rng.random
    kind_index = int(rand() * len(_KINDS))
    kind, short, measure, volumes = _KINDS[kind_index]
    brand_index = int(rand() * len(_BRANDS))
    brand = _BRANDS[brand_index]
    volume = volumes[int(rand() * len(volumes))]
    unit = "л" if measure == "шт" else "кг"
    size = f"{volume:g} {unit}"
    code = f"{index + 1:06d}"
    barcodes = [ean13(rng) for _ in range(_BARCODE_COUNTS[int(rand() * len(_BARCODE_COUNTS))])]
    grams = int(volume * 1000)
    box_quant = _BOX_QUANTS[int(rand() * len(_BOX_QUANTS))] if volume < 10 else 1
    price = (int(volume * 4000 * (1.0 + rand())) // 100) * 10000 + 500 * 100
    name = f"{kind} {brand} {size}"
    barcode_text = ("," if rand() < 0.6 else "|").join(barcodes)
    state = "A" if rand() < 0.92 else "P"
    marking = "water" if kind_index < 2 and rand() < 0.5 else ""
    sectors = _SECTORS_ONE if rand() < 0.8 else _SECTORS_TWO
    item = (
        f'{{"product_id":"{1_000_001 + index}","code":"{code}","name":{_q(name)},'
        f'"short_name":{_q(f"{short} {brand} {size}")},"article_code":"ART-{_digits(rng, 5)}",'
        f'"measure_code":"{measure}","barcodes":"{barcode_text}","state":"{state}",'
        f'"weight_netto":"{quantity(grams)}","weight_brutto":"{quantity(grams + grams // 25 + 10)}",'
        f'"litr":"{f"{volume:g}" if unit == "л" else "0"}",'
        f'"box_type_code":"{f"BOX{box_quant}" if box_quant > 1 else ""}",'
        f'"box_quant":"{box_quant}","producer_code":"PR{brand_index + 1:03d}","order_no":"{index + 1}",'
        f'"gtin":"{("0" + barcodes[0]) if barcodes else ""}","ikpu":"{_digits(rng, 17)}","tnved":"{_digits(rng, 10)}",'
        f'"marking_group_code":"{marking}","groups":{assigner.groups_text(kind_index, brand_index)},'
        f'"inventory_kinds":[{{"inventory_kind":"G"}}],"sector_codes":{sectors}}}'
    )
    price_types = PRICE_TYPES[: 1 + int(rand() * len(PRICE_TYPES))]
    price_list = ",".join(
        f'{{"price_type_code":"{ptype}","price":"{money(price * pct // 100)}"}}' for _pid, ptype, pct in price_types
    )
    prices = f'{{"inventory_code":"{code}","price_type":[{price_list}]}}'
    first_barcode = barcodes[0] if barcodes else ""
    catalog.lines.append(f'"product_code":"{code}","product_name":{_q(name)},"product_barcode":"{first_barcode}"')
    catalog.lines_by_barcode.append(
        f'"product_code":"","product_name":{_q(name)},"product_barcode":"{first_barcode}"' if barcodes else ""
    )
    catalog.codes.append(code)
    catalog.names.append(name)
    catalog.prices.append(price)
    catalog.grams.append(grams)
    return item, prices, code


def generate_products(
    rng: random.Random, *, count: int, today: int, data: SmartupData, groups: ProductGroups
) -> _Catalog:
    """Fill `data.products` and `data.prices`; created/modified days spread over the last weeks."""
    catalog = _Catalog()
    rand = rng.random
    assigner = groups.assigner()
    for index in range(count):
        item, prices, code = _product(rng, index, catalog, assigner)
        created = today - int(rand() * PRODUCT_DAYS_BACK)
        modified = created + int(rand() ** 2 * (today - created + 1))
        pid = str(1_000_001 + index)
        data.products.append(ProductRecord(pid, code, created, modified, item.encode()))
        data.prices.append(PriceRecord(pid, code, prices.encode()))
    return catalog


@dataclass
class _People:
    """Pools of clients, rooms, managers and expeditors, as JSON members of an order."""

    persons: list[str]
    rooms: list[str]
    managers: list[str]
    expeditors: list[str]


def _staff(role: str, first_id: int, count: int, rng: random.Random, code: str) -> list[str]:
    return [
        f'"{role}_id":"{first_id + i}","{role}_code":"{code}{i + 1:03d}",'
        f'"{role}_name":{_q(f"{rng.choice(_LAST_NAMES)} {rng.choice(_FIRST_NAMES)}")}'
        for i in range(count)
    ]


def _people(rng: random.Random, orders: int) -> _People:
    persons = []
    for index in range(max(10, min(5000, orders // 10 + 10))):
        city, street, house = rng.choice(_CITIES), rng.choice(_STREETS), rng.randint(1, 150)
        name = f"{rng.choice(_SHOP_WORDS)} «{rng.choice(_BRANDS)} {index + 1}»"
        persons.append(
            f'"person_id":"{300_001 + index}","person_code":"C{index + 1:05d}","person_name":{_q(name)},'
            f'"person_tin":"{_digits(rng, 9)}","delivery_address_short":{_q(f"{city}, {street} {house}")},'
            f'"delivery_address_full":{_q(f"Узбекистан, г. {city}, ул. {street}, д. {house}")}'
        )
    rooms = [
        f'"room_id":"{50 + i}","room_code":"R{i + 1}","room_name":{_q(name)}'
        for i, name in enumerate(("Розница", "Опт", "HoReCa", "Дилеры"))
    ]
    managers = _staff("sales_manager", 7001, 30, rng, "SM")
    expeditors = _staff("expeditor", 8001, 15, rng, "EX")
    return _People(persons, rooms, managers, expeditors)


def _order_line(rng: random.Random, unit_id: int, catalog: _Catalog, deal_day: int) -> tuple[str, int, int]:
    """One order line as JSON text, its amount in tiyin and its net weight in grams."""
    rand = rng.random
    product = int(rand() * len(catalog.codes))
    identity = catalog.lines[product]
    if rand() < 0.02 and catalog.lines_by_barcode[product]:
        identity = catalog.lines_by_barcode[product]
    quant = (1 + int(rand() * 24)) * 1000
    price_index = int(rand() * len(PRICE_TYPES))
    price = catalog.prices[product] * PRICE_TYPES[price_index][2] // 100
    amount = quant * price // 1000
    warehouse = WAREHOUSES[0] if rand() < 0.8 else WAREHOUSES[1]
    quant_text = quantity(quant)
    expiry = day_text(deal_day + 180) if rand() < 0.3 else ""
    batch = f"B{deal_day % 1000:03d}" if rand() < 0.2 else ""
    line = (
        f'{{"product_unit_id":"{unit_id}","external_id":"",{identity},"inventory_kind":"G",'
        f'"warehouse_code":"{warehouse}","order_quant":"{quant_text}","sold_quant":"{quant_text}",'
        f'"return_quant":"0.000","product_price":"{money(price)}",{_PRICE_TYPE_TEXT[price_index]},'
        f'"margin_kind":"P","margin_value":"0","margin_amount":"0.00","vat_percent":"12",'
        f'"vat_amount":"{money(amount * 12 // 112)}","sold_amount":"{money(amount)}","expiry_date":"{expiry}",'
        f'"card_code":"","serial_number":"","batch_number":"{batch}"}}'
    )
    return line, amount, catalog.grams[product] * quant // 1000


def _extras(rng: random.Random, deal_day: int, total: int, catalog: _Catalog) -> str:
    """Small gifts, actions and consignments (mostly empty), as JSON members."""
    rand = rng.random
    gifts = actions = consignments = ""
    if rand() < 0.05:
        product = int(rand() * len(catalog.codes))
        gifts = (
            f'{{"product_code":"{catalog.codes[product]}","product_name":{_q(catalog.names[product])},'
            f'"quant":"1.000","warehouse_code":"{WAREHOUSES[0]}"}}'
        )
    if rand() < 0.08:
        actions = (
            f'{{"action_id":"901","action_code":"PROMO-1","action_name":"Скидка 3% за объём",'
            f'"discount_amount":"{money(total * 3 // 100)}"}}'
        )
    if rand() < 0.1:
        consignments = f'{{"consignment_date":"{day_text(deal_day + 14)}","consignment_amount":"{money(total)}"}}'
    return f'"order_gifts":[{gifts}],"order_actions":[{actions}],"order_consignments":[{consignments}]'


def _order(
    rng: random.Random, index: int, unit_id: int, today: int, filial: Filial, people: _People, catalog: _Catalog
) -> tuple[OrderRecord, int]:
    rand = rng.random
    deal_day = today - int(rand() * ORDER_DAYS_BACK)
    created = deal_day - (1 if rand() < 0.1 else 0)
    modified = deal_day + int(rand() ** 2 * (today - deal_day + 1))
    delivery_day = deal_day + int(rand() * 3)
    status = rng.choices(ORDER_STATUSES, _STATUS_WEIGHTS)[0]
    lines, total, grams = [], 0, 0
    for _ in range(1 + int(rand() * 9)):
        line, amount, weight = _order_line(rng, unit_id, catalog, deal_day)
        unit_id += 1
        lines.append(line)
        total += amount
        grams += weight
    deal_id = str(5_000_001 + index)
    external_id = f"WEB-{index + 1:07d}" if rand() < 0.3 else ""
    seconds = 8 * 3600 + int(rand() * 11 * 3600)
    deal_date = day_text(deal_day)
    shipped = status in ("B#S", "B#V", "A")
    text = (
        f'{{"deal_id":"{deal_id}",{filial.text},"subfilial_code":"","external_id":"{external_id}",'
        f'"deal_time":"{deal_date} {seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}",'
        f'"delivery_date":"{day_text(delivery_day)}","booked_date":"{deal_date if status not in ("D", "C") else ""}",'
        f'"delivery_number":"{f"D-{index + 1:07d}" if shipped else ""}",'
        f'"invoice_number":"{f"INV-{index + 1:07d}" if status in ("B#V", "A") else ""}","status":"{status}",'
        f'"currency_code":"860","total_amount":"{money(total)}",{people.persons[int(rand() * len(people.persons))]},'
        f"{people.rooms[int(rand() * len(people.rooms))]},{people.managers[int(rand() * len(people.managers))]},"
        f"{people.expeditors[int(rand() * len(people.expeditors))]},"
        f'"payment_type_code":"{PAYMENT_TYPES[int(rand() * len(PAYMENT_TYPES))]}",'
        f'"note":{_NOTE if rand() < 0.1 else _EMPTY},"deal_note":"",'
        f'"total_weight_netto":"{quantity(grams)}","total_weight_brutto":"{quantity(grams + grams // 25)}",'
        f'"order_products":[{",".join(lines)}],{_extras(rng, deal_day, total, catalog)}}}'
    )
    record = OrderRecord(
        deal_id, external_id, filial.code, status, deal_day, delivery_day, created, modified, text.encode()
    )
    return record, unit_id


def generate_orders(
    rng: random.Random, *, count: int, today: int, filials: Sequence[Filial], catalog: _Catalog, data: SmartupData
) -> None:
    """Fill `data.orders`: 1–9 lines each, deal and modified days over the last ~6 weeks."""
    if count and not catalog.codes:
        raise ValueError("orders need at least one product")
    people = _people(rng, count)
    unit_id = 70_000_001
    for index in range(count):
        filial = filials[int(rng.random() * len(filials))]
        record, unit_id = _order(rng, index, unit_id, today, filial, people, catalog)
        data.orders.append(record)


def generate_smartup_data(
    *, products: int, orders: int, seed: int, today: date, filials: Sequence[Filial]
) -> SmartupData:
    """A deterministic tenant for a seed and a day: products, prices, groups and orders."""
    rng = random.Random(seed)
    groups = generate_groups(seed=seed, kinds=[kind[0] for kind in _KINDS], brands=_BRANDS)
    data = SmartupData(groups=groups)
    catalog = generate_products(rng, count=products, today=today.toordinal(), data=data, groups=groups)
    generate_orders(rng, count=orders, today=today.toordinal(), filials=filials, catalog=catalog, data=data)
    return data
