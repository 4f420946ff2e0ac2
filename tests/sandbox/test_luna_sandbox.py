"""The LUNA OASYS simulator over a real loopback server, with httpx as the client and a fake clock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from camsync.errors import UsageError
from camsync.sandbox.luna import LunaSandbox, LunaSandboxConfig, start_luna_sandbox
from camsync.sandbox.server import RunningSandbox

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
AUTH = ("camsync", "sandbox-password")


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.calls.append(seconds)


class Harness:
    def __init__(self, sandbox: LunaSandbox, running: RunningSandbox, clock: FakeClock, sleep: RecordingSleep):
        self.sandbox, self.running, self.clock, self.sleep = sandbox, running, clock, sleep
        self.client = httpx.Client(base_url=running.url, auth=AUTH, timeout=5)
        self.anon = httpx.Client(base_url=running.url, timeout=5)

    def create(self, ref: str | None = "T1", meter: str = "M1", amount: Any = 1500, **kw: Any) -> httpx.Response:
        return self.client.post("/workorders", json=order_body(ref, meter, amount), **kw)

    def close(self) -> None:
        self.client.close()
        self.anon.close()


def order_body(ref: str | None = "T1", meter: str = "M1", amount: Any = 1500) -> dict[str, Any]:
    body: dict[str, Any] = {
        "WorkOrderType": "LoadCredit",
        "MeterNumber": meter,
        "WorkOrderInputs": {"CreditAmount": amount, "Currency": "XAF"},
    }
    if ref is not None:
        body["ClientReference"] = ref
    return body


@pytest.fixture(scope="module")
def served() -> Iterator[RunningSandbox]:
    """One server for the module; each test gives it fresh switches, clock and sleep, and resets it."""
    running = start_luna_sandbox()
    yield running
    running.stop()


@pytest.fixture
def luna(served: RunningSandbox) -> Iterator[Callable[..., Harness]]:
    """Configure the served sandbox with the given switches and a fake clock; returns clients for it."""
    harnesses: list[Harness] = []

    def start(**switches: Any) -> Harness:
        sandbox = served.app
        assert isinstance(sandbox, LunaSandbox)
        clock, sleep = FakeClock(), RecordingSleep()
        sandbox.clock, sandbox.sleep = clock, sleep
        sandbox.config = LunaSandboxConfig(**switches)
        sandbox.reset()
        harnesses.append(Harness(sandbox, served, clock, sleep))
        return harnesses[-1]

    yield start
    for harness in harnesses:
        harness.close()


# --- create and idempotency ---------------------------------------------------------------------------------


def test_create_answers_201_with_the_work_order(luna: Callable[..., Harness]) -> None:
    h = luna()
    response = h.create("T1", "M1", 1500)
    assert response.status_code == 201
    assert response.json() == {
        "WorkOrderId": "WO-000001",
        "WorkOrderType": "LoadCredit",
        "MeterNumber": "M1",
        "ClientReference": "T1",
        "Status": "Waiting",
        "CreatedAt": "2027-01-15T08:00:00.000Z",
    }
    assert h.create("T2", "M2").json()["WorkOrderId"] == "WO-000002"


def test_a_repeated_reference_answers_200_with_the_same_work_order(luna: Callable[..., Harness]) -> None:
    h = luna(duplicate_mode="same")
    first = h.create("T1")
    h.clock.advance(0.5)
    again = h.create("T1")
    assert again.status_code == 200
    assert again.json() == first.json()
    assert h.sandbox.stats()["by_reference"] == {"T1": 1}


def test_the_idempotency_key_header_is_the_reference_when_the_body_has_none(luna: Callable[..., Harness]) -> None:
    h = luna()
    first = h.create(None, headers={"Idempotency-Key": "K1"})
    again = h.create(None, headers={"Idempotency-Key": "K1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["ClientReference"] == "K1"
    assert h.sandbox.stats()["work_orders"] == 1


def test_duplicate_mode_409_names_the_existing_work_order(luna: Callable[..., Harness]) -> None:
    h = luna(duplicate_mode="409")
    h.create("T1")
    again = h.create("T1")
    assert again.status_code == 409
    error = again.json()["error"]
    assert (error["code"], error["WorkOrderId"]) == ("DUPLICATE_REFERENCE", "WO-000001")
    assert error["message"]
    assert h.sandbox.stats()["work_orders"] == 1


def test_without_idempotency_a_repeat_creates_a_second_work_order(luna: Callable[..., Harness]) -> None:
    h = luna(idempotency=False)
    ids = [h.create("T1").json()["WorkOrderId"] for _ in range(2)]
    assert ids == ["WO-000001", "WO-000002"]
    stats = h.sandbox.stats()
    assert (stats["by_reference"], stats["duplicates"]) == ({"T1": 2}, ["T1"])


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({**order_body(), "WorkOrderInputs": {"Currency": "XAF"}}, "missing amount"),
        (order_body(amount=0), "zero amount"),
        (order_body(amount=-5), "negative amount"),
        (order_body(amount="lots"), "non-numeric amount"),
        (order_body(amount=True), "boolean amount"),
        ({k: v for k, v in order_body().items() if k != "MeterNumber"}, "missing meter"),
        (order_body(meter=" "), "blank meter"),
        ({**order_body(), "WorkOrderType": "ReadMeter"}, "other type"),
        ([1, 2], "not an object"),
    ],
)
def test_invalid_creates_answer_400_validation(luna: Callable[..., Harness], body: Any, why: str) -> None:
    h = luna()
    response = h.client.post("/workorders", json=body)
    assert response.status_code == 400, why
    assert response.json()["error"]["code"] == "VALIDATION"
    assert h.sandbox.stats()["work_orders"] == 0


def test_a_body_that_is_not_json_answers_400(luna: Callable[..., Harness]) -> None:
    h = luna()
    response = h.client.post("/workorders", content=b"{not json", headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "VALIDATION")


def test_amount_and_reference_field_names_are_configurable(luna: Callable[..., Harness]) -> None:
    h = luna(amount_field="Amount", client_ref_field="ExternalId")
    body = {"WorkOrderType": "LoadCredit", "MeterNumber": "M1", "WorkOrderInputs": {"Amount": 700}, "ExternalId": "X1"}
    response = h.client.post("/workorders", json=body)
    assert response.status_code == 201
    assert response.json()["ExternalId"] == "X1"
    assert h.client.post("/workorders", json=order_body()).status_code == 400  # CreditAmount is not the field now
    assert h.sandbox.stats()["by_reference"] == {"X1": 1}


def test_an_unknown_meter_answers_404(luna: Callable[..., Harness]) -> None:
    h = luna(unknown_meters=("M404",))
    response = h.create("T1", "M404")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "METER_NOT_FOUND")
    assert h.client.get("/meters/M404/lastreadout").status_code == 404
    assert h.sandbox.stats()["work_orders"] == 0


def test_meter_conflicts_answer_409_until_the_running_load_is_terminal(luna: Callable[..., Harness]) -> None:
    h = luna(meter_conflicts=True, waiting_seconds=1, in_progress_seconds=1)
    h.create("T1", "M1")
    blocked = h.create("T2", "M1")
    assert blocked.status_code == 409
    assert blocked.json()["error"] | {"message": ""} == {
        "code": "WORK_ORDER_IN_PROGRESS",
        "message": "",
        "WorkOrderId": "WO-000001",
    }
    assert h.create("T3", "M2").status_code == 201  # another meter is free
    assert h.create("T1", "M1").status_code == 200  # a replay of the running order is not a conflict
    h.clock.advance(1.5)
    assert h.create("T2", "M1").status_code == 409  # InProgress is not terminal
    h.clock.advance(0.5)
    assert h.create("T2", "M1").status_code == 201


def test_without_meter_conflicts_loads_on_one_meter_overlap(luna: Callable[..., Harness]) -> None:
    h = luna(meter_conflicts=False)
    assert [h.create(ref, "M1").status_code for ref in ("T1", "T2")] == [201, 201]


# --- status --------------------------------------------------------------------------------------------------


def test_status_follows_the_delays_on_the_clock(luna: Callable[..., Harness]) -> None:
    h = luna(waiting_seconds=2, in_progress_seconds=3)
    h.create("T1", amount=1500)

    def status() -> dict[str, Any]:
        response = h.client.get("/workorders/WO-000001")
        assert response.status_code == 200
        return response.json()

    waiting = status()
    assert (waiting["Status"], waiting["UpdatedAt"], waiting["Result"]) == ("Waiting", "2027-01-15T08:00:00.000Z", None)
    h.clock.advance(2)
    assert (status()["Status"], status()["UpdatedAt"]) == ("InProgress", "2027-01-15T08:00:02.000Z")
    h.clock.advance(2.999)
    assert status()["Status"] == "InProgress"
    h.clock.advance(0.001)
    done = status()
    assert done == {
        "WorkOrderId": "WO-000001",
        "WorkOrderType": "LoadCredit",
        "MeterNumber": "M1",
        "ClientReference": "T1",
        "Status": "Successful",
        "CreatedAt": "2027-01-15T08:00:00.000Z",
        "UpdatedAt": "2027-01-15T08:00:05.000Z",
        "FailureReason": None,
        "Result": {"CreditLoaded": 1500, "Currency": "XAF"},
    }


def test_failure_rate_one_ends_every_work_order_failed(luna: Callable[..., Harness]) -> None:
    h = luna(failure_rate=1.0, waiting_seconds=1, in_progress_seconds=1)
    h.create("T1")
    h.clock.advance(2)
    body = h.client.get("/workorders/WO-000001").json()
    assert (body["Status"], body["Result"]) == ("Failed", None)
    assert body["FailureReason"] == "Meter did not acknowledge the credit"
    h.clock.advance(3600)
    assert h.client.get("/workorders/WO-000001").json()["Status"] == "Failed"


def test_failures_are_a_seeded_share(luna: Callable[..., Harness]) -> None:
    def outcomes(seed: int) -> list[str]:
        h = luna(failure_rate=0.5, waiting_seconds=0, in_progress_seconds=0, seed=seed)
        return [h.create(f"T{i}").json()["Status"] for i in range(40)]

    first = outcomes(7)
    assert first == outcomes(7)
    assert 5 < first.count("Failed") < 35
    assert set(first) == {"Failed", "Successful"}


def test_set_status_forces_a_terminal_status(luna: Callable[..., Harness]) -> None:
    h = luna()
    h.create("T1")
    h.clock.advance(0.5)
    h.sandbox.set_status("WO-000001", "Cancelled")
    h.clock.advance(100)
    body = h.client.get("/workorders/WO-000001").json()
    assert (body["Status"], body["UpdatedAt"]) == ("Cancelled", "2027-01-15T08:00:00.500Z")
    assert body["FailureReason"]
    forced = h.anon.post("/_sandbox/workorders/WO-000001/status", json={"Status": "Expired", "FailureReason": "late"})
    assert forced.status_code == 200
    assert (forced.json()["Status"], forced.json()["FailureReason"]) == ("Expired", "late")
    with pytest.raises(UsageError):
        h.sandbox.set_status("WO-000001", "Done")


def test_an_unknown_work_order_answers_404(luna: Callable[..., Harness]) -> None:
    h = luna()
    response = h.client.get("/workorders/WO-999999")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "WORK_ORDER_NOT_FOUND")


def test_unknown_routes_answer_404_and_wrong_methods_405(luna: Callable[..., Harness]) -> None:
    h = luna(route_errors="json")  # the default answers them as a web server's HTML page: test_luna_realism.py
    assert h.client.get("/workorders/a/b").json()["error"]["code"] == "NOT_FOUND"
    assert h.client.delete("/workorders/WO-000001").status_code == 405
    assert h.client.put("/workorders").status_code == 405
    assert h.sandbox.stats()["requests"]["other"] == 3


def test_last_readout_sums_the_credit_loaded(luna: Callable[..., Harness]) -> None:
    h = luna(waiting_seconds=0, in_progress_seconds=1)
    h.create("T1", "M1", 1000)
    h.create("T2", "M1", 500)
    h.create("T3", "M2", 99)
    assert h.client.get("/meters/M1/lastreadout").json()["Credit"] == 0
    h.clock.advance(1)
    readout = h.client.get("/meters/M1/lastreadout").json()
    assert set(readout) == {"MeterNumber", "ReadoutTime", "Credit", "Consumption", "ValveStatus"}
    assert (readout["MeterNumber"], readout["Credit"], readout["ReadoutTime"]) == (
        "M1",
        1500,
        "2027-01-15T08:00:01.000Z",
    )


# --- lookup, envelope, auth ----------------------------------------------------------------------------------


def test_lookup_lists_the_work_orders_of_a_reference(luna: Callable[..., Harness]) -> None:
    h = luna(idempotency=False)
    h.create("T1")
    h.create("T2")
    h.create("T1")
    found = h.client.get("/workorders", params={"ClientReference": "T1"})
    assert found.status_code == 200
    assert [o["WorkOrderId"] for o in found.json()] == ["WO-000001", "WO-000003"]
    assert found.json()[0]["Status"] == "Waiting"
    assert h.client.get("/workorders", params={"ClientReference": "none"}).json() == []
    assert h.sandbox.stats()["requests"]["lookup"] == 2


@pytest.mark.parametrize("status", [404, 405])
def test_lookup_off_answers_404_or_405_but_the_sandbox_lookup_still_works(
    luna: Callable[..., Harness], status: int
) -> None:
    h = luna(lookup=False, lookup_off_status=status)
    h.create("T1")
    assert h.client.get("/workorders", params={"ClientReference": "T1"}).status_code == status
    inspected = h.anon.get("/_sandbox/workorders", params={"ClientReference": "T1"})
    assert [o["WorkOrderId"] for o in inspected.json()] == ["WO-000001"]


def test_the_envelope_wraps_every_success_body_but_not_errors(luna: Callable[..., Harness]) -> None:
    h = luna(envelope=True)
    created = h.create("T1")
    assert created.json()["data"]["WorkOrderId"] == "WO-000001"
    assert h.create("T1").json()["data"]["WorkOrderId"] == "WO-000001"
    assert h.client.get("/workorders/WO-000001").json()["data"]["Status"] == "Waiting"
    assert h.client.get("/workorders", params={"ClientReference": "T1"}).json()["data"][0]["WorkOrderId"]
    assert h.client.get("/meters/M1/lastreadout").json()["data"]["MeterNumber"] == "M1"
    assert set(h.client.get("/workorders/WO-404").json()) == {"error"}


def test_basic_auth_is_required_and_checked(luna: Callable[..., Harness]) -> None:
    h = luna(auth="basic")
    missing = h.anon.post("/workorders", json=order_body())
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "UNAUTHORIZED"
    assert missing.headers["WWW-Authenticate"].startswith("Basic")
    wrong = h.anon.post("/workorders", json=order_body(), auth=("camsync", "nope"))
    assert wrong.status_code == 401
    bearer = h.anon.get("/workorders/WO-000001", headers={"Authorization": "Bearer sandbox-token"})
    assert bearer.status_code == 401
    assert h.create("T1").status_code == 201
    assert h.sandbox.stats()["work_orders"] == 1


def test_bearer_auth_takes_the_static_token_or_one_from_login(luna: Callable[..., Harness]) -> None:
    h = luna(auth="bearer", token="static-tok")
    body = order_body("T1")
    assert h.anon.post("/workorders", json=body).status_code == 401
    assert h.client.post("/workorders", json=body).status_code == 401  # Basic is not accepted
    static = {"Authorization": "Bearer static-tok"}
    assert h.anon.post("/workorders", json=body, headers=static).status_code == 201
    login = h.anon.post("/auth/login", json={"username": "camsync", "password": "sandbox-password"})
    assert login.status_code == 200
    assert login.json()["token_type"] == "Bearer"
    issued = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert h.anon.get("/workorders/WO-000001", headers=issued).status_code == 200
    refused = h.anon.post("/auth/login", json={"username": "camsync", "password": "wrong"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (401, "UNAUTHORIZED")


def test_auth_none_accepts_anonymous_requests(luna: Callable[..., Harness]) -> None:
    h = luna(auth="none")
    assert h.anon.post("/workorders", json=order_body()).status_code == 201


# --- faults --------------------------------------------------------------------------------------------------


def test_a_5xx_fault_stores_nothing(luna: Callable[..., Harness]) -> None:
    h = luna()
    h.sandbox.fail_next("error", 1, endpoint="create")
    failed = h.create("T1")
    assert (failed.status_code, failed.json()["error"]["code"]) == (503, "SERVICE_UNAVAILABLE")
    assert h.sandbox.stats()["work_orders"] == 0
    assert h.create("T1").status_code == 201
    h.sandbox.configure(error_rate=1.0)
    assert h.client.get("/workorders/WO-000001").status_code == 503
    assert h.sandbox.stats()["faults"]["error"] == 2


def test_a_429_carries_retry_after(luna: Callable[..., Harness]) -> None:
    h = luna(rate_limit_rate=1.0, retry_after=7)
    limited = h.create("T1")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "7"
    assert limited.json()["error"]["code"] == "RATE_LIMITED"
    assert h.sandbox.stats()["work_orders"] == 0


def test_drop_after_commit_stores_the_work_order_and_drops_the_connection(luna: Callable[..., Harness]) -> None:
    h = luna()
    h.sandbox.fail_next("drop_after_commit", 1)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        h.create("T1")
    assert h.sandbox.work_orders("T1")[0]["WorkOrderId"] == "WO-000001"
    retry = h.create("T1")
    assert (retry.status_code, retry.json()["WorkOrderId"]) == (200, "WO-000001")
    assert h.sandbox.stats()["by_reference"] == {"T1": 1}


def test_malformed_answers_are_not_json_but_the_create_is_stored(luna: Callable[..., Harness]) -> None:
    h = luna(malformed_rate=1.0)
    response = h.create("T1")
    assert response.status_code == 201
    assert response.headers["Content-Type"].startswith("application/json")
    with pytest.raises(ValueError):
        response.json()
    assert h.sandbox.stats()["work_orders"] == 1


def test_latency_is_slept_on_every_api_request_but_not_on_control(luna: Callable[..., Harness]) -> None:
    h = luna(latency=0.05)
    h.create("T1")
    h.client.get("/workorders/WO-000001")
    h.anon.get("/_sandbox/stats")
    assert h.sleep.calls == [0.05, 0.05]


def test_slow_polls_sleep_only_in_status_requests(luna: Callable[..., Harness]) -> None:
    h = luna(slow_poll_seconds=4.0)
    h.create("T1")
    h.client.get("/workorders/WO-000001")
    h.client.get("/workorders", params={"ClientReference": "T1"})
    assert h.sleep.calls == [4.0]


def test_a_real_latency_is_really_slept() -> None:
    running = start_luna_sandbox(LunaSandboxConfig(latency=0.2, auth="none"))
    try:
        started = time.monotonic()
        httpx.get(f"{running.url}/meters/M1/lastreadout", timeout=5)
        assert time.monotonic() - started >= 0.2
    finally:
        running.stop()


def test_requests_are_served_concurrently(luna: Callable[..., Harness]) -> None:
    """Sixteen requests meet inside the handler's sleep: a server serving one at a time would break the barrier."""
    barrier = threading.Barrier(16, timeout=5)
    h = luna(latency=0.01)

    def meet(_seconds: float) -> None:
        barrier.wait()

    h.sandbox.sleep = meet
    results: list[int] = []

    def create(i: int) -> None:
        with httpx.Client(base_url=h.running.url, auth=AUTH, timeout=10) as client:
            results.append(client.post("/workorders", json=order_body(f"T{i}", f"M{i}")).status_code)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [201] * 16
    assert not barrier.broken
    ids = sorted(o["WorkOrderId"] for o in h.sandbox.work_orders())
    assert ids == [f"WO-{n:06d}" for n in range(1, 17)]


