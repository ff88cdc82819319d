"""Rendered panels kept per process, served again only while everything they show is unchanged.

A cached panel is exact, not "fresh enough": each entry holds a stamp of what it was rendered
from, read from the database *before* rendering, and a hit re-reads that stamp in one query:
- the item (its id and index_seq: every change to it bumps the sequence; deleted → no row),
- its stored reuse suggestions (row, when computed), so a refresh after an event shows,
- the project's settings row (id, updated_at): panels turned off, purpose, privacy,
- this viewer's verdicts on the item (count, newest id and update),
- how many of the items it shows still exist (a deleted suggestion disappears at once).
Permissions are the viewer's own (the key holds the viewer) and an entry expires no later than
the earliest permission answer it was built from (`Horizon`), exactly when an uncached render
would ask the host again. Only panels served from stored suggestions are cached: a live
ranking depends on the whole index.
"""
from __future__ import annotations

import atexit
import functools
import logging
import os
import re
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Engine, QueuePool, Table, insert

from connect.db import utcnow
from plugin.models.social import PanelEvent
from plugin.services.permissions import CACHE as PERMISSIONS

log = logging.getLogger(__name__)
Key = tuple[Any, ...]

SHOWN = 5  # a panel shows at most five suggestions (panels.LIMIT)
_STAMP = """
SELECT i.id, i.index_seq,
  (SELECT s.id FROM stored_suggestions s
    WHERE s.tenant_id = :tenant AND s.item_id = i.id AND s.kind = 'reuse'),
  (SELECT s.computed_at FROM stored_suggestions s
    WHERE s.tenant_id = :tenant AND s.item_id = i.id AND s.kind = 'reuse'),
  (SELECT p.id FROM project_settings p WHERE p.tenant_id = :tenant AND p.project_key = :project),
  (SELECT p.updated_at FROM project_settings p
    WHERE p.tenant_id = :tenant AND p.project_key = :project),
  (SELECT COUNT(*) FROM feedback f WHERE f.tenant_id = :tenant AND f.source = :source
    AND f.item_key = :key AND f.account_id = :viewer),
  (SELECT MAX(f.id) FROM feedback f WHERE f.tenant_id = :tenant AND f.source = :source
    AND f.item_key = :key AND f.account_id = :viewer),
  (SELECT MAX(f.updated_at) FROM feedback f WHERE f.tenant_id = :tenant AND f.source = :source
    AND f.item_key = :key AND f.account_id = :viewer),
  (SELECT COUNT(*) FROM items r WHERE r.id IN (:r0, :r1, :r2, :r3, :r4)
    AND r.tenant_id + 0 = :tenant)
FROM (SELECT 1 AS one) o
LEFT JOIN items i ON i.tenant_id = :tenant AND i.source = :source AND i.key = :key
"""
RECORD = insert(cast(Table, PanelEvent.__table__))
_NONE = (-1,) * SHOWN
_ID_PARAMS = tuple(f"r{n}" for n in range(SHOWN))


@functools.lru_cache(maxsize=8)
def _stamp_sql(paramstyle: str) -> str:
    # The driver's own placeholders: this query runs on the raw DBAPI connection (a hit's one
    # database read), where SQLAlchemy's statement handling cost several times the query.
    if paramstyle in ("pyformat", "format"):
        return re.sub(r":(\w+)", r"%(\1)s", _STAMP)
    return _STAMP  # sqlite3 takes :name placeholders whatever its declared paramstyle


def reuse_stamp(engine: Engine, tenant_id: int, source: str, key: str, project: str | None,
                viewer: str | None, shown: Sequence[int]) -> tuple[Any, ...]:
    """Everything a reuse panel's HTML depends on in the database, as one comparable tuple."""
    ids = (*shown, *_NONE)[:SHOWN]  # ids are positive: -1 matches nothing
    params = {"tenant": tenant_id, "source": source, "key": key, "project": project or "",
              "viewer": viewer or "", **dict(zip(_ID_PARAMS, ids, strict=True))}
    own = _own_connection(engine)
    if own is not None:
        try:
            row = own.execute(_stamp_sql(engine.dialect.paramstyle), params).fetchall()[0]
        except Exception:
            _LOCAL.connections.pop(engine, None)  # a broken connection is not used again
            raise
        return tuple(str(value) for value in row)
    conn = engine.raw_connection()
    try:
        cursor = conn.cursor()
        cursor.execute(_stamp_sql(engine.dialect.paramstyle), params)
        row = cursor.fetchall()[0]  # always one row: FROM (SELECT 1) o
        cursor.close()
    finally:
        conn.close()  # back to the pool
    return tuple(str(value) for value in row)


_LOCAL = threading.local()


