"""`camsync demo` end to end: real sandboxes on loopback, a messy sample PAY+ database, run-all into SQLite."""

from __future__ import annotations

import re
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
    return DemoOptions(directory=directory, sizes={"products": 40, "orders": 40, "topups": 120}, seed=3, pace=0.2)


def _serving(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1):
            return True
    except OSError:
        return False


def test_the_demo_loads_each_good_topup_exactly_once_and_holds_the_disagreeing_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("LUNA_CREATE_URL=http://127.0.0.9:9/never\nLUNA_TOKEN=not-the-sandbox\n")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'users-own.db'}")

    result = run_demo(_fast(tmp_path / "demo"))

    assert result.problems == []
    assert [(o.name, o.status) for o in result.run_all.outcomes] == [
        ("smartup-products", "SUCCESS"),
        ("smartup-orders", "SUCCESS"),
        ("smartup-stock", "SUCCESS"),
        ("luna-push", "PARTIAL"),  # the sample's disagreeing amounts are held for review, as meant
    ]
    assert result.reports["luna"].expected_partial == {"luna-push"}
    assert {(run.job, run.run_type, run.status) for run in result.runs if run.parent_id == result.run_all.run_id} == {
        ("smartup", "products", "SUCCESS"),
        ("smartup", "groups", "SUCCESS"),  # with the first (full) products refresh
        ("smartup", "orders", "SUCCESS"),
        ("smartup", "stock", "SUCCESS"),
        ("luna", "push", "PARTIAL"),
    }
    rows = result.reports["smartup"].facts["rows"]
    assert rows["products"] > 0 and rows["orders"] > 0
    assert rows["product groups"] > 0 and rows["classifications"] > 0 and rows["stock rows"] > 0
    luna = result.reports["luna"].facts
    sample, counts = luna["sample"], luna["luna"]["counts"]
    assert sample["pushable"] > 0 and sample["rejected"] > 0
    # Derived from the sample's metadata: its fractions are pushable, its disagreeing amounts held for review.
    assert sample["fractions"] > 0 and sample["held"] > 0
    assert counts["successful"] == sample["pushable"] and counts["held"] == sample["held"]
    assert len(luna["txns"]) == sample["pushable"] + sample["held"]
    loaded = {txn for txn, (state, _wo) in luna["txns"].items() if state == "successful"}
    assert luna["work_orders"] == dict.fromkeys(loaded, 1)
    assert counts["rejected"] == sample["rejected"]
    assert counts["rejected"] == len(luna["luna"]["rejects"])
    assert all(reject["reason"] for reject in luna["luna"]["rejects"])
    assert not {reject["txn_id"] for reject in luna["luna"]["rejects"]} & set(luna["work_orders"])
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
    urls = [part.url for part in result.sandboxes.parts]
    assert [part.key for part in result.sandboxes.parts] == ["smartup", "luna"]
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
    monkeypatch.setattr(demo_module, "DemoOptions", lambda **kw: DemoOptions(**{**kw, "pace": 0.2}))
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
        f"DATABASE_URL={store} camsync luna show ",  # a sample txn_id: 24 hex characters
        "LUNA_BASE_URL=http://127.0.0.1:",
        "Sandboxes stopped.",
        "Every job did what the sample data asks (luna-push PARTIAL, as meant)",
        "held for review, as the sample meant",
    ):
        assert text in outcome.output
    assert re.search(r"camsync luna show [0-9a-f]{24}\b", outcome.output)
    assert (tmp_path / "d" / "demo.log").read_text().count("run_end") >= 4


def test_the_command_shows_the_tables_then_exits_non_zero_saying_which_job_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_of = demo_module.demo_env
    monkeypatch.setattr(demo_module, "DemoOptions", lambda **kw: DemoOptions(**{**kw, "pace": 0.2}))
    monkeypatch.setattr(demo_module, "demo_env", lambda *a: {**settings_of(*a), "LUNA_PASSWORD": "not-the-password"})

    outcome = CliRunner().invoke(_cli(), ["demo", "--dir", str(tmp_path / "d"), "--topups", "60"])

    assert outcome.exit_code == 1
    assert isinstance(outcome.exception, CamsyncError)
    assert "luna-push ended FAILED (LUNA refused the credentials" in outcome.exception.reason
    assert "runs show 1" in (outcome.exception.hint or "")
    assert "run-all #1 and its jobs" in outcome.output and "Every job SUCCESS" not in outcome.output


def test_the_demo_queries_read_both_databases(store) -> None:  # type: ignore[no-untyped-def]
    from camsync.store.base import utcnow
    from camsync.store.luna_admin import txn_work_orders
    from camsync.store.luna_tables import LunaTxn
    from camsync.store.smartup_reads import count_rows

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
        assert count_rows(session) == {"products": 0, "product prices": 0, "orders": 0, "order lines": 0}
        assert txn_work_orders(session) == {"T1": ("successful", "WO-1"), "T2": ("discovered", None)}
