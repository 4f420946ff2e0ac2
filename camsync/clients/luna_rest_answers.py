"""How LUNA's REST answers are read: the optional `{"data": …}` envelope, several spellings of one field, the
work orders of a lookup, and the code and message of an error answer (secrets redacted, long bodies cut)."""

from __future__ import annotations

from typing import Any

import httpx

from camsync.clients.luna_target import LunaResponseError
from camsync.logs import redact

LIST_KEYS = ("data", "items", "WorkOrders", "workOrders", "work_orders", "results")


def first_value(layers: tuple[dict[str, Any], ...], keys: tuple[str, ...]) -> Any:
    """The first non-empty value of `keys`, looking through each layer in turn (answer, then its envelope)."""
    for layer in layers:
        for key in keys:
            value = layer.get(key)
            if value not in (None, ""):
                return value
    return None


def error_layers(payload: Any) -> list[dict[str, Any]]:
    """The objects of an error answer that may name the existing work order."""
    if not isinstance(payload, dict):
        return []
    error = payload.get("error")
    layers = [payload]
    if isinstance(error, dict):
        layers += [error] + [value for key in ("details", "data") if isinstance(value := error.get(key), dict)]
    return layers


def text_of(value: Any) -> str | None:
    """The value as text (None stays None)."""
    return None if value is None else str(value)


def items_of(payload: Any) -> list[Any]:
    """The work orders of a lookup answer: a list, a list under a known key, or one object."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for key in LIST_KEYS:
            value = payload.get(key)
            if isinstance(value, list):
                return value
            if isinstance(value, dict) and key == "data":
                return items_of(value)
        return [payload]
    return []


def json_body(response: httpx.Response, *, what: str) -> Any:
    """The answer's JSON; LunaResponseError naming `what` when it is malformed."""
    try:
        return response.json()
    except ValueError:
        raise LunaResponseError(
            f"LUNA answered {what} with malformed JSON (HTTP {response.status_code}): {snippet(response.text)}",
            status=response.status_code,
        ) from None


def json_or_none(response: httpx.Response) -> Any:
    """The answer's JSON, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def error_of(response: httpx.Response) -> tuple[str | None, str | None]:
    """(code, message) of an error answer: {"error": {code, message}}, {code, message}, or plain text."""
    payload = json_or_none(response)
    if isinstance(payload, dict):
        error = payload.get("error", payload)
        if isinstance(error, str):
            message = payload.get("message")
            return None, snippet(str(message) if message else error)
        if isinstance(error, dict):
            code = error.get("code") or error.get("Code")
            message = error.get("message") or error.get("Message")
            return (text_of(code), snippet(str(message)) if message is not None else None)
    text = snippet(response.text)
    return None, text or None


def is_duplicate(code: str | None, message: str | None) -> bool:
    """Whether a 409 says the reference exists already (rather than a work order in progress)."""
    if code:
        return "DUPLICATE" in code.upper()
    return "duplicate" in (message or "").lower()


def describe(status: int, code: str | None, message: str | None) -> str:
    """`HTTP 409 CODE: message`, for error reasons."""
    return f"HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")


def snippet(text: str) -> str:
    """The first 200 characters of a body on one line, secrets redacted."""
    return redact(" ".join(text.split())[:200])


def path_of(url: str) -> str:
    """The path of a URL: how error messages name an endpoint."""
    return httpx.URL(url).path or url
