"""Fairness between sites: one site's backlog never keeps another site's fresh events waiting."""

from __future__ import annotations

from typing import Any

from redis import Redis
from sqlalchemy import func, select

from connect.models import WebhookEvent
from jobs import pipeline as jobs
from jobs.core import QUEUE_BACKLOG, QUEUE_DEFAULT, get_queue, job_status
from plugin.models.content import StoredSuggestion
from plugin.pipeline import relay
from tests.pipeline.conftest import v2_issue
from tests.pipeline.test_drain import updates
from tests.pipeline.test_events import T_A, add_tenant, jira_time, ms, snapshot, store_events
from tests.pipeline.test_relay import run_worker


def _quiet_event(site: Any, tenant_id: int) -> int:
    issue = v2_issue("OPS-1", 9001, "Queue stalls after failover", jira_time(T_A))
    [event_id] = store_events(site, tenant_id, "jira", [
        ("jira:issue_updated", {"issue": snapshot(issue, "Queue stalls", T_A)}, ms(T_A))])
    return event_id


def test_a_noisy_sites_backlog_yields_to_a_quiet_sites_event_and_its_refresh(
    sqlite_url: str, make_site: Any, redis_url: str, monkeypatch: Any
) -> None:
    site = make_site(sqlite_url, redis_url=redis_url)
    monkeypatch.setattr(relay, "CLAIM", 20)  # the backlog is ten batches
    noisy_ids, _ = updates(site, 200, 20)
    quiet = add_tenant(site, 1)
    quiet_id = _quiet_event(site, quiet)
    connection = Redis.from_url(redis_url)
    assert jobs.enqueue_drain(connection, site.tenant_id)  # the noisy site's drain is first
    assert jobs.enqueue_drain(connection, quiet)

    run_worker(redis_url)

    with site.db.session() as session:
        quiet_at = session.get(WebhookEvent, quiet_id).processed_at
        noisy_at = dict(session.execute(select(WebhookEvent.id, WebhookEvent.processed_at)
                                        .where(WebhookEvent.id.in_(noisy_ids))).all())
        fresh_at = session.scalar(select(func.min(StoredSuggestion.computed_at))
                                  .where(StoredSuggestion.tenant_id == quiet))
    assert all(noisy_at.values()) and quiet_at is not None
    # The noisy drain applied one batch, saw the quiet site's drain waiting and yielded.
    assert sum(at < quiet_at for at in noisy_at.values()) <= relay.CLAIM
    # The quiet site's suggestions were refreshed before the noisy backlog was through.
    assert fresh_at is not None and fresh_at < max(noisy_at.values())
    connection.close()


def test_a_drain_that_used_its_time_continues_on_the_backlog_queue(
    sqlite_url: str, make_site: Any, redis_url: str, monkeypatch: Any
) -> None:
    site = make_site(sqlite_url, redis_url=redis_url)
    monkeypatch.setattr(relay, "CLAIM", 20)
    monkeypatch.setattr(jobs, "DRAIN_SECONDS", 0.0)  # one batch, then its turn is over
    updates(site, 60, 10)
    connection = Redis.from_url(redis_url)

    assert jobs.drain_events(site.tenant_id) == 0  # no time at all: nothing claimed

    base = relay.drain_job_id(site.tenant_id)
    assert job_status(connection, base) == "queued"
    assert get_queue(connection, QUEUE_BACKLOG).job_ids == [base]
    assert get_queue(connection, QUEUE_DEFAULT).count == 0
    connection.close()


def test_the_relay_finds_a_quiet_sites_stray_event_behind_a_noisy_sites_long_backlog(
    sqlite_url: str, make_site: Any, monkeypatch: Any
) -> None:
    from datetime import timedelta

    site = make_site(sqlite_url)
    monkeypatch.setattr(relay, "BATCH", 5)  # the noisy backlog is longer than a relay run reads
    issue = v2_issue("AMQ-1", 1001, "Broker drops messages", jira_time(T_A))
    store_events(site, site.tenant_id, "jira", [
        ("jira:issue_updated", {"issue": snapshot(issue, f"Edit {n}", T_A)}, ms(T_A) + n)
        for n in range(10)])
    quiet = add_tenant(site, 1)
    _quiet_event(site, quiet)  # its webhook's enqueue was lost (Redis away a moment)
    with site.db.session() as session:  # after the backlog in host time
        session.execute(WebhookEvent.__table__.update().where(WebhookEvent.tenant_id == quiet)
                        .values(event_ts=ms(T_A) + 100))
    drained: list[int] = []
    outlet = relay.Outlet(job_live=lambda job_id: False, enqueue_event=lambda event_id: True,
                          drain_live=lambda tenant_id: tenant_id == site.tenant_id,  # it drains
                          enqueue_drain=lambda tenant_id: not drained.append(tenant_id))
    with site.db.session() as session:
        assert relay.relay(session, outlet, grace=timedelta(0)) == 1
    assert drained == [quiet]
