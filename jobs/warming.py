"""Permission answers asked ahead for the people who opened an item lately, once its stored
suggestions changed: their next view then finds the host's answers instead of waiting for them.

A panel shows a suggestion only once the host said the viewer may see it (`visible`, cached
60 s). New suggestions are ones nobody asked about, so the first view after a change waited a
host round trip (150 ms in the traffic bench, more on a busy site). The worker asks instead,
off the refresh's thread: a refresh never waits for a host, and warming is best effort.
A neighbour's refresh warms too, unless warming lags: the change reorders a neighbour's
suggestions as well, bringing in items its viewers were never asked about.

The changed item is also about to enter its nearest neighbours' suggestions (they are refreshed
right after it), so the people who opened those neighbours lately are asked about it too, in
the same round: one bulk check per person. That part is skipped while warming lags behind the
refreshes (a burst): it is a guess about views to come, and the views still ask for themselves.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from redis import Redis
from sqlalchemy import select

from connect.host_client import HostClient, HostError
from connect.models import Tenant
from plugin.models.content import Item
from plugin.search import sites
from plugin.services import panels, permissions

log = logging.getLogger(__name__)

THREADS = 4  # each mostly waits on the host; bounded, so a burst of refreshes queues here
BEHIND = THREADS  # items queued beyond this many: neighbours' viewers are not asked
_pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="inflow-warm")
_waiting: set[tuple[int, int]] = set()  # (tenant, item) queued or under way: asked once at a time
_lock = threading.Lock()


def after_refresh(connection: Redis | None, tenant_id: int, item_id: int,
                  neighbours: Sequence[int] = (), unless_behind: bool = False) -> None:
    """Warm the answers of the item's recent viewers, and its neighbours' viewers' answers on
    it, off this thread (once per item at a time; `unless_behind`: not while warming lags)."""
    if connection is None:
        return
    with _lock:
        behind = len(_waiting) >= BEHIND
        if (tenant_id, item_id) in _waiting or (unless_behind and behind):
            return
        if behind:
            neighbours = ()
        _waiting.add((tenant_id, item_id))
    _pool.submit(_warm_logged, connection, tenant_id, item_id, tuple(neighbours))


def _warm_logged(connection: Redis, tenant_id: int, item_id: int, neighbours: tuple[int, ...]) -> None:
    try:
        warm_viewers(connection, tenant_id, item_id, neighbours)
    except HostError as exc:  # the view asks again itself: nothing is lost
        log.info("warming permission answers for item %s failed: %s", item_id, exc)
    except Exception:
        log.exception("warming permission answers for item %s failed", item_id)
    finally:
        with _lock:
            _waiting.discard((tenant_id, item_id))


def warm_viewers(connection: Redis, tenant_id: int, item_id: int, neighbours: Sequence[int] = ()) -> int:
    """Ask the host about the item's suggestions for its recent viewers, and about the item for
    its neighbours' recent viewers; how many people were asked about."""
    from jobs.pipeline import _db, client_for

    shared = permissions.SharedAnswers(connection)
    with _db().session() as session:
        asks = _asks(session, shared, tenant_id, item_id, neighbours)
        tenant = session.get(Tenant, tenant_id) if asks else None
        if tenant is None:
            return 0
        partner = sites.partner(session, tenant)
        own_product, own = tenant.product_type, client_for(tenant)
        other = client_for(partner) if partner is not None else None

    def clients(source: str) -> HostClient | None:
        return own if source == own_product else other

    return permissions.warm(tenant_id, asks, clients, shared)


def _asks(session: Any, shared: permissions.SharedAnswers, tenant_id: int, item_id: int,
          neighbours: Sequence[int]) -> dict[str, list[Any]]:
    """Who is to be asked about what: the item's viewers about its suggestions, its neighbours'
    viewers about the item itself."""
    rows = session.execute(select(Item.id, Item.source, Item.key, Item.external_id).where(
        Item.id.in_([item_id, *neighbours]), Item.tenant_id == tenant_id)).all()
    refs = {row.id: row for row in rows}
    item = refs.get(item_id)
    if item is None:
        return {}
    viewers = shared.viewers(tenant_id, (item.source, item.key))
    checked = panels.checked_items(session, tenant_id, item_id) if viewers else []
    asks: dict[str, list[Any]] = {viewer: list(checked) for viewer in viewers if checked}
    for neighbour in (refs[n] for n in neighbours if n in refs and n != item_id):
        for viewer in shared.viewers(tenant_id, (neighbour.source, neighbour.key)):
            wanted = asks.setdefault(viewer, [])
            if item not in wanted:
                wanted.append(item)
    return asks
