"""The SmartUp client against httpx.MockTransport: requests, URL building, streaming, errors, retries, secrets."""

from __future__ import annotations

import base64
import importlib.util
import json
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from mock_http import Recorder

from camsync.clients import smartup_answer
from camsync.clients.http import RetryPolicy
from camsync.clients.smartup import Export, SmartupClient
from camsync.clients.smartup_errors import (
    SmartupApiError,
    SmartupAuthError,
    SmartupBudgetError,
    SmartupError,
    SmartupResponseError,
)
from camsync.clients.smartup_limits import BudgetClass, Limits
from camsync.errors import ConfigError, UpstreamError, UsageError
from camsync.settings import load_settings

BASE = "https://smartup.example.test"
USER = "api@acme"
PASSWORD = "canary-Pw-7f3e91"  # must never show in an error or a log line
LIMITS_STR = {
    "has_limit": "Y",
    "limit_quant": "100",
    "request_quant": "12",
    "left_limit_quant": "88",
    "object_count": "2",
    "day_range_limit": "7",
}
LIMITS_NUM = {
    "has_limit": "Y",
    "limit_quant": 500,
    "request_quant": 40,
    "left_limit_quant": 460,
    "object_count": 3,
    "day_range_limit": 7,
}


class Body(httpx.SyncByteStream):
    """A streamed response body from chunks; records how much was read and whether it was closed."""

    def __init__(self, chunks: Iterator[bytes] | list[bytes]) -> None:
        self.chunks = iter(chunks)
        self.bytes_read = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.bytes_read += len(chunk)
            yield chunk

    def close(self) -> None:
        self.closed = True


def env(**extra: str) -> dict[str, str]:
    return {
        "SMARTUP_BASE_URL": BASE,
        "SMARTUP_BASIC_USER": USER,
        "SMARTUP_BASIC_PASS": PASSWORD,
        "SMARTUP_FILIAL_ID": "1833",
        **extra,
    }


def make_client(
    recorder: Recorder, sleeps: list[float] | None = None, attempts: int = 3, **extra: str
) -> SmartupClient:
    settings = load_settings(env(**extra), None)
    pauses = sleeps if sleeps is not None else []
    return SmartupClient.from_settings(
        settings,
        transport=httpx.MockTransport(recorder),
        policy=RetryPolicy(attempts=attempts, base_delay=0.01),
        sleep=pauses.append,
    )


def ok(payload: Any) -> httpx.Response:
    return httpx.Response(200, json=payload)


def products(*codes: str, limits: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"inventory": [{"product_id": str(i), "code": code} for i, code in enumerate(codes)], "limits": limits or {}}


def streamed(chunks: list[bytes], status: int = 200) -> tuple[httpx.Response, Body]:
    body = Body(chunks)
    return httpx.Response(status, stream=body, headers={"Content-Type": "application/json"}), body


# --- requests: URL, headers, auth, body --------------------------------------------------------------------


def test_products_export_posts_the_inventory_body_with_auth_and_context_headers() -> None:
    recorder = Recorder(ok(products("A1")))
    client = make_client(recorder, SMARTUP_PROJECT_CODE="anor")
    with client.export_products(begin_modified_on=date(2026, 6, 1), end_modified_on=date(2026, 6, 7)) as export:
        assert [item["code"] for item in export] == ["A1"]
    request = recorder.requests[0]
    assert request.method == "POST"
    assert request.url.raw_path == b"/b/anor/mxsx/mr/inventory$export"
    assert request.headers["project_code"] == "anor"
    assert request.headers["filial_id"] == "1833"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert recorder.body() == {
        "code": "",
        "begin_created_on": "",
        "end_created_on": "",
        "begin_modified_on": "01.06.2026",
        "end_modified_on": "07.06.2026",
    }


def test_products_export_without_filters_sends_every_key_empty() -> None:
    recorder = Recorder(ok(products()))
    make_client(recorder).export_products(code="P-7").close()
    assert recorder.requests[0].headers["project_code"] == "trade"
    assert recorder.body() == {
        "code": "P-7",
        "begin_created_on": "",
        "end_created_on": "",
        "begin_modified_on": "",
        "end_modified_on": "",
    }


