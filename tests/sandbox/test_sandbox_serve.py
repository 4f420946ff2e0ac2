"""What the `camsync sandbox …` commands share: the loopback check, chance options, the port file, the serve loop."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from camsync.commands.sandbox_serve import chance, loopback, serve_until_stopped, write_port_file
from camsync.sandbox.server import Reply, Request, RunningSandbox, SandboxApp


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "localhost", "::1"])
def test_loopback_hosts_pass(host: str) -> None:
    assert loopback(host) == host


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "example.org", ""])
def test_other_hosts_are_a_bad_parameter(host: str) -> None:
    with pytest.raises(typer.BadParameter, match="loopback only"):
        loopback(host)


def test_a_chance_option_takes_0_to_1_only() -> None:
    app = typer.Typer()

    @app.command()
    def show(share: float = chance("--share", help="A share.")) -> None:
        typer.echo(f"share={share}")

    runner = CliRunner()
    assert runner.invoke(app, ["--share", "0.25"]).output == "share=0.25\n"
    assert runner.invoke(app, ["--share", "1.5"]).exit_code == 2
    assert runner.invoke(app, ["--share", "-0.1"]).exit_code == 2


def test_the_port_file_is_written_whole(tmp_path: Path) -> None:
    target = tmp_path / "port"
    write_port_file(target, 8470)
    assert target.read_text() == "8470\n"
    assert not (tmp_path / "port.partial").exists()


class _Nothing(SandboxApp):
    def route(self, request: Request) -> Reply:
        return Reply(204)


def test_serving_ends_when_the_server_thread_ends() -> None:
    announced = threading.Event()
    running = RunningSandbox(_Nothing()).start()
    stopper = threading.Thread(target=lambda: (announced.wait(5), running.server.shutdown()))
    stopper.start()
    try:
        serve_until_stopped(running, announce=announced.set)  # returns without a signal
    finally:
        stopper.join()
        running.stop()
    assert announced.is_set()
