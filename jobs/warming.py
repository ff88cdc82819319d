"""Permission answers asked ahead for the people who opened an item lately, once its stored
suggestions changed: their next view then finds the host's answers instead of waiting for them.

A panel shows a suggestion only once the host said the viewer may see it (`visible`, cached
60 s). New suggestions are ones nobody asked about, so the first view after a change waited a
host round trip (150 ms in the traffic bench, more on a busy site). The worker asks instead,
off the refresh's thread: a refresh never waits for a host, and warming is best effort.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from redis import Redis
from sqlalchemy import select

from connect.host_client import HostClient, HostError
from connect.models import Tenant
from plugin.models.content import Item
from plugin.search import sites
from plugin.services import panels, permissions

log = logging.getLogger(__name__)

THREADS = 4  # each mostly waits on the host; bounded, so a burst of refreshes queues here
_pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="inflow-warm")
_waiting: set[tuple[int, int]] = set()  # (tenant, item) queued or under way: asked once at a time
_lock = threading.Lock()


def after_refresh(connection: Redis | None, tenant_id: int, item_id: int) -> None:
    """Warm the answers of the item's recent viewers off this thread (once per item at a time)."""
    if connection is None:
        return
    with _lock:
        if (tenant_id, item_id) in _waiting:
            return
        _waiting.add((tenant_id, item_id))
    _pool.submit(_warm_logged, connection, tenant_id, item_id)


def _warm_logged(connection: Redis, tenant_id: int, item_id: int) -> None:
    try:
        warm_viewers(connection, tenant_id, item_id)
    except HostError as exc:  # the view asks again itself: nothing is lost
        log.info("warming permission answers for item %s failed: %s", item_id, exc)
    except Exception:
        log.exception("warming permission answers for item %s failed", item_id)
    finally:
        with _lock:
            _waiting.discard((tenant_id, item_id))


def warm_viewers(connection: Redis, tenant_id: int, item_id: int) -> int:
    """Ask the host about the item's suggestions for its recent viewers; how many were asked about."""
    from jobs.pipeline import _db, client_for

    shared = permissions.SharedAnswers(connection)
    with _db().session() as session:
        ref = session.execute(select(Item.source, Item.key).where(
            Item.id == item_id, Item.tenant_id == tenant_id)).first()
        viewers = shared.viewers(tenant_id, (ref[0], ref[1])) if ref is not None else []
        checked = panels.checked_items(session, tenant_id, item_id) if viewers else []
        tenant = session.get(Tenant, tenant_id) if checked else None
        if tenant is None:
            return 0
        partner = sites.partner(session, tenant)
        own_product, own = tenant.product_type, client_for(tenant)
        other = client_for(partner) if partner is not None else None

    def clients(source: str) -> HostClient | None:
        return own if source == own_product else other

    return permissions.warm(tenant_id, checked, clients, shared, viewers)
