"""The rows of a realistic sample PAY+ app database, planned lazily (a million rows never sit in memory at once).

What the real backend writes (spec: /work/shared/specs/payplus-app-db.md, "What the real backend writes"):
`tuis.amount` is `str()` of the top-up's Decimal, always two decimals ("2000.00"), and fractions happen
("1250.50"); `topups.amount` (NUMERIC(12,2)) is the same money; `txn_id` is 24 lowercase hex characters; meter
numbers are text and may start with "0". Every row kind the spec calls messy has a name here:

- `BAD_KINDS`: rows a correct reader rejects (amounts that do not parse, zero or negative; a missing topup or
  meter row; a NULL or duplicate txn_id);
- `HELD_KINDS`: rows it must hold for review, not push: `tuis.amount` disagrees with `topups.amount` (spec:
  "the money must not move unreviewed");
- `HOSTILE_KINDS` (only when asked): bytes that are not valid UTF-8 in `txn_id`, `meter_number` or `amount`,
  and an absurd amount (a string of `absurd_amount_bytes` digits), all rejected by a correct reader.

A USED row whose amount has a fraction is good: it is pushable, counted in `fractions` as well.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

BAD_KINDS = (
    "bad_amount",
    "zero_amount",
    "negative_amount",
    "missing_topup",
    "missing_meter",
    "null_txn_id",
    "duplicate_txn_id",
)
HELD_KINDS = ("amount_mismatch",)
HOSTILE_KINDS = ("invalid_utf8_txn_id", "invalid_utf8_meter", "invalid_utf8_amount")
ABSURD = "absurd_amount"  # one row, when absurd_amount_bytes > 0
REJECTED_KINDS = (*BAD_KINDS, *HOSTILE_KINDS, ABSURD)
_STATUS_WEIGHTS = (("USED", 80), ("READY", 15), ("EXPIRED", 5))
_FRACTION_CENTS = (50, 25, 75)
_EPOCH_SECONDS = int(datetime(2026, 1, 1, 8, 0, 0, tzinfo=UTC).timestamp())
METER_COLUMNS = ("id", "meter_number", "user_id", "created_at")
TOPUP_COLUMNS = ("id", "txn_id", "user_id", "meter_id", "amount", "currency", "method", "status", "created_at")
TUI_COLUMNS = ("id", "topup_id", "txn_id", "meter_id", "user_id", "amount", "status", "created_at")


def sample_txn_id(number: int) -> str:
    """The txn_id of sample row `number`: 24 lowercase hex characters, as PAY+ writes them."""
    return hashlib.blake2b(number.to_bytes(8, "big"), digest_size=12).hexdigest()


def sample_row_kinds(
    *, topups: int, seed: int = 1, messy: bool = True, hostile: bool = False, absurd_amount_bytes: int = 0
) -> dict[int, str]:
    """The kind of every special row (tuis.id → one of `REJECTED_KINDS` or `HELD_KINDS`) of the sample that
    `create_sample_app_db` writes with these arguments; rows not listed are good."""
    kinds = _special_rows(random.Random(seed), topups, messy=messy, hostile=hostile, absurd=absurd_amount_bytes > 0)
    return {n: "duplicate_txn_id" if k.startswith("duplicate") else k for n, k in kinds.items()}


def _special_rows(rng: random.Random, topups: int, *, messy: bool, hostile: bool, absurd: bool) -> dict[int, str]:
    """Row numbers (1-based) turned bad or held, by kind: a few of each, spread over the whole table."""
    names = [*BAD_KINDS, *HELD_KINDS] if messy else []
    names += list(HOSTILE_KINDS) if hostile else []
    if not names and not absurd:
        return {}
    per_kind = max(1, min(5, topups // 100))
    duplicates = per_kind if "duplicate_txn_id" in names else 0  # a duplicate spoils two rows
    wanted = per_kind * len(names) + duplicates + int(absurd)
    if topups - 1 < wanted:
        return {}
    picked = rng.sample(range(2, topups + 1), wanted)
    kinds: dict[int, str] = {}
    for i, kind in enumerate(names):
        for number in picked[i * per_kind : (i + 1) * per_kind]:
            kinds[number] = kind
    rest = picked[len(names) * per_kind :]
    if absurd:
        kinds[rest.pop()] = ABSURD
    copies = [n for n, k in kinds.items() if k == "duplicate_txn_id"]
    for copy, original in zip(copies, rest, strict=True):
        kinds[original] = "duplicate_original"
        kinds[copy] = f"duplicate_of:{original}"
    return kinds


def _stamp(number: int) -> int:
    return _EPOCH_SECONDS + 37 * number


def _meter_number(meter_id: int) -> str:
    """An 11-digit meter number, kept as text: one in eight starts with "0" (meter 1 does)."""
    first = "0" if meter_id % 8 == 1 else str(1 + meter_id % 9)
    return f"{first}{(meter_id * 36_912_345_673) % 10**10:010d}"  # the multiplier is prime to 10: distinct tails


def _not_utf8(text: str) -> bytes:
    """`text` with a byte that is never valid UTF-8 (0xFF) and a cut-off sequence (0xC3) inside."""
    middle = len(text) // 2
    return text[:middle].encode() + b"\xff\xc3" + text[middle:].encode()


class SamplePlan:
    """The rows of one sample database: `meters()`, `topups()`, `tuis()`, then `patches()` and `counts()`."""

    def __init__(
        self,
        *,
        topups: int,
        seed: int = 1,
        messy: bool = True,
        hostile: bool = False,
        absurd_amount_bytes: int = 0,
    ) -> None:
        self.rng = random.Random(seed)
        self.size = topups
        self.absurd_amount_bytes = absurd_amount_bytes
        self.kinds = _special_rows(self.rng, topups, messy=messy, hostile=hostile, absurd=absurd_amount_bytes > 0)
        self.meter_count = max(1, topups // 4)
        self.statuses = [s for s, w in _STATUS_WEIGHTS for _ in range(w)]
        self.status_counts: dict[str, int] = {}
        self.fractions = 0

    def meters(self) -> Iterator[tuple[Any, ...]]:
        for meter_id in range(1, self.meter_count + 1):
            yield (meter_id, _meter_number(meter_id), meter_id, _stamp(meter_id // 10))
        for number, kind in sorted(self.kinds.items()):
            if kind == "invalid_utf8_meter":  # a meter of its own, so no good row shares the bad number
                meter_id = self._own_meter(number)
                yield (meter_id, _meter_number(meter_id), None, _stamp(number))

    def _own_meter(self, number: int) -> int:
        return self.meter_count + 2_000_000 + number

    def _meter_of(self, number: int) -> int:
        if self.kinds.get(number) == "invalid_utf8_meter":
            return self._own_meter(number)
        return (number * 7919) % self.meter_count + 1

    def amount(self, number: int) -> str:
        """The top-up's money as `str()` of its two-decimal Decimal: 500.00 to 20000.00 XAF, and for about one
        row in eight a fraction ("1250.50")."""
        cents = 50_000 * (1 + (number * 31) % 40)
        if number % 8 == 3:
            cents += _FRACTION_CENTS[(number // 8) % len(_FRACTION_CENTS)]
        return f"{cents // 100}.{cents % 100:02d}"  # what str(Decimal) gives, without a Decimal per row

    def topups(self) -> Iterator[tuple[Any, ...]]:
        for number in range(1, self.size + 1):
            kind = self.kinds.get(number, "")
            if kind == "missing_topup" or kind.startswith("duplicate_of:"):
                continue
            meter_id = self._meter_of(number)
            if kind == "missing_meter":
                meter_id = self.meter_count + 1_000_000 + number
            amount = self.amount(number)
            if kind == "amount_mismatch":  # the TUI was signed over another amount: tampered or corrupted
                amount = str(Decimal(amount) * 10)
            elif kind in ("zero_amount", "negative_amount"):  # the same money on both sides: only "not positive"
                amount = self._tui_amount(number, kind)
            method = "stripe" if number % 3 else "flutterwave"
            txn = sample_txn_id(number)
            yield (number, txn, meter_id, meter_id, amount, "XAF", method, "LOADED_TO_CARD", _stamp(number))

    def tuis(self) -> Iterator[tuple[Any, ...]]:
        for number in range(1, self.size + 1):
            kind = self.kinds.get(number, "")
            status = "USED" if kind else self.rng.choice(self.statuses)
            self.status_counts[status] = self.status_counts.get(status, 0) + 1
            txn: str | None = sample_txn_id(number)
            amount = self.amount(number)  # str() of a two-decimal Decimal, as the backend writes it
            if not kind and status == "USED" and amount[-3:] != ".00":
                self.fractions += 1
            if kind in ("bad_amount", "zero_amount", "negative_amount"):
                amount = self._tui_amount(number, kind)
            elif kind == "null_txn_id":
                txn = None
            elif kind.startswith("duplicate_of:"):
                txn = sample_txn_id(int(kind.split(":")[1]))
            topup_id = None if kind == "missing_topup" or kind.startswith("duplicate_of:") else number
            meter_id = self._meter_of(number)
            yield (number, topup_id, txn, meter_id, meter_id, amount, status, _stamp(number))

    def _tui_amount(self, number: int, kind: str) -> str:
        """The tuis.amount of a row whose amount is bad (the topup of a zero or negative one says the same)."""
        if kind == "bad_amount":
            return ("1,5x", "abc", "", "15OO")[number % 4]
        if kind == "zero_amount":
            return ("0", "0.00")[number % 2]
        return "-" + self.amount(number)

    def patches(self) -> Iterator[tuple[str, str, str, Any, int]]:
        """The values written after the rows: (table, column, how, value, id), how = "text" (the bytes stored as
        TEXT, really invalid UTF-8 in a text column) or "blob" (stored as a BLOB) or "value"."""
        for number, kind in sorted(self.kinds.items()):
            if kind == "invalid_utf8_txn_id":  # the same bytes on both sides, so the join still matches
                bad = _not_utf8(sample_txn_id(number))
                yield ("tuis", "txn_id", "text", bad, number)
                yield ("topups", "txn_id", "text", bad, number)
            elif kind == "invalid_utf8_meter":
                meter_id = self._own_meter(number)
                yield ("meters", "meter_number", "text", _not_utf8(_meter_number(meter_id)), meter_id)
            elif kind == "invalid_utf8_amount":
                how = "text" if number % 2 else "blob"
                yield ("tuis", "amount", how, _not_utf8(self.amount(number)), number)
            elif kind == ABSURD:
                yield ("tuis", "amount", "value", "9" * self.absurd_amount_bytes, number)

    def counts(self) -> dict[str, int]:
        """What the sample holds: rows per table and status, per special kind, and the totals
        `rejected` (bad), `held` (for review), `pushable` (USED and good, fractions included), `fractions`."""
        special: dict[str, int] = dict.fromkeys((*REJECTED_KINDS, *HELD_KINDS), 0)
        for kind in self.kinds.values():
            special["duplicate_txn_id" if kind.startswith("duplicate") else kind] += 1
        rejected = sum(special[k] for k in REJECTED_KINDS)
        held = sum(special[k] for k in HELD_KINDS)
        used = self.status_counts.get("USED", 0)
        return {
            "tuis": self.size,
            "topups": self.size - special["missing_topup"] - special["duplicate_txn_id"] // 2,
            "meters": self.meter_count + special["invalid_utf8_meter"],
            "used": used,
            "ready": self.status_counts.get("READY", 0),
            "expired": self.status_counts.get("EXPIRED", 0),
            **special,
            "rejected": rejected,
            "held": held,
            "pushable": used - rejected - held,
            "fractions": self.fractions,
        }
