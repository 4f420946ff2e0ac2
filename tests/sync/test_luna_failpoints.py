"""Failpoints: off unless CAMSYNC_FAILPOINTS names them; kill, raise, sleep, and the Nth hit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from camsync import failpoints


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    failpoints.configure("")
    yield
    failpoints.configure("")


def test_unset_failpoints_do_nothing() -> None:
    failpoints.configure(None)  # from the (cleared) environment
    for _ in range(3):
        failpoints.failpoint("after_intent_commit")


def test_raise_fires_on_the_named_point_only() -> None:
    failpoints.configure("during_poll=raise")
    failpoints.failpoint("after_intent_commit")
    with pytest.raises(failpoints.FailpointError, match="during_poll"):
        failpoints.failpoint("during_poll")


def test_nth_hit_only() -> None:
    failpoints.configure("p=raise@3")
    failpoints.failpoint("p")
    failpoints.failpoint("p")
    with pytest.raises(failpoints.FailpointError, match="hit 3"):
        failpoints.failpoint("p")
    failpoints.failpoint("p")


def test_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown failpoint action"):
        failpoints.configure("p=explode")


def test_kill_sends_sigkill_to_the_process() -> None:
    code = "from camsync.failpoints import failpoint; failpoint('x'); print('survived')"
    env = {**os.environ, "CAMSYNC_FAILPOINTS": "x=kill"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL and "survived" not in done.stdout
