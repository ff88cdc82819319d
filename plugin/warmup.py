"""Load every installed tenant's matching index into this process, then keep it following the database."""
from __future__ import annotations

import logging
import os
import threading
import time

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from connect.db import Database
from connect.models import Tenant
from plugin.matching.index import save_due_snapshots, tenant_index
from plugin.models.content import IndexState

log = logging.getLogger(__name__)
FOLLOW_SECONDS = 2.0


def warm_indexes(db: Database) -> int:
    """Sync each installed tenant's index cache; returns how many were loaded.

    Why: the first query of a cold process would otherwise load the whole index inside a
    user's request. Web workers call this in a background thread as they start, the rq worker
    before it takes its first job. `INFLOW_WARM_INDEX=0` skips it.
    """
    if os.environ.get("INFLOW_WARM_INDEX", "1") == "0":
        return 0
    started, count = time.monotonic(), 0
    try:
        with db.session() as session:
            tenant_ids = session.scalars(select(Tenant.id).where(Tenant.installed.is_(True))).all()
            for tenant_id in tenant_ids:
                tenant_index(session, tenant_id)
                count += 1
    except SQLAlchemyError:
        # A database that is not migrated yet (or not reachable) only means a cold start.
        log.warning("index warm-up skipped", exc_info=True)
        return count
    log.info("warmed %d tenant indexes in %.1f s", count, time.monotonic() - started)
    return count


def follow_seconds() -> float:
    """Seconds between two looks for changed indexes (INFLOW_INDEX_FOLLOW_SECONDS; 0 turns following off)."""
    try:
        return max(0.0, float(os.environ.get("INFLOW_INDEX_FOLLOW_SECONDS", FOLLOW_SECONDS)))
    except ValueError:
        return FOLLOW_SECONDS


def sync_changed(db: Database, seen: dict[int, int]) -> int:
    """Sync the index of each installed tenant whose change sequence moved since `seen`; how many."""
    synced = 0
    with db.session() as session:
        rows = session.execute(select(IndexState.tenant_id, IndexState.seq)
                               .join(Tenant, Tenant.id == IndexState.tenant_id)
                               .where(Tenant.installed.is_(True))).all()
        for tenant_id, seq in rows:
            if seen.get(tenant_id) != seq:
                tenant_index(session, tenant_id)
                seen[tenant_id] = seq
                synced += 1
    save_due_snapshots(db.engine)
    return synced


def keep_indexes_warm(db: Database, stop: threading.Event | None = None,
                      interval: float | None = None) -> None:
    """Warm every tenant's index, then apply committed changes every few seconds until `stop`.

    Why: a serving process otherwise applies a tenant's changes inside the next viewer's request;
    after a backfill of 100,000 items that request would wait for all of them. Following in the
    background spreads the work over the backfill and keeps the request path to a short tail.
    `INFLOW_WARM_INDEX=0` turns off both the warm-up and the following.
    """
    if os.environ.get("INFLOW_WARM_INDEX", "1") == "0":
        return
    stop = stop or threading.Event()
    interval = follow_seconds() if interval is None else interval
    warm_indexes(db)
    seen: dict[int, int] = {}
    while interval > 0 and not stop.wait(interval):
        try:
            sync_changed(db, seen)
        except SQLAlchemyError:  # the database is away for a moment: look again next time
            log.warning("index follow-up failed", exc_info=True)
