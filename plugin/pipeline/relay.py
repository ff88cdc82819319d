"""The outbox relay: stored events not yet processed are (re-)enqueued, so nothing is lost.

The event row is the truth. The webhook handler enqueues right after the row commits; when Redis
was down, the worker died, or the job failed for good, the event stays unprocessed and the relay
enqueues it again (up to MAX_ATTEMPTS runs, after which it waits for an operator in rq's
failed-job registry and in `webhook_events.error`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from connect.db import utcnow
from connect.models import WebhookEvent

MAX_ATTEMPTS = 10
# Fresh events are left to the handler's own enqueue; the relay only catches what it missed.
GRACE = timedelta(seconds=10)
BATCH = 5000


def event_job_id(event_id: int) -> str:
    """The deterministic rq job id of an event (duplicate enqueues collapse onto one job)."""
    return f"event-{event_id}"


def pending_events(
    session: Session, now: datetime | None = None, grace: timedelta = GRACE
) -> list[tuple[int, int]]:
    """(event id, tenant id) of unprocessed events older than `grace`, oldest host time first."""
    cutoff = (now or utcnow()) - grace
    query = (
        select(WebhookEvent.id, WebhookEvent.tenant_id)
        .where(
            WebhookEvent.processed_at.is_(None),
            WebhookEvent.attempts < MAX_ATTEMPTS,
            WebhookEvent.received_at <= cutoff,
        )
        .order_by(WebhookEvent.event_ts, WebhookEvent.id)
        .limit(BATCH)
    )
    return [(row[0], row[1]) for row in session.execute(query)]


def relay(
    session: Session,
    is_live: Callable[[str], bool],
    enqueue: Callable[[int], bool],
    now: datetime | None = None,
    grace: timedelta = GRACE,
) -> int:
    """Enqueue every pending event without a live job; returns how many were enqueued."""
    count = 0
    for event_id, _tenant_id in pending_events(session, now, grace):
        if is_live(event_job_id(event_id)):
            continue
        if not enqueue(event_id):
            break  # Redis is unreachable: stop, the next relay run continues
        count += 1
    return count
