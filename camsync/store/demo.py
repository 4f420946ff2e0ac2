"""Read-only counts the demo shows: SmartUp rows in the store, and the LUNA work order each txn got."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from camsync.store.luna import LunaTxn
from camsync.store.smartup import Order, OrderLine, Product, ProductPrice

SMARTUP_TABLES = {"products": Product, "product prices": ProductPrice, "orders": Order, "order lines": OrderLine}


def count_smartup_rows(session: Session) -> dict[str, int]:
    """How many products, prices, orders and order lines the store holds."""
    return {
        name: int(session.scalar(select(func.count()).select_from(model)) or 0)
        for name, model in SMARTUP_TABLES.items()
    }


def txn_work_orders(session: Session) -> dict[str, tuple[str, str | None]]:
    """Every txn the push knows: txn_id -> (state, LUNA work order id or None)."""
    rows = session.execute(select(LunaTxn.txn_id, LunaTxn.state, LunaTxn.work_order_id).order_by(LunaTxn.id))
    return {txn_id: (state, work_order_id) for txn_id, state, work_order_id in rows}
