"""Reconciliation catches missed changes and failed deliveries; the watermark moves on success."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from connect.db import utcnow
from connect.models import WebhookEvent
from connect.strings import all_storable
from jobs import pipeline as jobs
from plugin.models.content import Item
from plugin.models.pipeline import Watermark
from plugin.pipeline import reconcile
from tests.pipeline.conftest import Site, v2_issue
from tests.pipeline.test_events import jira_time


def keys(site: Site) -> set[str]:
    with site.db.session() as session:
        return set(session.scalars(select(Item.key).where(Item.tenant_id == site.tenant_id)))


def watermark(site: Site) -> Watermark | None:
    with site.db.session() as session:
        return session.scalar(select(Watermark).where(Watermark.tenant_id == site.tenant_id))


def test_jira_reconcile_applies_recent_changes_and_failed_webhooks_then_advances(
    sqlite_url: str, make_site: Any
) -> None:
    site = make_site(sqlite_url)
    now = utcnow()
    site.host.load_jira_issues(
        [
            v2_issue("AMQ-1", 1001, "Recently changed", jira_time(now - timedelta(minutes=10))),
            v2_issue("AMQ-2", 1002, "Also recent", jira_time(now - timedelta(minutes=20))),
            v2_issue("AMQ-3", 1003, "Untouched for long", jira_time(now - timedelta(days=3))),
        ]
    )
    site.host.add_failed_webhook(
        {
            "webhookEvent": "jira:issue_deleted",
            "timestamp": int(now.timestamp() * 1000) + 1000,
            "issue": {"id": "1002", "key": "AMQ-2"},
        },
        url=f"{site.app.config['INFLOW_BASE_URL']}/webhooks/jira/issue_deleted",
    )
    assert watermark(site) is None

    result = jobs.reconcile_tenant(site.tenant_id)
    assert result == {"changed": 2, "failed_webhooks": 1}
    assert keys(site) == {"AMQ-1"}  # AMQ-2's missed deletion came from the failed list
    mark = watermark(site)
    assert mark.value >= now and mark.last_error is None

    # A second run sees the same failed delivery again and stores nothing twice.
    assert jobs.reconcile_tenant(site.tenant_id)["failed_webhooks"] == 0


def test_a_failed_reconcile_keeps_the_watermark_and_records_the_error(
    sqlite_url: str, make_site: Any
) -> None:
    site = make_site(sqlite_url)
    site.host.load_jira_issues([v2_issue("AMQ-1", 1001, "Changed", jira_time(utcnow()))])
    jobs.reconcile_tenant(site.tenant_id)
    before = watermark(site).value
    site.host.inject("/rest/api/3/search/jql", 500, times=1)
    with pytest.raises(Exception, match="500"):
        jobs.reconcile_tenant(site.tenant_id)
    mark = watermark(site)
    assert mark.value == before and "500" in mark.last_error


def test_confluence_reconcile_reads_pages_changed_since_the_watermark(
    sqlite_url: str, make_site: Any
) -> None:
    site = make_site(sqlite_url, "confluence")
    stamp = (utcnow() - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    site.host.load_confluence_pages(
        [
            {
                "id": "501",
                "status": "current",
                "title": "Fresh page",
                "spaceId": "1",
                "authorId": "erin",
                "createdAt": stamp,
                "version": {"number": 2, "authorId": "erin", "createdAt": stamp},
                "body": {"storage": {"representation": "storage", "value": "<p>New runbook</p>"}},
            },
            {
                "id": "502",
                "status": "current",
                "title": "Stale page",
                "spaceId": "1",
                "authorId": "erin",
                "createdAt": "2020-01-01T00:00:00.000Z",
                "version": {
                    "number": 1,
                    "authorId": "erin",
                    "createdAt": "2020-01-01T00:00:00.000Z",
                },
                "body": {"storage": {"representation": "storage", "value": "<p>Old</p>"}},
            },
        ]
    )
    assert reconcile.reconcile_tenant(site.db, site.tenant_id, jobs.client_for) == {"changed": 1}
    assert keys(site) == {"501"}


@pytest.mark.parametrize("odd", [{"timestamp": 10**30}, {"timestamp": "soon"}, {"timestamp": [1]},
                                 {"issue": "AMQ-2"}, {"pad": "\x00"}, {"body": "{not json"}])
def test_a_failed_delivery_of_odd_shape_does_not_fail_the_reconciliation(
    sqlite_url: str, make_site: Any, odd: dict[str, Any]
) -> None:
    """What Jira failed to deliver is the signed webhook body: the intake's checks apply to it too,
    or one odd body fails every hourly run and the watermark never moves."""
    site = make_site(sqlite_url)
    body = {"webhookEvent": "jira:issue_deleted", "timestamp": int(utcnow().timestamp() * 1000),
            "issue": {"id": "1002", "key": "AMQ-2"}, **odd}
    site.host.add_failed_webhook(body, url=f"{site.app.config['INFLOW_BASE_URL']}/webhooks/jira/issue_deleted")
    if "body" in odd:  # what Jira lists, not JSON at all
        site.host.store.failed_webhooks[-1]["body"] = odd["body"]
    jobs.reconcile_tenant(site.tenant_id)
    assert watermark(site).last_error is None
    with site.db.session() as session:  # a NUL, which PostgreSQL refuses, is cleaned as at the intake
        assert all(all_storable(p) for p in session.scalars(select(WebhookEvent.payload)))


def test_an_item_reconcile_finds_enters_its_neighbours_stored_suggestions(
    sqlite_url: str, make_site: Any, redis_url: str
) -> None:
    from plugin.matching import precompute
    from plugin.pipeline import backfill
    from tests.pipeline.test_relay import run_worker

    site = make_site(sqlite_url, redis_url=redis_url)
    old = utcnow() - timedelta(days=3)
    site.host.load_jira_issues([
        v2_issue("AMQ-1", 1001, "Broker drops persistent messages on restart", jira_time(old))])
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    backfill.fill_suggestions(site.db, site.tenant_id)
    # A new issue whose webhook never came: the reconciliation finds it.
    site.host.load_jira_issues([v2_issue("AMQ-2", 1002, "Persistent messages lost when the broker restarts",
                                         jira_time(utcnow() - timedelta(minutes=5)))])
    assert jobs.reconcile_tenant(site.tenant_id)["changed"] == 1
    run_worker(redis_url)
    with site.db.session() as session:
        first = session.scalar(select(Item.id).where(Item.key == "AMQ-1"))
        stored = precompute.stored_suggestions(session, site.tenant_id, first)
    assert stored is not None and [s.key for s in stored["reuse"]][:1] == ["AMQ-2"]
