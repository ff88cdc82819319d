"""Reconciliation: catch what webhooks missed (searches since the watermark, failed deliveries).

Failed deliveries are Connect's: Jira lets only Connect apps list them; Forge retries its own.

The watermark is the start time of the last run that completed; it advances only when every step
succeeded, so a failed run is simply repeated (re-applying items is idempotent). JQL and CQL read
absolute dates in the app user's time zone, which the app does not know: JQL gets a relative
offset ("-90m", the same instant everywhere); CQL gets an absolute UTC time moved back by the
widest time-zone offset (14 h), so a few items are re-read rather than any missed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connect.db import Database, utcnow
from connect.forge import ForgeHostClient
from connect.models import Tenant, WebhookEvent
from connect.strings import all_storable, cleaned
from connect.webhooks import jira_item_ref, malformed, sane_ms
from plugin.content.normalize import jira_issue_to_doc
from plugin.models.pipeline import Watermark
from plugin.pipeline import events, fetch, versions
from plugin.services import accounts

SKEW = timedelta(minutes=5)
FIRST_LOOKBACK = timedelta(days=1)
TZ_MARGIN = timedelta(hours=14)
PAGE = 100


def _watermark(session: Session, tenant_id: int, source: str) -> Watermark | None:
    return session.scalar(
        select(Watermark).where(Watermark.tenant_id == tenant_id, Watermark.source == source)
    )


def since_minutes(mark: datetime | None, now: datetime) -> int:
    """Minutes to look back: to the watermark minus the clock skew allowance."""
    start = (mark or now - FIRST_LOOKBACK) - SKEW
    return max(1, math.ceil((now - start).total_seconds() / 60))


# Told the ids of items a committed step changed, to refresh their stored suggestions (the jobs
# layer: once the search index has them); without it they are refreshed in the step itself.
Refresh = Callable[[list[int]], None]


def _apply(session: Session, tenant_id: int, doc: Any, refresh: Refresh | None,
           changed: list[int]) -> bool:
    """Apply one re-read document; a stored item's id joins `changed` when `refresh` takes it."""
    stored = versions.apply_doc(session, tenant_id, doc, versions.to_ms(doc.updated),
                                refresh=refresh is None)
    if stored is not None:
        changed.append(stored)
    return stored is not None


def _committed(refresh: Refresh | None, changed: list[int]) -> None:
    """Tell `refresh` what a committed step changed."""
    if refresh is not None and changed:
        refresh(changed)


def _jira_changed(db: Database, tenant: Tenant, client: Any, minutes: int,
                  refresh: Refresh | None = None) -> int:
    jql = f'updated >= "-{minutes}m" ORDER BY updated ASC'
    site, token, count = tenant.display_url or tenant.base_url, None, 0
    while True:
        page = client.jira().enhanced_jql(
            jql, fields=fetch.JIRA_FIELDS, nextPageToken=token, limit=PAGE
        )
        changed: list[int] = []
        with db.session() as session:
            for issue in page.get("issues") or []:
                count += _apply(session, tenant.id, jira_issue_to_doc(issue, site), refresh, changed)
        _committed(refresh, changed)
        token = page.get("nextPageToken")
        if not token or page.get("isLast"):
            return count


def _confluence_changed(db: Database, tenant: Tenant, client: Any, minutes: int,
                        refresh: Refresh | None = None) -> int:
    since = utcnow() - timedelta(minutes=minutes) - TZ_MARGIN
    cql = f'type in (page, blogpost) and lastmodified >= "{since:%Y/%m/%d %H:%M}"'
    path: str | None = "/wiki/rest/api/content/search"
    params: dict[str, Any] | None = {"cql": cql, "limit": PAGE}
    site, count = tenant.display_url or tenant.base_url, 0
    spaces: dict[str, Any] = {}
    while path:
        data = client.request("GET", path, params=params).json()
        for hit in data.get("results") or []:
            kind = "blogpost" if hit.get("type") == "blogpost" else "page"
            doc = fetch.confluence_item(client, kind, str(hit["id"]), site, spaces)
            if doc is not None:
                changed: list[int] = []
                with db.session() as session:
                    doc = accounts.screened(session, tenant.id, client, [doc])[0]
                    count += _apply(session, tenant.id, doc, refresh, changed)
                _committed(refresh, changed)
        path, params = fetch.next_path(data), None
    return count