def test_orders_export_sends_the_filial_code_setting_and_statuses() -> None:
    recorder = Recorder(ok({"order": [{"deal_id": "9"}], "limits": LIMITS_NUM}))
    client = make_client(recorder, SMARTUP_FILIAL_CODE="F-01")
    with client.export_orders(begin_modified_on=date(2026, 6, 25), statuses=["B#N", "B#S"]) as export:
        assert list(export) == [{"deal_id": "9"}]
    assert recorder.requests[0].url.raw_path == b"/b/trade/txs/tdeal/order$export"
    assert recorder.body() == {
        "filial_codes": [{"filial_code": "F-01"}],
        "filial_code": "F-01",
        "external_id": "",
        "deal_id": "",
        "begin_deal_date": "",
        "end_deal_date": "",
        "delivery_date": "",
        "begin_created_on": "",
        "end_created_on": "",
        "begin_modified_on": "25.06.2026",
        "end_modified_on": "",
        "statuses": ["B#N", "B#S"],
    }


def test_orders_export_filial_code_argument_wins_and_statuses_are_left_out_when_empty() -> None:
    recorder = Recorder(ok({"order": []}))
    make_client(recorder, SMARTUP_FILIAL_CODE="F-01").export_orders(deal_id="123", filial_code="").close()
    body = recorder.body()
    assert body["filial_codes"] == [{"filial_code": ""}]
    assert body["filial_code"] == ""
    assert body["deal_id"] == "123"
    assert "statuses" not in body


def test_prices_export_posts_an_empty_object_and_reads_the_inventory_key() -> None:
    item = {"inventory_code": "A1", "price_type": [{"price_type_code": "R", "price": "1500"}]}
    recorder = Recorder(ok({"inventory": [item]}))
    with make_client(recorder).export_prices() as export:
        assert list(export) == [item]
        assert export.budget_class is BudgetClass.REFERENCE
    assert recorder.requests[0].url.raw_path == b"/b/anor/api/v2/mkf/product_price$export"
    assert recorder.body() == {}


def test_a_base_url_with_a_path_prefix_keeps_it() -> None:
    recorder = Recorder(ok({"order": []}))
    make_client(recorder, SMARTUP_BASE_URL="https://app3.example.test/xtrade/").export_orders().close()
    url = recorder.requests[0].url
    assert url.host == "app3.example.test"
    assert url.raw_path == b"/xtrade/b/trade/txs/tdeal/order$export"


def test_override_urls_are_used_as_given() -> None:
    recorder = Recorder(ok(products()), ok({"order": []}), ok({"inventory": []}))
    client = make_client(
        recorder,
        SMARTUP_BASE_URL="",
        SMARTUP_INVENTORY_EXPORT_URL="https://a.example.test/p/inventory%24export",
        SMARTUP_ORDERS_EXPORT_URL="https://b.example.test/o$export",
        SMARTUP_PRICES_EXPORT_URL="https://c.example.test/x/prices",
    )
    client.export_products().close()
    client.export_orders().close()
    client.export_prices().close()
    assert [str(r.url) for r in recorder.requests] == [
        "https://a.example.test/p/inventory%24export",
        "https://b.example.test/o$export",
        "https://c.example.test/x/prices",
    ]


def test_the_timeout_setting_reaches_the_http_client() -> None:
    client = make_client(Recorder(), TIMEOUT_SECONDS="45")
    assert client.client.timeout.read == 45.0


def test_a_missing_base_url_is_a_config_error_naming_it() -> None:
    settings = load_settings(env(SMARTUP_BASE_URL="", SMARTUP_ORDERS_EXPORT_URL="https://b.example.test/o"), None)
    with pytest.raises(ConfigError, match="SMARTUP_BASE_URL"):
        SmartupClient.from_settings(settings, transport=httpx.MockTransport(Recorder()))


@pytest.mark.parametrize("missing", ["SMARTUP_BASIC_USER", "SMARTUP_BASIC_PASS"])
def test_missing_credentials_are_a_config_error_naming_them(missing: str) -> None:
    settings = load_settings(env(**{missing: ""}), None)
    with pytest.raises(ConfigError, match=missing):
        SmartupClient.from_settings(settings)


def test_a_range_that_ends_before_it_begins_is_refused_before_any_call() -> None:
    recorder = Recorder(ok({"order": []}))
    with pytest.raises(UsageError):
        make_client(recorder).export_orders(begin_modified_on=date(2026, 6, 9), end_modified_on=date(2026, 6, 1))
    assert recorder.requests == []


