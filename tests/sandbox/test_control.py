"""The simulators' shared control API and server: routes under /_sandbox/, path parameters, bodies, errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from camsync.sandbox.control import ControlApi, ControlCall
from camsync.sandbox.server import Refusal, Reply, Request, RunningSandbox, SandboxApp


def _strict_body(request: Request) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError:
        raise Refusal(Reply(400, {"error": "not json"})) from None
    if not isinstance(body, dict):
        raise Refusal(Reply(400, {"error": "not an object"}))
    return body


class Toy(SandboxApp):
    """A simulator with a few control routes and one API route that refuses from deep inside."""

    def __init__(self, *, body_first: bool = False) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.control = ControlApi(
            read_body=_strict_body,
            error=lambda status, exc: Reply(status, {"error": f"{type(exc).__name__}: {exc}"}),
            unrouted=lambda method, path: Reply(404, {"error": f"no route {method} {path}"}),
            statuses=((KeyError, 404), (ValueError, 400)),
            body_first=body_first,
        )
        self.control.add("GET", "/_sandbox/items", lambda call: sorted(self.items))
        self.control.add("POST", "/_sandbox/items/{id}", self._put)
        self.control.add(
            "GET", "/_sandbox/items/{id}/name", lambda call: {"name": self.items[call.params["id"]]["name"]}
        )
        self.control.add(None, "/_sandbox/echo", self._echo)
        self.control.add("POST", "/_sandbox/teapot", lambda call: Reply(418, b"short", content_type="text/plain"))

    @staticmethod
    def _echo(call: ControlCall) -> dict[str, Any]:
        return {"method": call.request.method, "q": call.query("a", "b")}

    def _put(self, call: ControlCall) -> dict[str, Any]:
        body = call.body()
        if "name" not in body:
            raise ValueError("an item has a name")
        self.items[call.params["id"]] = body
        return {"stored": call.params["id"]}

    def route(self, request: Request) -> Reply:
        path = request.route_path
        if self.control.owns(path):
            return self.control.answer(request, path)
        if path == "/deep":
            raise Refusal(Reply(409, {"error": "refused deep down"}, headers={"X-Why": "test"}))
        return Reply(200, {"api": path})


@pytest.fixture
def toy() -> Iterator[tuple[Toy, httpx.Client]]:
    app = Toy()
    with RunningSandbox(app) as running, httpx.Client(base_url=running.url, timeout=5) as client:
        yield app, client


def test_routes_match_method_and_path_and_fill_path_parameters(toy: tuple[Toy, httpx.Client]) -> None:
    app, client = toy
    assert client.post("/_sandbox/items/a1", json={"name": "first"}).json() == {"stored": "a1"}
    assert client.post("/_sandbox/items/b2/", json={"name": "second"}).json() == {"stored": "b2"}  # trailing slash
    assert client.get("/_sandbox/items").json() == ["a1", "b2"]
    assert client.get("/_sandbox/items/b2/name").json() == {"name": "second"}
    assert app.items == {"a1": {"name": "first"}, "b2": {"name": "second"}}


def test_unrouted_paths_and_methods_get_the_simulators_answer(toy: tuple[Toy, httpx.Client]) -> None:
    _app, client = toy
    for method, path in (("GET", "/_sandbox/nothing"), ("DELETE", "/_sandbox/items"), ("GET", "/_sandbox/items/a1")):
        answer = client.request(method, path)
        assert (answer.status_code, answer.json()) == (404, {"error": f"no route {method} {path}"})


def test_a_route_without_a_method_takes_any_method(toy: tuple[Toy, httpx.Client]) -> None:
    _app, client = toy
    assert client.put("/_sandbox/echo", params={"b": "2"}).json() == {"method": "PUT", "q": "2"}
    assert client.get("/_sandbox/echo", params={"a": "1", "b": "2"}).json() == {"method": "GET", "q": "1"}
    assert client.get("/_sandbox/echo").json() == {"method": "GET", "q": None}


def test_listed_exceptions_become_the_simulators_errors_and_others_are_not_hidden(
    toy: tuple[Toy, httpx.Client],
) -> None:
    app, client = toy
    missing = client.get("/_sandbox/items/zz/name")
    assert (missing.status_code, missing.json()) == (404, {"error": "KeyError: 'zz'"})
    invalid = client.post("/_sandbox/items/a1", json={"colour": "red"})
    assert (invalid.status_code, invalid.json()) == (400, {"error": "ValueError: an item has a name"})
    app.control.add("GET", "/_sandbox/broken", lambda call: 1 / 0)
    with pytest.raises(ZeroDivisionError):  # a bug in a handler is not dressed up as a control error
        app.control.answer(Request("GET", "/_sandbox/broken", {}, {}, b""), "/_sandbox/broken")


def test_a_body_is_read_only_when_a_handler_asks_unless_body_first() -> None:
    lazy, eager = Toy(), Toy(body_first=True)
    bad = Request("POST", "/_sandbox/teapot", {}, {}, b"{not json")
    assert lazy.control.answer(bad, "/_sandbox/teapot").status == 418  # the teapot never reads the body
    assert eager.control.answer(bad, "/_sandbox/teapot").body == {"error": "not json"}
    unknown = Request("POST", "/_sandbox/unknown", {}, {}, b"{not json")
    assert lazy.control.answer(unknown, "/_sandbox/unknown").status == 404
    assert eager.control.answer(unknown, "/_sandbox/unknown").status == 400
    listed = Request("POST", "/_sandbox/items/a", {}, {}, b"[1]")
    assert lazy.control.answer(listed, "/_sandbox/items/a").body == {"error": "not an object"}


def test_a_handler_may_answer_with_its_own_reply(toy: tuple[Toy, httpx.Client]) -> None:
    _app, client = toy
    answer = client.post("/_sandbox/teapot")
    assert (answer.status_code, answer.text, answer.headers["content-type"]) == (418, "short", "text/plain")


def test_control_routes_live_under_the_prefix() -> None:
    control = Toy().control
    with pytest.raises(ValueError, match="/_sandbox/"):
        control.add("GET", "/items", lambda call: None)
    assert control.owns("/_sandbox/items") and not control.owns("/_sandbox") and not control.owns("/items")


def test_a_refusal_raised_anywhere_is_answered_by_the_server(toy: tuple[Toy, httpx.Client]) -> None:
    _app, client = toy
    answer = client.get("/deep")
    assert (answer.status_code, answer.json(), answer.headers["x-why"]) == (409, {"error": "refused deep down"}, "test")
    assert client.get("/other/").json() == {"api": "/other"}  # the route path drops trailing slashes
    assert client.get("/").json() == {"api": "/"}


def test_the_server_serves_on_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        RunningSandbox(Toy(), host="0.0.0.0")
