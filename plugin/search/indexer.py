"""A shard's writer: applies the database's committed item changes to the shard's index.

The database is the truth. Every change to an item bumps its tenant's change sequence (an item
carries the sequence of its last change; a deletion leaves a tombstone). For each site of the
shard, the indexer reads what changed after the sequence the index has applied, writes it,
commits, and only then records the new sequence (`IndexProgress`). A crash between the commit
and the record replays the same changes, which delete-then-add per item makes harmless.

Sites take turns, the least recently served first, each step at most `TENANT_BATCH` items of
one site: a site's backfill of a million issues never holds another site's fresh changes back
by more than a step.
"""
from __future__ import annotations

import ctypes
import fcntl
import logging
import os
import shutil
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import tantivy
from sqlalchemy import Text, bindparam, cast, delete, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from connect.db import Database
from plugin.config import DEFAULT_SHARD, Settings
from plugin.matching.roles import strongest
from plugin.matching.similarity import statement_norms
from plugin.matching.store import dialect_insert
from plugin.models.content import Contribution, IndexProgress, IndexState, IndexTombstone, Item
from plugin.search.schema import Entry, document
from plugin.search.shard import WRITER_HEAP, Shard, ShardUnavailable, _read_identity, shard_at
from plugin.search.site import SiteView
from plugin.search.sites import site_keys

log = logging.getLogger(__name__)
_LIBC = ctypes.CDLL(None)  # this process's C library: malloc_trim where it is glibc

TENANT_BATCH = 5_000  # items of one site per step (finished to a whole change sequence)
STEP_ITEMS = 20_000  # items per step over all sites: one commit each
STEP_TENANTS = 500
READ_CHUNK = 1_000
TRIM_AFTER = 1_000  # items a step wrote from which it hands freed memory back to the system
IDLE_SECONDS = 0.25  # between two looks at the database when nothing was pending
STANDBY_SECONDS = 2.0  # between two tries to take over a shard another process writes
SWEEP_SECONDS = 600.0  # between two looks for documents of sites that left the shard


@dataclass
class Pending:
    """A site with changes its shard's index has not applied."""

    tenant_id: int
    seq: int  # the site's change sequence when read
    applied: int  # the sequence the index has applied (-1: nothing)
    rebuild: bool  # the index has none of the site's documents it can trust
    site: int | None = None  # the key its documents were indexed under


@dataclass
class Added:
    """The items a step added to one site so far, and how many of them hold each statement term.

    The norms of a step's later items count its earlier ones: counting only a chunk's own items
    left a step of many chunks with norms its next steps had to renew.
    """

    items: int = 0
    holding: Counter[str] = field(default_factory=Counter)

    def hold(self, terms: list[str], held: np.ndarray) -> np.ndarray:
        """How many items added so far hold each term, with `held` more holding them now."""
        before = np.fromiter((self.holding[t] for t in terms), dtype=np.float64, count=len(terms))
        self.holding.update(dict(zip(terms, held.tolist(), strict=True)))
        return before + held


def _pending_query(limit: int) -> Any:
    shard = func.coalesce(IndexProgress.shard, DEFAULT_SHARD)
    return (select(IndexState.tenant_id, IndexState.seq, IndexProgress.index_id, IndexProgress.seq,
                   IndexProgress.site)
            .outerjoin(IndexProgress, IndexProgress.tenant_id == IndexState.tenant_id)
            .where(shard == bindparam("shard"),
                   or_(IndexProgress.index_id.is_(None), IndexProgress.index_id != bindparam("identity"),
                       IndexState.seq > IndexProgress.seq))
            .order_by(IndexProgress.updated_at.is_not(None), IndexProgress.updated_at, IndexState.tenant_id)
            .limit(limit))


def pending(session: Session, shard: str, identity: str, limit: int = STEP_TENANTS) -> list[Pending]:
    """The shard's sites whose changes its index (of this identity) has not applied, least recently served first."""
    rows = session.execute(_pending_query(limit), {"shard": shard, "identity": identity})
    out = []
    for tenant_id, seq, index_id, applied, site in rows:
        rebuild = index_id != identity
        out.append(Pending(tenant_id, seq or 0, -1 if rebuild or applied is None else applied, rebuild, site))
    return out


