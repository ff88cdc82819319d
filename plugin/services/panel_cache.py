"""Rendered views kept per process, served again only while everything they showed is still true.

A cached view is exact, not "fresh enough". Each entry holds the facts it depends on
(`plugin.services.freshness`) with their values: those the view declares are read *before* it
renders, those its render records (the people and items it read, the viewer's impact) are what
the render saw; a hit reads all of them again in one query and is served only if every value is
the same. Permissions are the viewer's own (the key holds the viewer) and an entry expires no
later than the earliest host answer it was built from (permissions, group memberships, names
from the host, a pause that ends), exactly when an uncached render would ask or count again.
A render that ranked live or asked the host for its item (`Watch.live`) is not kept: it depends
on the whole index or on the site.
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, delete, insert, select

from connect.db import utcnow
from plugin.models.content import Erasure
from plugin.models.social import PanelEvent
from plugin.services import freshness
from plugin.services.freshness import Fact
from plugin.services.permissions import Ref

log = logging.getLogger(__name__)
Key = tuple[Any, ...]

RECORD = insert(cast(Table, PanelEvent.__table__))


def view_events(tenant_id: int, panel: str, source: str, key: str, project: str | None,
                viewer: str | None, shown: int) -> list[dict[str, Any]]:
    """The adoption events of one view (viewed, and shown when it showed any)."""
    row = {"tenant_id": tenant_id, "panel": panel, "source": source, "item_key": key,
           "project": project, "account_id": viewer, "target": None, "at": utcnow()}
    return [{**row, "kind": "viewed"}] + ([{**row, "kind": "shown"}] if shown else [])


class EventBuffer:
    """Adoption events of panel views, written in one transaction at most `delay` s later.

    Why: a write per view serialises every request on the database's write lock (SQLite's
    busy handler sleeps between retries); the weekly dashboard and the metrics (read at most
    every 15 s) lose nothing by a second's delay. Each event keeps the time of its view.
    """

    def __init__(self, delay: float = 1.0, batch: int = 500) -> None:
        self.delay, self.batch = delay, batch
        # Keyed by the engine itself (identity): hashing its URL cost more than the view's lookup.
        self._pending: dict[Any, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._writing = threading.Lock()  # held while a flush writes
        self._wake = threading.Event()
        self._owner: int | None = None  # the process whose thread flushes (the web server forks)

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
        """Write everything queued now (also at exit, and from tests), and wait for a write under way.

        Why the wait: the flusher thread may have taken events just before; a caller reading the
        table after flush() must find them written.
        """
        with self._writing:
            with self._lock:
                pending, self._pending = self._pending, {}
            for engine, events in pending.items():
                with engine.begin() as conn:
                    conn.execute(RECORD, events)
                    _drop_erased(conn, events)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.delay)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # a locked or lost database: these events are lost, serving goes on
                log.exception("could not write adoption events")


def _drop_erased(conn: Any, events: list[dict[str, Any]]) -> None:
    """Delete the events just written of viewers who erased their data after the view.

    Queued up to a second (in any process), a view written after its viewer's erasure named
    them again in the adoption events the erasure had emptied. Looked for after the write:
    holding the write lock (SQLite), an erasure committed since the view is seen, and one not
    yet committed deletes these rows itself.
    """
    viewers = {e["account_id"] for e in events if e["account_id"]}
    if not viewers:
        return
    erased = conn.execute(select(Erasure.tenant_id, Erasure.account_id, Erasure.erased_at).where(
        Erasure.tenant_id.in_({e["tenant_id"] for e in events}), Erasure.account_id.in_(viewers))).all()
    for tenant_id, account_id, erased_at in erased:
        conn.execute(delete(PanelEvent).where(PanelEvent.tenant_id == tenant_id,
                                              PanelEvent.account_id == account_id,
                                              PanelEvent.at <= erased_at))


EVENTS = EventBuffer()
atexit.register(EVENTS.flush)


def generations() -> tuple[int, ...]:
    """Of the per-process caches of host answers a render may use: a clear ends its entries."""
    from plugin.services.people import BACKOFF, PROFILES
    from plugin.services.permissions import CACHE

    return CACHE.generation, PROFILES.generation, BACKOFF.generation


# A kept view is rendered again at least this often, however long its answers are renewed
# (`extend`): a bound on whatever a render reads that no fact or answer stands for.
RENDER_EVERY = 600.0


class Watch:
    """What one render relied on besides its declared facts (see the module's docstring).

    A render renewing a cached view (`renew_before` > 0) asks the host again for every answer
    expiring before that moment, and records no adoption event: nobody viewed it.
    """

    def __init__(self, limit: float, renew_before: float = 0.0) -> None:
        self.renew_before = renew_before
        self.until = time.monotonic() + limit
        self.generations = generations()
        self.facts: list[Fact] = []
        self.values: list[Any] = []
        self.views: list[tuple[str, str, str, str | None, int]] = []
        self.live = False  # ranked live or asked the host for the item: not kept
        self.answers: dict[Ref, bool] = {}  # the permission answers it showed or hid items by
        self.lasting = time.monotonic() + RENDER_EVERY  # until its other host answers expire

    @property
    def renewing(self) -> bool:
        """Whether this render renews a cached view rather than answers a viewer."""
        return self.renew_before > 0.0

    def note(self, expires_at: float) -> None:
        """A host answer the render relied on, valid until `expires_at` (monotonic)."""
        self.until = min(self.until, expires_at)
        self.lasting = min(self.lasting, expires_at)

    def answered(self, ref: Ref, allowed: bool, expires_at: float) -> None:
        """A permission answer the render relied on (see `extend`)."""
        self.answers[ref] = allowed
        self.until = min(self.until, expires_at)

    def note_until(self, moment: datetime) -> None:
        """Something the render counted changes at this wall-clock moment (a pause ends)."""
        self.note(freshness.wall_to_monotonic(moment))

    def record(self, fact: Fact, value: Any) -> None:
        """A fact only the render knows, with the value it saw."""
        self.facts.append(fact)
        self.values.append(value)

    def viewed(self, panel: str, source: str, key: str, project: str | None, shown: int) -> None:
        """The adoption events the render recorded (a hit records them again)."""
        self.views.append((panel, source, key, project, shown))


@dataclass(frozen=True)
class Fragment:
    """A rendered view: its body and content type, the facts it depends on and their values."""

    body: bytes
    content_type: str
    reading: freshness.Reading  # its facts, ready to be read again
    values: tuple[Any, ...]
    views: tuple[tuple[str, str, str, str | None, int], ...] = ()
    expires_at: float = 0.0
    generations: tuple[int, ...] = field(default_factory=generations)
    answers: dict[Ref, bool] = field(default_factory=dict)
    lasting: float = 0.0  # when its host answers other than `answers` expire
    endpoint: str = ""  # the route that rendered it (the request metrics' label)


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


def _unchanged(engine: Engine, entry: Fragment) -> bool:
    """Whether the answer caches and the facts are still as the kept entry saw them."""
    return entry.generations == generations() and \
        freshness.read_again(engine, entry.reading) == entry.values


def hit(engine: Engine, key: Key) -> Fragment | None:
    """The cached view for this key if every fact it depends on is unchanged (views recorded).

    `key` is (database URL, tenant id, what was asked, viewer): `views.fragments.key_of`.
    """
    entry = FRAGMENTS.get(key)
    if entry is None or not _unchanged(engine, entry):
        return None
    tenant_id, viewer = key[1], key[-1]
    if entry.views:
        EVENTS.add(engine, [event for panel, source, item, project, shown in entry.views
                            for event in view_events(tenant_id, panel, source, item, project,
                                                     viewer, shown)])
    FRAGMENTS.hits += 1
    return entry


def keep(engine: Engine, key: Key, body: bytes, content_type: str, facts: list[Fact],
         before: tuple[Any, ...], watch: Watch, endpoint: str = "") -> bool:
    """Keep a render (declared facts with the values read before it, then what it recorded)."""
    if watch.live:
        return False
    reading = freshness.reading(engine, key[1], (*facts, *watch.facts))
    FRAGMENTS.put(key, Fragment(body, content_type, reading, (*before, *watch.values),
                                tuple(watch.views), watch.until, watch.generations,
                                dict(watch.answers), watch.lasting, endpoint))
    return True


def extend(engine: Engine, key: Key, renew_before: float,
           ask: Callable[[set[Ref], Watch], dict[Ref, bool]]) -> Fragment | None:
    """Keep the cached view longer if nothing it showed changed, permission answers included.

    Why: renewing a view used to render it again, a CPU cost per view and minute that the views
    being served pay for. Its facts and its other host answers are what a render would find
    (they last past `renew_before`), so only the permission answers are asked again (`ask`, as
    a render asks them). Unchanged, the same render would give the same body: it is kept until
    the new answers expire. A view that asked no permission (the contributors panel, a panel
    showing nothing) is kept as it is. None when the view must be rendered.
    """
    entry = FRAGMENTS.get(key)
    if entry is None or entry.lasting < renew_before or not _unchanged(engine, entry):
        return None
    watch = Watch(entry.lasting - time.monotonic(), renew_before=renew_before)
    if (entry.answers and ask(set(entry.answers), watch) != entry.answers) \
            or generations() != entry.generations:
        return None
    renewed = replace(entry, expires_at=watch.until)
    FRAGMENTS.put(key, renewed)
    return renewed
