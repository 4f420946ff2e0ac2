"""The SmartUp sandbox tenants the simulator's tests talk to over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_smartup_sandbox import Tenant, open_tenant


@pytest.fixture
def tenant() -> Iterator[Tenant]:
    opened = open_tenant()
    yield opened
    opened.client.close()
    opened.running.stop()


@pytest.fixture
def make_tenant() -> Iterator[Any]:
    opened: list[Tenant] = []

    def make(**options: Any) -> Tenant:
        opened.append(open_tenant(**options))
        return opened[-1]

    yield make
    for item in opened:
        item.client.close()
        item.running.stop()
