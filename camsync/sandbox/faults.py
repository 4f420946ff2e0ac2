"""Fault draws for the simulators: seeded chances, "next N" counters, and a count of the faults that struck.

A fault is a name (`error`, `drop`, …). Whether it strikes a request is decided by its armed counter first (the
next N requests suffer it, whatever the chance), then by the seeded generator against its chance; a chance of 0
never draws from the generator, so switching a fault off leaves the other draws as they were. A counter may be
armed for one scope (an endpoint, say) or for any; a fault may be limited to some scopes only.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Collection, Iterable, Mapping


class FaultDraws:
    """The faults of one simulator: `strike` decides, `arm` sets a counter, `struck` counts what happened.

    `known` faults are listed in `struck()` from the start; `scopes` limits a fault to the scopes named. `rng` is
    public so that the simulator's other seeded draws share the one seed.
    """

    def __init__(
        self,
        seed: int,
        *,
        known: Iterable[str] = (),
        scopes: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self._known = tuple(known)
        self._scopes = dict(scopes or {})
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str | None], int] = {}
        self._struck = dict.fromkeys(self._known, 0)

    def reset(self, seed: int) -> None:
        """Disarm every counter, zero the counts and seed the generator again."""
        with self._lock:
            self.rng.seed(seed)
            self._pending.clear()
            self._struck = dict.fromkeys(self._known, 0)

    def reseed(self, seed: int) -> None:
        """Seed the generator again; counters and counts stay."""
        with self._lock:
            self.rng.seed(seed)

    def arm(self, fault: str, count: int, *, scope: str | None = None) -> None:
        """Make the next `count` requests (of `scope`, or any) suffer `fault`; 0 disarms it."""
        with self._lock:
            self._pending[(fault, scope)] = count

    def armed(self, fault: str, *, scope: str | None = None) -> int:
        """How many more requests the counter of `fault` (for `scope`, or any) will strike."""
        with self._lock:
            return self._pending.get((fault, scope), 0)

    def strike(self, fault: str, chance: float, *, scope: str | None = None) -> bool:
        """Whether this request (of `scope`) suffers `fault`: an armed counter first, then the seeded chance."""
        with self._lock:
            return self._strike(fault, chance, scope)

    def first(self, chances: Iterable[tuple[str, float]], *, scope: str | None = None) -> str | None:
        """The first of several faults, tried in order, that strikes this request; None when none does."""
        with self._lock:
            for fault, chance in chances:
                if self._strike(fault, chance, scope):
                    return fault
        return None

    def struck(self) -> dict[str, int]:
        """How often each fault struck (every known fault listed, others once they have struck)."""
        with self._lock:
            return dict(self._struck)

    def _strike(self, fault: str, chance: float, scope: str | None) -> bool:
        allowed = self._scopes.get(fault)
        if allowed is not None and scope not in allowed:
            return False
        keys = ((fault, scope), (fault, None)) if scope is not None else ((fault, None),)
        for key in keys:
            if self._pending.get(key, 0) > 0:
                self._pending[key] -= 1
                self._count(fault)
                return True
        hit = chance > 0 and self.rng.random() < chance
        if hit:
            self._count(fault)
        return hit

    def _count(self, fault: str) -> None:
        self._struck[fault] = self._struck.get(fault, 0) + 1


def truncated(payload: bytes) -> bytes:
    """A malformed answer: the first half of the body (at least one byte), no longer valid JSON."""
    return payload[: max(1, len(payload) // 2)]