def test_a_range_wider_than_the_day_range_limit_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="camsync")
    recorder = Recorder(ok({"order": []}))
    client = make_client(recorder, SMARTUP_DAY_RANGE_LIMIT="7")
    client.export_orders(begin_modified_on=date(2026, 6, 1), end_modified_on=date(2026, 6, 7)).close()
    assert "smartup_range" not in [getattr(r, "event", None) for r in caplog.records]
    client.export_orders(begin_modified_on=date(2026, 6, 1), end_modified_on=date(2026, 6, 8)).close()
    assert "smartup_range" in [getattr(r, "event", None) for r in caplog.records]


# --- streaming ---------------------------------------------------------------------------------------------


def test_a_large_answer_is_read_once_and_its_items_are_the_bytes_sent() -> None:
    count = 60_000
    texts = [
        json.dumps({"product_id": str(i), "code": f"C{i}", "name": "Товар" * 10}, ensure_ascii=False).encode()
        for i in range(count)
    ]
    pieces = [b'{"inventory":[', *(b"," * bool(i) + text for i, text in enumerate(texts))]
    pieces.append(b'],"limits":' + json.dumps(LIMITS_STR).encode() + b"}")
    response, body = streamed(pieces)
    export = make_client(Recorder(response)).export_products()
    assert sum(len(piece) for piece in pieces) > 5_000_000
    assert body.closed and body.bytes_read == sum(len(piece) for piece in pieces)
    assert export.count == count
    assert [bytes(raw) for raw in export.raw_items()] == texts
    assert [item["product_id"] for item in export] == [str(i) for i in range(count)]
    assert export.limits is not None and export.limits.object_count == 2


def test_an_answer_larger_than_the_cap_is_refused_before_anything_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smartup_answer, "MAX_ANSWER_BYTES", 1000)
    response, body = streamed([b'{"inventory":[', b'{"code":"A"},' * 100, b'{"code":"B"}]}'])
    with pytest.raises(SmartupResponseError, match="larger than") as caught:
        make_client(Recorder(response)).export_products()
    assert "products" in str(caught.value)
    assert body.closed


def test_a_ten_megabyte_string_inside_an_item_is_read_whole() -> None:
    name = "Ж" * (5 * 1024 * 1024)  # 10 MB of UTF-8
    raw = json.dumps({"inventory": [{"code": "BIG", "name": name}, {"code": "NEXT"}]}, ensure_ascii=False).encode()
    response, _ = streamed([raw[i : i + 65536] for i in range(0, len(raw), 65536)])
    with make_client(Recorder(response)).export_products() as export:
        items = list(export)
    assert [item["code"] for item in items] == ["BIG", "NEXT"]
    assert items[0]["name"] == name


def test_nested_lists_and_unknown_keys_come_through_raw() -> None:
    item = {"deal_id": "1", "order_products": [{"product_code": "A", "sold_quant": "2"}], "total_amount": 12.5}
    recorder = Recorder(ok({"meta": {"x": [1, {"y": 2}]}, "order": [item], "limits": LIMITS_NUM}))
    with make_client(recorder).export_orders() as export:
        assert list(export) == [item]


def test_items_of_any_nesting_come_through_as_json_loads_reads_them() -> None:
    items = [
        {"a.b": "dotted", "empty": {}, "none": None, "flags": [True, False], "n": 1, "x": 2.5, "s": "Ўзбек \u2603"},
        {"deep": [[[], [{"k": [1, [2, [3]]]}]], {"m": {"n": {"o": []}}}], "after": "yes"},
        {},
    ]
    raw = json.dumps({"order": items, "limits": LIMITS_STR}).encode()
    response, _ = streamed([raw[i : i + 7] for i in range(0, len(raw), 7)])
    with make_client(Recorder(response)).export_orders() as export:
        assert list(export) == json.loads(raw)["order"]


@pytest.mark.parametrize("raw", [LIMITS_STR, LIMITS_NUM], ids=["strings", "numbers"])
def test_limits_first_are_known_before_the_items(raw: dict[str, Any]) -> None:
    recorder = Recorder(ok({"limits": raw, "inventory": [{"code": "A"}, {"code": "B"}]}))
    client = make_client(recorder)
    export = client.export_products()
    expected = Limits(
        has_limit=True,
        limit_quant=int(raw["limit_quant"]),
        request_quant=int(raw["request_quant"]),
        left_limit_quant=int(raw["left_limit_quant"]),
        object_count=int(raw["object_count"]),
        day_range_limit=7,
    )
    assert export.limits == expected
    assert client.last_limits[BudgetClass.REFERENCE] == expected
    assert len(list(export)) == 2


