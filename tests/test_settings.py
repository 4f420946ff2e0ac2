"""Settings: every old variable accepted under its name, bad values refused with a clear, masked message."""

from __future__ import annotations

from pathlib import Path

import pytest

from camsync.errors import ConfigError, ExitCode
from camsync.settings import Settings, load_settings, mask, normalize_db_url, settings_vars

OLD_WORKER = [
    "DATABASE_URL",
    "SMARTUP_BASE_URL",
    "SMARTUP_BASIC_USER",
    "SMARTUP_BASIC_PASS",
    "SMARTUP_PROJECT_CODE",
    "SMARTUP_FILIAL_ID",
    "SMARTUP_INVENTORY_EXPORT_URL",
    "SYNC_INTERVAL_SECONDS",
    "SYNC_ORDERS_DAYS_BACK",
]
OLD_AGENT = [
    "LUNA_BASE_URL",
    "LUNA_CREATE_URL",
    "LUNA_STATUS_URL",
    "LUNA_LASTREAD_URL",
    "LUNA_TOKEN",
    "LUNA_USERNAME",
    "LUNA_PASSWORD",
    "LUNA_AMOUNT_FIELD",
    "LUNA_CLIENT_REF_FIELD",
    "LUNA_STATUS_FIELD",
    "LUNA_STATUS_SUCCESS",
    "LUNA_STATUS_WAITING",
    "VERIFY_TLS",
    "TIMEOUT_SECONDS",
    "BATCH_SIZE",
    "SYNC_MODE",
    "APP_DB_URL",
    "STATE_PATH",
]


def test_every_old_variable_is_declared() -> None:
    declared = {spec.env for _name, spec, _default in settings_vars()}
    assert set(OLD_WORKER + OLD_AGENT) <= declared


def test_defaults_of_the_old_programs() -> None:
    settings = load_settings({})
    assert settings.smartup_project_code == "trade"
    assert settings.sync_interval_seconds == 600
    assert settings.sync_orders_days_back == 7
    assert settings.luna_amount_field == "CreditAmount"
    assert settings.luna_client_ref_field == "ClientReference"
    assert settings.luna_status_success == "Successful"
    assert settings.timeout_seconds == 20.0
    assert settings.batch_size == 25
    assert settings.verify_tls is True
    assert settings.luna_status_failed == ("Failed", "Cancelled", "Expired")


def test_values_are_parsed_by_kind() -> None:
    settings = load_settings(
        {
            "VERIFY_TLS": "false",
            "SYNC_INTERVAL_SECONDS": "86400",
            "TIMEOUT_SECONDS": "2.5",
            "SYNC_MODE": "ONCE",
            "LUNA_STATUS_FAILED": "Failed, Rejected",
        }
    )
    assert settings.verify_tls is False
    assert settings.sync_interval_seconds == 86400
    assert settings.timeout_seconds == 2.5
    assert settings.sync_mode == "once"
    assert settings.luna_status_failed == ("Failed", "Rejected")


@pytest.mark.parametrize(
    ("env", "value", "allowed"),
    [
        ("SYNC_INTERVAL_SECONDS", "5", "a whole number from 60 to 86400"),
        ("SYNC_INTERVAL_SECONDS", "ten", "a whole number from 60 to 86400"),
        ("SYNC_ORDERS_DAYS_BACK", "91", "a whole number from 1 to 90"),
        ("VERIFY_TLS", "maybe", "true or false"),
        ("SYNC_MODE", "sometimes", "one of daemon, cron, once"),
        ("SMARTUP_TIMEZONE", "Mars/Olympus", "an IANA time zone"),
        ("LUNA_BASE_URL", "not a url", "an http:// or https:// URL"),
    ],
)
def test_bad_value_names_variable_value_and_allowed(env: str, value: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({env: value})
    message = str(info.value)
    assert env in message and value in message and allowed in message
    assert info.value.exit_code == ExitCode.CONFIG


def test_secret_values_are_masked_in_errors() -> None:
    assert mask("postgresql://app:hunter22@db/x") == "postgresql://app:****@db/x"
    with pytest.raises(ConfigError) as info:
        load_settings({"DATABASE_URL": "postgresql:/app:hunter22@db"})
    assert "hunter22" not in str(info.value)


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / "custom.env"
    env_file.write_text("SYNC_ORDERS_DAYS_BACK=30\nSMARTUP_PROJECT_CODE=anor\n")
    settings = load_settings({"SMARTUP_PROJECT_CODE": "clinic"}, env_file=env_file)
    assert settings.sync_orders_days_back == 30
    assert settings.smartup_project_code == "clinic"


def test_dot_env_in_working_dir_is_default(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BATCH_SIZE=40\n")
    assert load_settings({}).batch_size == 40


def test_missing_env_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({}, env_file=tmp_path / "nope.env")


def test_store_url_defaults_to_user_data_dir_and_normalises_postgres(tmp_path: Path) -> None:
    assert load_settings({}).store_url == f"sqlite:///{tmp_path / 'home' / 'data' / 'camsync' / 'camsync.db'}"
    assert normalize_db_url("postgresql://root@127.0.0.1/test") == "postgresql+psycopg://root@127.0.0.1/test"
    assert normalize_db_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalize_db_url("sqlite:///x.db") == "sqlite:///x.db"


def test_require_names_the_missing_variable() -> None:
    with pytest.raises(ConfigError, match="SMARTUP_BASE_URL is not set"):
        Settings().require("smartup")


def test_every_variable_has_help_and_a_group() -> None:
    for _name, spec, _default in settings_vars():
        assert spec.help.strip() and spec.group, spec.env


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LUNA_BASE_URL", "htp://luna.example/api"),
        ("LUNA_BASE_URL", "ftp://luna.example/api"),
        ("SMARTUP_BASE_URL", "file:///etc/passwd"),
        ("SMARTUP_ORDERS_EXPORT_URL", "ws://smartup.example/x"),
        ("LUNA_CREATE_URL", "htp://luna.example/workorders"),
        ("LUNA_LOOKUP_URL", "gopher://luna.example/workorders?ref={ref}"),
        ("TIMEOUT_SECONDS", "nan"),
        ("TIMEOUT_SECONDS", "inf"),
        ("TIMEOUT_SECONDS", "-inf"),
    ],
)
def test_a_url_that_is_not_http_and_a_number_that_is_not_finite_are_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"{name}=") as caught:
        load_settings({name: value})
    assert caught.value.exit_code == ExitCode.CONFIG


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LUNA_BASE_URL", "https://luna.example/api"),
        ("LUNA_BASE_URL", "HTTP://luna.example/api"),
        ("LUNA_CREATE_URL", "/api/v2/workorders"),
        ("LUNA_CREATE_URL", "{LUNA_BASE_URL}/workorders"),
        ("LUNA_STATUS_URL", "https://luna.example/workorders/{id}"),
        ("LUNA_LOOKUP_URL", "none"),
    ],
)
def test_http_urls_paths_and_templates_are_accepted(name: str, value: str) -> None:
    fields = ("luna_base_url", "luna_create_url", "luna_status_url", "luna_lookup_url")
    settings = load_settings({name: value})
    assert value in {getattr(settings, field) for field in fields}