_ITEMS = (select(Item.id, Item.index_seq, func.coalesce(Item.project, Item.space), cast(Item.terms, Text))
          .where(Item.tenant_id == bindparam("tenant"), Item.index_seq >= bindparam("seq"),
                 Item.index_seq <= bindparam("through"),
                 or_(Item.index_seq > bindparam("seq"), Item.id > bindparam("after")))
          .order_by(Item.index_seq, Item.id).limit(bindparam("limit")))
_BY_ID = (select(Item.id, Item.index_seq, func.coalesce(Item.project, Item.space), cast(Item.terms, Text))
          .where((Item.tenant_id + 0) == bindparam("tenant"), Item.id.in_(bindparam("ids", expanding=True))))
_PEOPLE = select(Contribution.item_id, Contribution.account_id, Contribution.role).where(
    Contribution.item_id.in_(bindparam("ids", expanding=True)))
_TOMBSTONES = select(IndexTombstone.item_id).where(
    IndexTombstone.tenant_id == bindparam("tenant"), IndexTombstone.seq > bindparam("low"),
    IndexTombstone.seq <= bindparam("high"))


def _changed(connection: Connection, tenant_id: int, after: int, through: int) -> Iterator[Sequence[Any]]:
    """The site's items changed after sequence `after` up to `through`, in (sequence, id) order,
    a chunk at a time."""
    # No id of sequence `after` (`id > NULL` holds for none): the index holds all of it, a step
    # stopping only between two sequences. Starting at id 0 wrote its items again at every step:
    # a webhook's update wrote the previous update's items too, and a backfill each page twice.
    # Up to `through`, the sequence the step started from: each chunk is read anew, and items
    # stored since would be written now and again by the next step, which starts from `through`.
    seq, last = after, None
    while True:
        rows = connection.execute(_ITEMS, {"tenant": tenant_id, "seq": seq, "through": through,
                                           "after": last, "limit": READ_CHUNK}).all()
        if not rows:
            return
        yield rows
        seq, last = rows[-1][1], rows[-1][0]


def _trim_heap() -> None:
    """Hand the heap's free memory back to the system (glibc; elsewhere nothing happens).

    Why: a big step reads thousands of items and their term vectors and frees them again, but
    glibc keeps freed pages in its heaps, scattered between live blocks; step after step of a
    backfill of many sites the indexer's own memory only grew. malloc_trim releases free pages
    in the middle of the heaps too. Small steps (a site's next comment) skip it.
    """
    trim = getattr(_LIBC, "malloc_trim", None)
    if trim is not None:
        trim(0)


def _people(connection: Connection, ids: list[int]) -> dict[int, dict[str, str]]:
    """Who worked on each item: account -> their strongest role there."""
    roles: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for item_id, account, role in connection.execute(_PEOPLE, {"ids": ids}):
        roles[item_id][account].append(role)
    return {item_id: {a: strongest(r) for a, r in people.items()} for item_id, people in roles.items()}


class LockLost(Exception):
    """This process no longer holds the shard's lock (its file was deleted): it must not write."""


class ShardLock:
    """The right to write a shard on this machine: a flock beside its index, dropped when the process dies."""

    def __init__(self, root: Path, name: str) -> None:
        self.path = root / f"{name}.lock"
        self._fd: int | None = None

    def acquire(self, wait: bool = False) -> bool:
        """Take the lock (waiting for it, or not); False when another holder has it."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def held(self) -> bool:
        """Whether this process still holds the lock: its file may have been deleted (the whole
        index directory removed), and then another process can take a new one at that path."""
        if self._fd is None:
            return False
        try:
            return os.fstat(self._fd).st_ino == os.stat(self.path).st_ino
        except OSError:
            return False

    def release(self) -> None:
        """Let another process write the shard."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


