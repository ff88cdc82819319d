"""Load every installed tenant's matching index into this process before it serves."""
from __future__ import annotations

import logging
import os
import time

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from connect.db import Database
from connect.models import Tenant
from plugin.matching.index import tenant_index

log = logging.getLogger(__name__)


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
