"""The batch writer: batches written on background connections while the job reads the next ones.

A job reads an answer, cuts it into batches (`cut`), works out each batch's rows on its own thread, and hands the
write to the writer, one transaction per batch. The writer keeps the rules every job relies on:

- at most `IN_FLIGHT` batches wait besides those being written, which bounds memory;
- with one connection the batches are written in the order handed; with more, in any order, so a batch whose
  keys were handed before waits for the earlier writes first (`wait_for`), and `drain` waits for everything
  handed so far (a table written after another one);
- once a batch failed, the batches not started yet are dropped, and whatever ends the run (an unexpected error
  included), no batch is written after it: the writer stops with the run (`with writer:`).

PostgreSQL takes the batches on several connections side by side; SQLite has one writer at a time, so there it
is one connection writing in order, on the same path.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Sized
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from camsync.errors import CamsyncError
from camsync.store import bulk
from camsync.store.engine import Store

Item = TypeVar("Item", bound=Sized)


def cut(items: Iterable[Item], *, max_items: int, max_bytes: int) -> Iterator[list[Item]]:
    """`items` (each a JSON text or bytes) in batches of at most `max_items` items and about `max_bytes`: large
    items come in smaller batches, so the batches in flight stay within a bounded memory."""
    batch: list[Item] = []
    size = 0
    for item in items:
        batch.append(item)
        size += len(item)
        if len(batch) >= max_items or size >= max_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


class BatchWriter:
    """Writes batches on `workers` background threads (named `name`), each batch its own transaction.

    `drain` waits for all and raises the first error; once a batch failed (`failed`), `abandon` drops the
    batches not started yet and waits for those being written.
    """

    IN_FLIGHT = 2

    def __init__(self, workers: int = 1, *, name: str = "batch-writer") -> None:
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._pending: deque[Future[None]] = deque()
        self._handed: set[Hashable] = set()
        self.failed = False  # a batch failed: the rest is dropped

    @classmethod
    def for_store(cls, store: Store, *, workers: int, name: str) -> BatchWriter:
        """A writer with as many connections as the store takes side by side (at most `workers`)."""
        return cls(bulk.parallel_writers(store, workers), name=name)

    def submit(self, work: Callable[..., None], *args: Any) -> None:
        """Hand one batch's write; waits while too many batches are in flight (raising a failed one's error)."""
        if self.failed:
            raise RuntimeError("the writer stopped after a failed batch")
        self._pending.append(self._pool.submit(work, *args))
        while len(self._pending) > self.IN_FLIGHT + self.workers - 1:
            self._wait(self._pending.popleft())

    def wait_for(self, keys: Iterable[Hashable]) -> None:
        """Before a batch with these keys is looked up and handed: when one of them was handed before, wait
        until everything handed so far is written, so that the later version lands last."""
        keys = list(keys)
        if any(key in self._handed for key in keys):
            self.drain()
        self._handed.update(keys)

    def drain(self) -> None:
        """Wait until every batch handed so far is written; the first error is raised (the rest dropped)."""
        try:
            while self._pending:
                self._wait(self._pending.popleft())
        except BaseException:
            self.abandon()
            raise

    def settle(self, stopped: CamsyncError | None) -> CamsyncError | None:
        """At the end of a pull: wait for the writes handed (dropping the rest once one failed); the first error
        wins. Batches read before a failed call are whole and are written; a write error is returned."""
        if self.failed:
            self.abandon()
            return stopped
        try:
            self.drain()
        except CamsyncError as error:
            return stopped or error
        return stopped

    def _wait(self, future: Future[None]) -> None:
        try:
            future.result()
        except BaseException:
            self.failed = True
            raise

    def abandon(self) -> None:
        """Drop the batches not started yet and wait for those being written."""
        for future in self._pending:
            future.cancel()
        wait(self._pending)
        self._pending.clear()

    def close(self) -> None:
        self.abandon()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        """Whatever ended the run (an unexpected error included), no batch is written after it."""
        self.close()