class Indexer:
    """The one writer of a shard, in the process that holds its lock."""

    def __init__(self, db: Database, shard: Shard, lock: ShardLock) -> None:
        self.db, self.shard, self.lock = db, shard, lock
        self.identity: str | None = None
        self._writer: tantivy.IndexWriter | None = None
        self._swept = 0.0
        self._renorming: set[int] = set()  # sites that grew since their norms were last checked

    def _open(self) -> tantivy.IndexWriter:
        """The shard's writer, the index created anew when it is missing or unreadable."""
        if self._writer is not None and _read_identity(self.shard.path) == self.identity:
            return self._writer
        self._writer = None
        try:
            index, identity = self.shard.reader()
            index.searcher().search(tantivy.Query.all_query(), 1, count=False)  # a damaged index fails here
        except (ShardUnavailable, ValueError, OSError):
            if not self.lock.held():  # the directory went with its lock: whoever holds it now creates
                raise LockLost(self.shard.name) from None
            log.warning("shard %s has no readable index: creating it; its sites are indexed anew",
                        self.shard.name)
            identity = self.shard.create()
            index, _ = self.shard.reader()
        self.identity = identity
        self._writer = index.writer(heap_size=WRITER_HEAP, num_threads=1)
        return self._writer

    def step(self) -> int:
        """Apply one round of pending changes (a commit); how many items and deletions were written."""
        writer = self._open()
        assert self.identity is not None
        with self.db.session() as session:
            todo = pending(session, self.shard.name, self.identity)
            keys = site_keys(session, [tenant.tenant_id for tenant in todo]) if todo else {}
            done: list[tuple[int, int, int]] = []
            written = 0
            for tenant in todo:
                key = keys[tenant.tenant_id]
                if key != tenant.site:  # linked to (or unlinked from) its site's other product
                    tenant.rebuild, tenant.applied = True, -1
                count, reached = self._apply(session.connection(), writer, tenant, key)
                done.append((tenant.tenant_id, reached, key))
                written += count
                if written >= STEP_ITEMS:
                    break
            if written < STEP_ITEMS:
                written += self._renorm_some(session.connection(), writer, STEP_ITEMS - written)
        if not written:
            self._maybe_sweep(writer)
            return 0
        writer.commit()
        self.shard.reload()
        with self.db.session() as session:
            self._record(session, done)
        if written >= TRIM_AFTER:
            _trim_heap()
        return written

    def _apply(self, connection: Connection, writer: tantivy.IndexWriter, tenant: Pending,
               key: int) -> tuple[int, int]:
        """Write one tenant's next changes under its site's key; (items and deletions written,
        the sequence now applied)."""
        if tenant.rebuild:  # documents of an earlier stay here (or of another identity) are dropped
            writer.delete_documents_by_term("tenant", tenant.tenant_id)
        view, added = self._view(key), Added()
        written, reached, last_seq = 0, tenant.seq, tenant.applied
        for chunk in _changed(connection, tenant.tenant_id, tenant.applied, tenant.seq):
            # Past the batch, only the rest of the sequence under way: the next step starts after it.
            rows = chunk if written < TENANT_BATCH else [row for row in chunk if row[1] == last_seq]
            if rows:
                self._write(connection, writer, view, tenant.tenant_id, rows,
                            replace=not tenant.rebuild, added=added)
                last_seq = rows[-1][1]
                written += len(rows)
            if len(rows) < len(chunk):
                reached = last_seq
                break
        if not tenant.rebuild:
            gone = connection.execute(_TOMBSTONES, {"tenant": tenant.tenant_id, "low": tenant.applied,
                                                    "high": reached}).scalars().all()
            for item_id in gone:
                writer.delete_documents_by_term("id", item_id)
            written += len(gone)
        self._renorming.add(key)
        return written, max(reached, tenant.applied)

    def _view(self, site: int) -> SiteView:
        """The site as committed: the statistics new items' norms are computed with."""
        index, identity = self.shard.reader()
        return SiteView(index.searcher(), identity, site)

    def _write(self, connection: Connection, writer: tantivy.IndexWriter, view: SiteView, tenant_id: int,
               rows: Sequence[Any], replace: bool, added: Added | None) -> None:
        """Add the items of `rows` (id, seq, project, terms), replacing their earlier versions.

        Each norm takes the idf of the site as committed, with the items the step `added` so far
        and these; without `added` (norms renewed), the site as committed.
        """
        people = _people(connection, [row[0] for row in rows])
        vectors = [orjson.loads(row[3]) if row[3] else {} for row in rows]
        if added is None:
            norms = statement_norms(vectors, lambda terms, held: view.idf_with(terms, 0 * held, 0))
            basis = int(view.count)
        else:
            items = added.items + len(rows)
            norms = statement_norms(vectors, lambda terms, held: view.idf_with(terms, added.hold(terms, held), items))
            added.items = items
            basis = int(view.count) + items
        for (item_id, _, project, _), vector, norm in zip(rows, vectors, norms.tolist(), strict=False):
            if replace:
                writer.delete_documents_by_term("id", item_id)
            writer.add_document(document(Entry(item_id, tenant_id, view.site, project, vector,
                                               people.get(item_id, {}), norm, basis)))

    def _renorm_some(self, connection: Connection, writer: tantivy.IndexWriter, room: int) -> int:
        """Index again (with today's idf) items whose norm dates from when their site was a
        quarter of its size (`RENEW_GROWTH`).

        As a site grows, its idf grow: norms computed early would favour its early items. Each
        fourfold growth renews them, so the work stays proportional to the site's size; a site's
        turn takes at most `TENANT_BATCH` of them, the rest wait for the next steps.
        """
        written = 0
        for key in sorted(self._renorming):
            if written >= room:
                break
            view = self._view(key)
            stale = view.stale_norms(min(TENANT_BATCH, room - written))
            if not stale:
                self._renorming.discard(key)
            by_tenant: dict[int, list[int]] = defaultdict(list)
            for item_id, tenant_id in stale:
                by_tenant[tenant_id].append(item_id)
            for tenant_id, ids in by_tenant.items():
                for start in range(0, len(ids), READ_CHUNK):
                    rows = connection.execute(_BY_ID, {"tenant": tenant_id, "ids": ids[start:start + READ_CHUNK]}).all()
                    self._write(connection, writer, view, tenant_id, rows, replace=True, added=None)
            written += len(stale)
        return written

    def _record(self, session: Session, done: list[tuple[int, int, int]]) -> None:
        """Remember what the index now holds, unless a site moved to another shard meanwhile."""
        for tenant_id, reached, key in done:
            if self.shard.name == DEFAULT_SHARD:  # a site with no row yet lives in the default shard
                session.execute(dialect_insert(session, IndexProgress).values(
                    tenant_id=tenant_id, shard=DEFAULT_SHARD, index_id=None, seq=-1)
                    .on_conflict_do_nothing(index_elements=["tenant_id"]))
            session.execute(update(IndexProgress).where(
                IndexProgress.tenant_id == tenant_id, IndexProgress.shard == self.shard.name)
                .values(index_id=self.identity, seq=reached, site=key))
            # Tombstones the index has applied are needed by no one: a rebuild reads the items.
            session.execute(delete(IndexTombstone).where(IndexTombstone.tenant_id == tenant_id,
                                                         IndexTombstone.seq <= reached))

    def _maybe_sweep(self, writer: tantivy.IndexWriter) -> None:
        """Now and then, when idle: drop the documents of sites that left the shard or were
        purged, and index again the tenants whose site key changed (a product installed or
        purged beside them)."""
        now = time.monotonic()
        if now - self._swept < SWEEP_SECONDS:
            return
        self._swept = now
        self._relink()
        index, _ = self.shard.reader()
        found = index.searcher().aggregate(tantivy.Query.all_query(),
                                           {"t": {"terms": {"field": "tenant", "size": 1_000_000}}})
        present = {int(bucket["key"]) for bucket in found["t"]["buckets"]}
        if not present:
            return
        with self.db.session() as session:
            shard = func.coalesce(IndexProgress.shard, DEFAULT_SHARD)
            mine = set(session.scalars(select(IndexState.tenant_id)
                                       .outerjoin(IndexProgress, IndexProgress.tenant_id == IndexState.tenant_id)
                                       .where(shard == self.shard.name)))
        strays = present - mine
        for tenant_id in strays:
            writer.delete_documents_by_term("tenant", tenant_id)
        if strays:
            writer.commit()
            self.shard.reload()
            log.info("shard %s dropped the documents of %d site(s) it no longer holds", self.shard.name, len(strays))

    def _relink(self) -> None:
        with self.db.session() as session:
            rows = session.execute(select(IndexProgress.tenant_id, IndexProgress.site)
                                   .where(IndexProgress.shard == self.shard.name,
                                          IndexProgress.index_id.is_not(None))).all()
            keys = site_keys(session, [tenant_id for tenant_id, _ in rows])
            moved = [tenant_id for tenant_id, key in rows if keys[tenant_id] != key]
            if moved:
                session.execute(update(IndexProgress).where(IndexProgress.tenant_id.in_(moved))
                                .values(index_id=None))

    def settle(self) -> None:
        """Wait for the merges under way (the writer is then opened again for the next step)."""
        if self._writer is not None:
            self._writer.wait_merging_threads()
            self._writer = None

    def close(self) -> None:
        """Drop the writer (Tantivy's own lock) and the shard lock."""
        self._writer = None
        self.lock.release()


