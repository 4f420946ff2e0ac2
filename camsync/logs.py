"""Structured logging with secret redaction.

Every record carries time, level, job, run id, event and fields. Text format (for people):

    2026-11-22T10:00:00Z INFO  orders#12 [window] from=2026-11-15 to=2026-11-22 fetched=340

JSON format (one object a line) carries the same keys. `job` and `run_id` come from context variables set by
the run ledger, so every line a job writes names its run. All output passes through `redact`, which removes
registered secret values, credentials inside URLs, Authorization headers and password-like pairs, tracebacks
included.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from camsync.redaction import hide_url_credentials

current_job: contextvars.ContextVar[str | None] = contextvars.ContextVar("camsync_job", default=None)
current_run: contextvars.ContextVar[int | None] = contextvars.ContextVar("camsync_run", default=None)

_secrets: set[str] = set()
_AUTH_HEADER = re.compile(r"(?i)(?P<head>authorization['\"]?\s*[:=]\s*['\"]?(?:basic|bearer)\s+)[\w.~+/=-]+")
_PAIR = re.compile(
    r"(?i)(?P<head>\b[\w-]*(?:password|passwd|pass|secret|token|apikey|api_key)['\"]?\s*[=:]\s*['\"]?)"
    r"(?!\*\*\*\*)[^\s'\",&}]+"
)


_short_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value so that no log line or error message ever shows it.

    A value of four characters or more is removed wherever it appears; a shorter one (a weak password) only where
    it stands as a whole token, so that ordinary words and numbers around it stay readable.
    """
    if value:
        (_secrets if len(value) >= 4 else _short_secrets).add(value)


def redact(text: str) -> str:
    """Remove every known secret and credential pattern from `text`."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "****")
    for secret in _short_secrets:
        if secret in text:
            text = re.sub(rf"(?<![\w]){re.escape(secret)}(?![\w])", "****", text)
    text = hide_url_credentials(text)
    text = _AUTH_HEADER.sub(r"\g<head>****", text)
    return _PAIR.sub(r"\g<head>****", text)


def _format_value(value: Any) -> str:
    text = str(value)
    if text == "" or any(c.isspace() for c in text) or '"' in text:
        return json.dumps(text, ensure_ascii=False)
    return text


def _timestamp(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


class TextFormatter(logging.Formatter):
    """`time LEVEL job#run [event] message key=value …` for people."""

    def format(self, record: logging.LogRecord) -> str:
        job = getattr(record, "job", None)
        run = getattr(record, "run_id", None)
        event = getattr(record, "event", None)
        where = f"{job or '-'}#{run}" if run is not None else (job or "-")
        parts = [_timestamp(record.created), f"{record.levelname:<5}", where]
        message = record.getMessage()
        if event and not message.startswith(f"[{event}]"):
            parts.append(f"[{event}]")
        if message and message != event:
            parts.append(message)
        fields: dict[str, Any] = getattr(record, "fields", {}) or {}
        parts.extend(f"{k}={_format_value(v)}" for k, v in fields.items())
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object a line with time, level, job, run_id, event, message and fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname,
            "job": getattr(record, "job", None),
            "run_id": getattr(record, "run_id", None),
            "event": getattr(record, "event", None) or record.name,
            "message": record.getMessage(),
        }
        for key, value in (getattr(record, "fields", {}) or {}).items():
            payload.setdefault(key, value if isinstance(value, int | float | bool) or value is None else str(value))
        if record.exc_info:
            payload["error"] = self.formatException(record.exc_info)
        return redact(json.dumps(payload, ensure_ascii=False, default=str))


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job", None) is None:
            record.job = current_job.get()
        if getattr(record, "run_id", None) is None:
            record.run_id = current_run.get()
        return True


class EventLogger:
    """A thin logger: `log.info("create", "[create] txn=…", txn=…)` records an event with fields."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def _log(self, level: int, event: str, message: str | None, exc_info: Any, fields: dict[str, Any]) -> None:
        if self._logger.isEnabledFor(level):
            extra = {"event": event, "fields": fields}
            self._logger.log(level, message if message is not None else event, extra=extra, exc_info=exc_info)

    def debug(self, event: str, message: str | None = None, **fields: Any) -> None:
        self._log(logging.DEBUG, event, message, None, fields)

    def info(self, event: str, message: str | None = None, **fields: Any) -> None:
        self._log(logging.INFO, event, message, None, fields)

    def warning(self, event: str, message: str | None = None, **fields: Any) -> None:
        self._log(logging.WARNING, event, message, None, fields)

    def error(self, event: str, message: str | None = None, exc_info: Any = None, **fields: Any) -> None:
        self._log(logging.ERROR, event, message, exc_info, fields)


def get_logger(name: str) -> EventLogger:
    """The event logger for a module."""
    return EventLogger(name)


class _CurrentStderr:
    """Whatever `sys.stderr` is at the moment of writing (a live progress display may stand in for it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def setup_logging(*, fmt: str = "text", level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send camsync's logs to `stream` (the current stderr) in the chosen format; called once by the CLI."""
    handler = logging.StreamHandler(stream or _CurrentStderr())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_ContextFilter())
    root = logging.getLogger("camsync")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    for noisy in ("httpx", "httpcore", "alembic"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


@contextmanager
def job_context(job: str, run_id: int | None = None) -> Iterator[None]:
    """Tag every log line written inside the block with `job` and `run_id`."""
    tokens = (current_job.set(job), current_run.set(run_id))
    try:
        yield
    finally:
        current_run.reset(tokens[1])
        current_job.reset(tokens[0])
