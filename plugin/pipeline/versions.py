"""Last-writer-wins: apply a change to an item only if it is not older than the last one applied.

Every change carries a version in ms: a document's own `updated` time (or, for a document
fetched over REST, at least the time of the event that asked for it), and a deletion the time of
its event. The item's `ItemVersion` row is locked while the change is applied, so two workers on
the same item serialise and the newer version wins whatever order they run in.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin.content.model import ItemDoc
from plugin.matching import precompute, service, store
from plugin.models.content import Item
from plugin.models.pipeline import ItemVersion

# Items whose stored suggestions are refreshed after one item changes: its nearest neighbours,
# whose top lists it most likely enters or leaves (similarity is symmetric). Bounded: each refresh
# costs a ranking query, and one edit must never rescan a site.
FANOUT = 5


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime."""
    return int(moment.timestamp() * 1000)


def _locked_version(session: Session, tenant_id: int, source: str, key: str) -> ItemVersion:
    query = select(ItemVersion).where(
        ItemVersion.tenant_id == tenant_id, ItemVersion.source == source, ItemVersion.key == key
    )
    row = session.scalars(query.with_for_update()).first()
    if row is not None:
        return row
    try:
        with session.begin_nested():
            session.add(ItemVersion(tenant_id=tenant_id, source=source, key=key, version_ms=-1))
    except IntegrityError:
        pass  # another worker created it first; lock theirs
    return session.scalars(query.with_for_update()).one()


def apply_doc(
    session: Session, tenant_id: int, doc: ItemDoc, version_ms: int, refresh: bool = True
) -> int | None:
    """Store the document if its version is not older than the item's last; returns the item id."""
    row = _locked_version(session, tenant_id, doc.source, doc.key)
    if version_ms < row.version_ms:
        return None
    row.version_ms, row.deleted = version_ms, False
    item = store.upsert_item(session, tenant_id, doc)
    if refresh:
        refresh_around(session, tenant_id, item.id)
    return item.id


def apply_delete(session: Session, tenant_id: int, source: str, key: str, version_ms: int) -> bool:
    """Delete the item (leaving a tombstone) unless a newer version was already applied."""
    row = _locked_version(session, tenant_id, source, key)
    if version_ms < row.version_ms:
        return False
    item = store.get_item(session, tenant_id, source, key)
    neighbours = _neighbours(session, tenant_id, item) if item is not None else []
    row.version_ms, row.deleted = version_ms, True
    store.delete_item(session, tenant_id, source, key)
    for item_id in neighbours:
        precompute.refresh_suggestions(session, tenant_id, item_id)
    return True


def _neighbours(session: Session, tenant_id: int, item: Item) -> list[int]:
    """The item's nearest items: its stored reuse suggestions, else a fresh ranking."""
    stored = precompute.stored_suggestions(session, tenant_id, item.id)
    found = (
        stored["reuse"] if stored else service.suggest_reuse(session, tenant_id, item, limit=FANOUT)
    )
    return [s.item_id for s in found if s.item_id != item.id][:FANOUT]


def refresh_around(session: Session, tenant_id: int, item_id: int) -> None:
    """Refresh the item's stored suggestions, then those of its nearest neighbours (bounded)."""
    precompute.refresh_suggestions(session, tenant_id, item_id)
    item = session.get(Item, item_id)
    for neighbour_id in _neighbours(session, tenant_id, item) if item is not None else []:
        precompute.refresh_suggestions(session, tenant_id, neighbour_id)


def apply_docs(session: Session, tenant_id: int, docs: list[ItemDoc]) -> int:
    """Store a page of documents (backfill) under the same rule, without refreshing suggestions.

    Versions are read and created for the whole page at once; returns how many were applied.
    """
    by_key: dict[tuple[str, str], ItemDoc] = {(d.source, d.key): d for d in docs}
    if not by_key:
        return 0
    rows = {
        (r.source, r.key): r
        for r in session.scalars(
            select(ItemVersion)
            .where(ItemVersion.tenant_id == tenant_id, ItemVersion.key.in_([k for _, k in by_key]))
            .with_for_update()
        )
    }
    fresh: list[ItemDoc] = []
    for ref, doc in by_key.items():
        row = rows.get(ref)
        if row is None:
            row = ItemVersion(tenant_id=tenant_id, source=doc.source, key=doc.key, version_ms=-1)
            session.add(row)
        version = to_ms(doc.updated)
        if version >= row.version_ms:
            row.version_ms, row.deleted = version, False
            fresh.append(doc)
    store.upsert_items(session, tenant_id, fresh)
    return len(fresh)
