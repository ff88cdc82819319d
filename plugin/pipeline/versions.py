"""Last-writer-wins: apply a change to an item only if it is not older than the last one applied.

Every change carries a version in ms: a document's own `updated` time (or, for a document
fetched over REST, at least the time of the event that asked for it), and a deletion the time of
its event. The item's `ItemVersion` row is locked while the change is applied, so two workers on
the same item serialise and the newer version wins whatever order they run in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Insert, Table, and_, case, or_
from sqlalchemy.orm import Session

from connect.db import Database, utcnow
from plugin.content.model import ItemDoc
from plugin.matching import precompute, service, store
from plugin.models.content import Item
from plugin.models.pipeline import ItemVersion
from plugin.services import questions

# Items whose stored suggestions are refreshed after one item changes: its nearest neighbours,
# whose top lists it most likely enters or leaves (similarity is symmetric). Bounded: each refresh
# costs a ranking query, and one edit must never rescan a site.
FANOUT = 5


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime."""
    return int(moment.timestamp() * 1000)


def apply_doc(
    session: Session, tenant_id: int, doc: ItemDoc, version_ms: int, refresh: bool = True
) -> int | None:
    """Store the document if its version is not older than the item's last; returns the item id."""
    stored = apply_changes(session, tenant_id, [Change(doc.source, doc.key, version_ms, doc)])
    if stored and refresh:
        refresh_around(session, tenant_id, stored[0])
    return stored[0] if stored else None


def _neighbours(session: Session, tenant_id: int, item: Item) -> list[int]:
    """The item's nearest items: its stored reuse suggestions, else a fresh ranking."""
    stored = precompute.stored_suggestions(session, tenant_id, item.id)
    found = (
        stored["reuse"] if stored else service.suggest_reuse(session, tenant_id, item, limit=FANOUT)
    )
    return [s.item_id for s in found if s.item_id != item.id][:FANOUT]


def _refresh_one(sessions: Callable[[], AbstractContextManager[Session]], tenant_id: int,
                 item_id: int, neighbours: bool) -> list[int] | None:
    """Refresh one item in a session of `sessions()`; its nearest neighbours (when asked), or None
    when it is gone."""
    with sessions() as session:
        similar = precompute.refresh_suggestions(session, tenant_id, item_id)
        if similar is None:
            return None
        return [i for i in similar if i != item_id][:FANOUT] if neighbours else []


def _refresh_each(sessions: Callable[[], AbstractContextManager[Session]], tenant_id: int,
                  item_id: int) -> bool:
    """Refresh the item, then its nearest neighbours, each in a session of `sessions()`."""
    neighbours = _refresh_one(sessions, tenant_id, item_id, neighbours=True)
    for neighbour_id in neighbours or []:
        _refresh_one(sessions, tenant_id, neighbour_id, neighbours=False)
    return neighbours is not None


def refresh_around(session: Session, tenant_id: int, item_id: int) -> None:
    """Refresh the item's stored suggestions, then those of its nearest neighbours (bounded)."""
    _refresh_each(lambda: nullcontext(session), tenant_id, item_id)


def refresh_one(db: Database, tenant_id: int, item_id: int,
                neighbours: bool = True) -> list[int] | None:
    """Refresh the item's stored suggestions alone; its nearest neighbours, or None when gone.

    The caller refreshes the neighbours later: what changed is what its viewers wait for.
    """
    return _refresh_one(db.session, tenant_id, item_id, neighbours)


def refresh_around_apart(db: Database, tenant_id: int, item_id: int) -> bool:
    """`refresh_around` with one transaction per refreshed item; False when the item is gone.

    Why: each refresh ranks before it writes, so on SQLite the write lock is held for one write
    at a time rather than across six rankings, and webhooks are never kept waiting long.
    """
    return _refresh_each(db.session, tenant_id, item_id)


@dataclass(frozen=True)
class Change:
    """One versioned change to an item: a document to store, or (doc None) a deletion."""

    source: str
    key: str
    version_ms: int
    doc: ItemDoc | None = None


_VERSIONS = cast(Table, ItemVersion.__table__)


