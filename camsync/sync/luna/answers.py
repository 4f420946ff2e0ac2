"""How the answers of the pool's tasks move txns: each create or poll outcome becomes one event of the
transition table (`states.py`), applied to a txn this process holds, its history line queued for the turn's
transaction. An answer that can no longer be applied (the claim was lost) is kept in the history as an orphan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from camsync.logs import get_logger
from camsync.store.luna_tables import HistoryKind
from camsync.store.luna_txns import ClaimedTxn, event_row
from camsync.sync.luna import moves
from camsync.sync.luna.options import PushCounts, PushOptions
from camsync.sync.luna.states import REPORTED, Event, TxnState
from camsync.sync.luna.work import CreateOutcome, PollOutcome, Verdict

log = get_logger("camsync.sync.luna")

Schedule = Callable[[ClaimedTxn, datetime], None]


def _fit(status: str | None) -> str | None:
    """A LUNA status as stored (64 characters at most)."""
    return status if status is None or len(status) <= 64 else status[:63] + "…"


class Answers:
    """Applies outcomes for the engine: moves the txn, counts, and schedules what comes next (`follow`: its next
    poll, `retry`: its next create attempt)."""

    def __init__(
        self,
        options: PushOptions,
        counts: PushCounts,
        *,
        owner: str,
        events: list[dict[str, Any]],
        rng: Callable[[], float],
        follow: Schedule,
        retry: Schedule,
    ) -> None:
        self.options, self.counts, self.owner, self.events = options, counts, owner, events
        self.rng, self.follow, self.retry = rng, follow, retry
        self.reached_at: datetime | None = None  # the last answer from LUNA (at first: the run's start)
        self.first_rejections: list[tuple[ClaimedTxn, CreateOutcome]] = []  # while nothing was accepted yet
        self.accepted = False  # LUNA took a create of this run
        self.suspect_key: tuple[int | None, str] | None = None  # the rejection the defence tripped on
        self.suspect_why: str | None = None

    def _move(self, session: Any, item: ClaimedTxn, event: Event, **step: Any) -> TxnState | None:
        """Move a txn this process holds, queueing its history line; None when it is no longer held."""
        return moves.move(session, events=self.events, txn_id=item.txn_id, state=item.state, event=event, **step)

    def timed_out(self, item: ClaimedTxn, now: datetime) -> bool:
        """Whether the txn's work order has been followed for LUNA_POLL_TIMEOUT already."""
        since = item.work_order_at or now
        return (now - since).total_seconds() >= self.options.poll_timeout

    # --- creates ---------------------------------------------------------------------------------------------

    def apply_create(self, session: Any, outcome: CreateOutcome, now: datetime) -> None:
        item = outcome.item
        self.counts.requests += outcome.requests
        self.counts.lookups += sum(1 for note in outcome.notes if note.kind == HistoryKind.LOOKUP)
        for note in outcome.notes:
            self.events.append(
                event_row(item.txn_id, note.kind, note.message, self.owner, now, http_status=note.http_status)
            )
        self._reached(outcome.kind != Verdict.UNREACHABLE, outcome.reason, now)
        handler = {
            Verdict.WORK_ORDER: self._created,
            Verdict.REJECTED: self._rejected,
            Verdict.HOLD: self._held,
            Verdict.STOP: self._stop,
        }.get(outcome.kind, self._retry_later)
        handler(session, outcome, now)

    def _reached(self, reached: bool, reason: str, now: datetime) -> None:
        """Follow whether LUNA answers at all: a run that has not reached it for `unreachable_give_up` seconds
        stops (exit 1), leaving every txn to the next run as it was."""
        if reached:
            self.reached_at, self.counts.unreachable = now, None
            return
        self.counts.unreachable = reason
        since = self.reached_at = self.reached_at or now
        waited = (now - since).total_seconds()
        if waited >= self.options.unreachable_give_up and not self.counts.fatal:
            self.counts.fatal = f"{reason} (no answer from LUNA for {waited:.0f} s)"
            self.counts.fatal_is_config = False

    def _orphan(self, outcome: CreateOutcome, now: datetime) -> None:
        """Keep an answer that could not be applied (the claim was lost meanwhile) in the txn's history."""
        order = outcome.work_order
        self.counts.orphans += 1
        how = "adopted" if outcome.adopted else "created"  # not a txn state: what LUNA did
        what = f"work order {order.id} ({how})" if order else outcome.kind
        message = f"answer not applied, the claim was lost meanwhile: {what}" + (
            f" ({outcome.reason})" if outcome.reason else ""
        )
        self.events.append(
            event_row(
                outcome.item.txn_id,
                HistoryKind.ORPHAN,
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
        kind = HistoryKind.DUPLICATE_WORK_ORDERS
        self.events.append(event_row(outcome.item.txn_id, kind, message, self.owner, now, work_order_id=order_id))
        log.error("duplicate_work_orders", f"[duplicate] txn={outcome.item.txn_id} {message}")

    def _created(self, session: Any, outcome: CreateOutcome, now: datetime) -> None:
        item, order = outcome.item, outcome.work_order
        assert order is not None
        how = "adopted (found by lookup)" if outcome.adopted else "created"  # not a txn state: what LUNA did
        first_poll = now + timedelta(seconds=self.options.poll_initial)
        given = {
            "work_order_id": order.id,
            "remote_status": _fit(order.status),
            "last_error": outcome.reason or None,
            "next_attempt_at": first_poll,
        }
        message = f"work order {order.id} {how}, status {order.status}" + (
            f" ({outcome.reason})" if outcome.reason else ""
        )
        state = self._move(session, item, Event.WORK_ORDER, owner=self.owner, now=now, given=given, message=message)
        if state is None:
            self._orphan(outcome, now)
            return
        if outcome.duplicates:
            self._duplicates(outcome, order.id, now)
        self.counts.adopted += outcome.adopted
        self.counts.created += not outcome.adopted
        self.accepted = True
        log.info("status", f"[status] txn={item.txn_id} wo={order.id} status={order.status}")
        followed = replace(item, state=state, work_order_id=order.id, polls=0, work_order_at=now, lookup_first=False)
        if self.options.terminal_state(order.status):
            self._settle(session, followed, order.status, order.failure_reason, now)
            return
        self.follow(followed, first_poll)

    def _rejected(self, session: Any, outcome: CreateOutcome, now: datetime) -> None:
        item = outcome.item
        if self._move(
            session,
            item,
            Event.REJECTED,
            owner=self.owner,
            now=now,
            given={"last_error": outcome.reason},
            message=f"rejected by LUNA, not retried: {outcome.reason}",
            http_status=outcome.http_status,
        ):
            self.counts.rejected_by_luna += 1
            self.counts.finished[TxnState.FAILED] += 1
            log.warning("rejected", f"[rejected] txn={item.txn_id} {outcome.reason}")
            if not self.accepted:
                self.first_rejections.append((item, outcome))
                self._suspect(session, now)
        else:
            self._orphan(outcome, now)

    def _suspect(self, session: Any, now: datetime) -> None:
        """Defence in depth: when the first creates of a run are all rejected alike, the cause is more likely a
        setting than the top-ups. Those txns (and any rejected alike after) are held for review, not failed for
        good, and the run stops."""
        keys = {(o.http_status, o.code or o.reason.split(":", 1)[-1]) for _, o in self.first_rejections}
        if self.suspect_key is not None:
            keys.add(self.suspect_key)
        if len(keys) > 1:
            self.first_rejections = []
            self.accepted = True  # they differ: answers about each txn; no suspicion for the rest of the run
            return
        if self.suspect_key is None and len(self.first_rejections) < self.options.suspect_after:
            return
        (self.suspect_key,) = keys
        _, first = self.first_rejections[0]
        why = self.suspect_why or (
            f"LUNA rejected the first {len(self.first_rejections)} creates of this run alike "
            f"(HTTP {first.http_status}{' ' + first.code if first.code else ''}): a setting "
            "(LUNA_AMOUNT_FIELD, LUNA_CLIENT_REF_FIELD, LUNA_CREATE_URL …) rather than the top-ups?"
        )
        self.suspect_why = why
        for item, outcome in self.first_rejections:
            if moves.move(
                session,
                events=self.events,
                txn_id=item.txn_id,
                state=TxnState.FAILED,
                event=Event.SUSPECT_REJECTION,
                owner=None,
                now=now,
                given={"last_error": f"{why} First answer: {outcome.reason}"},
                message=f"held for review: {why}",
            ):
                self.counts.rejected_by_luna -= 1
                self.counts.finished[TxnState.FAILED] -= 1
                self.counts.suspect_rejections += 1
        self.first_rejections = []
        if not self.counts.fatal:
            self.counts.fatal = f"{why} The run stopped; those txns are held for review"
            self.counts.fatal_is_config = True

    def _held(self, session: Any, outcome: CreateOutcome, now: datetime) -> None:
        item = outcome.item
        if state := self._move(
            session,
            item,
            Event.HELD,
            owner=self.owner,
            now=now,
            given={"last_error": outcome.reason},
            message=f"held for an operator (`camsync luna replay {item.txn_id}`): {outcome.reason}",
            http_status=outcome.http_status,
        ):
            self.counts.unknown += 1
            log.warning(state.value, f"[{state}] txn={item.txn_id} {outcome.reason}")
        else:
            self._orphan(outcome, now)

    def _stop(self, session: Any, outcome: CreateOutcome, now: datetime) -> None:
        """An answer about the endpoint: nothing was created; the txn goes back as it was, due at once for the
        next run, and this run stops."""
        if not self.counts.fatal:
            self.counts.fatal, self.counts.fatal_is_config = outcome.reason, True
        self._move(
            session,
            outcome.item,
            Event.RETRY_LOOKUP_FIRST if outcome.maybe_created else Event.RETRY,
            owner=self.owner,
            now=now,
            given={"last_error": outcome.reason, "next_attempt_at": None},
            message=f"not sent, the run stopped (an answer about the endpoint, not the txn): {outcome.reason}",
            http_status=outcome.http_status,
        )

    def _retry_later(self, session: Any, outcome: CreateOutcome, now: datetime) -> None:
        item = outcome.item
        attempts = item.attempts + 1
        delay = self._backoff(attempts)
        when = now + timedelta(seconds=delay)
        # LUNA unreachable: nothing was sent; the store keeps it due at once for the next run
        stored_when = None if outcome.kind == Verdict.UNREACHABLE else when
        state = self._move(
            session,
            item,
            Event.RETRY_LOOKUP_FIRST if outcome.maybe_created else Event.RETRY,
            owner=self.owner,
            now=now,
            given={"last_error": outcome.reason, "next_attempt_at": stored_when},
            message=f"attempt {attempts} failed, next in {delay:.1f} s"
            + (" (look up first)" if outcome.maybe_created else "")
            + f": {outcome.reason}",
            http_status=outcome.http_status,
        )
        if state is None:
            self._orphan(outcome, now)
            return
        self.counts.retries += 1
        log.warning("retry", f"[retry] txn={item.txn_id} in {delay:.1f}s: {outcome.reason}")
        later = replace(item, state=state, attempts=attempts, lookup_first=outcome.maybe_created, next_attempt_at=when)
        self.retry(later, when)

    def _backoff(self, attempts: int) -> float:
        ceiling = min(self.options.retry_max, self.options.retry_base * 2 ** min(attempts - 1, 20))
        return ceiling * (0.5 + self.rng() / 2)

    # --- polls -----------------------------------------------------------------------------------------------

    def apply_poll(self, session: Any, outcome: PollOutcome, now: datetime) -> None:
        item = outcome.item
        self.counts.requests += 1
        order = outcome.work_order
        self._reached(not outcome.unreachable, outcome.error, now)
        if outcome.fatal:  # about the endpoint: the work order is left as it was, the run stops
            if not self.counts.fatal:
                self.counts.fatal, self.counts.fatal_is_config = outcome.error, True
            return
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
        self, session: Any, item: ClaimedTxn, now: datetime, *, status: str | None, message: str, error: str | None
    ) -> None:
        if self.timed_out(item, now):
            self.expire(session, item, now)
            return
        polls = item.polls + 1
        when = now + timedelta(seconds=min(self.options.poll_max, self.options.poll_initial * 2**polls))
        given: dict[str, Any] = {"polls": polls, "next_attempt_at": when}
        if status is None:
            event, given["last_error"] = Event.POLL_FAILED, error
        else:
            event, given["remote_status"] = Event.POLLED, _fit(status)
        if self._move(
            session,
            item,
            event,
            owner=self.owner,
            now=now,
            given=given,
            message=message,
            work_order_id=item.work_order_id,
        ):
            self.follow(replace(item, polls=polls, next_attempt_at=when), when)

    def _settle(self, session: Any, item: ClaimedTxn, status: str | None, reason: str | None, now: datetime) -> None:
        state = self.options.terminal_state(status) or TxnState.FAILED
        given = {"remote_status": _fit(status)}
        if state is not TxnState.SUCCESSFUL:
            given["last_error"] = reason or f"LUNA status {status}"
        if self._move(
            session,
            item,
            REPORTED[state],
            owner=self.owner,
            now=now,
            given=given,
            message=f"status {status}: {state}" + (f" ({reason})" if reason and state != TxnState.SUCCESSFUL else ""),
            work_order_id=item.work_order_id,
        ):
            self.counts.finished[state] += 1

    def expire(self, session: Any, item: ClaimedTxn, now: datetime) -> None:
        """End a work order followed for LUNA_POLL_TIMEOUT without a terminal status: expired here."""
        message = (
            f"no terminal status {self.options.poll_timeout:.0f} s after the work order: "
            "marked expired locally, never re-created"
        )
        if state := self._move(
            session,
            item,
            Event.POLL_TIMED_OUT,
            owner=self.owner,
            now=now,
            given={"last_error": message},
            message=message,
            work_order_id=item.work_order_id,
        ):
            self.counts.finished[TxnState.EXPIRED] += 1
            log.warning(state.value, f"[{state}] txn={item.txn_id} wo={item.work_order_id} {message}")
