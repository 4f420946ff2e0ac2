"""Writes and reads of the SmartUp catalogue tables: product groups with their values, product classifications,
the stock snapshot, and the limits the server announced.

Product groups are change-aware upserts like the products (`content_hash` of the item as sent); a written group's
values are replaced in the same transaction. A product's classifications are replaced with the product, inside
the product write. A stock snapshot replaces the whole of `stock_balances` in one transaction (`bulk.replace_snapshot`:
staged, then the removed rows deleted, the others updated in place and the new ones inserted; on PostgreSQL the
table keeps free room in its pages so that those updates stay on their page and leave the indexes alone):
readers see the old snapshot until it commits, and a snapshot that fails half-way writes nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import column, delete, func, select, table, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from camsync.store import bulk
from camsync.store.smartup_catalog import (
    CLASSIFICATION_COLUMNS,
    GROUP_COLUMNS,
    STOCK_COLUMNS,
    TYPE_COLUMNS,
    ProductClassification,
    ProductGroup,
    ProductGroupType,
    SmartupServerLimit,
    StockBalance,
)

ID_CHUNK = 5000

GROUPS = bulk.Upsert(
    model=ProductGroup,
    columns=GROUP_COLUMNS,
    key=("product_group_id",),
    conflict=("product_group_id",),
    update=tuple(c for c in GROUP_COLUMNS if c != "created_at"),
    changed="product_groups.content_hash IS DISTINCT FROM excluded.content_hash OR product_groups.missing_upstream",
    reset={"missing_upstream": "false", "missing_since": "NULL"},
)


def known_groups(session: Session) -> dict[str, tuple[str, bool]]:
    """product_group_id → (content_hash, missing_upstream) of every stored product group."""
    query = select(ProductGroup.product_group_id, ProductGroup.content_hash, ProductGroup.missing_upstream)
    return {key: (digest, bool(missing)) for key, digest, missing in session.execute(query)}


def upsert_groups(
    session: Session,
    *,
    groups: Sequence[dict[str, Any]],
    types: Mapping[str, Sequence[tuple[Any, ...]]],
    now: datetime,
    existing: Collection[str],
) -> tuple[int, int, int]:
    """Insert new product groups and rewrite changed ones; a written group's values are replaced by
    `types[product_group_id]` (tuples in the order of `TYPE_COLUMNS`). Returns (inserted, updated, values written).
    The group dicts are the write's own: their timestamps are set in place."""
    if not groups:
        return 0, 0, 0
    for row in groups:
        row["created_at"] = row["updated_at"] = now
    written = bulk.upsert(session, GROUPS, rows=groups, existing=existing)
    inserted = sum(1 for _, _, was_insert in written if was_insert)
    ids = [key for key, _, _ in written]
    for chunk in bulk.chunks(ids, ID_CHUNK):
        session.execute(
            delete(ProductGroupType)
            .where(ProductGroupType.product_group_id.in_(chunk))
            .execution_options(synchronize_session=False)
        )
    values = [value for key in ids for value in types.get(key, ())]
    if values:
        bulk.insert_tuples(session, ProductGroupType, columns=TYPE_COLUMNS, rows=values)
    return inserted, len(written) - inserted, len(values)


def flag_missing_groups(session: Session, *, seen_ids: Collection[str], now: datetime) -> int:
    """Flag as missing_upstream every product group the export no longer lists; returns how many."""
    with bulk.temporary_keys(session, name="seen_groups", key="product_group_id", length=64, values=seen_ids):
        seen = table("seen_groups", column("product_group_id"))
        statement = (
            update(ProductGroup)
            .where(
                ProductGroup.missing_upstream.is_(False),
                ~select(seen.c.product_group_id)
                .where(seen.c.product_group_id == ProductGroup.product_group_id)
                .exists(),
            )
            .values(missing_upstream=True, missing_since=now)
            .execution_options(synchronize_session=False)
        )
        flagged = cast(CursorResult[Any], session.execute(statement)).rowcount
    return int(flagged)


def replace_classifications(session: Session, *, stale: Collection[str], rows: Iterable[tuple[Any, ...]]) -> None:
    """Delete the classifications of the products `stale` (SmartUp product ids being rewritten), then insert
    `rows` (tuples in the order of `CLASSIFICATION_COLUMNS`)."""
    for chunk in bulk.chunks(list(stale), ID_CHUNK):
        session.execute(
            delete(ProductClassification)
            .where(ProductClassification.product_id.in_(chunk))
            .execution_options(synchronize_session=False)
        )
    bulk.insert_tuples(session, ProductClassification, columns=CLASSIFICATION_COLUMNS, rows=rows)


def replace_stock(
    session: Session, *, rows: Sequence[tuple[Any, ...]], now: datetime, apply: bool = True
) -> bulk.SnapshotChanges:
    """Replace the stock snapshot by `rows` (tuples in the order of `STOCK_COLUMNS`, one per warehouse and product),
    every row stamped `synced_at=now`; returns how the stored rows changed. `apply=False` (a dry run) only counts."""
    return bulk.replace_snapshot(
        session,
        StockBalance,
        key=("warehouse_id", "product_id"),
        columns=STOCK_COLUMNS,
        rows=rows,
        constants={"synced_at": now},
        apply=apply,
    )


def server_limit(session: Session, *, name: str) -> int | None:
    """The value of a limit the server announced last, or None when none was recorded."""
    value = session.scalar(select(SmartupServerLimit.value).where(SmartupServerLimit.name == name))
    return int(value) if value is not None else None


def remember_server_limit(session: Session, *, name: str, value: int, now: datetime) -> None:
    """Record (or replace) a limit the server announced."""
    stored = session.get(SmartupServerLimit, name)
    if stored is None:
        session.add(SmartupServerLimit(name=name, value=value, seen_at=now))
    else:
        stored.value, stored.seen_at = value, now


def catalogue_counts(session: Session) -> dict[str, int]:
    """How many rows each catalogue table holds."""
    models = {
        "product groups": ProductGroup,
        "group values": ProductGroupType,
        "classifications": ProductClassification,
        "stock rows": StockBalance,
    }
    return {name: int(session.scalar(select(func.count()).select_from(model)) or 0) for name, model in models.items()}
