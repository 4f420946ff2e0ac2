"""`camsync doctor` against the real SmartUp and LUNA simulators: every check, its fix, and nothing written."""

from __future__ import annotations

import json
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from camsync.commands.doctor import doctor
from camsync.sandbox.luna import LunaSandboxConfig, start_luna_sandbox
from camsync.sandbox.server import RunningSandbox
from camsync.sandbox.smartup import SmartupSandbox, SmartupSandboxConfig, start_smartup_sandbox
from camsync.settings import load_settings
from camsync.source.payplus_sample import create_sample_app_db
from camsync.store.engine import open_store
from camsync.store.migrate import SCHEMA_HEAD, downgrade_store, store_revision
from camsync.sync.doctor import Check, Status, any_failed, diagnose, run_checks

SMARTUP_PASSWORD = "smartup-secret-pw"
LUNA_PASSWORD = "luna-secret-pw"
LUNA_TOKEN = "luna-secret-token"


@pytest.fixture(scope="module")
def smartup() -> Iterator[RunningSandbox]:
    running = start_smartup_sandbox(SmartupSandboxConfig(products=5, orders=5, password=SMARTUP_PASSWORD))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def luna() -> Iterator[RunningSandbox]:
    running = start_luna_sandbox(LunaSandboxConfig(password=LUNA_PASSWORD))
    yield running
    running.stop()


@pytest.fixture
def app_db(tmp_path: Path) -> Path:
    path = tmp_path / "camwater.db"
    create_sample_app_db(path, topups=10)
    return path


@pytest.fixture
def sqlite_store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    open_store(url).dispose()
    return url


def _env(smartup: RunningSandbox, luna: RunningSandbox, app_db: Path, store_url: str, **changes: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": store_url,
        "APP_DB_URL": f"sqlite:///{app_db}",
        "SMARTUP_BASE_URL": smartup.url,
        "SMARTUP_BASIC_USER": "sandbox",
        "SMARTUP_BASIC_PASS": SMARTUP_PASSWORD,
        "SMARTUP_FILIAL_ID": "100",
        "LUNA_BASE_URL": luna.url,
        "LUNA_USERNAME": "camsync",
        "LUNA_PASSWORD": LUNA_PASSWORD,
    }
    env.update(changes)
    return {key: value for key, value in env.items() if value != ""}


def _checks(env: dict[str, str]) -> dict[str, Check]:
    return {check.name: check for check in run_checks(load_settings(env))}


def _statuses(checks: dict[str, Check]) -> dict[str, str]:
    return {name: check.status.value for name, check in checks.items()}


def _no_secret_in(checks: dict[str, Check] | str) -> None:
    text = checks if isinstance(checks, str) else json.dumps([c.as_dict() for c in checks.values()])
    for secret in (SMARTUP_PASSWORD, LUNA_PASSWORD, LUNA_TOKEN):
        assert secret not in text


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- everything fine ------------------------------------------------------------------------------------------


def test_every_check_passes_against_the_sandboxes(
    smartup: RunningSandbox, luna: RunningSandbox, app_db: Path, store: object, db_url: str
) -> None:
    sandbox = smartup.app
    assert isinstance(sandbox, SmartupSandbox)
    before = sandbox.stats()["calls"]["reference"]
    checks = _checks(_env(smartup, luna, app_db, db_url))
    assert set(_statuses(checks).values()) == {"OK"}, checks
    assert f"schema {SCHEMA_HEAD}" in checks["store"].detail
    assert (
        "mode=ro" in checks["PAY+ app database"].detail
        and "highest tuis.id is 10" in checks["PAY+ app database"].detail
    )
    assert "spent 1 reference call" in checks["SmartUp"].detail
    stats = sandbox.stats()
    assert stats["calls"]["reference"] == before + 1
    assert checks["SmartUp budget"].detail.startswith(f"{stats['budget_left']['reference']} of 100 reference calls")


# --- credentials ----------------------------------------------------------------------------------------------


def test_a_wrong_smartup_password_fails_with_a_fix_naming_the_variables(
    smartup: RunningSandbox, luna: RunningSandbox, app_db: Path, sqlite_store: str
) -> None:
    checks = _checks(_env(smartup, luna, app_db, sqlite_store, SMARTUP_BASIC_PASS="not-the-password"))
    assert checks["SmartUp"].status is Status.FAIL
    assert checks["SmartUp"].detail == "SmartUp answered 401: the login was refused"
    assert "SMARTUP_BASIC_USER/SMARTUP_BASIC_PASS" in checks["SmartUp"].fix
    assert checks["SmartUp budget"].status is Status.SKIP
    assert checks["LUNA OASYS"].status is Status.OK
    assert "not-the-password" not in json.dumps([c.as_dict() for c in checks.values()])
    _no_secret_in(checks)


