"""The coordinator of `luna push`: one thread owns the store session, a bounded pool does only HTTP.

The coordinator claims batches of txns (leases), commits each create's intent before handing it to the pool,
applies every answer in one short transaction per loop turn, and keeps the work orders it follows on a heap
ordered by their next poll. Retries (409 in progress, 5xx, unknown outcomes) wait on a second heap with
backoff and jitter. Clock, sleep and randomness are injectable so tests never wait on wall time.
"""

from __future__ import annotations

import contextvars
import heapq
import itertools
import random
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from camsync import shutdown
from camsync.clients.luna_target import LunaTarget
from camsync.failpoints import failpoint
from camsync.logs import get_logger
from camsync.store import luna_txns
from camsync.store.base import utcnow
from camsync.store.engine import Store
from camsync.store.luna_txns import ClaimedTxn
from camsync.sync.luna import moves
from camsync.sync.luna.answers import Answers
from camsync.sync.luna.options import PushCounts, PushOptions
from camsync.sync.luna.states import TxnState
from camsync.sync.luna.work import CreateOutcome, PollOutcome, Verdict, attempt_create, poll

log = get_logger("camsync.sync.luna")

FAR_FUTURE = timedelta(days=3650)
RECLAIM_SECONDS = 5.0
POLL_CLAIM = 2000
DRAIN_WAIT_SECONDS = 0.25


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    item: ClaimedTxn = field(compare=False)


