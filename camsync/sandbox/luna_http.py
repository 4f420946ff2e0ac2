"""The LUNA OASYS simulator's HTTP surface: which endpoint a request is, and the answers no endpoint gives.

A path the API does not serve (a wrong base path such as `/api/v2/workorders`, a typo) is answered the way the
web server or reverse proxy in front of a real head-end answers it: 404 with an HTML page and no JSON error
code; a known path with a wrong method is 405 (HTML, with `Allow`). Only the API itself speaks
`{"error": {"code": …}}` (spec /work/shared/specs/luna-oasys-api.md: "errors as …"), so a client can tell
"wrong URL" from "an answer about this txn". `route_errors="json"` brings back JSON answers for these too.
Auth refusals are 401 (no or wrong credentials) and 403 (a token without rights), as JSON or a plain line.
"""

from __future__ import annotations

from camsync.sandbox.luna_config import ApiError, LunaSandboxConfig
from camsync.sandbox.server import Refusal, Reply

HTML = "text/html"
PLAIN = "text/plain; charset=utf-8"
_REASONS = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Not Allowed"}


def endpoint_of(method: str, path: str) -> str:
    """The endpoint a request is for (`create`, `status`, `lookup`, `readout`, `login`), else `other`."""
    parts = path.strip("/").split("/")
    if parts == ["workorders"]:
        return {"POST": "create", "GET": "lookup"}.get(method, "other")
    if len(parts) == 2 and parts[0] == "workorders" and method == "GET":
        return "status"
    if len(parts) == 3 and parts[0] == "meters" and parts[2] == "lastreadout" and method == "GET":
        return "readout"
    if parts == ["auth", "login"] and method == "POST":
        return "login"
    return "other"


def allowed_methods(path: str) -> tuple[str, ...]:
    """The methods the API serves on `path`; empty when it serves none (the path is unknown)."""
    parts = path.strip("/").split("/")
    if parts == ["workorders"]:
        return ("GET", "POST")
    if (len(parts) == 2 and parts[0] == "workorders") or (
        len(parts) == 3 and parts[0] == "meters" and parts[2] == "lastreadout"
    ):
        return ("GET",)
    if parts == ["auth", "login"]:
        return ("POST",)
    return ()


def web_server_page(status: int) -> Reply:
    """The HTML page a web server (nginx here) answers with when the request never reaches the API."""
    title = f"{status} {_REASONS.get(status, 'Error')}"
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return Reply(status, page, content_type=HTML)


def unrouted(method: str, path: str, config: LunaSandboxConfig) -> Reply:
    """A path the API does not serve (404) or a method it does not serve there (405, with `Allow`)."""
    allowed = allowed_methods(path)
    if config.route_errors == "json":
        if allowed:
            return Reply(
                405,
                {"error": {"code": "METHOD_NOT_ALLOWED", "message": f"{method} is not allowed here"}},
                headers={"Allow": ", ".join(allowed)},
            )
        return Reply(404, {"error": {"code": "NOT_FOUND", "message": f"no route {path}"}})
    if allowed:
        reply = web_server_page(405)
        reply.headers["Allow"] = ", ".join(allowed)
        return reply
    return web_server_page(404)


def lookup_off(config: LunaSandboxConfig) -> Refusal:
    """What `GET /workorders?…` answers when the head-end offers no lookup (spec: "a real server may not")."""
    status = config.lookup_off_status
    if config.route_errors == "json":
        code = "NOT_FOUND" if status == 404 else "METHOD_NOT_ALLOWED"
        return ApiError(status, code, "work orders cannot be looked up by reference")
    reply = web_server_page(status)
    if status == 405:
        reply.headers["Allow"] = "POST"
    return Refusal(reply)


def auth_refusal(status: int, config: LunaSandboxConfig, *, challenge: dict[str, str] | None = None) -> Refusal:
    """401 (missing or invalid credentials) or 403 (valid, but no rights), as `auth_body` says."""
    if status == 401:
        code, message = "UNAUTHORIZED", "missing or invalid credentials"
    else:
        code, message = "FORBIDDEN", "the credentials have no rights on work orders"
    if config.auth_body == "plain":
        refusal = Refusal(Reply(status, f"{_REASONS[status]}: {message}\n", content_type=PLAIN))
    else:
        refusal = ApiError(status, code, message)
    refusal.reply.headers.update(challenge or {})
    return refusal