def test_a_wrong_luna_password_fails_with_a_fix_naming_the_variables(
    smartup: RunningSandbox, luna: RunningSandbox, app_db: Path, sqlite_store: str
) -> None:
    checks = _checks(_env(smartup, luna, app_db, sqlite_store, LUNA_PASSWORD="not-the-password"))
    luna_check = checks["LUNA OASYS"]
    assert (luna_check.status, luna_check.detail, luna_check.fix) == (
        Status.FAIL,
        "LUNA answered 401: the credentials were refused",
        "Check LUNA_USERNAME/LUNA_PASSWORD or LUNA_TOKEN",
    )
    assert checks["LUNA lookup"].status is Status.SKIP
    assert checks["SmartUp"].status is Status.OK
    assert "not-the-password" not in json.dumps([c.as_dict() for c in checks.values()])


def test_a_bearer_token_is_checked_and_a_missing_lookup_is_a_warning(
    smartup: RunningSandbox, app_db: Path, sqlite_store: str
) -> None:
    bearer = start_luna_sandbox(LunaSandboxConfig(auth="bearer", token=LUNA_TOKEN, lookup=False))
    try:
        good = _checks(
            _env(smartup, bearer, app_db, sqlite_store, LUNA_USERNAME="", LUNA_PASSWORD="", LUNA_TOKEN=LUNA_TOKEN)
        )
        bad = _checks(
            _env(smartup, bearer, app_db, sqlite_store, LUNA_USERNAME="", LUNA_PASSWORD="", LUNA_TOKEN="wrong-token")
        )
    finally:
        bearer.stop()
    assert good["LUNA OASYS"].status is Status.OK
    assert good["LUNA lookup"].status is Status.WARN and "LUNA_LOOKUP_URL" in good["LUNA lookup"].fix
    assert bad["LUNA OASYS"].status is Status.FAIL and "LUNA_TOKEN" in bad["LUNA OASYS"].fix
    _no_secret_in(good)


def test_an_unreachable_luna_fails_naming_the_url_setting(
    smartup: RunningSandbox, app_db: Path, sqlite_store: str
) -> None:
    down = f"http://127.0.0.1:{_closed_port()}"
    checks = _checks(_env(smartup, smartup, app_db, sqlite_store, LUNA_BASE_URL=down))
    assert checks["LUNA OASYS"].status is Status.FAIL
    assert "unreachable" in checks["LUNA OASYS"].detail and "LUNA_BASE_URL" in checks["LUNA OASYS"].fix


@pytest.mark.parametrize(
    ("answer", "status", "fix"),
    [
        (httpx.Response(404, text="<html>Not Found</html>"), Status.FAIL, "Check LUNA_BASE_URL and LUNA_STATUS_URL"),
        (httpx.Response(503, text="down for maintenance"), Status.FAIL, "Check LUNA_BASE_URL"),
    ],
)
def test_luna_answers_that_prove_nothing_are_flagged(
    app_db: Path, sqlite_store: str, answer: httpx.Response, status: Status, fix: str
) -> None:
    requests: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request.url.path)
        return answer

    env = {"DATABASE_URL": sqlite_store, "LUNA_BASE_URL": "http://luna.test", "LUNA_TOKEN": LUNA_TOKEN}
    checks = {c.name: c for c in run_checks(load_settings(env), transports={"luna": httpx.MockTransport(handler)})}
    assert checks["LUNA OASYS"].status is status and checks["LUNA OASYS"].fix.startswith(fix)
    assert requests[0] == "/workorders/camsync-doctor-probe"


def test_a_wrong_base_path_is_named_no_such_route_and_nothing_is_created(
    smartup: RunningSandbox, luna: RunningSandbox, app_db: Path, sqlite_store: str
) -> None:
    wrong = _checks(_env(smartup, luna, app_db, sqlite_store, LUNA_BASE_URL=f"{luna.url}/api/v9"))
    assert wrong["LUNA OASYS"].status is Status.FAIL and "no such route" in wrong["LUNA OASYS"].detail
    assert "LUNA_BASE_URL" in wrong["LUNA OASYS"].fix
    wrong_create = _checks(_env(smartup, luna, app_db, sqlite_store, LUNA_CREATE_URL="{base}/api/v9/workorders"))
    assert wrong_create["LUNA OASYS"].status is Status.OK
    create = wrong_create["LUNA create route"]
    assert create.status is Status.FAIL and "no such route" in create.detail and "LUNA_CREATE_URL" in create.fix
    right = _checks(_env(smartup, luna, app_db, sqlite_store))
    assert right["LUNA create route"].status is Status.OK and "nothing was created" in right["LUNA create route"].detail
    assert luna.app.stats()["work_orders"] == 0  # type: ignore[attr-defined]