# --- inspection and control ----------------------------------------------------------------------------------


def test_stats_count_work_orders_requests_and_references(luna: Callable[..., Harness]) -> None:
    h = luna()
    h.create("T1")
    h.create("T1")
    h.create("T2")
    h.client.get("/workorders/WO-000001")
    h.client.get("/meters/M1/lastreadout")
    stats = h.anon.get("/_sandbox/stats").json()
    assert stats["work_orders"] == 2
    assert stats["by_reference"] == {"T1": 1, "T2": 1}
    assert stats["duplicates"] == []
    assert stats["replays"] == 1
    assert stats["requests"] | {} == {**stats["requests"], "create": 3, "status": 1, "lookup": 0, "readout": 1}


def test_config_changes_and_reset_over_http(luna: Callable[..., Harness]) -> None:
    h = luna()
    changed = h.anon.post("/_sandbox/config", json={"duplicate_mode": "409", "unknown_meters": "M8, M9"})
    assert changed.status_code == 200
    assert (changed.json()["duplicate_mode"], changed.json()["unknown_meters"]) == ("409", ["M8", "M9"])
    assert (changed.json()["password"], changed.json()["token"]) == ("****", "****")
    h.create("T1")
    assert h.create("T1").status_code == 409
    assert h.create("T2", "M9").status_code == 404
    assert h.anon.post("/_sandbox/config", json={"failure_rate": 2}).status_code == 400
    assert h.anon.post("/_sandbox/config", json={"nonsense": 1}).status_code == 400
    assert h.anon.post("/_sandbox/faults", json={"fault": "error", "count": 1}).status_code == 200
    assert h.create("T3").status_code == 503
    assert h.anon.post("/_sandbox/reset").status_code == 200
    assert h.anon.get("/_sandbox/stats").json()["work_orders"] == 0
    assert h.create("T1").json()["WorkOrderId"] == "WO-000001"


