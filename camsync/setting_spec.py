"""How a setting is declared (`Var`, `var`) and how its text is read and checked (`parse_value`)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n"}


@dataclass(frozen=True)
class Var:
    """The description of one environment variable."""

    env: str
    kind: str  # str | int | float | bool | choice | list | url | http_url | template | secret | tz
    help: str
    group: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    required_for: str = ""

    @property
    def secret(self) -> bool:
        return self.kind == "secret"

    def allowed(self) -> str:
        """A short human description of the values this variable accepts."""
        if self.kind == "bool":
            return "true or false (1/0, yes/no, on/off)"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind in ("int", "float"):
            noun = "a whole number" if self.kind == "int" else "a number"
            if self.min is not None and self.max is not None:
                return f"{noun} from {_num(self.min)} to {_num(self.max)}"
            if self.min is not None:
                return f"{noun} of at least {_num(self.min)}"
            return noun
        if self.kind == "url":
            return "a URL such as https://host/path"
        if self.kind == "http_url":
            return "an http:// or https:// URL such as https://host/path"
        if self.kind == "template":
            return "an http:// or https:// URL, or a path below the base URL"
        if self.kind == "tz":
            return "an IANA time zone such as Asia/Tashkent"
        if self.kind == "list":
            return "a comma-separated list"
        return "text"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def var(env: str, kind: str, default: Any, help: str, group: str, **kw: Any) -> Any:
    """Declare a settings field bound to environment variable `env`."""
    return field(default=default, metadata={"var": Var(env=env, kind=kind, help=help, group=group, **kw)})


_HTTP_SCHEMES = ("http", "https")


def _foreign_scheme(template: str) -> bool:
    """Whether a URL template names a scheme other than http(s) (a path or `{base}…` has none of its own)."""
    return (
        "://" in template and not template.startswith("{") and template.split("://", 1)[0].lower() not in _HTTP_SCHEMES
    )


def parse_value(spec: Var, raw: str) -> Any:
    """The value of a setting's text; ValueError when it is not allowed."""
    value = raw.strip()
    if spec.kind == "bool":
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ValueError
    if spec.kind in ("int", "float"):
        number: float = int(value) if spec.kind == "int" else float(value)
        if not math.isfinite(number):
            raise ValueError
        if (spec.min is not None and number < spec.min) or (spec.max is not None and number > spec.max):
            raise ValueError
        return number
    if spec.kind == "choice":
        if value.lower() not in spec.choices:
            raise ValueError
        return value.lower()
    if spec.kind == "list":
        return tuple(item.strip() for item in value.split(",") if item.strip())
    if spec.kind in ("url", "http_url") and value:
        parts = urlsplit(value)
        if not re.fullmatch(r"[a-z][a-z0-9+.-]*", parts.scheme) or not (
            parts.netloc or parts.scheme.startswith("sqlite")
        ):
            raise ValueError
        if spec.kind == "http_url" and parts.scheme not in _HTTP_SCHEMES:
            raise ValueError
        return value
    if spec.kind == "template" and _foreign_scheme(value):
        raise ValueError
    if spec.kind == "tz" and value:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError from exc
    return raw if spec.kind == "secret" else value