def test_the_smartup_probe_is_never_retried(sqlite_store: str) -> None:
    requests: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request.url.path)
        return httpx.Response(502, text="bad gateway")

    env = {
        "DATABASE_URL": sqlite_store,
        "SMARTUP_BASE_URL": "http://smartup.test",
        "SMARTUP_BASIC_USER": "sandbox",
        "SMARTUP_BASIC_PASS": SMARTUP_PASSWORD,
    }
    checks = {c.name: c for c in run_checks(load_settings(env), transports={"smartup": httpx.MockTransport(handler)})}
    assert checks["SmartUp"].status is Status.FAIL and "502" in checks["SmartUp"].detail
    assert requests == ["/b/anor/mxsx/mr/inventory$export"]


def test_an_unreachable_store_fails_without_showing_its_password(tmp_path: Path) -> None:
    url = f"postgresql://camsync:db-secret-pw@127.0.0.1:{_closed_port()}/camsync"
    checks = _checks({"DATABASE_URL": url})
    assert checks["store"].status is Status.FAIL and "DATABASE_URL" in checks["store"].fix
    assert "db-secret-pw" not in checks["store"].detail + checks["store"].fix


# --- SmartUp budget -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("budget", "status", "words"),
    [(11, Status.WARN, "10 of 11 reference calls left"), (0, Status.FAIL, "budget is spent")],
)
def test_the_smartup_budget_is_flagged_at_the_reserve_and_when_spent(
    luna: RunningSandbox, app_db: Path, sqlite_store: str, budget: int, status: Status, words: str
) -> None:
    config = SmartupSandboxConfig(products=2, orders=2, password=SMARTUP_PASSWORD, reference_budget=budget)
    tight = start_smartup_sandbox(config)
    try:
        checks = _checks(_env(tight, luna, app_db, sqlite_store, SMARTUP_CALL_RESERVE="10"))
    finally:
        tight.stop()
    assert checks["SmartUp budget"].status is status
    assert words in checks["SmartUp budget"].detail
    assert "SMARTUP_PRODUCTS_INTERVAL_SECONDS" in checks["SmartUp budget"].fix


# --- the store: never created, never migrated -----------------------------------------------------------------


def test_a_missing_sqlite_store_fails_and_is_not_created(
    smartup: RunningSandbox, luna: RunningSandbox, app_db: Path, tmp_path: Path
) -> None:
    data_home = tmp_path / "home" / "data"
    checks = _checks(_env(smartup, luna, app_db, ""))  # the embedded default under $XDG_DATA_HOME
    assert checks["store"].status is Status.FAIL
    assert checks["store"].fix == "Run `camsync db upgrade`"
    assert str(data_home / "camsync" / "camsync.db") in checks["store"].detail
    assert not (data_home / "camsync").exists()


def test_an_unmigrated_store_fails_and_is_left_untouched(
    smartup: RunningSandbox, luna: RunningSandbox, app_db: Path, db_url: str, tmp_path: Path
) -> None:
    open_store(db_url).dispose()
    downgrade_store(db_url, "base")
    before = _snapshot(db_url, tmp_path)
    checks = _checks(_env(smartup, luna, app_db, db_url))
    assert checks["store"].status is Status.FAIL
    assert "no camsync schema" in checks["store"].detail and checks["store"].fix == "Run `camsync db upgrade`"
    assert _snapshot(db_url, tmp_path) == before
    assert store_revision(db_url) is None


