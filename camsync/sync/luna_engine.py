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
from camsync.clients.http import RetryPolicy
from camsync.failpoints import failpoint
from camsync.logs import get_logger
from camsync.settings import Settings
from camsync.store import luna as q
from camsync.store.base import utcnow
from camsync.store.engine import Store
from camsync.sync.luna_work import CreateOutcome, LunaApi, PollOutcome, attempt_create, poll

log = get_logger("camsync.sync.luna")

FAR_FUTURE = timedelta(days=3650)
RECLAIM_SECONDS = 5.0
POLL_CLAIM = 2000
DRAIN_WAIT_SECONDS = 0.25


def lease_seconds_for(timeout_seconds: float, policy: RetryPolicy | None = None) -> float:
    """A lease comfortably longer than the worst case of one create: a lookup and a POST, each of them
    `attempts` tries of `timeout_seconds` with the longest Retry-After honoured between them."""
    policy = policy or RetryPolicy()
    worst_send = policy.attempts * (timeout_seconds + policy.max_retry_after)
    return max(300.0, 2 * worst_send + 60.0)


# A txn this process is done with for now: nothing scheduled, its lease given back.
FINISHED: dict[str, Any] = {"next_attempt_at": None, "claimed_by": None, "claimed_until": None}


@dataclass(frozen=True)
class PushOptions:
    """How one push behaves; `from_settings` reads the LUNA_* settings, keyword overrides win."""

    concurrency: int = 8
    batch_size: int = 25
    limit: int | None = None
    wait: bool = True
    timeout: float | None = None
    txn_id: str | None = None
    poll_initial: float = 1.0
    poll_max: float = 60.0
    poll_timeout: float = 86400.0
    unknown_outcome: str = "hold"
    success_status: str = "Successful"
    failed_statuses: tuple[str, ...] = ("Failed", "Cancelled", "Expired")
    require_terminal: bool = True  # with wait: txns still in flight at the timeout make the run PARTIAL
    lease_seconds: float = 300.0
    retry_base: float = 1.0
    retry_max: float = 300.0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> PushOptions:
        """The options the settings describe, with `overrides` (None values ignored) applied."""
        values: dict[str, Any] = {
            "concurrency": settings.luna_concurrency,
            "batch_size": settings.batch_size,
            "poll_initial": settings.luna_poll_initial_seconds,
            "poll_max": settings.luna_poll_max_seconds,
            "poll_timeout": float(settings.luna_poll_timeout),
            "unknown_outcome": settings.luna_unknown_outcome,
            "success_status": settings.luna_status_success,
            "failed_statuses": tuple(settings.luna_status_failed),
            "lease_seconds": lease_seconds_for(settings.timeout_seconds),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def terminal_state(self, status: str | None) -> str | None:
        """The local state a LUNA status ends in, or None while it is not terminal."""
        folded = (status or "").casefold()
        if folded == self.success_status.casefold():
            return "successful"
        if folded not in {s.casefold() for s in self.failed_statuses}:
            return None
        if folded.startswith("cancel"):
            return "cancelled"
        return "expired" if folded.startswith("expir") else "failed"


@dataclass
class PushCounts:
    """What one push did."""

    creates: int = 0
    created: int = 0
    adopted: int = 0
    polls: int = 0
    lookups: int = 0
    retries: int = 0
    requests: int = 0
    finished: dict[str, int] = field(default_factory=lambda: dict.fromkeys(q.TERMINAL, 0))
    rejected_by_luna: int = 0
    unknown: int = 0
    duplicates: int = 0
    orphans: int = 0
    left_in_flight: int = 0
    fatal: str | None = None

    @property
    def reached_terminal(self) -> int:
        return sum(self.finished.values())

    @property
    def not_successful(self) -> int:
        return self.reached_terminal - self.finished["successful"] + self.unknown


def _fit(status: str | None) -> str | None:
    """A LUNA status as stored (64 characters at most)."""
    return status if status is None or len(status) <= 64 else status[:63] + "…"


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    item: q.ClaimedTxn = field(compare=False)


class PushEngine:
    """Creates and follows the claimable txns until nothing is left (or the deadline, or a fatal error)."""

    def __init__(
        self,
        store: Store,
        client: LunaApi,
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
        self.sends: deque[q.ClaimedTxn] = deque()
        self.retry_heap: list[_Due] = []
        self.poll_heap: list[_Due] = []
        self.inflight: dict[Future[Any], q.ClaimedTxn] = {}
        self._seq = itertools.count()
        self._claimed_sends = 0
        self._sends_dry = self._polls_dry = False
        self._next_send_claim = self._next_poll_claim = self._next_renew = 0.0
        self._deadline: float | None = None
        self._stopped = False
        self._events: list[dict[str, Any]] = []
        # a few more tasks than threads, queued in the pool, so that no thread waits for the coordinator's turn
        self.slots = options.concurrency + max(2, options.concurrency // 2)

    # --- the loop --------------------------------------------------------------------------------------------

    def run(self) -> PushCounts:
        """Run until done; in-flight requests are always finished and recorded, leases always given back."""
        start = self.clock().timestamp()
        self._deadline = start + self.options.timeout if self.options.timeout else None
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
            q.renew_claims(session, owner=self.owner, lease_until=self._lease_until(now))

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
        got: list[q.ClaimedTxn] = []
        if wanted > 0:
            with self.store.writer() as session:
                got = q.claim_sends(
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
            got = q.claim_polls(
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

    def _push(self, heap: list[_Due], item: q.ClaimedTxn, when: datetime) -> None:
        heapq.heappush(heap, _Due(when.timestamp(), next(self._seq), item))

    def _release(self) -> None:
        self.counts.left_in_flight = len(self.sends) + len(self.retry_heap) + len(self.poll_heap)
        with self.store.writer() as session:
            q.release_claims(session, owner=self.owner)

    # --- starting tasks --------------------------------------------------------------------------------------

    def _turn(self, pool: ThreadPoolExecutor, now: datetime) -> None:
        """Apply finished tasks, expire, commit the intents of new creates (one transaction), then submit."""
        done = [future for future in self.inflight if future.done()]
        free = self.slots - len(self.inflight) + len(done)
        polls: list[q.ClaimedTxn] = []
        expired: list[q.ClaimedTxn] = []
        sends: list[q.ClaimedTxn] = []
        if not self._stopping(now):
            polls, expired = self._due_polls(now, free)
            sends = self._due_sends(now, free - len(polls))
        confirmed: set[str] = set()
        if done or expired or sends:
            with self.store.writer() as session:
                for future in done:
                    self._apply(session, future, self.inflight.pop(future), now)
                for item in expired:
                    self._expire(session, item, now)
                if sends:
                    ids = [item.txn_id for item in sends]
                    confirmed = set(q.mark_sending(session, owner=self.owner, txn_ids=ids, now=now))
                q.add_events(session, events=self._events)
                self._events.clear()
        if confirmed:
            failpoint("after_intent_commit")
        self._submit(pool, polls, [item for item in sends if item.txn_id in confirmed])

    def _submit(self, pool: ThreadPoolExecutor, polls: list[q.ClaimedTxn], sends: list[q.ClaimedTxn]) -> None:
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

    def _due_polls(self, now: datetime, free: int) -> tuple[list[q.ClaimedTxn], list[q.ClaimedTxn]]:
        polls: list[q.ClaimedTxn] = []
        expired: list[q.ClaimedTxn] = []
        while self.poll_heap and self.poll_heap[0].at <= now.timestamp() and len(polls) < free:
            item = heapq.heappop(self.poll_heap).item
            (expired if self._poll_timed_out(item, now) else polls).append(item)
        return polls, expired

    def _due_sends(self, now: datetime, free: int) -> list[q.ClaimedTxn]:
        sends: list[q.ClaimedTxn] = []
        while self.retry_heap and self.retry_heap[0].at <= now.timestamp() and len(sends) < free:
            sends.append(heapq.heappop(self.retry_heap).item)
        while self.sends and len(sends) < free:
            sends.append(self.sends.popleft())
        return sends

    def _poll_timed_out(self, item: q.ClaimedTxn, now: datetime) -> bool:
        since = item.work_order_at or now
        return (now - since).total_seconds() >= self.options.poll_timeout

    # --- applying answers ------------------------------------------------------------------------------------

    def _drain(self, pool: ThreadPoolExecutor) -> None:
        while self.inflight:
            wait(list(self.inflight), timeout=DRAIN_WAIT_SECONDS, return_when=FIRST_COMPLETED)
            now = self.clock()
            self._renew(now)
            self._turn(pool, now)

    def _apply(self, session: Any, future: Future[Any], item: q.ClaimedTxn, now: datetime) -> None:
        error = future.exception()
        if error is not None:
            log.error("luna_task", f"unexpected error on txn {item.txn_id}: {type(error).__name__}: {error}")
            outcome: CreateOutcome | PollOutcome = (
                PollOutcome(item=item, error=f"{type(error).__name__}: {error}")
                if item.state == "created"
                else CreateOutcome(item=item, kind="retry", maybe_created=True, reason=f"{type(error).__name__}")
            )
        else:
            outcome = future.result()
        if isinstance(outcome, PollOutcome):
            self._apply_poll(session, outcome, now)
        else:
            self._apply_create(session, outcome, now)

    def _apply_create(self, session: Any, outcome: CreateOutcome, now: datetime) -> None:
        item = outcome.item
        self.counts.requests += outcome.requests
        self.counts.lookups += sum(1 for note in outcome.notes if note.kind == "lookup")
        for note in outcome.notes:
            self._events.append(
                q.event_row(item.txn_id, note.kind, note.message, self.owner, now, http_status=note.http_status)
            )
        handler = {
            "created": self._created,
            "rejected": self._rejected,
            "hold": self._held,
        }.get(outcome.kind, self._retry_later)
        handler(session, outcome, now)

    def _orphan(self, outcome: CreateOutcome, now: datetime) -> None:
        """Keep an answer that could not be applied (the claim was lost meanwhile) in the txn's history."""
        order = outcome.work_order
        self.counts.orphans += 1
        what = f"work order {order.id} ({'adopted' if outcome.adopted else 'created'})" if order else outcome.kind
        message = f"answer not applied, the claim was lost meanwhile: {what}" + (
            f" ({outcome.reason})" if outcome.reason else ""
        )
        self._events.append(
            q.event_row(
                outcome.item.txn_id,
                "orphan",
                message,
                self.owner,
                now,
                http_status=outcome.http_status,
                work_order_id=order.id if order else None,
            )
        )
        log.warning("orphan", f"[orphan] txn={outcome.item.txn_id} {message}")

    def _duplicates(self, outcome: CreateOutcome, order_id: str, now: datetime) -> None:
        self.counts.duplicates += 1
        ids = ", ".join(outcome.duplicates)
        message = f"LUNA holds {len(outcome.duplicates)} work orders for this txn ({ids}): adopted {order_id}"
        self._events.append(
            q.event_row(outcome.item.txn_id, "duplicate_work_orders", message, self.owner, now, work_order_id=order_id)
        )
        log.error("duplicate_work_orders", f"[duplicate] txn={outcome.item.txn_id} {message}")

    def _created(self, session: Any, outcome: CreateOutcome, now: datetime) -> None:
        item, order = outcome.item, outcome.work_order
        assert order is not None
        how = "adopted (found by lookup)" if outcome.adopted else "created"
        first_poll = now + timedelta(seconds=self.options.poll_initial)
        changes = {
            "state": "created",
            "work_order_id": order.id,
            "remote_status": _fit(order.status),
            "work_order_at": now,
            "lookup_first": False,
            "polls": 0,
            "last_error": outcome.reason or None,
            "next_attempt_at": first_poll,
        }
        message = f"work order {order.id} {how}, status {order.status}" + (
            f" ({outcome.reason})" if outcome.reason else ""
        )
        if not self._move(
            session,
            item,
            from_states=("sending",),
            now=now,
            changes=changes,
            kind="answer",
            message=message,
        ):
            self._orphan(outcome, now)
            return
        if outcome.duplicates:
            self._duplicates(outcome, order.id, now)
        self.counts.adopted += outcome.adopted
        self.counts.created += not outcome.adopted
        log.info("status", f"[status] txn={item.txn_id} wo={order.id} status={order.status}")
        followed = replace(
            item, state="created", work_order_id=order.id, polls=0, work_order_at=now, lookup_first=False
        )
        if self.options.terminal_state(order.status):
            self._settle(session, followed, order.status, order.failure_reason, now)
            return
        self._push(self.poll_heap, followed, first_poll)

    def _rejected(self, session: Any, outcome: CreateOutcome, now: datetime) -> None:
        item = outcome.item
        changes = {"state": "failed", "last_error": outcome.reason, "lookup_first": False, **FINISHED}
        if self._move(
            session,
            item,
            from_states=("sending",),
            now=now,
            changes=changes,
            kind="answer",
            message=f"rejected by LUNA, not retried: {outcome.reason}",
            http_status=outcome.http_status,
        ):
            self.counts.rejected_by_luna += 1
            self.counts.finished["failed"] += 1
            log.warning("rejected", f"[rejected] txn={item.txn_id} {outcome.reason}")
        else:
            self._orphan(outcome, now)

    def _move(self, session: Any, item: q.ClaimedTxn, **transition: Any) -> bool:
        """Apply a transition to a txn this process holds, queueing its history event; False when not held."""
        return q.transition(session, events=self._events, txn_id=item.txn_id, owner=self.owner, **transition)

    def _held(self, session: Any, outcome: CreateOutcome, now: datetime) -> None:
        item = outcome.item
        changes = {
            "state": "unknown",
            "lookup_first": True,
            "last_error": outcome.reason,
            **FINISHED,
        }
        if self._move(
            session,
            item,
            from_states=("sending",),
            now=now,
            changes=changes,
            kind="answer",
            message=f"held for an operator (`camsync luna replay {item.txn_id}`): {outcome.reason}",
            http_status=outcome.http_status,
        ):
            self.counts.unknown += 1
            log.warning("unknown", f"[unknown] txn={item.txn_id} {outcome.reason}")
        else:
            self._orphan(outcome, now)

    def _retry_later(self, session: Any, outcome: CreateOutcome, now: datetime) -> None:
        item = outcome.item
        if outcome.kind == "fatal":
            self.counts.fatal = outcome.reason
        attempts = item.attempts + 1
        delay = self._backoff(attempts)
        state = "sending" if outcome.maybe_created else "discovered"
        when = now + timedelta(seconds=delay)
        changes = {
            "state": state,
            "lookup_first": outcome.maybe_created,
            "last_error": outcome.reason,
            "next_attempt_at": when,
        }
        if not self._move(
            session,
            item,
            from_states=("sending",),
            now=now,
            changes=changes,
            kind="answer",
            message=f"attempt {attempts} failed, next in {delay:.1f} s"
            + (" (look up first)" if outcome.maybe_created else "")
            + f": {outcome.reason}",
            http_status=outcome.http_status,
        ):
            self._orphan(outcome, now)
            return
        self.counts.retries += 1
        log.warning("retry", f"[retry] txn={item.txn_id} in {delay:.1f}s: {outcome.reason}")
        later = replace(item, state=state, attempts=attempts, lookup_first=outcome.maybe_created, next_attempt_at=when)
        self._push(self.retry_heap, later, when)

    def _backoff(self, attempts: int) -> float:
        ceiling = min(self.options.retry_max, self.options.retry_base * 2 ** min(attempts - 1, 20))
        return ceiling * (0.5 + self.rng() / 2)

    def _apply_poll(self, session: Any, outcome: PollOutcome, now: datetime) -> None:
        item = outcome.item
        self.counts.requests += 1
        order = outcome.work_order
        if outcome.fatal:
            self.counts.fatal = outcome.error
        if order is None:
            self._poll_again(
                session, item, now, status=None, message=f"poll failed: {outcome.error}", error=outcome.error
            )
            return
        log.info("status", f"[status] txn={item.txn_id} wo={order.id} status={order.status}")
        if self.options.terminal_state(order.status):
            self._settle(session, item, order.status, order.failure_reason, now)
            return
        self._poll_again(session, item, now, status=order.status, message=f"poll: status {order.status}", error=None)

    def _poll_again(
        self, session: Any, item: q.ClaimedTxn, now: datetime, *, status: str | None, message: str, error: str | None
    ) -> None:
        if self._poll_timed_out(item, now):
            self._expire(session, item, now)
            return
        polls = item.polls + 1
        when = now + timedelta(seconds=min(self.options.poll_max, self.options.poll_initial * 2**polls))
        changes: dict[str, Any] = {"polls": polls, "next_attempt_at": when, "last_error": error}
        if status is not None:
            changes["remote_status"] = _fit(status)
        if self._move(
            session,
            item,
            from_states=("created",),
            now=now,
            changes=changes,
            kind="poll",
            message=message,
            work_order_id=item.work_order_id,
        ):
            self._push(self.poll_heap, replace(item, polls=polls, next_attempt_at=when), when)

    def _settle(self, session: Any, item: q.ClaimedTxn, status: str | None, reason: str | None, now: datetime) -> None:
        state = self.options.terminal_state(status) or "failed"
        changes = {
            "state": state,
            "remote_status": _fit(status),
            "last_error": None if state == "successful" else (reason or f"LUNA status {status}"),
            **FINISHED,
        }
        if self._move(
            session,
            item,
            from_states=("created",),
            now=now,
            changes=changes,
            kind="poll",
            message=f"status {status}: {state}" + (f" ({reason})" if reason and state != "successful" else ""),
            work_order_id=item.work_order_id,
        ):
            self.counts.finished[state] += 1

    def _expire(self, session: Any, item: q.ClaimedTxn, now: datetime) -> None:
        changes = {"state": "expired", **FINISHED}
        message = (
            f"no terminal status {self.options.poll_timeout:.0f} s after the work order: "
            "marked expired locally, never re-created"
        )
        if self._move(
            session,
            item,
            from_states=("created",),
            now=now,
            changes={**changes, "last_error": message},
            kind="expired",
            message=message,
            work_order_id=item.work_order_id,
        ):
            self.counts.finished["expired"] += 1
            log.warning("expired", f"[expired] txn={item.txn_id} wo={item.work_order_id} {message}")
