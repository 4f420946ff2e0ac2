"""The files of an embedded store are its owner's alone: they may hold the settings' effects and the txns."""

from __future__ import annotations

import stat
from pathlib import Path

from camsync.store.engine import open_store
from camsync.store.locks import job_lock


def test_a_new_sqlite_store_and_its_lock_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "camsync.db"
    store = open_store(f"sqlite:///{path}")
    try:
        with job_lock(store, "some-job"):
            pass
    finally:
        store.dispose()
    created = sorted(path.parent.iterdir())
    assert path in created and any(p.name.endswith(".lock") for p in created)
    assert any(p.name.endswith(".migrate-lock") for p in created)
    for file in created:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name
