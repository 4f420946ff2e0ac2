"""The LUNA job's modules keep their house rules: one folder that names no other job, an engine that knows only
the target interface, and no module past 500 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JOB = ROOT / "camsync" / "sync" / "luna"
LUNA_MODULES = sorted(
    [
        *JOB.glob("*.py"),
        *(ROOT / "camsync" / "store").glob("luna_*.py"),
        *(ROOT / "camsync" / "clients").glob("luna_*.py"),
    ]
)


def imports(path: Path) -> set[str]:
    """Every module `path` imports (for `from a import b`: a, and a.b)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("path", sorted(JOB.glob("*.py")), ids=lambda p: p.name)
def test_the_luna_job_names_no_other_job(path: Path) -> None:
    assert not [name for name in imports(path) if "smartup" in name.lower()]


@pytest.mark.parametrize("path", sorted(JOB.glob("*.py")), ids=lambda p: p.name)
def test_only_the_factory_knows_the_rest_transport(path: Path) -> None:
    clients = {name for name in imports(path) if name.startswith("camsync.clients.")}
    if path.name == "target.py":
        return
    assert not {name for name in clients if name.startswith("camsync.clients.luna_rest")}
    if path.name in ("engine.py", "answers.py", "work.py"):  # the push engine talks to the target interface only
        assert {name.split(".")[2] for name in clients} <= {"luna_target"}


def test_the_target_interface_depends_on_no_transport() -> None:
    clients = {
        name.split(".")[2]
        for name in imports(ROOT / "camsync" / "clients" / "luna_target.py")
        if name.startswith("camsync.clients.")
    }
    assert clients <= {"http"}


@pytest.mark.parametrize("path", LUNA_MODULES, ids=lambda p: p.name)
def test_no_luna_module_is_past_500_lines(path: Path) -> None:
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 500
