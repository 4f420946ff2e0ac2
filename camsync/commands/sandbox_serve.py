"""What every `camsync sandbox …` command shares: the loopback check, chance options, the port file, the serve loop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from camsync.sandbox.server import RunningSandbox


def loopback(host: str) -> str:
    """An option callback: the host, if it is a loopback address."""
    if host not in ("localhost", "::1") and not host.startswith("127."):
        raise typer.BadParameter("the sandbox serves on loopback only (127.0.0.1, localhost or ::1)")
    return host


def chance(*names: str, help: str) -> typer.models.OptionInfo:
    """An option holding a probability from 0 to 1."""
    return typer.Option(*names, min=0.0, max=1.0, help=help)


def write_port_file(path: Path, port: int) -> None:
    """Write the port atomically, so that a script polling the file never reads half of it."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(f"{port}\n", encoding="utf-8")
    partial.replace(path)


def serve_until_stopped(running: RunningSandbox, *, announce: Callable[[], None]) -> None:
    """Call `announce`, then block until Ctrl-C or SIGTERM (or the server thread ends).

    SIGTERM is caught before `announce` runs, so a script that stops the sandbox as soon as it has read what
    was announced stops it cleanly (exit 0).
    """
    import signal
    import threading

    stop = threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if in_main else None
    try:
        announce()
        while not stop.wait(0.2) and running.thread.is_alive():
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