class PushEngine:
    """Creates and follows the claimable txns until nothing is left (or the deadline, or a fatal error)."""

    def __init__(
        self,
        store: Store,
        client: LunaTarget,
        options: PushOptions,
        *,
        owner: str,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        heartbeat: Callable[[], None] | None = None,
    ) -> None:
        self.store, self.client, self.options, self.owner = store, client, options, owner
        self.clock, self.sleep, self.rng, self.heartbeat = clock, sleep, rng, heartbeat
        self.counts = PushCounts()
        self.sends: deque[ClaimedTxn] = deque()
        self.retry_heap: list[_Due] = []
        self.poll_heap: list[_Due] = []
        self.inflight: dict[Future[Any], ClaimedTxn] = {}
        self._seq = itertools.count()
        self._claimed_sends = 0
        self._sends_dry = self._polls_dry = False
        self._next_send_claim = self._next_poll_claim = self._next_renew = 0.0
        self._deadline: float | None = None
        self._stopped = False
        self._events: list[dict[str, Any]] = []
        self.answers = Answers(
            options,
            self.counts,
            owner=owner,
            events=self._events,
            rng=rng,
            follow=lambda item, when: self._push(self.poll_heap, item, when),
            retry=lambda item, when: self._push(self.retry_heap, item, when),
        )
        # a few more tasks than threads, queued in the pool, so that no thread waits for the coordinator's turn
        self.slots = options.concurrency + max(2, options.concurrency // 2)

    # --- the loop --------------------------------------------------------------------------------------------

    def run(self) -> PushCounts:
        """Run until done; in-flight requests are always finished and recorded, leases always given back."""
        started = self.clock()
        start = started.timestamp()
        self._deadline = start + self.options.timeout if self.options.timeout else None
        self.answers.reached_at = started  # a run that never reaches LUNA counts its wait from its start
        with ThreadPoolExecutor(self.options.concurrency, thread_name_prefix="luna") as pool:
            try:
                self._loop(pool)
            finally:
                self._stopped = True
                self._drain(pool)
                self._release()
        return self.counts

    def _loop(self, pool: ThreadPoolExecutor) -> None:
        while True:
            now = self.clock()
            self._renew(now)  # also while stopping: an in-flight create must keep its claim until answered
            if not self._stopping(now):
                self._refill(now)
            self._turn(pool, now)
            if self.heartbeat is not None:
                self.heartbeat()
            if self._stopping(now) and not self.inflight:
                return
            if not self.inflight and self._nothing_left(now):
                return
            self._idle(now)

    def _stopping(self, now: datetime) -> bool:
        # a stop request (SIGTERM to the worker) ends the push like a deadline: in-flight answers are applied
        # and committed, nothing new is sent, leases are given back
        return self._stopped or bool(self.counts.fatal) or self._past_deadline(now) or shutdown.requested()

    def _past_deadline(self, now: datetime) -> bool:
        return self._deadline is not None and now.timestamp() >= self._deadline

    def _nothing_left(self, now: datetime) -> bool:
        if self.sends or not (self._sends_dry and self._polls_dry):
            return False
        if self.options.wait:
            return not self.retry_heap and not self.poll_heap
        ts = now.timestamp()
        return all(heap[0].at > ts for heap in (self.retry_heap, self.poll_heap) if heap)

    def _idle(self, now: datetime) -> None:
        ts = now.timestamp()
        dues = [heap[0].at for heap in (self.retry_heap, self.poll_heap) if heap]
        if not self._sends_dry or not self._polls_dry:
            dues.append(min(self._next_send_claim, self._next_poll_claim))
        if self._deadline is not None:
            dues.append(self._deadline)
        delay = max(0.0, min(dues, default=ts + RECLAIM_SECONDS) - ts)
        if self.inflight:
            wait(list(self.inflight), timeout=min(max(delay, 0.001), 0.25), return_when=FIRST_COMPLETED)
        else:
            self.sleep(min(delay, RECLAIM_SECONDS))

    # --- claims ----------------------------------------------------------------------------------------------

    def _lease_until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.options.lease_seconds)

    def _due_before(self, now: datetime) -> datetime:
        if not self.options.wait:
            return now
        return datetime.fromtimestamp(self._deadline, now.tzinfo) if self._deadline else now + FAR_FUTURE

    def _renew(self, now: datetime) -> None:
        if now.timestamp() < self._next_renew:
            return
        self._next_renew = now.timestamp() + self.options.lease_seconds / 4
        with self.store.writer() as session:
            luna_txns.renew_claims(session, owner=self.owner, lease_until=self._lease_until(now))

    def _refill(self, now: datetime) -> None:
        ts = now.timestamp()
        if len(self.sends) < 2 * self.options.concurrency and ts >= self._next_send_claim:
            self._claim_sends(now)
        if ts >= self._next_poll_claim:
            self._claim_polls(now)

    def _claim_sends(self, now: datetime) -> None:
        wanted = max(self.options.batch_size, 2 * self.options.concurrency)
        if self.options.limit is not None:
            wanted = min(wanted, self.options.limit - self._claimed_sends)
        got: list[ClaimedTxn] = []
        if wanted > 0:
            with self.store.writer() as session:
                got = moves.claim_sends(
                    session,
                    owner=self.owner,
                    now=now,
                    lease_until=self._lease_until(now),
                    due_before=self._due_before(now),
                    limit=wanted,
                    txn_id=self.options.txn_id,
                )
        self._claimed_sends += len(got)
        for item in got:
            if item.next_attempt_at is not None and item.next_attempt_at > now:
                self._push(self.retry_heap, item, item.next_attempt_at)
            else:
                self.sends.append(item)
        self._sends_dry = len(got) < wanted or wanted <= 0
        self._next_send_claim = now.timestamp() + (RECLAIM_SECONDS if self._sends_dry else 0.0)

    def _claim_polls(self, now: datetime) -> None:
        with self.store.writer() as session:
            got = moves.claim_polls(
                session,
                owner=self.owner,
                now=now,
                lease_until=self._lease_until(now),
                due_before=self._due_before(now),
                limit=POLL_CLAIM,
                txn_id=self.options.txn_id,
            )
        for item in got:
            self._push(self.poll_heap, item, item.next_attempt_at or now)
        self._polls_dry = len(got) < POLL_CLAIM
        self._next_poll_claim = now.timestamp() + (RECLAIM_SECONDS if self._polls_dry else 0.0)

    def _push(self, heap: list[_Due], item: ClaimedTxn, when: datetime) -> None:
        heapq.heappush(heap, _Due(when.timestamp(), next(self._seq), item))

    def _release(self) -> None:
        self.counts.left_in_flight = len(self.sends) + len(self.retry_heap) + len(self.poll_heap)
        with self.store.writer() as session:
            luna_txns.release_claims(session, owner=self.owner)

    # --- starting tasks --------------------------------------------------------------------------------------

    def _turn(self, pool: ThreadPoolExecutor, now: datetime) -> None:
        """Apply finished tasks, expire, commit the intents of new creates (one transaction), then submit."""
        done = [future for future in self.inflight if future.done()]
        free = self.slots - len(self.inflight) + len(done)
        polls: list[ClaimedTxn] = []
        expired: list[ClaimedTxn] = []
        sends: list[ClaimedTxn] = []
        if not self._stopping(now):
            polls, expired = self._due_polls(now, free)
            sends = self._due_sends(now, free - len(polls))
        confirmed: set[str] = set()
        if done or expired or sends:
            with self.store.writer() as session:
                for future in done:
                    self._apply(session, future, self.inflight.pop(future), now)
                for item in expired:
                    self.answers.expire(session, item, now)
                if self._stopping(now):  # an answer just applied stopped the run: start nothing more
                    self.sends.extendleft(reversed(sends))
                    for item in polls:
                        self._push(self.poll_heap, item, now)
                    sends, polls = [], []
                if sends:
                    ids = [item.txn_id for item in sends]
                    confirmed = set(moves.mark_sending(session, owner=self.owner, txn_ids=ids, now=now))
                luna_txns.add_events(session, events=self._events)
                self._events.clear()
        if confirmed:
            failpoint("after_intent_commit")
        intended = [replace(item, state=moves.INTENDED) for item in sends if item.txn_id in confirmed]
        self._submit(pool, polls, intended)

    def _submit(self, pool: ThreadPoolExecutor, polls: list[ClaimedTxn], sends: list[ClaimedTxn]) -> None:
        # each task runs in a copy of this context, so that its log lines name the job and run
        for item in polls:
            self.counts.polls += 1
            self.inflight[pool.submit(contextvars.copy_context().run, poll, self.client, item)] = item
        for item in sends:
            self.counts.creates += 1
            task = partial(
                attempt_create,
                self.client,
                item,
                unknown_outcome=self.options.unknown_outcome,
                terminal=self.options.terminal_state,
            )
            self.inflight[pool.submit(contextvars.copy_context().run, task)] = item

    def _due_polls(self, now: datetime, free: int) -> tuple[list[ClaimedTxn], list[ClaimedTxn]]:
        polls: list[ClaimedTxn] = []
        expired: list[ClaimedTxn] = []
        while self.poll_heap and self.poll_heap[0].at <= now.timestamp() and len(polls) < free:
            item = heapq.heappop(self.poll_heap).item
            (expired if self.answers.timed_out(item, now) else polls).append(item)
        return polls, expired

    def _due_sends(self, now: datetime, free: int) -> list[ClaimedTxn]:
        sends: list[ClaimedTxn] = []
        while self.retry_heap and self.retry_heap[0].at <= now.timestamp() and len(sends) < free:
            sends.append(heapq.heappop(self.retry_heap).item)
        while self.sends and len(sends) < free:
            sends.append(self.sends.popleft())
        return sends

    # --- applying answers ------------------------------------------------------------------------------------

    def _drain(self, pool: ThreadPoolExecutor) -> None:
        while self.inflight:
            wait(list(self.inflight), timeout=DRAIN_WAIT_SECONDS, return_when=FIRST_COMPLETED)
            now = self.clock()
            self._renew(now)
            self._turn(pool, now)

    def _apply(self, session: Any, future: Future[Any], item: ClaimedTxn, now: datetime) -> None:
        error = future.exception()
        if error is not None:
            log.error("luna_task", f"unexpected error on txn {item.txn_id}: {type(error).__name__}: {error}")
            outcome: CreateOutcome | PollOutcome = (
                PollOutcome(item=item, error=f"{type(error).__name__}: {error}")
                if item.state == TxnState.CREATED
                else CreateOutcome(item=item, kind=Verdict.RETRY, maybe_created=True, reason=f"{type(error).__name__}")
            )
        else:
            outcome = future.result()
        if isinstance(outcome, PollOutcome):
            self.answers.apply_poll(session, outcome, now)
        else:
            self.answers.apply_create(session, outcome, now)
