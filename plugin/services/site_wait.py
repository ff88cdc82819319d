"""What the admin page says when the site refuses or fails Inflow's calls and events wait."""
from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connect.models import WebhookEvent
from jobs import throttle
from jobs.core import redis_connection

log = logging.getLogger(__name__)

PRODUCTS = {"jira": "Jira", "confluence": "Confluence"}


def _waiting(session: Session, tenant_id: int) -> int:
    return int(session.scalar(select(func.count(WebhookEvent.id)).where(
        WebhookEvent.tenant_id == tenant_id, WebhookEvent.processed_at.is_(None))) or 0)


def site_wait(session: Session, tenant_id: int, product: str,
              redis_url: str | None) -> dict[str, Any] | None:
    """The site's current wait for the page (why, events waiting, next try), or None."""
    if not redis_url:
        return None
    try:
        wait = throttle.current(redis_connection(redis_url), tenant_id)
    except RedisError as exc:  # the page still renders; the wait shows again once Redis answers
        log.warning("site wait of tenant %s unknown, Redis unavailable: %s", tenant_id, exc)
        return None
    if wait is None:
        return None
    name = PRODUCTS.get(product, product)
    return {"sentence": f"{name} {wait.reason}", "waiting": _waiting(session, tenant_id),
            "next_try": datetime.fromtimestamp(wait.until, UTC).isoformat(),
            "status": wait.status}
