"""The LUNA simulator answers like a real deployment: web-server pages for wrong URLs, LUNA's error codes for
business errors, 401/403 bodies that are not always JSON, and amounts kept exactly as sent."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from camsync.errors import UsageError
from camsync.sandbox.luna import LunaSandbox, LunaSandboxConfig, start_luna_sandbox
from camsync.sandbox.server import RunningSandbox

AUTH = ("camsync", "sandbox-password")
T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Rig:
    def __init__(self, sandbox: LunaSandbox, url: str, clock: Clock) -> None:
        self.sandbox, self.clock = sandbox, clock
        self.client = httpx.Client(base_url=url, auth=AUTH, timeout=5)
        self.anon = httpx.Client(base_url=url, timeout=5)

    def create(self, ref: str = "T1", meter: str = "M1", amount: Any = 1500) -> httpx.Response:
        return self.client.post("/workorders", json=body(ref, meter, amount))

    def create_raw(self, amount_text: str, ref: str = "T1") -> httpx.Response:
        """A create whose amount is written into the JSON text as given (no float on the way)."""
        text = json.dumps(body(ref, "M1", 0)).replace('"CreditAmount": 0', f'"CreditAmount": {amount_text}')
        return self.client.post("/workorders", content=text.encode(), headers={"Content-Type": "application/json"})

    def finish_all(self) -> None:
        self.clock.now += 10  # past Waiting and InProgress (1 s each by default)


def body(ref: str = "T1", meter: str = "M1", amount: Any = 1500) -> dict[str, Any]:
    return {
        "WorkOrderType": "LoadCredit",
        "MeterNumber": meter,
        "WorkOrderInputs": {"CreditAmount": amount, "Currency": "XAF"},
        "ClientReference": ref,
    }


@pytest.fixture(scope="module")
def served() -> Iterator[RunningSandbox]:
    running = start_luna_sandbox()
    yield running
    running.stop()


@pytest.fixture
def luna(served: RunningSandbox) -> Iterator[Callable[..., Rig]]:
    rigs: list[Rig] = []

    def start(**switches: Any) -> Rig:
        sandbox = served.app
        assert isinstance(sandbox, LunaSandbox)
        clock = Clock()
        sandbox.clock, sandbox.sleep = clock, lambda _seconds: None
        sandbox.config = LunaSandboxConfig(**switches)
        sandbox.reset()
        rigs.append(Rig(sandbox, served.url, clock))
        return rigs[-1]

    yield start
    for rig in rigs:
        rig.client.close()
        rig.anon.close()


def assert_web_server_page(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert "<html>" in response.text and str(status) in response.text
    with pytest.raises(ValueError):
        response.json()  # no JSON, so no error code a client could mistake for an answer about a txn


def assert_luna_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]


# --- wrong URLs: a web server's pages -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v2/workorders"),  # a wrong base path
        ("GET", "/api/v2/workorders/WO-000001"),
        ("GET", "/workorder/WO-000001"),  # a typo
        ("GET", "/workorders/WO-000001/extra"),
        ("GET", "/"),
    ],
)
def test_an_unknown_route_answers_404_with_an_html_page(luna: Callable[..., Rig], method: str, path: str) -> None:
    rig = luna()
    response = rig.client.request(method, path, json=body())
    assert_web_server_page(response, 404)
    assert rig.sandbox.stats()["work_orders"] == 0
    assert rig.sandbox.stats()["requests"]["other"] == 1


def test_a_wrong_base_path_404s_even_without_credentials(luna: Callable[..., Rig]) -> None:
    rig = luna()
    assert_web_server_page(rig.anon.post("/api/v2/workorders", json=body()), 404)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/workorders", "GET, POST"),
        ("DELETE", "/workorders/WO-000001", "GET"),
        ("POST", "/meters/M1/lastreadout", "GET"),
        ("GET", "/auth/login", "POST"),
    ],
)
def test_a_known_path_with_a_wrong_method_answers_405_html(
    luna: Callable[..., Rig], method: str, path: str, allow: str
) -> None:
    rig = luna()
    response = rig.client.request(method, path)
    assert_web_server_page(response, 405)
    assert response.headers["Allow"] == allow


@pytest.mark.parametrize("status", [404, 405])
def test_lookup_off_answers_the_web_servers_page(luna: Callable[..., Rig], status: int) -> None:
    rig = luna(lookup=False, lookup_off_status=status)
    assert_web_server_page(rig.client.get("/workorders", params={"ClientReference": "T1"}), status)


def test_route_errors_json_answers_error_codes_instead(luna: Callable[..., Rig]) -> None:
    rig = luna(route_errors="json")
    assert_luna_error(rig.client.post("/api/v2/workorders", json=body()), 404, "NOT_FOUND")
    assert_luna_error(rig.client.put("/workorders"), 405, "METHOD_NOT_ALLOWED")


def test_route_errors_is_checked() -> None:
    with pytest.raises(UsageError, match="route_errors"):
        LunaSandboxConfig(route_errors="xml")


# --- business errors: LUNA's codes -----------------------------------------------------------------------------


def test_every_business_error_carries_its_luna_code(luna: Callable[..., Rig]) -> None:
    rig = luna(unknown_meters=("M404",), meter_conflicts=True, duplicate_mode="409", refused_amounts=("777",))
    assert_luna_error(rig.create("T0", amount=0), 400, "VALIDATION")
    assert_luna_error(rig.create("T0", amount=777), 400, "VALIDATION")
    assert_luna_error(rig.create("T0", meter="M404"), 404, "METER_NOT_FOUND")
    assert rig.create("T1", meter="M1").status_code == 201
    assert_luna_error(rig.create("T2", meter="M1"), 409, "WORK_ORDER_IN_PROGRESS")
    duplicate = rig.create("T1", meter="M1")
    assert_luna_error(duplicate, 409, "DUPLICATE_REFERENCE")
    assert duplicate.json()["error"]["WorkOrderId"] == "WO-000001"
    assert_luna_error(rig.client.get("/workorders/WO-999999"), 404, "WORK_ORDER_NOT_FOUND")
    assert_luna_error(rig.client.get("/meters/M404/lastreadout"), 404, "METER_NOT_FOUND")
    assert_luna_error(rig.client.get("/workorders"), 400, "VALIDATION")  # a lookup without its reference
    assert rig.sandbox.stats()["work_orders"] == 1


def test_faults_carry_their_codes_too(luna: Callable[..., Rig]) -> None:
    rig = luna()
    rig.sandbox.fail_next("error", 1)
    assert_luna_error(rig.create(), 503, "SERVICE_UNAVAILABLE")
    rig.sandbox.fail_next("rate_limit", 1)
    assert_luna_error(rig.create(), 429, "RATE_LIMITED")


def test_refused_amounts_compare_as_numbers_and_switch_over_http(luna: Callable[..., Rig]) -> None:
    rig = luna()
    assert rig.anon.post("/_sandbox/config", json={"refused_amounts": "1500, 99.5"}).status_code == 200
    assert rig.sandbox.config.refused_amounts == ("1500", "99.5")
    assert_luna_error(rig.create_raw("1500.00", ref="A"), 400, "VALIDATION")
    assert_luna_error(rig.create_raw("99.50", ref="B"), 400, "VALIDATION")
    assert rig.create_raw("1500.01", ref="C").status_code == 201
    with pytest.raises(UsageError, match="refused_amounts"):
        LunaSandboxConfig(refused_amounts=("lots",))


@pytest.mark.parametrize(
    ("amount_text", "why"),
    [
        ('"1500"', "a string"),
        ("-0.5", "negative fraction"),
        ("0.00", "zero with decimals"),
        ("NaN", "not a number"),
        ("Infinity", "not finite"),
        ("null", "null"),
        ('{"value": 1500}', "an object"),
        ("[1500]", "a list"),
        ("true", "a boolean"),
    ],
)
def test_non_positive_or_non_number_amounts_are_validation_errors(
    luna: Callable[..., Rig], amount_text: str, why: str
) -> None:
    rig = luna()
    assert_luna_error(rig.create_raw(amount_text), 400, "VALIDATION")
    assert rig.sandbox.stats()["work_orders"] == 0, why


def test_amount_strings_can_be_accepted(luna: Callable[..., Rig]) -> None:
    rig = luna(amount_strings=True)
    assert rig.create_raw('"1250.50"').status_code == 201
    assert_luna_error(rig.create_raw('"abc"', ref="T2"), 400, "VALIDATION")


# --- amounts kept exactly -------------------------------------------------------------------------------------


@pytest.mark.parametrize("amount_text", ["1250.5", "1250.50", "2000.00", "1500", "12345678901234567.25", "0.01"])
def test_a_fractional_amount_is_echoed_exactly_in_credit_loaded(luna: Callable[..., Rig], amount_text: str) -> None:
    rig = luna()
    created = rig.create_raw(amount_text)
    assert created.status_code == 201
    rig.finish_all()
    status = rig.client.get(f"/workorders/{created.json()['WorkOrderId']}")
    assert status.json()["Status"] == "Successful"
    assert f'"CreditLoaded":{amount_text},' in status.text  # the very digits sent, no float on the way
    assert status.json(parse_float=Decimal)["Result"]["CreditLoaded"] == Decimal(amount_text)
    readout = rig.client.get("/meters/M1/lastreadout")
    assert readout.json(parse_float=Decimal)["Credit"] == Decimal(amount_text)


def test_an_httpx_float_amount_round_trips(luna: Callable[..., Rig]) -> None:
    rig = luna(envelope=True)
    created = rig.create(amount=1250.5).json()["data"]
    rig.finish_all()
    order = rig.client.get(f"/workorders/{created['WorkOrderId']}").json()["data"]
    assert order["Result"] == {"CreditLoaded": 1250.5, "Currency": "XAF"}
    listed = rig.anon.get("/_sandbox/workorders", params={"ClientReference": "T1"}).json()
    assert listed[0]["Result"]["CreditLoaded"] == 1250.5
    assert rig.sandbox.work_order(created["WorkOrderId"])["Result"]["CreditLoaded"] == Decimal("1250.5")  # type: ignore[index]


def test_readout_sums_fractions_exactly(luna: Callable[..., Rig]) -> None:
    rig = luna()
    for ref, amount in (("A", "0.1"), ("B", "0.2"), ("C", "1250.50")):
        assert rig.create_raw(amount, ref=ref).status_code == 201
    rig.finish_all()
    assert '"Credit":1250.80,' in rig.client.get("/meters/M1/lastreadout").text


# --- auth refusals ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["basic", "bearer"])
def test_a_plain_401_is_a_text_line(luna: Callable[..., Rig], mode: str) -> None:
    rig = luna(auth=mode, auth_body="plain")
    response = rig.anon.post("/workorders", json=body())
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.startswith("Unauthorized")
    assert "WWW-Authenticate" in response.headers
    login = rig.anon.post("/auth/login", json={"username": "camsync", "password": "wrong"})
    assert (login.status_code, login.headers["content-type"].split(";")[0]) == (401, "text/plain")


@pytest.mark.parametrize(("auth_body", "content_type"), [("json", "application/json"), ("plain", "text/plain")])
def test_a_token_without_rights_answers_403(luna: Callable[..., Rig], auth_body: str, content_type: str) -> None:
    rig = luna(auth="bearer", forbidden_tokens=("read-only",), auth_body=auth_body)
    response = rig.anon.post("/workorders", json=body(), headers={"Authorization": "Bearer read-only"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith(content_type)
    if auth_body == "json":
        assert response.json()["error"]["code"] == "FORBIDDEN"
    assert rig.sandbox.stats()["work_orders"] == 0
    good = rig.anon.post("/workorders", json=body(), headers={"Authorization": "Bearer sandbox-token"})
    assert good.status_code == 201
    assert rig.sandbox.config.as_dict()["forbidden_tokens"] == ["****"]


def test_auth_body_is_checked() -> None:
    with pytest.raises(UsageError, match="auth_body"):
        LunaSandboxConfig(auth_body="xml")
