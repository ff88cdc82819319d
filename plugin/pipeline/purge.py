"""Purging uninstalled tenants: all their data goes a configurable time after `uninstalled`.

A re-install within that time clears `uninstalled_at` (connect's tenant store), so the data is
kept; the purge looks only at tenants still uninstalled when it runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, delete, select
from sqlalchemy.orm import Session

from connect.db import Base, Database, utcnow
from connect.models import Tenant, WebhookEvent
from plugin.pipeline.relay import MAX_ATTEMPTS


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


# Processed events are kept a week: longer than any redelivery (Jira lists failed webhooks for 72
# hours, Forge retries within minutes), and a late duplicate is harmless (versions). Events that
# kept failing stay a month for an admin to look at. Their payloads hold people's words and names.
EVENTS_KEPT = timedelta(days=7)
FAILED_EVENTS_KEPT = timedelta(days=30)
EVENTS_PURGE_BATCH = 5_000  # rows per transaction: a purge never holds a long lock


def purge_old_events(db: Database, now: datetime | None = None) -> int:
    """Delete processed events older than EVENTS_KEPT and given-up ones older than
    FAILED_EVENTS_KEPT, a batch per transaction; how many went."""
    now = now or utcnow()
    processed = WebhookEvent.processed_at < now - EVENTS_KEPT
    given_up = and_(WebhookEvent.processed_at.is_(None), WebhookEvent.attempts >= MAX_ATTEMPTS,
                    WebhookEvent.received_at < now - FAILED_EVENTS_KEPT)
    total = 0
    for condition in (processed, given_up):
        while True:
            with db.session() as session:
                batch = select(WebhookEvent.id).where(condition).limit(EVENTS_PURGE_BATCH)
                gone = cast(CursorResult[Any], session.execute(
                    delete(WebhookEvent).where(WebhookEvent.id.in_(batch.scalar_subquery())))).rowcount
            total += gone
            if gone < EVENTS_PURGE_BATCH:
                break
    return total
