"""The search engine: Tantivy indexes derived from the database, one per shard, shared by its sites.

`site_view` is how ranking reads a site's part of its shard; `indexer` is the shard's one
writer; `catch_up` brings local shards level with the database now (replays, the CLI, tests).
"""
from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from connect.db import Database
from plugin.config import DEFAULT_SHARD, Settings
from plugin.models.content import IndexProgress, IndexState, Item
from plugin.search.indexer import Indexer, ShardLock, local_shards, pending
from plugin.search.shard import ShardUnavailable, shard_at
from plugin.search.site import SiteView

__all__ = ["FRESH_WAIT", "Elsewhere", "NotIndexed", "SiteView", "bind", "catch_up", "indexed_through", "site_view",
           "writing"]

WAIT_POLL = 0.05
# How long a refresh of stored suggestions waits for the index to hold the changes it follows:
# the indexer commits within a second; past this, suggestions are ranked on what is indexed.
FRESH_WAIT = 10.0
_bound: weakref.WeakKeyDictionary[Engine, Settings] = weakref.WeakKeyDictionary()


def bind(db: Database, settings: Settings) -> None:
    """Use `settings` (where the index lives, which shards are here) for everything done through `db`.

    Unbound databases use the environment's settings; a replay binds its throwaway database to a
    throwaway index directory.
    """
    _bound[db.engine] = settings


def settings_for(session: Session) -> Settings:
    """The search settings of the session's database."""
    bind_ = session.get_bind()
    return _bound.get(getattr(bind_, "engine", bind_)) or Settings.from_env()  # type: ignore[arg-type]


def settings_for_db(db: Database) -> Settings:
    """The search settings of a database (bound, else the environment's)."""
    return _bound.get(db.engine) or Settings.from_env()


class NotIndexed(Exception):
    """The site's documents are not in an index this process can read (yet)."""


class Elsewhere(NotIndexed):
    """The site's shard is on another machine: its workers rank for it (`plugin.search.remote`)."""

    def __init__(self, tenant_id: int, shard: str) -> None:
        super().__init__(tenant_id, shard)
        self.shard = shard


def _progress(session: Session, tenant_id: int) -> tuple[str, str | None, int, int | None]:
    row = session.execute(select(IndexProgress.shard, IndexProgress.index_id, IndexProgress.seq,
                                 IndexProgress.site).where(IndexProgress.tenant_id == tenant_id)).first()
    return (row[0], row[1], row[2], row[3]) if row else (DEFAULT_SHARD, None, -1, None)


def site_view(session: Session, tenant_id: int) -> SiteView:
    """The site's view of the latest commit of its shard; NotIndexed when it has none here."""
    settings = settings_for(session)
    shard_name, index_id, _, site = _progress(session, tenant_id)
    if shard_name not in settings.shards:
        raise Elsewhere(tenant_id, shard_name)
    if index_id is None or site is None:
        raise NotIndexed(tenant_id)
    try:
        searcher, identity = shard_at(settings.index_dir, shard_name).searcher()
    except ShardUnavailable as exc:
        raise NotIndexed(tenant_id) from exc
    if identity != index_id:  # the shard was rebuilt and has not reached this site yet
        raise NotIndexed(tenant_id)
    indexed = session.execute(select(IndexProgress.tenant_id).where(
        IndexProgress.site == site, IndexProgress.shard == shard_name, IndexProgress.index_id == identity))
    return SiteView(searcher, identity, site, tuple(sorted(indexed.scalars())))


def indexed_through(session: Session, tenant_id: int) -> int | None:
    """The site's change sequence its readable index has applied, or None when it has none."""
    settings = settings_for(session)
    shard_name, index_id, seq, _ = _progress(session, tenant_id)
    if shard_name not in settings.shards or index_id is None:
        return None
    try:
        identity = shard_at(settings.index_dir, shard_name).reader()[1]
    except ShardUnavailable:
        return None
    return seq if identity == index_id else None


