"""Processed webhook events go after a week, given-up ones after a month; pending ones stay."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from connect.db import utcnow
from connect.models import WebhookEvent
from jobs import pipeline as jobs
from plugin.pipeline import purge
from plugin.pipeline.relay import MAX_ATTEMPTS


def test_old_processed_and_given_up_events_are_purged_in_batches(
    database_url: str, make_site: Any, monkeypatch: Any
) -> None:
    site = make_site(database_url)
    now = utcnow()
    kept_for = {  # key: (received days ago, processed days ago or None, attempts)
        "recent": (2, 1, 1), "pending-old": (40, None, 2), "failing-recent": (10, None, MAX_ATTEMPTS),
    }
    gone_for = {f"processed-{n}": (9, 8, 1) for n in range(5)} | {"given-up": (40, None, MAX_ATTEMPTS)}
    with site.db.session() as session:
        for key, (received, processed, attempts) in (kept_for | gone_for).items():
            session.add(WebhookEvent(
                tenant_id=site.tenant_id, event_key=key, event_type="jira:issue_updated", product="jira",
                payload={"issue": {"key": "AMQ-1"}}, received_at=now - timedelta(days=received),
                processed_at=None if processed is None else now - timedelta(days=processed),
                attempts=attempts))
    monkeypatch.setattr(purge, "EVENTS_PURGE_BATCH", 2)  # several batches, each its own transaction

    assert jobs.purge_old_events() == len(gone_for)
    with site.db.session() as session:
        left = set(session.scalars(select(WebhookEvent.event_key)))
    assert left == set(kept_for)
    assert jobs.purge_old_events() == 0  # a second run finds nothing
