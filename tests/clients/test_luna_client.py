"""The LUNA OASYS client against httpx.MockTransport: bodies, auth, URL templates, parsing and classification."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from mock_http import Recorder

from camsync.clients.http import OutcomeUnknown, RetryPolicy
from camsync.clients.luna_rest import LunaClient, json_amount
from camsync.clients.luna_target import (
    LookupAmbiguous,
    LookupUnavailable,
    LunaAuthError,
    LunaBusy,
    LunaError,
    LunaRejected,
    LunaResponseError,
)
from camsync.errors import UpstreamError
from camsync.settings import load_settings

BASE = "https://luna.example.test/api"
TOKEN = "tok-very-secret-123"
PASSWORD = "pw-very-secret-456"


def make_client(recorder: Recorder, sleeps: list[float] | None = None, **env: str) -> LunaClient:
    environ = {"LUNA_BASE_URL": BASE, "LUNA_TOKEN": TOKEN, **env}
    settings = load_settings(environ, None)
    pauses = sleeps if sleeps is not None else []
    return LunaClient.from_settings(
        settings,
        transport=httpx.MockTransport(recorder),
        policy=RetryPolicy(attempts=3, base_delay=0.01),
        sleep=pauses.append,
    )


def created(work_order_id: str = "WO-000123", **extra: Any) -> httpx.Response:
    return httpx.Response(201, json={"WorkOrderId": work_order_id, "Status": "Waiting", **extra})


def ok(payload: Any) -> httpx.Response:
    return httpx.Response(200, json=payload)


def error(status: int, code: str, message: str = "no", **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message, **extra}})


def create(client: LunaClient, txn: str = "TXN-1", amount: str = "1500.00") -> Any:
    return client.create_work_order(txn_id=txn, meter="M-001", amount=Decimal(amount), currency="XAF")


# --- create: body, headers, auth --------------------------------------------------------------------------


def test_create_sends_the_exact_body_and_idempotency_key() -> None:
    recorder = Recorder(created())
    order = create(make_client(recorder))
    request = recorder.requests[0]
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/workorders"
    assert request.headers["Idempotency-Key"] == "TXN-1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.content == (
        b'{"WorkOrderType":"LoadCredit","MeterNumber":"M-001",'
        b'"WorkOrderInputs":{"CreditAmount":1500,"Currency":"XAF"},"ClientReference":"TXN-1"}'
    )
    assert order.id == "WO-000123" and order.status == "Waiting"


def test_create_uses_the_configured_field_names() -> None:
    recorder = Recorder(created())
    client = make_client(recorder, LUNA_AMOUNT_FIELD="Amount", LUNA_CLIENT_REF_FIELD="ExternalRef")
    create(client, amount="1500.50")
    body = json.loads(recorder.requests[0].content)
    assert body["WorkOrderInputs"] == {"Amount": 1500.5, "Currency": "XAF"}
    assert body["ExternalRef"] == "TXN-1" and "ClientReference" not in body


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("1500.00", "1500"),
        ("1500", "1500"),
        ("1500.50", "1500.5"),
        ("1250.50", "1250.5"),
        ("0.25", "0.25"),
        ("1000000.10", "1000000.1"),
        ("12345678901234567.89", "12345678901234567.89"),
        ("2E+3", "2000"),
    ],
)
def test_amount_is_a_json_number_without_useless_decimals(amount: str, expected: str) -> None:
    assert json_amount(Decimal(amount)) == expected


def test_the_create_body_carries_the_amount_exactly_as_a_json_number() -> None:
    recorder = Recorder(created())
    create(make_client(recorder), amount="12345678901234567.89")
    content = recorder.requests[0].content.decode()
    assert '"CreditAmount":12345678901234567.89,' in content
    body = json.loads(content, parse_float=Decimal)
    assert body["WorkOrderInputs"]["CreditAmount"] == Decimal("12345678901234567.89")


def test_bearer_token_when_set() -> None:
    recorder = Recorder(created())
    create(make_client(recorder, LUNA_USERNAME="user", LUNA_PASSWORD=PASSWORD))
    assert recorder.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_basic_auth_without_token() -> None:
    recorder = Recorder(created())
    create(make_client(recorder, LUNA_TOKEN="", LUNA_USERNAME="user", LUNA_PASSWORD=PASSWORD))
    expected = base64.b64encode(f"user:{PASSWORD}".encode()).decode()
    assert recorder.requests[0].headers["Authorization"] == f"Basic {expected}"


# --- URL templates -------------------------------------------------------------------------------------------


def test_default_urls() -> None:
    recorder = Recorder(
        created(),
        httpx.Response(200, json={"WorkOrderId": "WO 1"}),
        httpx.Response(200, json=[]),
        httpx.Response(200, json={}),
    )
    client = make_client(recorder, LUNA_BASE_URL=BASE + "/")
    create(client)
    client.get_work_order("WO 1/x")
    client.lookup("T&1 2")
    client.last_readout("M/7")
    urls = [str(r.url) for r in recorder.requests]
    assert urls == [
        f"{BASE}/workorders",
        f"{BASE}/workorders/WO%201%2Fx",
        f"{BASE}/workorders?ClientReference=T%261%202",
        f"{BASE}/meters/M%2F7/lastreadout",
    ]


def test_url_templates_with_base_placeholders() -> None:
    recorder = Recorder(
        created(), httpx.Response(200, json={"id": 5}), httpx.Response(200, json=[]), httpx.Response(200, json={})
    )
    client = make_client(
        recorder,
        LUNA_CREATE_URL="{LUNA_BASE_URL}/v2/orders",
        LUNA_STATUS_URL="{base}/v2/orders/{id}/state",
        LUNA_LOOKUP_URL="https://other.example.test/find?ref={ref}&type=LoadCredit",
        LUNA_LASTREAD_URL="/v2/meter/{meter}",
    )
    create(client)
    assert client.get_work_order("5").id == "5"
    client.lookup("T1")
    client.last_readout("M1")
    assert [str(r.url) for r in recorder.requests] == [
        f"{BASE}/v2/orders",
        f"{BASE}/v2/orders/5/state",
        "https://other.example.test/find?ref=T1&type=LoadCredit",
        f"{BASE}/v2/meter/M1",
    ]


# --- tolerant parsing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"WorkOrderId": "WO-9", "id": "other", "Status": "Waiting"},
        {"id": "WO-9", "status": "Waiting"},
        {"data": {"WorkOrderId": "WO-9", "Status": "Waiting"}},
        {"data": {"id": "WO-9", "status": "Waiting"}},
        {"id": 9, "Status": "Waiting"},
    ],
)
def test_work_order_id_and_status_are_read_tolerantly(payload: dict[str, Any]) -> None:
    order = create(make_client(Recorder(httpx.Response(201, json=payload))))
    assert order.id in ("WO-9", "9")
    assert order.status == "Waiting"
    assert order.raw == payload


def test_configured_status_field_and_failure_reason() -> None:
    recorder = Recorder(
        httpx.Response(
            200,
            json={
                "data": {"WorkOrderId": "WO-1", "State": "Failed", "FailureReason": "valve", "ClientReference": "T1"}
            },
        )
    )
    order = make_client(recorder, LUNA_STATUS_FIELD="State").get_work_order("WO-1")
    assert (order.status, order.failure_reason, order.reference) == ("Failed", "valve", "T1")


def test_status_answer_without_id_keeps_the_requested_id() -> None:
    order = make_client(Recorder(httpx.Response(200, json={"Status": "Successful"}))).get_work_order("WO-4")
    assert (order.id, order.status) == ("WO-4", "Successful")


def test_success_without_id_is_a_response_error() -> None:
    with pytest.raises(LunaResponseError):
        create(make_client(Recorder(httpx.Response(201, json={"Status": "Waiting"}))))


def test_malformed_json_is_a_response_error() -> None:
    with pytest.raises(LunaResponseError) as info:
        create(make_client(Recorder(httpx.Response(201, text="<html>oops"))))
    assert "malformed JSON" in info.value.reason


# --- create classification -----------------------------------------------------------------------------------


def test_200_on_create_is_the_work_order() -> None:
    assert create(make_client(Recorder(httpx.Response(200, json={"WorkOrderId": "WO-7"})))).id == "WO-7"


def test_duplicate_reference_answers_the_existing_work_order_from_the_error_body() -> None:
    recorder = Recorder(error(409, "DUPLICATE_REFERENCE", "exists", WorkOrderId="WO-5"))
    order = create(make_client(recorder))
    assert order.id == "WO-5"
    assert len(recorder.requests) == 1


def test_duplicate_reference_without_id_is_looked_up() -> None:
    recorder = Recorder(
        error(409, "DUPLICATE_REFERENCE"),
        httpx.Response(
            200, json={"data": [{"WorkOrderId": "WO-6", "ClientReference": "TXN-1", "Status": "InProgress"}]}
        ),
    )
    order = create(make_client(recorder))
    assert (order.id, order.status) == ("WO-6", "InProgress")
    assert recorder.requests[1].url.params["ClientReference"] == "TXN-1"


def test_duplicate_reference_found_several_times_names_every_work_order() -> None:
    orders = [
        {"WorkOrderId": "WO-1", "ClientReference": "TXN-1", "Status": "Failed"},
        {"WorkOrderId": "WO-2", "ClientReference": "TXN-1", "Status": "Successful"},
    ]
    recorder = Recorder(error(409, "DUPLICATE_REFERENCE"), httpx.Response(200, json=orders))
    order = create(make_client(recorder))
    assert [o.id for o in order.siblings] == ["WO-1", "WO-2"]


def test_duplicate_reference_without_id_and_without_lookup() -> None:
    with pytest.raises(LookupUnavailable) as info:
        create(make_client(Recorder(error(409, "DUPLICATE_REFERENCE")), LUNA_LOOKUP_URL="none"))
    assert info.value.code == "DUPLICATE_REFERENCE"


def test_work_order_in_progress_is_busy() -> None:
    with pytest.raises(LunaBusy) as info:
        create(make_client(Recorder(error(409, "WORK_ORDER_IN_PROGRESS"))))
    assert info.value.retryable and info.value.status == 409


@pytest.mark.parametrize(("status", "code"), [(400, "VALIDATION"), (404, "METER_NOT_FOUND"), (422, "UNPROCESSABLE")])
def test_client_errors_are_rejections(status: int, code: str) -> None:
    recorder = Recorder(error(status, code, "bad amount"))
    with pytest.raises(LunaRejected) as info:
        create(make_client(recorder))
    assert (info.value.status, info.value.code, info.value.retryable) == (status, code, False)
    assert "bad amount" in info.value.reason
    assert len(recorder.requests) == 1


def test_flat_and_plain_text_errors_are_understood() -> None:
    with pytest.raises(LunaRejected) as flat:
        create(make_client(Recorder(httpx.Response(400, json={"code": "VALIDATION", "message": "amount"}))))
    assert flat.value.code == "VALIDATION"
    with pytest.raises(LunaRejected) as plain:
        create(make_client(Recorder(httpx.Response(400, text="amount must be positive"))))
    assert "amount must be positive" in plain.value.reason


def test_404_without_error_code_on_create_points_at_the_url() -> None:
    with pytest.raises(LunaError) as info:
        create(make_client(Recorder(httpx.Response(404, text="Not Found"))))
    assert not isinstance(info.value, LunaRejected)
    assert "LUNA_CREATE_URL" in str(info.value)


def test_202_is_a_work_order_and_a_redirect_is_not_a_rejection() -> None:
    assert create(make_client(Recorder(httpx.Response(202, json={"WorkOrderId": "WO-3"})))).id == "WO-3"
    with pytest.raises(LunaError) as info:
        create(make_client(Recorder(httpx.Response(302, headers={"Location": "/login"}))))
    assert not isinstance(info.value, LunaRejected) and not info.value.retryable


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures(status: int) -> None:
    with pytest.raises(LunaAuthError):
        create(make_client(Recorder(error(status, "UNAUTHORIZED"))))


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_5xx_and_408_on_create_are_an_unknown_outcome_and_not_resent(status: int) -> None:
    recorder = Recorder(httpx.Response(status, text="boom"))
    with pytest.raises(OutcomeUnknown):
        create(make_client(recorder))
    assert len(recorder.requests) == 1


def test_429_on_create_is_retried_then_retryable() -> None:
    sleeps: list[float] = []
    recorder = Recorder(httpx.Response(429, headers={"Retry-After": "2"}), created("WO-8"))
    assert create(make_client(recorder, sleeps)).id == "WO-8"
    assert len(recorder.requests) == 2 and sleeps[0] == 2.0
    recorder = Recorder(httpx.Response(429))
    with pytest.raises(UpstreamError) as info:
        create(make_client(recorder))
    assert info.value.retryable and not isinstance(info.value, OutcomeUnknown)
    assert len(recorder.requests) == 3


def test_503_after_a_429_on_create_is_an_unknown_outcome() -> None:
    recorder = Recorder(httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(503), created("WO-9"))
    with pytest.raises(OutcomeUnknown):
        create(make_client(recorder, []))
    assert len(recorder.requests) == 2


@pytest.mark.parametrize(
    "failure", [httpx.ReadTimeout("timed out"), httpx.RemoteProtocolError("Server disconnected"), httpx.ReadError("x")]
)
def test_lost_answer_on_create_is_an_unknown_outcome(failure: Exception) -> None:
    recorder = Recorder(failure)
    with pytest.raises(OutcomeUnknown):
        create(make_client(recorder))
    assert len(recorder.requests) == 1


def test_connection_refused_is_retried_then_retryable() -> None:
    sleeps: list[float] = []
    recorder = Recorder(httpx.ConnectError("Connection refused"), created("WO-2"))
    assert create(make_client(recorder, sleeps)).id == "WO-2"
    assert len(sleeps) == 1
    recorder = Recorder(httpx.ConnectError("Connection refused"))
    with pytest.raises(UpstreamError) as info:
        create(make_client(recorder))
    assert info.value.retryable and len(recorder.requests) == 3


# --- status, lookup, readout ---------------------------------------------------------------------------------


def test_status_404_is_a_luna_error_with_status() -> None:
    with pytest.raises(LunaError) as info:
        make_client(Recorder(error(404, "NOT_FOUND"))).get_work_order("WO-404")
    assert info.value.status == 404


def test_status_reads_are_retried_on_5xx_and_timeouts() -> None:
    recorder = Recorder(httpx.Response(500), httpx.ReadTimeout("slow"), httpx.Response(200, json={"Status": "Waiting"}))
    assert make_client(recorder).get_work_order("WO-1").status == "Waiting"
    assert len(recorder.requests) == 3


@pytest.mark.parametrize(
    "payload",
    [
        [{"WorkOrderId": "WO-1", "ClientReference": "T1"}],
        {"data": [{"WorkOrderId": "WO-1", "ClientReference": "T1"}]},
        {"items": [{"id": "WO-1", "ClientReference": "T1"}]},
        {"WorkOrders": [{"WorkOrderId": "WO-1", "ClientReference": "T1"}]},
        {"WorkOrderId": "WO-1", "ClientReference": "T1"},
        {"data": {"WorkOrderId": "WO-1", "ClientReference": "T1"}},
    ],
)
def test_lookup_answer_shapes(payload: Any) -> None:
    orders = make_client(Recorder(httpx.Response(200, json=payload))).lookup("T1")
    assert [o.id for o in orders] == ["WO-1"]


@pytest.mark.parametrize(
    "payload",
    [
        {"data": [{"WorkOrderId": "WO-1"}]},
        [{"WorkOrderId": "WO-1", "ClientReference": "T1"}, {"WorkOrderId": "WO-2"}],
        {"WorkOrderId": "WO-7", "Status": "Successful"},
    ],
)
def test_lookup_answers_without_the_reference_field_are_not_adopted(payload: Any) -> None:
    with pytest.raises(LookupAmbiguous) as info:
        make_client(Recorder(httpx.Response(200, json=payload))).lookup("T1")
    assert "ClientReference" in info.value.reason and not isinstance(info.value, LookupUnavailable)


def test_lookup_drops_work_orders_of_other_references() -> None:
    payload = [{"WorkOrderId": "WO-1", "ClientReference": "T2"}, {"WorkOrderId": "WO-2", "ClientReference": "T1"}]
    assert [o.id for o in make_client(Recorder(httpx.Response(200, json=payload))).lookup("T1")] == ["WO-2"]


def test_lookup_empty_list() -> None:
    assert make_client(Recorder(httpx.Response(200, json={"data": []}))).lookup("T1") == []


def test_lookup_disabled() -> None:
    recorder = Recorder(created())
    client = make_client(recorder, LUNA_LOOKUP_URL="none")
    assert not client.lookup_available
    with pytest.raises(LookupUnavailable):
        client.lookup("T1")
    assert recorder.requests == []
    assert make_client(recorder).lookup_available


@pytest.mark.parametrize("status", [404, 405, 501])
def test_lookup_missing_on_the_server(status: int) -> None:
    with pytest.raises(LookupUnavailable):
        make_client(Recorder(httpx.Response(status))).lookup("T1")


def test_last_readout_unwraps_the_envelope() -> None:
    payload = {"data": {"MeterNumber": "M1", "Credit": 12.5}}
    assert make_client(Recorder(httpx.Response(200, json=payload))).last_readout("M1") == payload["data"]


# --- secrets ----------------------------------------------------------------------------------------------------


def test_no_secret_in_any_error_text() -> None:
    echo = f"Authorization: Bearer {TOKEN} password={PASSWORD}"
    answers: list[httpx.Response | Exception] = [
        httpx.Response(400, text=echo),
        httpx.Response(401, json={"error": {"code": "AUTH", "message": echo}}),
        httpx.Response(201, text=echo),
        httpx.Response(500, text=echo),
        httpx.ReadTimeout(echo),
    ]
    for answer in answers:
        client = make_client(Recorder(answer), LUNA_USERNAME="user", LUNA_PASSWORD=PASSWORD)
        with pytest.raises(UpstreamError) as info:
            create(client)
        text = f"{info.value} {info.value.reason} {info.value.hint} {info.value!r}"
        assert TOKEN not in text and PASSWORD not in text


# --- against the real LUNA sandbox ----------------------------------------------------------------------------


@pytest.fixture
def sandbox() -> Any:
    from camsync.sandbox.luna import start_luna_sandbox

    running = start_luna_sandbox(clock=lambda: 1_000_000.0, sleep=lambda _s: None)
    try:
        yield running
    finally:
        running.stop()


def sandbox_client(sandbox: Any, **env: str) -> LunaClient:
    environ = {"LUNA_BASE_URL": sandbox.url, "LUNA_USERNAME": "camsync", "LUNA_PASSWORD": "sandbox-password", **env}
    return LunaClient.from_settings(
        load_settings(environ, None), policy=RetryPolicy(attempts=3, base_delay=0.01), sleep=lambda _s: None
    )


def test_sandbox_create_status_lookup_and_readout(sandbox: Any) -> None:
    with sandbox_client(sandbox) as client:
        order = create(client, amount="1500.50")
        assert order.status == "Waiting" and order.reference == "TXN-1"
        assert client.get_work_order(order.id).status == "Waiting"
        assert [o.id for o in client.lookup("TXN-1")] == [order.id]
        assert client.lookup("OTHER") == []
        assert client.last_readout("M-001")["MeterNumber"] == "M-001"
        with pytest.raises(LunaError) as info:
            client.get_work_order("WO-999999")
        assert info.value.status == 404
    [stored] = sandbox.app.work_orders("TXN-1")
    assert stored["MeterNumber"] == "M-001"


@pytest.mark.parametrize("mode", ["same", "409"])
def test_sandbox_duplicate_answers_the_existing_work_order(sandbox: Any, mode: str) -> None:
    sandbox.app.configure(duplicate_mode=mode)
    with sandbox_client(sandbox) as client:
        first = create(client)
        assert create(client).id == first.id
    assert sandbox.app.stats()["work_orders"] == 1


def test_sandbox_dropped_create_is_unknown_and_found_by_lookup(sandbox: Any) -> None:
    sandbox.app.fail_next("drop_after_commit", endpoint="create")
    with sandbox_client(sandbox) as client:
        with pytest.raises(OutcomeUnknown):
            create(client)
        assert len(client.lookup("TXN-1")) == 1
    assert sandbox.app.stats()["work_orders"] == 1


@pytest.mark.parametrize("status", [404, 405])
def test_sandbox_without_lookup(sandbox: Any, status: int) -> None:
    sandbox.app.configure(lookup=False, lookup_off_status=status)
    with sandbox_client(sandbox) as client, pytest.raises(LookupUnavailable):
        client.lookup("TXN-1")


def test_sandbox_envelope_bearer_and_bad_credentials(sandbox: Any) -> None:
    sandbox.app.configure(envelope=True, auth="bearer")
    with sandbox_client(sandbox, LUNA_TOKEN="sandbox-token") as client:
        order = create(client)
        assert order.id.startswith("WO-") and order.status == "Waiting"
        assert client.get_work_order(order.id).id == order.id
    with sandbox_client(sandbox, LUNA_TOKEN="wrong-token") as client, pytest.raises(LunaAuthError):
        create(client, txn="TXN-2")


def test_sandbox_rejections_and_busy_meter(sandbox: Any) -> None:
    sandbox.app.configure(unknown_meters=("M-404",), meter_conflicts=True)
    with sandbox_client(sandbox) as client:
        with pytest.raises(LunaRejected) as info:
            client.create_work_order(txn_id="T-1", meter="M-404", amount=Decimal("10"), currency="XAF")
        assert info.value.code == "METER_NOT_FOUND"
        create(client, txn="T-2")
        with pytest.raises(LunaBusy):
            create(client, txn="T-3")


def test_sandbox_busy_server_and_malformed_answer(sandbox: Any) -> None:
    with sandbox_client(sandbox) as client:
        sandbox.app.fail_next("error", endpoint="create")  # a 503: a gateway may have passed the create on
        with pytest.raises(OutcomeUnknown):
            create(client, txn="T-1")
        assert client.lookup("T-1") == []
        assert create(client, txn="T-1").id
        sandbox.app.fail_next("malformed", endpoint="create")
        with pytest.raises(LunaResponseError):
            create(client, txn="T-2")
