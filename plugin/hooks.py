"""Product hooks registered with connect/: stored webhook events and installs start jobs."""

from __future__ import annotations

from typing import Any

from flask import Flask

from connect.lifecycle import set_lifecycle_handler
from connect.webhooks import set_event_handler
from jobs.core import redis_connection
from jobs.pipeline import enqueue_backfill, enqueue_drain, enqueue_reconcile, refresh_soon
from plugin.pipeline.backfill import backfill_status, request_backfill


def start_backfill(app: Flask, tenant_id: int, restart: bool = False) -> dict[str, Any]:
    """Record a backfill request (install, admin page) and enqueue it; returns its status.

    A queued or running backfill is left as it is; a failed one resumes from its checkpoint.
    Without Redis the request stays recorded and the outbox relay enqueues it later.
    """
    with app.extensions["inflow.db"].session() as session:
        request_backfill(session, tenant_id, restart=restart)
        status = backfill_status(session, tenant_id)
    url = app.extensions.get("inflow.redis_url")
    if url:
        enqueue_backfill(redis_connection(url), tenant_id)
    return status


def refresh_rankings(app: Flask, tenant_id: int, item_ids: list[int]) -> None:
    """Rank the items' suggestions again soon (a verdict changed what ranks): one coalesced
    refresh job however many verdicts; without Redis, now."""
    refresh_soon(app.extensions["inflow.db"], app.extensions.get("inflow.redis_url"), tenant_id, item_ids)


def init_app(app: Flask) -> None:
    """Register the webhook event handler and the lifecycle handler with connect/."""

    def on_event(tenant_id: int, event_id: int) -> None:
        # Best effort: when Redis is down the stored row waits for the outbox relay. One drain
        # per tenant applies a burst in batches (a waiting drain covers this event already).
        url = app.extensions.get("inflow.redis_url")
        if url:
            enqueue_drain(redis_connection(url), tenant_id)

    def on_lifecycle(event: str, tenant_id: int) -> None:
        if event == "installed":
            start_backfill(app, tenant_id)
        elif event == "scheduled":  # Forge's hourly trigger (without Redis the 15-min job does it)
            url = app.extensions.get("inflow.redis_url")
            if url:
                enqueue_reconcile(redis_connection(url), tenant_id)

    set_event_handler(app, on_event)
    set_lifecycle_handler(app, on_lifecycle)
