"""The control API of the SmartUp simulator: inspect it and change the tenant between two syncs.

`GET|POST /_sandbox/stats`, `GET|POST /_sandbox/faults`, `POST /_sandbox/reset-budget`, `POST /_sandbox/edit`
(a product or an order), `POST /_sandbox/stock` and `GET /_sandbox/stock/{product_id}` (a product's batches per
warehouse), `POST /_sandbox/product-group` (a product's value in a classification) and
`POST /_sandbox/group-value` (a value of the product-group reference). An unknown id answers 404, a bad field 400.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from camsync.sandbox.control import ControlApi, ControlCall
from camsync.sandbox.server import Refusal, Reply, Request

if TYPE_CHECKING:
    from camsync.sandbox.smartup import SmartupSandbox


def control_api(sandbox: SmartupSandbox) -> ControlApi:
    """The control routes of one simulator."""
    control = ControlApi(
        read_body=_control_body,
        error=_control_error,
        unrouted=lambda method, path: Reply(status=404, body={"error": f"no control endpoint {method} {path}"}),
        statuses=((KeyError, 404), (ValueError, 400)),
        body_first=True,
    )
    control.add(None, "/_sandbox/stats", lambda call: sandbox.stats())
    control.add("GET", "/_sandbox/faults", lambda call: asdict(sandbox.faults))
    control.add("POST", "/_sandbox/faults", lambda call: asdict(sandbox.set_faults(**call.body())))
    control.add("POST", "/_sandbox/reset-budget", lambda call: _reset_budget(sandbox))
    control.add("POST", "/_sandbox/edit", lambda call: _edit(sandbox, call))
    control.add("POST", "/_sandbox/stock", lambda call: _set_stock(sandbox, call))
    control.add("GET", "/_sandbox/stock/{product_id}", lambda call: sandbox.stock_of(call.params["product_id"]))
    control.add("POST", "/_sandbox/product-group", lambda call: _product_group(sandbox, call))
    control.add("POST", "/_sandbox/group-value", lambda call: _group_value(sandbox, call))
    return control


def _reset_budget(sandbox: SmartupSandbox) -> dict[str, Any]:
    sandbox.reset_budget()
    return sandbox.stats()


def _edit(sandbox: SmartupSandbox, call: ControlCall) -> dict[str, Any]:
    changes = dict(call.body())
    if "product_id" in changes:
        product_id = str(changes.pop("product_id"))
        if changes.pop("remove", False):
            sandbox.remove_product(product_id)
            return {"removed": product_id}
        return sandbox.edit_product(product_id, **changes)
    if "deal_id" in changes:
        return sandbox.edit_order(str(changes.pop("deal_id")), **changes)
    raise ValueError("an edit names a product_id or a deal_id")


def _set_stock(sandbox: SmartupSandbox, call: ControlCall) -> dict[str, Any]:
    body = call.body()
    batches = body.get("batches")
    if not isinstance(batches, list) or not all(isinstance(batch, dict) for batch in batches):
        raise ValueError("batches is a list of objects {quantity, batch_number?, input_price?, received?}")
    product_id, warehouse_code = _required(body, "product_id"), _required(body, "warehouse_code")
    return {"rows": sandbox.set_stock(product_id, warehouse_code, batches)}


def _product_group(sandbox: SmartupSandbox, call: ControlCall) -> dict[str, Any]:
    body = call.body()
    type_code = body.get("type_code")
    return sandbox.set_product_group(
        _required(body, "product_id"), _required(body, "group_code"), None if type_code is None else str(type_code)
    )


def _group_value(sandbox: SmartupSandbox, call: ControlCall) -> dict[str, Any]:
    changes = dict(call.body())
    type_id = _required(changes, "type_id")
    del changes["type_id"]
    if changes.pop("remove", False):
        sandbox.remove_group_value(type_id)
        return {"removed": type_id}
    return sandbox.edit_group_value(type_id, **changes)


def _required(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None or value == "":
        raise ValueError(f"{name} is required")
    return str(value)


def _control_body(request: Request) -> dict[str, Any]:
    """A control body: a JSON object, anything else (an empty body, a list) as no fields."""
    try:
        body = request.json() if request.method == "POST" else None
    except ValueError:
        raise Refusal(Reply(status=400, body={"error": "the body is not JSON"})) from None
    return body if isinstance(body, dict) else {}


def _control_error(status: int, exc: Exception) -> Reply:
    message = f"not found: {exc.args[0]}" if isinstance(exc, KeyError) else str(exc)
    return Reply(status=status, body={"error": message})
