"""What every command gets from the root app: the global options, the settings and the store, all lazy."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from camsync.settings import Settings
    from camsync.store.engine import Store


@dataclass
class AppContext:
    """Global options, and the settings and store built on first use."""

    env_file: Path | None = None
    log_format: str = "text"
    verbosity: int = 0
    trigger: str = "cli"
    _settings: Settings | None = field(default=None, repr=False)
    _store: Store | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from camsync.logs import register_secret
            from camsync.settings import load_settings

            self._settings = load_settings(env_file=self.env_file)
            for secret in self._settings.secret_values():
                register_secret(secret)
        return self._settings

    @property
    def store(self) -> Store:
        """The migrated store (migrated on first use unless CAMSYNC_AUTO_MIGRATE=0)."""
        if self._store is None:
            from camsync.store.engine import open_store

            self._store = open_store(self.settings.store_url, auto_migrate=self.settings.auto_migrate)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.dispose()
            self._store = None


def get_context(ctx: typer.Context) -> AppContext:
    """The AppContext the root callback stored (a default one when a command runs on its own)."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppContext):
        root.obj = AppContext()
    return root.obj
