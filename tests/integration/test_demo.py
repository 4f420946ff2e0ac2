"""`camsync demo` end to end: real sandboxes on loopback, a messy sample PAY+ database, run-all into SQLite."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import typer
from typer.testing import CliRunner

from camsync.errors import CamsyncError, UsageError
from camsync.sync import demo as demo_module
from camsync.sync.demo import MARKER, DemoOptions, keep_serving, prepare_directory, run_demo


def _fast(directory: Path) -> DemoOptions:
    """A small demo whose LUNA work orders pass each status in 0.2 s."""
    return DemoOptions(directory=directory, products=40, orders=40, topups=120, seed=3, transition_seconds=0.2)


def _serving(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1):
            return True
    except OSError:
        return False


def test_the_demo_ends_with_every_job_success_and_each_topup_loaded_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("LUNA_CREATE_URL=http://127.0.0.9:9/never\nLUNA_TOKEN=not-the-sandbox\n")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'users-own.db'}")

    result = run_demo(_fast(tmp_path / "demo"))

    assert result.problems == []
    assert [(o.name, o.status) for o in result.run_all.outcomes] == [
        ("smartup-products", "SUCCESS"),
        ("smartup-orders", "SUCCESS"),
        ("luna-push", "SUCCESS"),
    ]
    assert {(run.job, run.run_type, run.status) for run in result.runs if run.parent_id == result.run_all.run_id} == {
        ("smartup", "products", "SUCCESS"),
        ("smartup", "orders", "SUCCESS"),
        ("luna", "push", "SUCCESS"),
    }
    assert result.smartup_rows["products"] > 0 and result.smartup_rows["orders"] > 0
    pushable, rejected = result.sample["pushable"], result.sample["rejected"]
    assert pushable > 0 and rejected > 0
    assert {state for state, _wo in result.txns.values()} == {"successful"}
    assert len(result.txns) == result.luna["counts"]["successful"] == pushable
    assert result.work_orders == dict.fromkeys(result.txns, 1)
    assert result.luna["counts"]["rejected"] == rejected == len(result.luna["rejects"])
    assert all(reject["reason"] for reject in result.luna["rejects"])
    assert not {reject["txn_id"] for reject in result.luna["rejects"]} & set(result.work_orders)
    assert result.sandboxes is None
    assert not (tmp_path / "users-own.db").exists()
    assert result.store_url == f"sqlite:///{tmp_path / 'demo' / 'camsync.db'}"


def test_the_demo_folder_is_recreated_but_a_foreign_folder_is_refused(tmp_path: Path) -> None:
    ours = prepare_directory(tmp_path / "demo")
    (ours / "old-store.db").write_text("from the last run")
    assert prepare_directory(tmp_path / "demo") == ours
    assert sorted(p.name for p in ours.iterdir()) == [MARKER]

    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_text("precious")
    with pytest.raises(UsageError, match="was not made by `camsync demo`"):
        prepare_directory(foreign)
    assert (foreign / "holiday.jpg").read_text() == "precious"


def test_kept_sandboxes_serve_until_a_stop_is_requested(tmp_path: Path) -> None:
    result = run_demo(_fast(tmp_path / "demo"), keep=True)
    assert result.sandboxes is not None
    urls = [result.sandboxes.smartup.url, result.sandboxes.luna.url]
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        assert all(_serving(url) for url in urls)
        return len(waits) == 2

    keep_serving(result.sandboxes, wait=wait)
    assert len(waits) == 2
    assert not any(_serving(url) for url in urls)
    env_file = (tmp_path / "demo" / "demo.env").read_text()
    assert f"LUNA_BASE_URL={urls[1]}" in env_file and f"SMARTUP_BASE_URL={urls[0]}" in env_file


def _cli() -> typer.Typer:
    from camsync.commands.demo import demo

    app = typer.Typer()
    app.command("demo")(demo)
    app.command("other")(lambda: None)  # with two commands, `demo` is called by its name as in camsync
    return app


def test_the_command_shows_the_tables_and_where_to_look_next_then_stops_kept_sandboxes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo_module, "DemoOptions", lambda **kw: DemoOptions(**{**kw, "transition_seconds": 0.2}))
    waits: list[float] = []
    # --keep serves until a stop request: here the first wait answers "stop" at once
    monkeypatch.setattr(
        demo_module, "keep_serving", lambda sandboxes: keep_serving(sandboxes, wait=lambda s: waits.append(s) or True)
    )
    args = ["demo", "--dir", str(tmp_path / "d"), "--keep", "--products", "30", "--orders", "30", "--topups", "60"]
    outcome = CliRunner().invoke(_cli(), args)
    assert len(waits) == 1

    assert outcome.exit_code == 0, outcome.output
    store = f"sqlite:///{tmp_path / 'd' / 'camsync.db'}"
    for text in (
        "run-all #1 and its jobs",
        "SmartUp rows in the store",
        "PAY+ top-ups pushed to LUNA",
        "Rejected app DB rows",
        "work orders per client reference",
        f"DATABASE_URL={store} camsync runs list",
        f"DATABASE_URL={store} camsync runs show 1",
        f"DATABASE_URL={store} camsync luna status",
        f"DATABASE_URL={store} camsync luna show PP-",
        "LUNA_BASE_URL=http://127.0.0.1:",
        "Sandboxes stopped.",
        "Every job SUCCESS",
    ):
        assert text in outcome.output
    assert (tmp_path / "d" / "demo.log").read_text().count("run_end") >= 4


def test_the_command_shows_the_tables_then_exits_non_zero_saying_which_job_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_of = demo_module.demo_env
    monkeypatch.setattr(demo_module, "DemoOptions", lambda **kw: DemoOptions(**{**kw, "transition_seconds": 0.2}))
    monkeypatch.setattr(demo_module, "demo_env", lambda *a: {**settings_of(*a), "LUNA_PASSWORD": "not-the-password"})

    outcome = CliRunner().invoke(_cli(), ["demo", "--dir", str(tmp_path / "d"), "--topups", "60"])

    assert outcome.exit_code == 1
    assert isinstance(outcome.exception, CamsyncError)
    assert "luna-push ended FAILED (LUNA refused the credentials" in outcome.exception.reason
    assert "runs show 1" in (outcome.exception.hint or "")
    assert "run-all #1 and its jobs" in outcome.output and "Every job SUCCESS" not in outcome.output


def test_the_demo_queries_read_both_databases(store) -> None:  # type: ignore[no-untyped-def]
    from camsync.store.base import utcnow
    from camsync.store.demo import count_smartup_rows, txn_work_orders
    from camsync.store.luna import LunaTxn

    now = utcnow()
    with store.session() as session:
        for txn, state, work_order in (("T1", "successful", "WO-1"), ("T2", "discovered", None)):
            session.add(
                LunaTxn(
                    txn_id=txn,
                    currency="XAF",
                    origin="app",
                    state=state,
                    work_order_id=work_order,
                    attempts=1,
                    polls=0,
                    lookup_first=False,
                    discovered_at=now,
                    updated_at=now,
                )
            )
    with store.session() as session:
        assert count_smartup_rows(session) == {"products": 0, "product prices": 0, "orders": 0, "order lines": 0}
        assert txn_work_orders(session) == {"T1": ("successful", "WO-1"), "T2": ("discovered", None)}
