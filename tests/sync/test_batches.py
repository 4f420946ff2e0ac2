"""The batch writer's rules: bounded batches, order with one connection, a repeated key waits, a failure stops it."""

from __future__ import annotations

import threading
import time

import pytest

from camsync.errors import LockedError
from camsync.sync.batches import BatchWriter, cut


def test_batches_are_cut_by_count_and_by_bytes() -> None:
    items = [b"x" * (60 if i in (3, 4) else 1) for i in range(8)]
    assert [len(batch) for batch in cut(items, max_items=3, max_bytes=100)] == [3, 2, 3]
    assert list(cut([], max_items=3, max_bytes=100)) == []


def test_one_connection_writes_in_the_order_handed() -> None:
    written: list[int] = []
    with BatchWriter(1, name="test-writer") as writer:
        for number in range(10):
            writer.submit(written.append, number)
        writer.drain()
    assert written == list(range(10))


def test_a_key_handed_again_waits_for_the_earlier_writes() -> None:
    done: list[str] = []
    release = threading.Event()

    def slow(name: str) -> None:
        release.wait(5)
        time.sleep(0.05)
        done.append(name)

    with BatchWriter(2, name="test-writer") as writer:
        writer.wait_for(["k1"])
        writer.submit(slow, "first")
        writer.wait_for(["k2"])  # a new key: nothing to wait for
        assert done == []
        release.set()
        writer.wait_for(["k3", "k1"])  # k1 again: the first write lands before
        assert done == ["first"]


def test_a_failed_batch_stops_the_writer_and_the_first_error_wins() -> None:
    written: list[int] = []

    def write(number: int) -> None:
        if number == 1:
            raise LockedError("the store refused the batch", "try again")
        written.append(number)

    with BatchWriter(1, name="test-writer") as writer:
        with pytest.raises(LockedError):
            for number in range(10):
                writer.submit(write, number)
        assert writer.failed
        error = writer.settle(None)
        assert error is None  # the failure was raised already; settle drops the rest
        with pytest.raises(RuntimeError):
            writer.submit(write, 99)
    assert 99 not in written and len(written) < 9


def test_settle_returns_a_write_error_unless_the_run_stopped_first() -> None:
    def refuse() -> None:
        raise LockedError("the store refused the batch", "try again")

    with BatchWriter(1, name="test-writer") as writer:
        writer.submit(refuse)
        error = writer.settle(None)
    assert isinstance(error, LockedError)
    stop = LockedError("stopped before", "x")
    with BatchWriter(1, name="test-writer") as writer:
        writer.submit(refuse)
        assert writer.settle(stop) is stop


def test_the_writer_threads_stop_with_the_block() -> None:
    with pytest.raises(ZeroDivisionError), BatchWriter(3, name="test-stop-writer") as writer:
        for _ in range(3):
            writer.submit(time.sleep, 0.01)
        raise ZeroDivisionError
    assert not [t for t in threading.enumerate() if t.name.startswith("test-stop-writer")]