def local_shards(settings: Settings) -> list[Shard]:
    """The shards this machine holds (INFLOW_SHARDS under INFLOW_INDEX_DIR)."""
    return [shard_at(settings.index_dir, name) for name in settings.shards]


class _Wakeup:
    """Changes committed in this process: its indexer threads look now, not at their next poll."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._count = 0

    def notify(self) -> None:
        """End every wait under way (and the next one, from a mark taken before this)."""
        with self._changed:
            self._count += 1
            self._changed.notify_all()

    def seen(self) -> int:
        """A mark to wait from: a notice after it ends the wait."""
        with self._changed:
            return self._count

    def wait(self, seen: int, timeout: float) -> None:
        """Until a notice after `seen`, or `timeout` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: self._count != seen, timeout)


_WAKEUP = _Wakeup()


def wake() -> None:
    """Have this process's indexer threads look for committed changes now.

    Why: between two looks an idle indexer waits IDLE_SECONDS, and a changed item's refresh waits
    for its change to be indexed. A worker's drain stores changes in the process whose indexer
    thread writes the shard (one machine); elsewhere nothing waits here and the poll finds them.
    """
    _WAKEUP.notify()


def halt(stop: threading.Event) -> None:
    """Stop the indexer threads started with `stop` now: an idle one would first end its wait."""
    stop.set()
    _WAKEUP.notify()


