"""Purging uninstalled tenants: all their data goes a configurable time after `uninstalled`.

A re-install within that time clears `uninstalled_at` (connect's tenant store), so the data is
kept; the purge looks only at tenants still uninstalled when it runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from connect.db import Base, utcnow
from connect.models import Tenant


def due_for_purge(
    session: Session, purge_after_days: int, now: datetime | None = None
) -> list[int]:
    """Ids of tenants uninstalled longer ago than the configured period."""
    cutoff = (now or utcnow()) - timedelta(days=purge_after_days)
    return list(
        session.scalars(
            select(Tenant.id).where(
                Tenant.installed.is_(False),
                Tenant.uninstalled_at.is_not(None),
                Tenant.uninstalled_at <= cutoff,
            )
        )
    )


def purge_tenant(session: Session, tenant_id: int) -> dict[str, int]:
    """Delete every row of the tenant in every table, then the tenant; returns rows per table."""
    tenant = session.get(Tenant, tenant_id)
    if tenant is None or tenant.installed:
        return {}
    counts: dict[str, int] = {}
    # Children first, so foreign keys hold on every backend whatever their ON DELETE says.
    for table in reversed(Base.metadata.sorted_tables):
        if table.name != Tenant.__tablename__ and "tenant_id" in table.c:
            result = cast(CursorResult[Any], session.execute(
                delete(table).where(table.c.tenant_id == tenant_id)))
            counts[table.name] = result.rowcount or 0
    session.delete(tenant)
    session.flush()
    return counts