@functools.cache
def _advance(dialect: str) -> Insert:
    """The upsert that advances version rows, built once per kind of database (see below)."""
    insert = store.insert_for(dialect, _VERSIONS)
    new, old = insert.excluded, _VERSIONS.c
    # A tie advances unless it would bring a deleted item back: see `_wins`.
    newer = or_(new.version_ms > old.version_ms,
                and_(new.version_ms == old.version_ms, or_(new.deleted, ~old.deleted)))
    return insert.on_conflict_do_update(
        index_elements=["tenant_id", "source", "key"],
        set_={name: case((newer, new[name]), else_=old[name])
              for name in ("version_ms", "deleted", "updated_at")},
    ).returning(old.source, old.key, old.version_ms, old.deleted)


def _advance_versions(
    session: Session, tenant_id: int, newest: dict[tuple[str, str], Change]
) -> set[tuple[str, str]]:
    """Advance each item's version row to its change unless the row is newer; returns those advanced.

    One upsert creates the missing rows and locks the existing ones in (source, key) order, the
    same order in every worker, so two workers whose batches share items wait for each other
    instead of deadlocking (locking the existing rows first and inserting the missing ones after
    took locks out of order). A tie advances, but for a document over a deletion (`_wins`). The rows are
    bound to a statement built once (SQLAlchemy writes them as one multi-row statement): a
    statement built around each batch's values cost more than the database's work.
    """
    now = utcnow()
    rows = [{"tenant_id": tenant_id, "source": s, "key": k, "version_ms": c.version_ms,
             "deleted": c.doc is None, "updated_at": now}
            for (s, k), c in sorted(newest.items())]
    connection = session.connection()
    result = connection.execute(_advance(connection.dialect.name), rows)
    return {(s, k) for s, k, version, deleted in result
            if (version, bool(deleted)) == (newest[(s, k)].version_ms, newest[(s, k)].doc is None)}


def _wins(change: Change, last: Change) -> bool:
    """Whether `change` replaces `last`: newer, or as new and not a document over a deletion.

    Why a deletion wins a tie: a re-read is versioned by the item's `updated` time, which can
    equal its deletion's, and which of the two was applied last depended on delivery order. A
    restore is newer than the deletion, so it still brings the item back.
    """
    if change.version_ms != last.version_ms:
        return change.version_ms > last.version_ms
    return change.doc is None or last.doc is not None


def _newest(changes: Iterable[Change]) -> dict[tuple[str, str], Change]:
    """Per item, the change sequential application would leave (`_wins`)."""
    newest: dict[tuple[str, str], Change] = {}
    for change in changes:
        ref = (change.source, change.key)
        if ref not in newest or _wins(change, newest[ref]):
            newest[ref] = change
    return newest


def apply_changes(session: Session, tenant_id: int, changes: Iterable[Change],
                  affected: list[int] | None = None) -> list[int]:
    """Apply many changes at once, with the outcome of applying them one by one in order.

    Each item's newest change is applied if it is not older than the item's last version; the
    documents are stored with one `store_items` call. Returns the ids of the stored items (their
    suggestions are the caller's to refresh). A deletion's neighbours, whose suggestions may show
    the deleted item, are appended to `affected` for the caller to refresh after its commit, or,
    without `affected`, refreshed here.
    """
    newest = _newest(changes)
    if not newest:
        return []
    advanced = _advance_versions(session, tenant_id, newest)
    docs: list[ItemDoc] = []
    deletions: list[Change] = []
    for ref, change in newest.items():
        if ref not in advanced:
            continue
        if change.doc is None:
            deletions.append(change)
        else:
            docs.append(change.doc)
    stored = store.store_items(session, tenant_id, docs)
    questions.answered_in(session, tenant_id, docs)
    for change in deletions:
        neighbours = _delete(session, tenant_id, change.source, change.key)
        if affected is None:
            for item_id in neighbours:
                precompute.refresh_suggestions(session, tenant_id, item_id)
        else:
            affected.extend(neighbours)
    return stored


def _delete(session: Session, tenant_id: int, source: str, key: str) -> list[int]:
    """Delete a stored item; returns the neighbours whose suggestions it was likely among."""
    item = store.get_item(session, tenant_id, source, key)
    neighbours = _neighbours(session, tenant_id, item) if item is not None else []
    store.delete_item(session, tenant_id, source, key)
    return neighbours


def apply_docs(session: Session, tenant_id: int, docs: list[ItemDoc]) -> int:
    """Store a page of documents (backfill) under the same rule, without refreshing suggestions.

    Versions are read and created for the whole page at once; returns how many were applied.
    """
    return len(apply_changes(
        session, tenant_id, (Change(d.source, d.key, to_ms(d.updated), d) for d in docs)))