def run(db: Database, shard: Shard, root: Path, stop: threading.Event) -> None:
    """Write the shard while this process holds its lock; otherwise stand by to take over."""
    lock = ShardLock(root, shard.name)
    while not stop.is_set():
        if not lock.acquire():
            stop.wait(STANDBY_SECONDS)
            continue
        indexer = Indexer(db, shard, lock)
        try:
            _write_until(indexer, stop)
        finally:
            indexer.close()


def _write_until(indexer: Indexer, stop: threading.Event) -> None:
    failures = 0
    while True:
        # The mark before the stop check and the step: a halt or a change committed after it ends the wait.
        seen = _WAKEUP.seen()
        if stop.is_set():
            return
        if not indexer.lock.held():
            log.warning("lost the lock of shard %s (its file went): taking it again",
                        indexer.shard.name)
            return  # `run` releases it and takes the lock anew, or stands by
        try:
            written = indexer.step()
            failures = 0
        except Exception:  # the database or the disk away for a moment: the step is retried whole
            failures += 1
            # Tantivy reports a full disk only as a writer thread that died: say what is left.
            log.exception("indexing shard %s failed (%d in a row; %s free on the index's disk)",
                          indexer.shard.name, failures, _free_space(indexer.shard.path))
            indexer._writer = None
            written = 0
            stop.wait(min(30.0, IDLE_SECONDS * 2 ** failures))
        if not written:
            _WAKEUP.wait(seen, IDLE_SECONDS)


def _free_space(path: Path) -> str:
    """The free space of the filesystem that holds `path`, for people to read."""
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        return "unknown"
    return f"{free} B" if free < 2**20 else f"{free / 2**20:,.0f} MiB"


def start(db: Database, settings: Settings, stop: threading.Event) -> list[threading.Thread]:
    """A writer thread per local shard (each writes only while its process holds the shard's lock)."""
    threads = []
    for shard in local_shards(settings):
        thread = threading.Thread(target=run, args=(db, shard, settings.index_dir, stop),
                                  name=f"inflow-index-{shard.name}", daemon=True)
        thread.start()
        threads.append(thread)
    return threads