@pytest.mark.parametrize("raw", [LIMITS_STR, LIMITS_NUM], ids=["strings", "numbers"])
def test_limits_after_the_items_are_known_when_the_export_returns(raw: dict[str, Any]) -> None:
    items = [{"deal_id": str(i)} for i in range(3)]
    client = make_client(Recorder(ok({"order": items, "limits": raw})))
    export = client.export_orders()
    assert export.limits is not None
    assert export.limits.left_limit_quant == int(raw["left_limit_quant"])
    assert client.last_limits == {BudgetClass.DOCUMENTS: export.limits}
    assert list(export) == items


def test_limits_values_that_are_empty_or_not_numbers_become_none() -> None:
    limits = Limits.from_raw({"has_limit": "N", "limit_quant": "", "left_limit_quant": "12.0", "object_count": "n/a"})
    assert limits == Limits(False, None, None, 12, None, None)


def test_calls_and_last_limits_are_kept_per_budget_class() -> None:
    recorder = Recorder(
        ok(products("A", limits=LIMITS_STR)),
        ok({"order": [], "limits": LIMITS_NUM}),
        ok({"inventory": [], "limits": {**LIMITS_STR, "left_limit_quant": "87"}}),
    )
    client = make_client(recorder)
    for start in (client.export_products, client.export_orders, client.export_prices):
        with start() as export:
            list(export)
    assert client.calls == {BudgetClass.REFERENCE: 2, BudgetClass.DOCUMENTS: 1, BudgetClass.RARE: 0}
    assert client.last_limits[BudgetClass.REFERENCE].left_limit_quant == 87
    assert client.last_limits[BudgetClass.DOCUMENTS].left_limit_quant == 460


def test_breaking_off_early_closes_the_response() -> None:
    response, body = streamed([b'{"inventory":[{"code":"A"},', b'{"code":"B"},', b'{"code":"C"}]}'])
    export = make_client(Recorder(response)).export_products()
    for _item in export:
        break
    export.close()
    assert body.closed


def test_an_empty_or_null_root_array_yields_nothing() -> None:
    client = make_client(Recorder(ok({"inventory": [], "limits": LIMITS_STR}), ok({"inventory": None})))
    assert list(client.export_products()) == []
    assert list(client.export_products()) == []


# --- errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 400, 404])
def test_an_error_object_is_an_api_error_with_code_and_message(status: int) -> None:
    answer = httpx.Response(status, json={"error_code": "A02-24-042", "message": "Филиал с кодом F-9 не найден"})
    with pytest.raises(SmartupApiError) as caught:
        make_client(Recorder(answer)).export_orders(filial_code="F-9")
    error = caught.value
    assert type(error) is SmartupApiError
    assert error.code == "A02-24-042"
    assert error.message == "Филиал с кодом F-9 не найден"
    assert error.status == status
    assert error.service == "SmartUp"
    assert "A02-24-042" in str(error) and "orders" in str(error)
    assert "SMARTUP_FILIAL_CODE" in (error.hint or "")


def test_an_error_object_under_200_closes_the_response() -> None:
    response, body = streamed([b'{"error_code":"A02-24-048",', b'"message":"no match"}'])
    with pytest.raises(SmartupApiError, match="A02-24-048"):
        make_client(Recorder(response)).export_orders()
    assert body.closed


@pytest.mark.parametrize(
    ("code", "message"),
    [("A02-00-999", "Лимит"), ("A02-01-001", "Daily request limit exceeded"), ("X", "Лимит запросов исчерпан")],
)
def test_a_spent_budget_is_a_budget_error(code: str, message: str) -> None:
    answer = ok({"error_code": code, "message": message})
    with pytest.raises(SmartupBudgetError) as caught:
        make_client(Recorder(answer)).export_products()
    assert caught.value.code == code
    assert "reference" in (caught.value.hint or "")