def _own_connection(engine: Engine) -> Any | None:
    """This thread's own SQLite connection for stamp reads, or None (use the pool).

    Why: a hit's one query cost less than the pool's checkout and reset around it. Only for a
    SQLite file (QueuePool): a plain SELECT there runs in autocommit, so every read sees the
    latest commit, and draining the rows ends its read transaction. PostgreSQL reads keep the
    pool (a SELECT there would hold a snapshot until rolled back; pre-ping replaces dead links).
    """
    if engine.dialect.name != "sqlite" or not isinstance(engine.pool, QueuePool):
        return None
    connections = getattr(_LOCAL, "connections", None)
    if connections is None:
        connections = _LOCAL.connections = weakref.WeakKeyDictionary()
    conn = connections.get(engine)
    if conn is None:
        fairy = engine.raw_connection()  # opened with the engine's pragmas (WAL, busy timeout)
        fairy.detach()  # ours from now on: the pool opens another when it needs one
        conn = connections[engine] = fairy.dbapi_connection
    return conn


def servable(stamp: tuple[Any, ...]) -> bool:
    """Whether a render from this state may be kept: the item is stored and so are its suggestions."""
    return stamp[0] != "None" and stamp[2] != "None"


def view_events(tenant_id: int, panel: str, source: str, key: str, project: str | None,
                viewer: str | None, shown: int) -> list[dict[str, Any]]:
    """The adoption events an uncached view records (viewed, and shown when it showed any)."""
    row = {"tenant_id": tenant_id, "panel": panel, "source": source, "item_key": key,
           "project": project, "account_id": viewer, "target": None, "at": utcnow()}
    return [{**row, "kind": "viewed"}] + ([{**row, "kind": "shown"}] if shown else [])


class EventBuffer:
    """Adoption events of cached views, written in one transaction at most `delay` s later.

    Why: a write per view serialises every request on the database's write lock (SQLite's
    busy handler sleeps between retries); the weekly dashboard and the metrics (read at most
    every 15 s) lose nothing by a second's delay. Each event keeps the time of its view.
    """

    def __init__(self, delay: float = 1.0, batch: int = 500) -> None:
        self.delay, self.batch = delay, batch
        # Keyed by the engine itself (identity): hashing its URL cost more than the view's lookup.
        self._pending: dict[Any, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._owner: int | None = None  # the process whose thread flushes (gunicorn forks)

    def add(self, engine: Any, events: list[dict[str, Any]]) -> None:
        """Queue events for `engine`'s database; the flusher thread starts on first use."""
        with self._lock:
            pending = self._pending.setdefault(engine, [])
            pending.extend(events)
            full = len(pending) >= self.batch
            if self._owner != os.getpid():
                self._owner = os.getpid()
                threading.Thread(target=self._run, name="inflow-adoption-events", daemon=True).start()
        if full:
            self._wake.set()

    def flush(self) -> None:
        """Write everything queued now (also at exit, and from tests)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for engine, events in pending.items():
            with engine.begin() as conn:
                conn.execute(RECORD, events)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.delay)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # a locked or lost database: these events are lost, serving goes on
                log.exception("could not write adoption events")


EVENTS = EventBuffer()
atexit.register(EVENTS.flush)


class Horizon:
    """The earliest moment any permission answer used for one render expires.

    `generation` is the permission cache's when the render began: answers dropped early (a
    clear) end every entry built from them, too.
    """

    def __init__(self, limit: float, generation: int = 0) -> None:
        self.until = time.monotonic() + limit
        self.generation = generation

    def note(self, expires_at: float) -> None:
        """A permission answer the render relied on, valid until `expires_at` (monotonic)."""
        self.until = min(self.until, expires_at)


@dataclass(frozen=True)
class Fragment:
    """A rendered panel, the stamp it was rendered from and what it showed."""

    html: str
    stamp: tuple[Any, ...]
    shown: tuple[int, ...]
    expires_at: float
    generation: int = 0

    @functools.cached_property
    def body(self) -> bytes:
        """The HTML as UTF-8 (the response body), encoded once for all the hits it serves."""
        return self.html.encode("utf-8")


class FragmentCache:
    """A bounded, thread-safe LRU of rendered panels (per process)."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[Key, Fragment] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Key) -> Fragment | None:
        """The entry when present and not expired (its stamp is the caller's to check)."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None or entry.expires_at <= time.monotonic():
                self._data.pop(key, None)
                return None
            self._data.move_to_end(key)
            return entry

    def put(self, key: Key, fragment: Fragment) -> None:
        """Keep an entry, dropping the least recently used beyond the bound."""
        with self._lock:
            self._data[key] = fragment
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (tests)."""
        with self._lock:
            self._data.clear()


FRAGMENTS = FragmentCache()


def reuse_hit(engine: Engine, cache_key: Key) -> Fragment | None:
    """The cached reuse panel for this key if its stamp still matches (view recorded), else None.

    `cache_key` is (database URL, tenant id, "reuse", source, key, project, viewer). Needs no
    Flask request: the view and the WSGI fast path in front of the app serve hits through it.
    """
    entry = FRAGMENTS.get(cache_key)
    if entry is None or entry.generation != PERMISSIONS.generation:
        return None
    _, tenant_id, panel, source, key, project, viewer = cache_key
    if reuse_stamp(engine, tenant_id, source, key, project, viewer, entry.shown) != entry.stamp:
        return None
    EVENTS.add(engine, view_events(tenant_id, panel, source, key, project, viewer,
                                   len(entry.shown)))
    FRAGMENTS.hits += 1
    return entry
