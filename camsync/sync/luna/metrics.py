"""The LUNA push's metric families: top-ups in the store per push state, and the rejected app DB rows."""

from __future__ import annotations

from camsync.store import luna_admin as luna_store
from camsync.store.engine import Store
from camsync.sync.exposition import Family
from camsync.sync.luna.states import STATES


def txn_families(store: Store) -> list[Family]:
    """Txns per state (every state, 0 included) and the rejected rows."""
    with store.session() as session:
        counts = luna_store.count_by_state(session, states=STATES)
    txns = Family("camsync_luna_txns", "LUNA top-ups in the store per push state.")
    for state in STATES:
        txns.add(counts.get(state, 0), state=state)
    rejects = Family("camsync_luna_rejects", "App DB rows that cannot be pushed (recorded with a reason, never sent).")
    rejects.add(counts.get(luna_store.REJECTED, 0))
    return [txns, rejects]
