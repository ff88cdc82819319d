"""The outbox: stored events are the truth; batches claim them and the relay re-enqueues strays.

An event's life: stored by the webhook handler (attempts 0), which enqueues its tenant's drain
job; a drain claims a batch of never-tried events (attempts 1, committed), applies them in one
transaction and marks them processed. An event whose batch failed is handed to its own per-event
job, which retries with back-off and then waits for an operator in rq's failed-job registry and in
`webhook_events.error`. When Redis was down or a worker died, events stay unprocessed and the
relay enqueues them again: never-tried ones through their tenant's drain, tried ones through their
own job (up to MAX_ATTEMPTS runs).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.orm import Session

from connect.db import utcnow
from connect.models import WebhookEvent

MAX_ATTEMPTS = 10
# Fresh events are left to the handler's own enqueue; the relay only catches what it missed.
GRACE = timedelta(seconds=10)
BATCH = 5000
# Events one drain applies per transaction: enough to share a commit, an index bump and each
# item's re-read among many (a burst's comments come in runs on the same issues), few enough
# that SQLite's write lock is never held long against the webhook handler.
CLAIM = 200


def event_job_id(event_id: int) -> str:
    """The deterministic rq job id of an event (duplicate enqueues collapse onto one job)."""
    return f"event-{event_id}"


def drain_job_id(tenant_id: int) -> str:
    """The deterministic rq job id of a tenant's drain (its coalescing base id)."""
    return f"drain-{tenant_id}"


def _untried() -> ColumnElement[bool]:
    return func.coalesce(WebhookEvent.attempts, 0) == 0


def claim(session: Session, tenant_id: int, limit: int | None = None) -> list[int]:
    """Take up to `limit` (else CLAIM) of the tenant's never-tried events, oldest first.

    Claimed events count one attempt (the caller commits before applying them), so a batch
    whose worker dies is not claimed again: the relay gives those events their own jobs. On
    PostgreSQL concurrent drains skip each other's rows; SQLite runs one writer at a time.
    """
    pick = (
        select(WebhookEvent.id)
        .where(WebhookEvent.processed_at.is_(None), WebhookEvent.tenant_id == tenant_id,
               _untried(), WebhookEvent.error.is_(None))
        .order_by(WebhookEvent.id)
        .limit(limit or CLAIM)
    )
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    taken = session.scalars(
        update(WebhookEvent)
        .where(WebhookEvent.id.in_(pick.scalar_subquery()), _untried())
        .values(attempts=1)
        .returning(WebhookEvent.id),
        execution_options={"synchronize_session": False},
    )
    return sorted(taken)


def release(session: Session, tenant_id: int, event_ids: list[int]) -> int:
    """Hand claimed events back untried: the site asked us to wait, so no attempt was spent."""
    released = session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id.in_(event_ids), WebhookEvent.tenant_id == tenant_id,
               WebhookEvent.processed_at.is_(None), WebhookEvent.attempts == 1)
        .values(attempts=0),
        execution_options={"synchronize_session": False})
    return int(released.rowcount or 0)  # type: ignore[attr-defined]


def _pending(now: datetime | None, grace: timedelta) -> ColumnElement[bool]:
    """Unprocessed events older than `grace` that are not given up."""
    return and_(WebhookEvent.processed_at.is_(None),
                func.coalesce(WebhookEvent.attempts, 0) < MAX_ATTEMPTS,
                WebhookEvent.received_at <= (now or utcnow()) - grace)


def untried_by_tenant(
    session: Session, now: datetime | None = None, grace: timedelta = GRACE
) -> dict[int, int]:
    """How many never-tried events older than `grace` each tenant has.

    Counted for every tenant, not read up to BATCH: the oldest BATCH events of all were one
    site's long backlog, and another site's stray events waited behind it for as long as it lasted.
    """
    query = (select(WebhookEvent.tenant_id, func.count())
             .where(_pending(now, grace), _untried())
             .group_by(WebhookEvent.tenant_id))
    return {tenant_id: count for tenant_id, count in session.execute(query).tuples()}


def tried_events(
    session: Session, now: datetime | None = None, grace: timedelta = GRACE
) -> list[tuple[int, int]]:
    """(event id, tenant id) of unprocessed events tried before, older than `grace`, oldest first."""
    query = (
        select(WebhookEvent.id, WebhookEvent.tenant_id)
        .where(_pending(now, grace), ~_untried())
        .order_by(WebhookEvent.event_ts, WebhookEvent.id)
        .limit(BATCH)
    )
    return [(event_id, tenant_id) for event_id, tenant_id in session.execute(query).tuples()]


@dataclass(frozen=True)
class Outlet:
    """How the relay reaches the queue (the jobs layer supplies these)."""

    job_live: Callable[[str], bool]
    enqueue_event: Callable[[int], bool]
    drain_live: Callable[[int], bool]
    enqueue_drain: Callable[[int], bool]


def relay(
    session: Session, outlet: Outlet, now: datetime | None = None, grace: timedelta = GRACE
) -> int:
    """Enqueue every pending event without a live job; returns how many events were enqueued.

    Never-tried events go to their tenant's drain. A tried one gets its own job unless its
    tenant's drain is live (the event may be in the batch that drain is applying).
    """
    drain_live = functools.cache(outlet.drain_live)  # one look-up per tenant and run
    count = 0
    for tenant_id, waiting in untried_by_tenant(session, now, grace).items():
        if drain_live(tenant_id):
            continue
        if not outlet.enqueue_drain(tenant_id):
            return count  # Redis is unreachable: stop, the next relay run continues
        count += waiting
    for event_id, tenant_id in tried_events(session, now, grace):
        if outlet.job_live(event_job_id(event_id)) or drain_live(tenant_id):
            continue
        if not outlet.enqueue_event(event_id):
            break
        count += 1
    return count
