"""The SmartUp job's code keeps to its folders: it imports no other job, the shared batch code names no job, the
dialect fork of batch writes lives in store/bulk.py only, and no module is over 500 lines."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import camsync

ROOT = Path(camsync.__file__).parent
JOB_FOLDER = ROOT / "sync" / "smartup"
SHARED = [ROOT / "store" / "bulk.py", ROOT / "store" / "runs.py", ROOT / "sync" / "batches.py"]
SMARTUP_MODULES = [
    *sorted(JOB_FOLDER.glob("*.py")),
    *sorted((ROOT / "store").glob("smartup*.py")),
    *sorted((ROOT / "clients").glob("smartup*.py")),
]
OTHER_JOBS = re.compile(r"luna|payplus|pay\+|camsync\.source", re.IGNORECASE)
JOB_NAMES = re.compile(r"smartup|luna|payplus|pay\+", re.IGNORECASE)


def imported(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.extend([node.module, *(f"{node.module}.{alias.name}" for alias in node.names)])
    return names


def test_the_smartup_pull_imports_no_other_job() -> None:
    found = {path.name: [n for n in imported(path) if OTHER_JOBS.search(n)] for path in JOB_FOLDER.glob("*.py")}
    assert {name: names for name, names in found.items() if names} == {}


def test_the_shared_batch_code_names_no_job() -> None:
    for path in SHARED:
        assert not JOB_NAMES.search(path.read_text()), path


def test_only_store_bulk_writes_batches_by_dialect() -> None:
    fork = re.compile(r"is_postgres|\.dialect\b|dialect\.name|\"postgresql\"|\"sqlite\"|sqlite_dialect|psycopg")
    writers = [*JOB_FOLDER.glob("*.py"), ROOT / "store" / "smartup_writes.py", ROOT / "sync" / "batches.py"]
    assert [path.name for path in writers if fork.search(path.read_text())] == []


def test_no_smartup_module_is_over_500_lines() -> None:
    sizes = {path.relative_to(ROOT).as_posix(): len(path.read_text().splitlines()) for path in SMARTUP_MODULES + SHARED}
    assert {name: size for name, size in sizes.items() if size > 500} == {}