def test_a_date_range_error_is_not_taken_for_a_spent_budget() -> None:
    answer = ok({"error_code": "A02-01-007", "message": "Date range exceeds the day_range_limit of 7 days"})
    with pytest.raises(SmartupApiError) as caught:
        make_client(Recorder(answer)).export_orders()
    assert not isinstance(caught.value, SmartupBudgetError)


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_an_auth_error_with_the_text_and_a_hint(status: int) -> None:
    answer = httpx.Response(status, text="Требуется авторизация", headers={"Content-Type": "text/plain; charset=utf-8"})
    with pytest.raises(SmartupAuthError) as caught:
        make_client(Recorder(answer)).export_products()
    error = caught.value
    assert error.status == status
    assert "Требуется авторизация" in str(error)
    for name in ("SMARTUP_BASIC_USER", "SMARTUP_BASIC_PASS", "SMARTUP_PROJECT_CODE"):
        assert name in (error.hint or "")


def test_a_plain_text_400_is_a_smartup_error_with_the_text() -> None:
    answer = httpx.Response(400, text="Неверный формат даты: 2026-06-01")
    with pytest.raises(SmartupError) as caught:
        make_client(Recorder(answer)).export_orders()
    assert type(caught.value) is SmartupError
    assert caught.value.status == 400
    assert "Неверный формат даты" in str(caught.value)


@pytest.mark.parametrize(
    ("chunks", "where"),
    [
        ([b'{"inventory":[{"code":"A"},{"code":"B"}'], "ends too early"),
        ([b'{"inventory":[{"code":"A"},', b'{"code":"B",,}]}'], "not valid JSON"),
        ([b"<html><body>Bad gateway</body></html>"], "it began with: <html><body>Bad gateway"),
        ([b""], "ends too early"),
        ([b'{"inventory":[{"code":"A"}]} {"x":1}'], "unexpected data after the answer"),
        ([b'[{"code":"A"}]'], "not a JSON object"),
        ([b'{"inventory":{"code":"A"}}'], "'inventory' is not an array"),
        ([b'{"inventory":[{"code":"A"},"B"]}'], "item 2 of 'inventory' is not an object"),
        ([b'{"inventory":[],"limits":"Y"}'], "'limits' is not an object"),
    ],
)
def test_a_malformed_answer_is_a_response_error_naming_the_export_and_where(chunks: list[bytes], where: str) -> None:
    response, body = streamed(chunks)
    with pytest.raises(SmartupResponseError) as caught:
        list(make_client(Recorder(response)).export_products())
    assert "products" in str(caught.value)
    assert where in str(caught.value)
    assert body.closed


def test_a_text_answer_under_200_is_shown_in_the_response_error() -> None:
    answer = httpx.Response(200, text=f"Требуется авторизация password={PASSWORD}")
    with pytest.raises(SmartupResponseError) as caught:
        make_client(Recorder(answer)).export_products()
    assert "it began with: Требуется авторизация" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_a_missing_root_key_is_a_response_error_naming_it() -> None:
    with pytest.raises(SmartupResponseError, match="without the 'order' key"):
        make_client(Recorder(ok({"data": [{"deal_id": "1"}], "count": "1"}))).export_orders()


def test_a_connection_lost_in_the_middle_is_a_retryable_response_error_and_nothing_is_handed_out() -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"inventory":[{"code":"A"},'
        yield b'{"code":"B"},'
        raise httpx.ReadError("connection reset")

    body = Body(chunks())
    client = make_client(Recorder(httpx.Response(200, stream=body)))
    with pytest.raises(SmartupResponseError, match="broke off after 40 bytes") as caught:
        client.export_products()
    assert caught.value.retryable
    assert "nothing of it was used" in (caught.value.hint or "")
    assert body.closed


# --- retries -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried_then_the_answer_is_read(status: int) -> None:
    sleeps: list[float] = []
    recorder = Recorder(httpx.Response(status, text="busy"), httpx.Response(status), ok(products("A")))
    client = make_client(recorder, sleeps, attempts=4)
    assert [item["code"] for item in client.export_products()] == ["A"]
    assert len(recorder.requests) == 3
    assert len(sleeps) == 2
    assert all(0 <= pause <= 0.01 * 2**i for i, pause in enumerate(sleeps))
    assert client.calls[BudgetClass.REFERENCE] == 3


def test_429_waits_for_retry_after_in_seconds() -> None:
    sleeps: list[float] = []
    recorder = Recorder(httpx.Response(429, headers={"Retry-After": "7"}), ok({"order": []}))
    list(make_client(recorder, sleeps).export_orders())
    assert sleeps == [7.0]


def test_429_waits_for_retry_after_as_an_http_date() -> None:
    sleeps: list[float] = []
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=40), usegmt=True)
    recorder = Recorder(httpx.Response(429, headers={"Retry-After": when}), ok({"order": []}))
    list(make_client(recorder, sleeps).export_orders())
    assert len(sleeps) == 1
    assert 30 <= sleeps[0] <= 40