def _store_failed(session: Session, tenant_id: int, failed: dict[str, Any]) -> int | None:
    """Store one failed delivery as an event row (once: same key as the webhook would have had)."""
    payload = _failed_payload(failed)
    if payload is None:
        return None
    key = f"id:{failed.get('id')}"
    existing = session.scalar(
        select(WebhookEvent).where(
            WebhookEvent.tenant_id == tenant_id, WebhookEvent.event_key == key
        )
    )
    if existing is not None:
        return None if existing.processed_at else existing.id
    row = WebhookEvent(
        tenant_id=tenant_id,
        event_key=key,
        product="jira",
        event_type=str(payload.get("webhookEvent") or "unknown")[:128],
        item_ref=jira_item_ref(payload),
        payload=payload,
        event_ts=_event_ms(payload, failed),
    )
    session.add(row)
    session.flush()
    return row.id


def _failed_payload(failed: dict[str, Any]) -> dict[str, Any] | None:
    """The failed delivery's body as the intake stores it; None for one the intake refuses.

    Why: stored unchecked, an odd body failed the insert or the worker, and with it this run and
    every later one (the watermark never moved).
    """
    body = failed.get("body")
    try:
        payload = json.loads(body) if isinstance(body, str) else body
    except (ValueError, RecursionError):
        return None
    if not isinstance(payload, dict) or malformed("jira", payload):
        return None
    return payload if all_storable(payload) else cleaned(payload)


def _event_ms(payload: dict[str, Any], failed: dict[str, Any]) -> int:
    """The delivery's `timestamp`, else its failure time, when a sane number (as the intake's), else 0."""
    for value in (payload.get("timestamp"), failed.get("failureTime")):
        if (found := sane_ms(value)) is not None:
            return found
    return 0


def _failed_webhooks(
    db: Database, tenant: Tenant, client: Any, client_for: events.ClientFactory, minutes: int,
    refresh: Refresh | None = None,
) -> int:
    """Fetch Jira's failed deliveries for this app since the watermark, store and process each."""
    after = int((utcnow() - timedelta(minutes=minutes)).timestamp() * 1000)
    path: str | None = "/rest/api/3/webhook/failed"
    params: dict[str, Any] | None = {"maxResults": PAGE, "after": after}
    count = 0
    while path:
        data = client.request("GET", path, params=params).json()
        for failed in data.get("values") or []:
            changed: list[int] | None = None if refresh is None else []
            with db.session() as session:
                event_id = _store_failed(session, tenant.id, failed)
                if event_id is not None:
                    count += events.process_event(session, event_id, client_for, changed)
            _committed(refresh, changed or [])
        path, params = data.get("next"), None
    return count


def reconcile_tenant(
    db: Database, tenant_id: int, client_for: events.ClientFactory, now: datetime | None = None,
    refresh: Refresh | None = None,
) -> dict[str, int]:
    """One reconciliation run for a tenant; the watermark moves only if all of it succeeds.

    With `refresh`, the changed items' stored suggestions are its to refresh (see `Refresh`); a
    run that dies before telling it is repeated from the watermark and reads those items again
    (a missed deletion's neighbours excepted: its delivery is then processed).
    """
    now = now or utcnow()
    with db.session() as session:
        tenant = session.get(Tenant, tenant_id)
        mark = _watermark(session, tenant_id, tenant.product_type) if tenant else None
    if tenant is None or not tenant.installed:
        return {}
    client, minutes = client_for(tenant), since_minutes(mark.value if mark else None, now)
    try:
        result = _run(db, tenant, client, client_for, minutes, refresh)
    except Exception as exc:
        _record(db, tenant, None, f"{type(exc).__name__}: {exc}"[:2000])
        raise
    _record(db, tenant, now, None)
    return result


def _run(
    db: Database, tenant: Tenant, client: Any, client_for: events.ClientFactory, minutes: int,
    refresh: Refresh | None,
) -> dict[str, int]:
    if tenant.product_type == "confluence":
        return {"changed": _confluence_changed(db, tenant, client, minutes, refresh)}
    changed = _jira_changed(db, tenant, client, minutes, refresh)
    if isinstance(client, ForgeHostClient):
        # Jira: "Only Connect apps can use" /webhook/failed; Forge retries its own events.
        return {"changed": changed}
    return {"changed": changed,
            "failed_webhooks": _failed_webhooks(db, tenant, client, client_for, minutes, refresh)}


def _record(db: Database, tenant: Tenant, success_at: datetime | None, error: str | None) -> None:
    with db.session() as session:
        mark = _watermark(session, tenant.id, tenant.product_type)
        if mark is None:
            if success_at is None:
                return  # no watermark yet: the next run looks back the default period again
            mark = Watermark(tenant_id=tenant.id, source=tenant.product_type, value=success_at)
            session.add(mark)
        if success_at is not None:
            mark.value, mark.last_success_at = success_at, success_at
        mark.last_error = error
