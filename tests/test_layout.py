"""The house: shared code names no job, each job keeps to its own folder, and no module grows past 500 lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from camsync.sync.jobs import integrations

PACKAGE = Path(__file__).resolve().parents[1] / "camsync"
JOB_WORDS = re.compile(r"luna|oasys|smartup|pay\+|payplus", re.IGNORECASE)
LAYERS = ("sync", "store", "clients", "source", "sandbox", "commands")
# Wiring that joins the jobs' own parts, so it names them: the registry, the root app, the sandbox command group,
# and the settings table (every variable of every job).
WIRING = {"sync/jobs.py", "cli.py", "commands/sandbox.py", "commands/state.py", "settings.py"}
MAX_LINES = 500


def _job_prefixes() -> tuple[str, ...]:
    keys = [integration.key for integration in integrations()]
    return (*keys, *(f"sandbox_{key}" for key in keys), "payplus")


def _is_job_module(relative: str) -> bool:
    parts = relative.split("/")
    return any(part.startswith(_job_prefixes()) for part in parts[1:])


def shared_modules() -> list[str]:
    """Every module of the layers that belongs to no job, plus the top-level ones."""
    found = [p.relative_to(PACKAGE).as_posix() for layer in LAYERS for p in (PACKAGE / layer).rglob("*.py")]
    found += [p.name for p in PACKAGE.glob("*.py")]
    return sorted(m for m in found if m not in WIRING and not _is_job_module(m))


def test_the_shared_modules_are_found() -> None:
    shared = shared_modules()
    for expected in (
        "sync/runall.py",
        "sync/doctor.py",
        "sync/metrics.py",
        "sync/demo.py",
        "store/runs.py",
        "sandbox/server.py",
        "commands/sandbox_serve.py",
    ):
        assert expected in shared
    assert not [m for m in shared if m.startswith(("sync/luna", "sync/smartup"))]


@pytest.mark.parametrize("module", shared_modules())
def test_a_shared_module_names_no_job(module: str) -> None:
    text = (PACKAGE / module).read_text(encoding="utf-8")
    named = sorted({match.group(0) for match in JOB_WORDS.finditer(text)})
    assert not named, f"{module} names {', '.join(named)}: move that code into the job's own module"


def test_each_job_has_a_folder_in_sync() -> None:
    for integration in integrations():
        assert (PACKAGE / "sync" / integration.key / "__init__.py").is_file()
        assert (PACKAGE / "sync" / integration.key / "job.py").is_file()


def test_no_module_is_over_500_lines() -> None:
    long = {
        p.relative_to(PACKAGE).as_posix(): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}