def test_connection_errors_are_retried_then_the_answer_is_read() -> None:
    sleeps: list[float] = []
    recorder = Recorder(httpx.ConnectError("refused"), httpx.ConnectError("refused"), ok(products("A")))
    assert len(list(make_client(recorder, sleeps).export_products())) == 1
    assert len(sleeps) == 2


def test_giving_up_on_server_errors_says_how_often_it_tried() -> None:
    sleeps: list[float] = []
    recorder = Recorder(httpx.Response(503, text="Service Unavailable"))
    with pytest.raises(SmartupError) as caught:
        make_client(recorder, sleeps, attempts=3).export_orders()
    error = caught.value
    assert not isinstance(error, SmartupApiError)
    assert isinstance(error, UpstreamError) and error.service == "SmartUp"
    assert error.status == 503 and error.retryable
    assert "HTTP 503" in str(error) and "3 attempts" in str(error)
    assert len(recorder.requests) == 3 and len(sleeps) == 2


def test_giving_up_on_connection_errors_is_a_smartup_error() -> None:
    recorder = Recorder(httpx.ConnectError("Connection refused"))
    with pytest.raises(SmartupError, match="unreachable") as caught:
        make_client(recorder, attempts=2).export_products()
    assert caught.value.status is None and caught.value.retryable


def test_giving_up_on_429_is_a_budget_error() -> None:
    recorder = Recorder(httpx.Response(429, headers={"Retry-After": "1"}))
    with pytest.raises(SmartupBudgetError) as caught:
        make_client(recorder, attempts=3).export_orders()
    assert caught.value.status == 429
    assert "documents" in (caught.value.hint or "")


# --- secrets -----------------------------------------------------------------------------------------------


def _failures() -> list[tuple[Recorder, type[SmartupError]]]:
    echo = f"Требуется авторизация for {USER}:{PASSWORD} password={PASSWORD}"
    return [
        (Recorder(httpx.Response(401, text=echo)), SmartupAuthError),
        (Recorder(httpx.Response(400, text=echo)), SmartupError),
        (Recorder(httpx.Response(503, text=echo)), SmartupError),
        (Recorder(ok({"error_code": "A02-24-070", "message": echo})), SmartupApiError),
        (Recorder(httpx.Response(403, json={"error_code": "A02-00-001", "message": echo})), SmartupAuthError),
        (Recorder(httpx.ConnectError(f"cannot reach {USER}:{PASSWORD}@host")), SmartupError),
        (Recorder(ok({"message": echo})), SmartupResponseError),
    ]