def test_config_rejects_values_out_of_range() -> None:
    with pytest.raises(UsageError):
        LunaSandboxConfig(error_rate=1.5)
    with pytest.raises(UsageError):
        LunaSandboxConfig(auth="digest")
    with pytest.raises(UsageError):
        LunaSandboxConfig(latency=-1)


def test_env_lines_point_the_client_at_the_sandbox() -> None:
    assert LunaSandboxConfig(auth="bearer", token="tok", lookup=False).env_lines("http://127.0.0.1:1") == [
        "LUNA_BASE_URL=http://127.0.0.1:1",
        "LUNA_TOKEN=tok",
        "LUNA_LOOKUP_URL=none",
    ]
    assert LunaSandboxConfig(username="u", password="p").env_lines("http://h") == [
        "LUNA_BASE_URL=http://h",
        "LUNA_USERNAME=u",
        "LUNA_PASSWORD=p",
    ]


# --- the command ---------------------------------------------------------------------------------------------

_SERVE = "import typer; from camsync.commands.sandbox_luna import luna; app = typer.Typer(); app.command()(luna); app()"


def _wait_for_port(path: Path, process: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if path.exists():
            return int(path.read_text())
        if process.poll() is not None:
            raise AssertionError(f"the sandbox exited early: {process.communicate()}")
        time.sleep(0.05)
    raise AssertionError("the sandbox never wrote its port file")


def test_the_command_serves_until_sigterm_and_exits_0(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    args = ["--port", "0", "--port-file", str(port_file), "--auth", "bearer", "--token", "tok"]
    args += ["--no-lookup", "--unknown-meters", "M8,M9", "--duplicate-mode", "409", "--waiting-seconds", "0"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        port = _wait_for_port(port_file, process)
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, headers={"Authorization": "Bearer tok"}, timeout=5) as client:
            assert client.post("/workorders", json=order_body("T1")).status_code == 201
            assert client.post("/workorders", json=order_body("T1")).status_code == 409
            assert client.post("/workorders", json=order_body("T2", "M9")).status_code == 404
            assert client.get("/workorders", params={"ClientReference": "T1"}).status_code == 405
            assert client.get("/workorders/WO-000001").json()["Status"] == "InProgress"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert f"LUNA_BASE_URL={url}" in out
    assert "LUNA_TOKEN=tok" in out
    assert "LUNA_LOOKUP_URL=none" in out
