"""Lock order of the LUNA store on PostgreSQL: the operator's lock of every txn never waits on a push."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from camsync.store import luna_admin, luna_txns
from camsync.store.base import utcnow

OWNER = "host:1:tok:ns"
SEND = {"states": ["discovered"], "on_claim": {}}


def _add_txns(store, txn_ids: list[str]) -> None:
    now = utcnow()
    with store.writer() as session:
        for txn_id in txn_ids:
            values = {"state": "discovered", "lookup_first": False}
            luna_txns.insert_txn(session, txn_id=txn_id, currency="XAF", origin="app", now=now, values=values)


def _claim(session, *, txn_id: str | None = None, limit: int = 10) -> list[str]:
    now = utcnow()
    lease = now + timedelta(minutes=5)
    claimed = luna_txns.claim_sends(
        session, owner=OWNER, now=now, lease_until=lease, due_before=now, limit=limit, txn_id=txn_id, **SEND
    )
    return [item.txn_id for item in claimed]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_locking_every_txn_skips_a_row_a_push_holds_and_reports_it_in_flight(store) -> None:
    _add_txns(store, ["T1", "T2", "T3"])
    with store.writer() as session:
        assert _claim(session, limit=2) == ["T1", "T2"]
    with store.writer() as push:
        assert _claim(push, txn_id="T3") == ["T3"]  # a claim under way: T3 is locked, its lease not committed
        with store.writer() as operator:
            operator.execute(text("SET LOCAL lock_timeout = '5s'"))  # the old plain FOR UPDATE waited here
            in_flight = luna_admin.leased(operator, now=utcnow(), lock=True)
            assert [row["txn_id"] for row in in_flight] == ["T1", "T2", "T3"]
        # the push goes on locking its rows (all of them, in id order): the operator holds none any more
        assert luna_txns.renew_claims(push, owner=OWNER, lease_until=utcnow() + timedelta(minutes=5)) == 3
