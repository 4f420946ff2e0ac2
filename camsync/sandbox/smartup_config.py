"""The switches and the voice of the SmartUp simulator: its exports, error codes and answers, faults and options."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from camsync.sandbox.server import Refusal, Reply

AUTH_TEXT = "Требуется авторизация"
TEXT = "text/plain; charset=utf-8"
BUDGET_ERROR_CODE = "A02-00-999"
RANGE_ERROR_CODE = "A02-00-015"
FILIAL_NOT_FOUND_CODE = "A02-24-042"
FILIAL_MISMATCH_CODE = "A02-24-048"
BUDGET_CLASSES = ("reference", "documents", "rare")
RANGE_MODES = ("clamp", "error", "empty")


@dataclass(frozen=True)
class Endpoint:
    """An export: its name, the root key of its answer, the daily budget class it spends and its project."""

    name: str
    root: str
    budget_class: str
    project: str  # the first segment after /b/: "anor" paths also take project_code "anor"


ENDPOINTS: dict[str, Endpoint] = {
    "/b/anor/mxsx/mr/inventory$export": Endpoint("inventory", "inventory", "reference", "anor"),
    "/b/trade/txs/tdeal/order$export": Endpoint("orders", "order", "documents", "trade"),
    "/b/anor/api/v2/mkf/product_price$export": Endpoint("prices", "inventory", "reference", "anor"),
    "/b/anor/mxsx/mr/product_group$export": Endpoint("groups", "product_group", "reference", "anor"),
    "/b/anor/mxsx/mkw/balance$export": Endpoint("balance", "balance", "documents", "anor"),
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class SmartupFaults:
    """Fault switches: each a probability (0..1) and a "next N requests" counter; both settable at runtime.

    Transport faults (drop, server_error, rate_limit, bad_request) strike before auth and do not spend the
    budget; answer faults (error_json, malformed) and `slow` strike on an authorised, counted call.
    """

    drop: float = 0.0
    drop_next: int = 0
    server_error: float = 0.0
    server_error_next: int = 0
    server_error_status: int = 0  # 0: 500, 502 and 503 in turn
    rate_limit: float = 0.0
    rate_limit_next: int = 0
    retry_after: int = 1
    bad_request: float = 0.0
    bad_request_next: int = 0
    error_json: float = 0.0
    error_json_next: int = 0
    error_code: str = FILIAL_NOT_FOUND_CODE
    error_message: str = "filial code not found"
    malformed: float = 0.0
    malformed_next: int = 0
    slow: float = 0.0
    slow_next: int = 0
    slow_seconds: float = 2.0
    latency: float = 0.0  # added to every export answer


TRANSPORT_FAULTS = ("drop", "server_error", "rate_limit", "bad_request")
ANSWER_FAULTS = ("error_json", "malformed")
FAULT_NAMES = (*TRANSPORT_FAULTS, *ANSWER_FAULTS, "slow")  # each has a chance and a `<name>_next` counter


@dataclass
class SmartupSandboxConfig:
    """Every option of the SmartUp simulator."""

    products: int = 200
    orders: int = 300
    seed: int = 42
    user: str = "sandbox"
    password: str = "sandbox"
    project_code: str = "trade"  # on /b/trade/ paths; /b/anor/ paths also take "anor"
    filial_id: str = "100"
    filial_codes: tuple[str, ...] = ("TASH", "SAMR", "BUKH")
    single_organisation: bool = False  # one organisation: a foreign filial_code answers A02-24-048
    day_range_limit: int = 7
    range_mode: str = "clamp"  # clamp (silently, like the real API) | error | empty (200 with no items)
    warehouses: int = 3  # main, second, …, defective/returns (from three on)
    reference_budget: int = 100
    documents_budget: int = 500
    rare_budget: int = 300
    budget_status: int = 200  # HTTP status of the budget-exhausted error (200 or 429)
    limits_as_numbers: bool = False
    limits_first: bool = False
    timezone: str = "Asia/Tashkent"
    cache_entries: int = 32  # distinct requests whose encoded arrays are kept
    cache_bytes: int = 512 * 1024 * 1024  # and at most this much of them (the newest is always kept)
    faults: SmartupFaults = field(default_factory=SmartupFaults)
    clock: Callable[[], datetime] = _utcnow
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if self.range_mode not in RANGE_MODES:
            raise ValueError(f"range_mode must be one of {', '.join(RANGE_MODES)}")
        if self.warehouses < 1:
            raise ValueError("warehouses must be at least 1")
        if self.day_range_limit < 1:
            raise ValueError("day_range_limit must be at least 1")
        if not self.filial_id.isdigit():
            raise ValueError("filial_id must be a numeric id")
        if not self.filial_codes:
            raise ValueError("filial_codes must name at least one organisation")


def text_reply(status: int, text: str, headers: dict[str, str] | None = None) -> Reply:
    """A plain-text answer."""
    return Reply(status=status, body=text, content_type=TEXT, headers=headers or {})


def error_reply(code: str, message: str, status: int = 200) -> Reply:
    """SmartUp's error JSON."""
    return Reply(status=status, body={"error_code": code, "message": message})


class BadRequest(Refusal):
    """Answered 400 with a plain-text body."""

    def __init__(self, message: str) -> None:
        super().__init__(text_reply(400, message))


class ApiError(Refusal):
    """Answered with error JSON (HTTP 200 unless told otherwise)."""

    def __init__(self, code: str, message: str, status: int = 200) -> None:
        super().__init__(error_reply(code, message, status))
