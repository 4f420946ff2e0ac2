"""The long-running form: run-all every SYNC_INTERVAL_SECONDS (with a little jitter) until SIGTERM or SIGINT.

On a signal the pass in progress finishes its current request and commit (jobs check `camsync.shutdown`), then
the worker exits. Upstream outages are logged and backed off, never fatal. Each pass is a run-all ledger row, and
the worker's heartbeat is that row's heartbeat plus a `worker` row kept RUNNING while it lives.
"""

from __future__ import annotations

import random
import signal
from collections.abc import Callable, Sequence
from types import FrameType

from camsync import shutdown
from camsync.errors import LockedError
from camsync.logs import get_logger
from camsync.settings import Settings
from camsync.store.engine import Store
from camsync.sync.jobs import Job
from camsync.sync.ledger import recorded_run
from camsync.sync.runall import run_all

log = get_logger(__name__)
HEARTBEAT_SLICE = 60.0


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    log.info("worker_stop", f"received {signal.Signals(signum).name}: finishing the work in hand, then exiting")
    shutdown.request()


def install_signal_handlers() -> None:
    """SIGTERM and SIGINT ask for a clean stop instead of killing the process mid-request."""
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


def next_delay(interval: float, failures: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds until the next pass: the interval ±10 %, stretched (up to 4×) after consecutive failed passes."""
    stretch = min(2 ** max(failures - 1, 0), 4) if failures else 1
    return interval * stretch * (0.9 + 0.2 * rng())


def serve(
    store: Store,
    settings: Settings,
    jobs: Sequence[Job],
    *,
    max_passes: int | None = None,
    wait: Callable[[float], bool] = shutdown.wait,
    after_pass: Callable[[str], None] | None = None,
) -> int:
    """Run passes until a stop is requested (or `max_passes`); returns the number of passes made.

    `after_pass` gets each pass's status (FAILED when the pass raised; not called when another run-all held
    the lock): the metrics file and the heartbeat ping hang there."""
    passes = failures = 0
    with recorded_run(
        store, job="worker", run_type="worker", trigger="worker", stale_seconds=settings.run_stale_seconds
    ) as worker_run:
        while not shutdown.requested():
            try:
                result = run_all(store, settings, jobs, trigger="worker")
                failures = 0 if result.status == "SUCCESS" else failures + 1
                if after_pass is not None:
                    after_pass(result.status)
            except LockedError as exc:
                log.warning("worker_locked", f"{exc.reason}; trying again next pass")
            except Exception as exc:  # an outage or a bug in one pass must not end the worker
                failures += 1
                log.error("worker_pass_failed", f"pass failed: {type(exc).__name__}: {exc}", exc_info=True)
                if after_pass is not None:
                    after_pass("FAILED")
            passes += 1
            worker_run.details["passes"] = passes
            if max_passes is not None and passes >= max_passes:
                break
            delay = next_delay(settings.sync_interval_seconds, failures)
            log.info("worker_sleep", f"next pass in {delay:.0f} s", passes=passes)
            if _sleep_beating(worker_run.beat, delay, wait):
                break
    return passes


def _sleep_beating(beat: Callable[..., None], seconds: float, wait: Callable[[float], bool]) -> bool:
    """Sleep `seconds` in slices, beating the worker's heartbeat; True when a stop was requested."""
    remaining = seconds
    while remaining > 0:
        beat(force=True)
        if wait(min(remaining, HEARTBEAT_SLICE)):
            return True
        remaining -= HEARTBEAT_SLICE
    return False
