"""Structured logs: key=value text and JSON lines, with secrets redacted at every level, tracebacks included."""

from __future__ import annotations

import io
import json
import logging

import pytest

from camsync.logs import get_logger, job_context, redact, register_secret, setup_logging

CANARY = "canary-S3cr3t-4711"


@pytest.fixture
def stream() -> io.StringIO:
    out = io.StringIO()
    setup_logging(fmt="text", level=logging.DEBUG, stream=out)
    return out


def test_text_line_has_time_level_job_run_event_and_fields(stream: io.StringIO) -> None:
    with job_context("luna", 12):
        get_logger("camsync.test").info("create", "[create] txn=T1 meter=M1 amount=1500 XAF", attempt=1)
    line = stream.getvalue().strip()
    assert line.split()[0].endswith("Z")
    assert " INFO  luna#12 [create] txn=T1 meter=M1 amount=1500 XAF attempt=1" in line


def test_json_lines_carry_the_same_keys() -> None:
    out = io.StringIO()
    setup_logging(fmt="json", level=logging.INFO, stream=out)
    with job_context("smartup", 3):
        get_logger("camsync.test").warning("budget_low", "few calls left", left=7, klass="reference")
    record = json.loads(out.getvalue())
    assert record["level"] == "WARNING" and record["job"] == "smartup" and record["run_id"] == 3
    assert record["event"] == "budget_low" and record["left"] == 7 and record["klass"] == "reference"
    assert record["time"].endswith("Z")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_canary_secret_never_reaches_any_level(fmt: str) -> None:
    out = io.StringIO()
    setup_logging(fmt=fmt, level=logging.DEBUG, stream=out)
    register_secret(CANARY)
    log = get_logger("camsync.test")
    log.debug("d", f"debug {CANARY}", password=CANARY)
    log.info("i", f"url https://user:{CANARY}@luna.example/api", token=CANARY)
    log.warning("w", f"Authorization: Bearer {CANARY}")
    try:
        raise RuntimeError(f"connect failed for postgresql://app:{CANARY}@db/x")
    except RuntimeError:
        log.error("e", "failed", exc_info=True, detail=f"pass={CANARY}")
    logging.getLogger("camsync.other").critical("plain %s", CANARY)
    text = out.getvalue()
    assert text.count("\n") >= 5
    assert CANARY not in text
    assert "****" in text


def test_redact_patterns_without_registration() -> None:
    assert redact("postgresql://app:pw123456@h/db") == "postgresql://app:****@h/db"
    assert redact("Authorization: Basic dXNlcjpwYXNz") == "Authorization: Basic ****"
    assert redact('{"password": "abc123"}') == '{"password": "****"}'
    assert redact("LUNA_TOKEN=tok-123") == "LUNA_TOKEN=****"
    assert redact("nothing secret here") == "nothing secret here"


def test_a_short_secret_is_redacted_as_a_whole_token() -> None:
    register_secret("x9")
    assert redact("login with password x9 failed") == "login with password **** failed"
    assert redact("box9 and x90 stay") == "box9 and x90 stay"


@pytest.mark.parametrize("password", ["p@ss@word", "pa:ss:wd", "pa/ss/wd", "p@:/x"])
def test_a_url_password_with_at_colon_or_slash_is_hidden_whole(password: str) -> None:
    from camsync.settings import mask

    line = f"cannot connect to postgresql://app:{password}@db.internal:5432/camsync: refused"
    for shown in (redact(line), mask(line)):
        assert shown == "cannot connect to postgresql://app:****@db.internal:5432/camsync: refused"
