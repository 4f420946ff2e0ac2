"""The values of PAY+ app DB rows: amounts parsed exactly as written, and text whose bytes are not UTF-8.

Nothing here reads a database; `payplus.py` applies these to each row it fetches, so one odd value refuses its
own row and never a scan.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

_PLAIN_AMOUNT = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?\Z")  # ASCII digits only, nothing after them
_GROUPED_AMOUNT = re.compile(r"^[+-]?\d{1,3}([, ]\d{3})+(\.\d+)?$")
_AMBIGUOUS_DOT = re.compile(r"^[+-]?\d{1,3}\.\d{3}$")
ZERO_DECIMAL_CURRENCIES = frozenset({"XAF", "XOF", "XPF", "KMF", "GNF", "RWF", "BIF", "DJF", "JPY", "KRW"})
_SHOWN_BYTES = 48
_SPACES = re.compile(r"[\s\u00a0\u202f\u2009]+")
MAX_AMOUNT_TEXT = 32  # tuis.amount is VARCHAR(32): a longer text is refused without being parsed


def parse_amount(raw: Any, *, currency: str | None = None) -> tuple[Decimal | None, str | None]:
    """(amount, None) for "1500", "1,500", "1 500", "1500.00" or "1250.50"; (None or the value, reason) when
    unusable. The amount is exact (a Decimal, never a float): what the card was written with is what is sent.

    Text longer than MAX_AMOUNT_TEXT is refused before any parsing. In a currency without a minor unit (XAF …)
    "1.500" is refused as ambiguous (a thousands dot, or a decimal point?); the PAY+ backend writes two decimals.
    """
    if type(raw) is str and len(raw) <= MAX_AMOUNT_TEXT and _PLAIN_AMOUNT.match(raw) and not _AMBIGUOUS_DOT.match(raw):
        plain = Decimal(raw)  # the usual "1500" or "1250.50": nothing to clean up, nothing ambiguous
        if plain > 0:
            return plain, None
    too_long = _too_long(raw)
    if too_long is not None:
        return None, too_long
    raw = text_value(raw)
    if isinstance(raw, Undecodable):
        return None, f"amount is not valid UTF-8: b'{raw}'"
    amount, reason = parse_plain_amount(raw)
    if reason is not None or amount is None or (currency or "").strip().upper() not in ZERO_DECIMAL_CURRENCIES:
        return amount, reason
    text = str(raw).strip()
    if isinstance(raw, str) and _AMBIGUOUS_DOT.match(text):
        return None, f"amount {text!r} is ambiguous in {currency} (a thousands dot, or a decimal point?)"
    return amount, None


def _too_long(raw: Any) -> str | None:
    """Why an amount is too big to look at, or None; an int's size is known without turning it into text."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return None if raw.bit_length() <= 100 else "amount has more than 30 digits: not parsed"
    if isinstance(raw, Decimal):
        return None if len(raw.as_tuple().digits) <= MAX_AMOUNT_TEXT else "amount has too many digits: not parsed"
    if isinstance(raw, str | bytes) and len(raw) > MAX_AMOUNT_TEXT:
        return f"amount text is {len(raw)} characters long (at most {MAX_AMOUNT_TEXT}): not parsed"
    return None


def parse_plain_amount(raw: Any) -> tuple[Decimal | None, str | None]:
    if raw is None:
        return None, "amount is NULL"
    if type(raw) is str and _PLAIN_AMOUNT.match(raw):  # the usual "1500" or "1250.50", nothing to clean up
        amount = Decimal(raw)
        return (amount, None) if amount > 0 else (amount, f"amount {raw} is not positive")
    if isinstance(raw, Decimal | int) and not isinstance(raw, bool):
        amount = Decimal(raw)
    elif isinstance(raw, float):  # a REAL in SQLite: its shortest repr is what was written
        amount = Decimal(repr(raw))
    else:
        text = str(raw).strip()
        compact = _SPACES.sub(" ", text)
        if _PLAIN_AMOUNT.match(compact):
            amount = Decimal(compact)
        elif _GROUPED_AMOUNT.match(compact) and len({c for c in compact if c in ", "}) == 1:
            amount = Decimal(compact.replace(",", "").replace(" ", ""))
        else:
            return None, f"amount {text!r} does not parse"
    if not amount.is_finite():
        return None, f"amount {raw!r} does not parse"
    if amount <= 0:
        return amount, f"amount {str(raw).strip()} is not positive"
    return amount, None


class Undecodable(str):
    """A text value whose bytes are not valid UTF-8: shown escaped, never pushed."""

    def __new__(cls, raw: bytes) -> Undecodable:
        shown = repr(raw[:_SHOWN_BYTES])[2:-1] + ("…" if len(raw) > _SHOWN_BYTES else "")
        return super().__new__(cls, shown)


def decode_text(raw: bytes) -> str:
    """SQLite's text factory: UTF-8 text, or an `Undecodable` naming the bytes (one bad row fails no scan)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return Undecodable(raw)


def text_value(value: Any) -> Any:
    """A column value with bytes (a BLOB, or text of a SQL_ASCII database) decoded as `decode_text` does."""
    if isinstance(value, bytes | bytearray | memoryview):
        return decode_text(bytes(value))
    return value


def undecodable_column(record: Mapping[str, Any]) -> str | None:
    """Why a row (its values by column) cannot be read as text, or None."""
    for column in ("txn_id", "meter_number", "amount", "status", "currency"):
        value = record.get(column)
        if isinstance(value, Undecodable):
            return f"{column} is not valid UTF-8: b'{value}'"
    return None
