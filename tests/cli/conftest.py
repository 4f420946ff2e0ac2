"""Fixtures of the CLI tests: a LUNA sandbox on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from camsync.sandbox.luna import LunaSandboxConfig, start_luna_sandbox
from camsync.sandbox.server import RunningSandbox


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    running = start_luna_sandbox(LunaSandboxConfig(waiting_seconds=0.05, in_progress_seconds=0.05))
    try:
        yield running
    finally:
        running.stop()
