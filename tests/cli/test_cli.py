"""The CLI shell: help without settings, the exit-code contract, one-line errors, runs and db commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from camsync import __version__
from camsync.errors import ExitCode


def test_help_lists_groups_with_empty_environment(run_cli) -> None:
    result = run_cli("--help")
    assert result.exit_code == 0
    for group in ("runs", "db", "luna", "smartup", "state", "sandbox"):
        assert group in result.stdout


def test_version(run_cli) -> None:
    result = run_cli("--version")
    assert (result.exit_code, result.stdout.strip()) == (0, f"camsync {__version__}")


def test_runs_list_json_on_fresh_machine_prints_empty_list_and_migrates(run_cli, isolated_env: Path) -> None:
    result = run_cli("runs", "list", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == []
    db = isolated_env / "home" / "data" / "camsync" / "camsync.db"
    assert db.is_file()
    assert run_cli("db", "current", "--json").stdout.count('"up_to_date": true') == 1


def test_bad_setting_exits_with_config_code_and_one_line(run_cli) -> None:
    result = run_cli("runs", "list", env={"SYNC_INTERVAL_SECONDS": "5"})
    assert result.exit_code == ExitCode.CONFIG == 4
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: SYNC_INTERVAL_SECONDS=5 is not allowed")
    assert "60 to 86400" in lines[0]


def test_usage_error_exits_2(run_cli) -> None:
    assert run_cli("runs", "list", "--limit", "zero").exit_code == ExitCode.USAGE
    assert run_cli("runs", "list", "--status", "DONE").exit_code == ExitCode.USAGE
    assert run_cli("no-such-command").exit_code == ExitCode.USAGE


def test_unknown_run_is_an_expected_error_without_traceback(run_cli) -> None:
    result = run_cli("runs", "show", "999")
    assert result.exit_code == ExitCode.FAILED
    assert result.stderr.strip() == "Error: run 999 does not exist. See `camsync runs list` for the ids."
    assert "Traceback" not in result.stderr


def test_unreachable_store_is_a_clear_error_with_password_masked(run_cli) -> None:
    url = "postgresql://app:sup3rsecret@127.0.0.1:1/none"
    result = run_cli("runs", "list", env={"DATABASE_URL": url})
    assert result.exit_code == ExitCode.FAILED
    assert result.stderr.startswith("Error: cannot reach the store at postgresql+psycopg://app:****@127.0.0.1:1/none")
    assert "sup3rsecret" not in result.stderr and "Traceback" not in result.stderr


def test_unexpected_error_short_message_and_traceback_only_with_verbose(run_cli, monkeypatch) -> None:
    import camsync.store.runs

    def boom(*_a: object, **_k: object) -> None:
        secret_local = "local-value-never-shown"  # noqa: F841
        raise ValueError("kaboom")

    monkeypatch.setattr(camsync.store.runs, "list_runs", boom)
    quiet = run_cli("runs", "list")
    assert quiet.exit_code == ExitCode.FAILED
    assert "Unexpected error: ValueError: kaboom" in quiet.stderr and "Traceback" not in quiet.stderr
    loud = run_cli("-v", "runs", "list")
    assert "Traceback" in loud.stderr and "local-value-never-shown" not in loud.stderr


def test_runs_list_and_show_render_a_recorded_run(run_cli, db_url: str) -> None:
    from camsync.store.engine import open_store
    from camsync.sync.ledger import recorded_run

    store = open_store(db_url)
    with recorded_run(store, job="smartup", run_type="products", trigger="cron") as run:
        run.add(fetched=7, inserted=7)
    store.dispose()
    env = {"DATABASE_URL": db_url}
    listed = json.loads(run_cli("runs", "list", "--json", "--job", "smartup", env=env).stdout)
    assert [(r["id"], r["status"], r["fetched"], r["trigger"]) for r in listed] == [(run.id, "SUCCESS", 7, "cron")]
    table = run_cli("runs", "list", env=env)
    assert table.exit_code == 0 and "SUCCESS" in table.stdout and "smartup" in table.stdout
    shown = run_cli("runs", "show", str(run.id), env=env)
    assert shown.exit_code == 0 and "products" in shown.stdout


def test_auto_migrate_off_refuses_an_unmigrated_store(run_cli) -> None:
    result = run_cli("runs", "list", env={"CAMSYNC_AUTO_MIGRATE": "0"})
    assert result.exit_code == ExitCode.FAILED
    assert "camsync db upgrade" in result.stderr


def test_console_script_and_python_m_run(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "camsync", "--version"], capture_output=True, text=True, env=env, check=False
    )
    assert (out.returncode, out.stdout.strip()) == (0, f"camsync {__version__}")
    script = Path(sys.executable).parent / "camsync"
    out = subprocess.run(
        [str(script), "runs", "list", "--json"], capture_output=True, text=True, env=env, check=False, cwd=tmp_path
    )
    assert (out.returncode, out.stdout.strip()) == (0, "[]")