def test_an_empty_store_file_is_read_without_a_byte_written(
    smartup: RunningSandbox, luna: RunningSandbox, app_db: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    before = _snapshot(f"sqlite:///{empty}", tmp_path)
    checks = _checks(_env(smartup, luna, app_db, f"sqlite:///{empty}"))
    assert checks["store"].status is Status.FAIL and "no camsync schema" in checks["store"].detail
    assert _snapshot(f"sqlite:///{empty}", tmp_path) == before  # not even a WAL header or a -wal file


def test_an_older_schema_fails_naming_both_revisions(
    smartup: RunningSandbox, luna: RunningSandbox, app_db: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    open_store(url).dispose()
    downgrade_store(url, "0002")
    before = _snapshot(url, tmp_path)
    checks = _checks(_env(smartup, luna, app_db, url))
    assert checks["store"].status is Status.FAIL
    assert f"schema 0002, camsync needs {SCHEMA_HEAD}" in checks["store"].detail
    assert _snapshot(url, tmp_path) == before


def _snapshot(url: str, folder: Path) -> object:
    """Every file of the folder with its bytes (SQLite), or the tables of the schema (PostgreSQL)."""
    if url.startswith("sqlite"):
        return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


# --- the PAY+ app database ------------------------------------------------------------------------------------


def test_a_missing_app_db_fails_naming_app_db_url(
    smartup: RunningSandbox, luna: RunningSandbox, sqlite_store: str, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "camwater.db"
    checks = _checks(_env(smartup, luna, missing, sqlite_store))
    app_check = checks["PAY+ app database"]
    assert app_check.status is Status.FAIL
    assert "APP_DB_URL" in app_check.detail + app_check.fix
    assert not missing.parent.exists()


def test_an_app_db_without_the_pay_tables_fails_naming_the_table_settings(
    smartup: RunningSandbox, luna: RunningSandbox, sqlite_store: str, tmp_path: Path
) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE tuis (id INTEGER PRIMARY KEY, txn_id TEXT)")
    before = other.read_bytes()
    checks = _checks(_env(smartup, luna, other, sqlite_store))
    app_check = checks["PAY+ app database"]
    assert app_check.status is Status.FAIL
    assert "table topups" in app_check.detail and "APP_DB_TOPUPS_TABLE" in app_check.fix
    assert other.read_bytes() == before


def test_the_app_db_is_read_without_changing_a_byte(
    smartup: RunningSandbox, luna: RunningSandbox, app_db: Path, sqlite_store: str
) -> None:
    before = app_db.read_bytes()
    checks = _checks(_env(smartup, luna, app_db, sqlite_store))
    assert checks["PAY+ app database"].status is Status.OK
    assert app_db.read_bytes() == before
    assert sorted(p.name for p in app_db.parent.iterdir() if p.name.startswith("camwater")) == ["camwater.db"]


# --- settings -------------------------------------------------------------------------------------------------


def test_unconfigured_jobs_are_skipped_not_failed(sqlite_store: str) -> None:
    checks = _checks({"DATABASE_URL": sqlite_store})
    assert _statuses(checks) == {
        "settings": "WARN",
        "store": "OK",
        "PAY+ app database": "SKIP",
        "LUNA OASYS": "SKIP",
        "LUNA create route": "SKIP",
        "LUNA lookup": "SKIP",
        "SmartUp": "SKIP",
        "SmartUp budget": "SKIP",
    }
    assert "LUNA_BASE_URL is empty" in checks["LUNA OASYS"].detail
    assert not any_failed(list(checks.values()))


def test_half_configured_luna_fails_naming_the_missing_variable(sqlite_store: str) -> None:
    checks = _checks({"DATABASE_URL": sqlite_store, "LUNA_USERNAME": "camsync", "LUNA_PASSWORD": LUNA_PASSWORD})
    assert checks["LUNA OASYS"].status is Status.FAIL
    assert checks["LUNA OASYS"].detail == "LUNA_BASE_URL is not set"


def test_settings_that_do_not_load_fail_and_the_rest_is_skipped() -> None:
    checks = diagnose(lambda: load_settings({"BATCH_SIZE": "0", "LUNA_PASSWORD": LUNA_PASSWORD}))
    assert [c.status for c in checks] == [Status.FAIL] + [Status.SKIP] * 7
    assert "BATCH_SIZE=0 is not allowed" in checks[0].detail and "BATCH_SIZE" in checks[0].fix


def test_verify_tls_off_is_a_warning(
    sqlite_store: str, smartup: RunningSandbox, luna: RunningSandbox, app_db: Path
) -> None:
    checks = _checks(_env(smartup, luna, app_db, sqlite_store, VERIFY_TLS="false"))
    assert checks["settings"].status is Status.WARN and "VERIFY_TLS" in checks["settings"].fix


# --- the command ----------------------------------------------------------------------------------------------


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(doctor)
    return app


def test_the_command_exits_1_and_shows_the_fix_when_a_password_is_wrong(
    smartup: RunningSandbox, luna: RunningSandbox, app_db: Path, sqlite_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in _env(smartup, luna, app_db, sqlite_store, LUNA_PASSWORD="not-the-password").items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(_cli(), [])
    assert result.exit_code == 1, result.output
    assert "LUNA answered 401" in result.output and "LUNA_USERNAME/LUNA_PASSWORD" in result.output
    assert "1 check(s) failed." in result.output
    assert "not-the-password" not in result.output
    _no_secret_in(result.output)


def test_the_command_prints_json_and_exits_0_when_all_is_well(
    smartup: RunningSandbox, luna: RunningSandbox, app_db: Path, sqlite_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in _env(smartup, luna, app_db, sqlite_store).items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(_cli(), ["--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # logs (stderr) may be mixed into .output
    assert report["ok"] is True
    assert [c["check"] for c in report["checks"]] == [
        "settings",
        "store",
        "SmartUp",
        "SmartUp budget",
        "PAY+ app database",
        "LUNA OASYS",
        "LUNA create route",
        "LUNA lookup",
    ]
    assert {c["status"] for c in report["checks"]} == {"OK"}
    _no_secret_in(result.output)