def current_seq(session: Session, tenant_id: int) -> int:
    return session.scalar(select(IndexState.seq).where(IndexState.tenant_id == tenant_id)) or 0


def _changed_through(session: Session, tenant_id: int, items: Sequence[int]) -> int:
    """The site's change sequence as of the latest change to these items (0: none stored)."""
    return session.scalar(select(func.max(Item.index_seq)).where(
        Item.tenant_id == tenant_id, Item.id.in_(list(items)))) or 0


def catch_up(db: Database, tenant_id: int | None = None, timeout: float = 120.0,
             items: Sequence[int] = ()) -> bool:
    """Bring the local shards (or the site's shard) level with what the database has committed now.

    Writes a shard itself when no other process does; otherwise waits for the process that does
    (a worker's indexer thread). False on timeout, or when the site's shard is not on this machine.
    `items`: only as far as the site's changes to these items (what ranking them follows); while
    a burst goes on, waiting for every later change too left a refresher idle a fifth of its time.
    """
    settings = settings_for_db(db)
    deadline = time.monotonic() + timeout
    shards = local_shards(settings)
    target = None
    if tenant_id is not None:
        with db.session() as session:
            name = _progress(session, tenant_id)[0]
            target = _changed_through(session, tenant_id, items) if items else current_seq(session, tenant_id)
        shards = [shard for shard in shards if shard.name == name]
        if not shards:
            return False
    for shard in shards:
        lock = ShardLock(settings.index_dir, shard.name)
        if lock.acquire():
            indexer = Indexer(db, shard, lock)
            try:
                if not _write_all(indexer, deadline):
                    return False
            finally:
                indexer.close()
        elif not _wait_for_writer(db, shard.name, tenant_id, target, deadline):
            return False
        shard.reload()
    return True


def _write_all(indexer: Indexer, deadline: float = math.inf) -> bool:
    """Apply every pending change, then finish the merges those commits started; False on timeout.

    A writer dropped with merges under way abandons them: a process that caught up once per
    change would leave a segment per change behind, and every later query and commit pays for
    each of them.
    """
    while indexer.step():
        if time.monotonic() > deadline:
            return False
    indexer.settle()
    return True


@contextmanager
def writing(db: Database) -> Iterator[Callable[[], None]]:
    """Hold the writers of the local shards for a while (a replay); yields `sync`, which applies
    everything committed so far and makes it visible to this process.

    Like a worker's long-lived indexer, segments get merged, which drops the replaced versions of
    updated items; here each sync also waits for the merges it started, so a replay's segments,
    and so its figures, are the same on every run (merges in the background finish whenever
    the machine lets them).
    """
    settings = settings_for_db(db)
    indexers = []
    try:
        for shard in local_shards(settings):
            lock = ShardLock(settings.index_dir, shard.name)
            lock.acquire(wait=True)
            indexers.append(Indexer(db, shard, lock))

        def sync() -> None:
            for indexer in indexers:
                _write_all(indexer)
                indexer.shard.reload()

        yield sync
    finally:
        for indexer in indexers:
            indexer.close()


def _wait_for_writer(db: Database, shard_name: str, tenant_id: int | None, target: int | None,
                     deadline: float) -> bool:
    """Wait until the process writing the shard has applied the site's changes up to `target`
    (without a site: every change the shard's sites had pending)."""
    settings = settings_for_db(db)
    shard = shard_at(settings.index_dir, shard_name)
    while True:
        with db.session() as session:
            if tenant_id is not None and target is not None:
                reached = indexed_through(session, tenant_id)
                if reached is not None and reached >= target:
                    return True
            else:
                try:
                    identity = shard.reader()[1]
                except ShardUnavailable:
                    identity = ""
                if identity and not pending(session, shard_name, identity, limit=1):
                    return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(WAIT_POLL)