def test_the_password_never_shows_in_errors_or_logs(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    for recorder, kind in _failures():
        client = make_client(recorder, attempts=2)
        with pytest.raises(kind) as caught:
            list(client.export_orders(begin_modified_on=date(2026, 6, 1)))
        error = caught.value
        shown = " ".join([str(error), repr(error), error.hint or "", error.message, *map(str, error.args)])
        assert PASSWORD not in shown, shown
    with make_client(Recorder(ok(products("A", limits=LIMITS_STR))), attempts=2).export_products() as export:
        list(export)
    out, err = capsys.readouterr()
    assert PASSWORD not in caplog.text + out + err
    assert out == "" and err == ""


def test_the_export_type_is_exposed_for_the_sync() -> None:
    export = make_client(Recorder(ok({"order": []}))).export_orders()
    assert isinstance(export, Export)
    assert export.budget_class is BudgetClass.DOCUMENTS


# --- against the SmartUp sandbox ---------------------------------------------------------------------------

needs_sandbox = pytest.mark.skipif(
    importlib.util.find_spec("camsync.sandbox.smartup") is None, reason="camsync/sandbox/smartup.py is absent"
)


@pytest.fixture
def sandbox() -> Iterator[Any]:
    from camsync.sandbox.smartup import SmartupSandboxConfig, start_smartup_sandbox

    config = SmartupSandboxConfig(
        products=40, orders=40, user=USER, password=PASSWORD, filial_id="1833", reference_budget=3
    )
    running = start_smartup_sandbox(config)
    try:
        yield running
    finally:
        running.stop()


def sandbox_client(running: Any, sleeps: list[float] | None = None, **extra: str) -> SmartupClient:
    settings = load_settings(env(SMARTUP_BASE_URL=running.url, **extra), None)
    pauses = sleeps if sleeps is not None else []
    return SmartupClient.from_settings(settings, policy=RetryPolicy(attempts=3, base_delay=0.01), sleep=pauses.append)


@needs_sandbox
def test_sandbox_exports_stream_items_and_limits(sandbox: Any) -> None:
    client = sandbox_client(sandbox)
    with client.export_products() as export:
        products = list(export)
    with client.export_orders() as export:
        orders = list(export)
    with client.export_prices() as export:
        prices = list(export)
    assert len(products) == 40 and all(isinstance(item["code"], str) for item in products)
    assert orders and all("deal_id" in item and isinstance(item["order_products"], list) for item in orders)
    assert prices and all("inventory_code" in item for item in prices)
    assert client.calls == {BudgetClass.REFERENCE: 2, BudgetClass.DOCUMENTS: 1, BudgetClass.RARE: 0}
    reference = client.last_limits[BudgetClass.REFERENCE]
    assert reference.has_limit and reference.limit_quant == 3 and reference.left_limit_quant == 1
    assert client.last_limits[BudgetClass.DOCUMENTS].day_range_limit == 7


@needs_sandbox
def test_sandbox_spent_budget_and_wrong_password_are_typed_errors(sandbox: Any) -> None:
    client = sandbox_client(sandbox)
    for _ in range(3):
        list(client.export_products())
    with pytest.raises(SmartupBudgetError) as caught:
        client.export_products()
    assert caught.value.code == "A02-00-999"
    with pytest.raises(SmartupAuthError, match="Требуется авторизация"):
        sandbox_client(sandbox, SMARTUP_BASIC_PASS="wrong-password").export_orders()


@needs_sandbox
def test_sandbox_faults_are_retried_or_raised(sandbox: Any) -> None:
    sleeps: list[float] = []
    client = sandbox_client(sandbox, sleeps)
    sandbox.app.set_faults(server_error_next=1, drop_next=1)
    assert list(client.export_orders())
    assert len(sleeps) == 2
    sandbox.app.set_faults(malformed_next=1)
    with pytest.raises(SmartupResponseError, match="orders"):
        list(client.export_orders())
    sandbox.app.set_faults(error_json_next=1)
    with pytest.raises(SmartupApiError) as caught:
        client.export_orders()
    assert caught.value.code == "A02-24-042" and caught.value.status == 200


def test_raw_items_are_each_items_json_exactly_as_sent() -> None:
    first = '{"product_id": "1",  "name": "Чай \\u0447"}'
    second = '{"product_id":"2","groups":[{"group_code":"G"}]}'
    body = f'{{"inventory": [ {first},\n{second} ], "limits": {{"left_limit_quant": "5"}}}}'.encode()
    cut = len(body) // 2
    response, _ = streamed([body[:cut], body[cut:]])
    with make_client(Recorder(response)).export_products() as export:
        raws = [bytes(raw).decode() for raw in export.raw_items()]
        items = list(export)
    assert raws == [first, second]
    assert [item["product_id"] for item in items] == ["1", "2"]
    assert items[0]["name"] == "Чай ч"
    assert export.limits is not None and export.limits.left_limit_quant == 5


@pytest.mark.parametrize("announced", [None, 0, 10, 31, 32, 33, 1000])
def test_the_body_is_read_whole_whatever_length_was_announced(announced: int | None) -> None:
    body = b'{"inventory":[{"code":"A"}]}    '  # 32 bytes
    reader = smartup_answer.BodyReader([body[:7], body[7:20], body[20:]])
    assert bytes(reader.read(announced)) == body
    assert reader.size == len(body)


def test_an_announced_length_over_the_cap_is_refused_before_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smartup_answer, "MAX_ANSWER_BYTES", 1000)
    read: list[bytes] = []

    def chunks() -> Iterator[bytes]:
        read.append(b"x")
        yield b"{}"

    with pytest.raises(smartup_answer.BodyTooLarge):
        smartup_answer.BodyReader(chunks()).read(5000)
    assert read == []
