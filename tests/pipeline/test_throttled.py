"""A site that refuses or fails our calls as a whole: its events wait, then apply in order."""

from __future__ import annotations

import time
from typing import Any

import pytest
from redis import Redis
from rq.job import Job
from rq.serializers import JSONSerializer
from sqlalchemy import func, select

from connect.host_client import HostError
from connect.models import WebhookEvent
from jobs import pipeline as jobs
from jobs import throttle
from plugin.pipeline import relay
from tests.pipeline.test_drain import titles
from tests.pipeline.test_events import T_A, ms, store_events
from tests.pipeline.test_relay import run_worker
from tests.pipeline.test_rereads import ISSUE_PATH, comment_event, due_now, load_issues


def _time_is_up(connection: Redis, tenant_id: int) -> None:
    """What waiting out the site's time would do (tests do not wait minutes)."""
    connection.hset(throttle.key(tenant_id), "until", time.time() - 1)


def _untouched(site: Any, ids: list[int]) -> bool:
    with site.db.session() as session:
        rows = session.execute(select(WebhookEvent.processed_at, WebhookEvent.attempts)
                               .where(WebhookEvent.id.in_(ids))).all()
    return all(done is None and attempts == 0 for done, attempts in rows)


def test_an_outage_holds_the_sites_events_with_a_growing_back_off_then_applies_them(
    sqlite_url: str, make_site: Any, redis_url: str
) -> None:
    site = make_site(sqlite_url, redis_url=redis_url)
    shown = load_issues(site, 3)
    ids = store_events(site, site.tenant_id, "jira",
                       [comment_event(shown[n % 3], "created", ms(T_A) + n) for n in range(12)])
    site.host.inject(ISSUE_PATH, 503, times=10_000)  # no Retry-After: an outage, not a limit
    connection = Redis.from_url(redis_url)

    before = time.time()
    assert jobs.drain_events(site.tenant_id) == 0
    wait = throttle.current(connection, site.tenant_id)
    assert wait is not None and wait.status == 503 and wait.failures == 1
    # Set during the drain: its back-off from a moment between the call and now (a loaded
    # machine may take over a second for the drain itself).
    assert before + throttle.FIRST_BACKOFF <= wait.until <= time.time() + throttle.FIRST_BACKOFF
    assert _untouched(site, ids)  # handed back untried, and no event has a job of its own
    assert not any(Job.exists(relay.event_job_id(i), connection=connection) for i in ids)

    asked = len(site.host.calls_to(ISSUE_PATH))
    assert jobs.drain_events(site.tenant_id) == 0  # a webhook's drain meanwhile asks nothing
    assert len(site.host.calls_to(ISSUE_PATH)) == asked

    _time_is_up(connection, site.tenant_id)
    before = time.time()
    assert jobs.drain_events(site.tenant_id) == 0  # still down: the wait doubles
    wait = throttle.current(connection, site.tenant_id)
    assert wait is not None and wait.failures == 2
    doubled = 2 * throttle.FIRST_BACKOFF
    assert before + doubled <= wait.until <= time.time() + doubled

    with site.host.lock:
        site.host.injections.clear()  # the site is back
    _time_is_up(connection, site.tenant_id)
    due_now(connection, Job.fetch(relay.drain_job_id(site.tenant_id), connection=connection,
                                  serializer=JSONSerializer))
    run_worker(redis_url)
    assert titles(site) == {i["key"]: i["fields"]["summary"] for i in shown}
    with site.db.session() as session:
        assert session.scalar(select(func.count()).where(
            WebhookEvent.id.in_(ids), WebhookEvent.processed_at.is_(None))) == 0
    assert throttle.current(connection, site.tenant_id) is None  # nothing shown any more
    connection.close()


def test_a_site_too_slow_to_answer_waits_like_one_that_refuses(
    sqlite_url: str, make_site: Any, redis_url: str, monkeypatch: Any
) -> None:
    site = make_site(sqlite_url, redis_url=redis_url)
    shown = load_issues(site, 2)
    ids = store_events(site, site.tenant_id, "jira",
                       [comment_event(shown[n % 2], "created", ms(T_A) + n) for n in range(4)])
    original = jobs.drain_client_for

    def impatient(tenant: Any) -> Any:
        client = original(tenant)
        client.session.timeout = (1.0, 0.5)  # the site takes 2 s a call: it times out
        return client

    monkeypatch.setattr(jobs, "drain_client_for", impatient)
    site.host.latency = 2.0
    connection = Redis.from_url(redis_url)

    assert jobs.drain_events(site.tenant_id) == 0

    wait = throttle.current(connection, site.tenant_id)
    assert wait is not None and wait.status == 0 and "not answering" in wait.reason
    assert _untouched(site, ids)
    connection.close()


def test_an_events_own_job_neither_asks_a_waiting_site_nor_spends_an_attempt(
    sqlite_url: str, make_site: Any, redis_url: str
) -> None:
    site = make_site(sqlite_url, redis_url=redis_url)
    shown = load_issues(site, 2)
    first, second = store_events(site, site.tenant_id, "jira",
                                 [comment_event(shown[n], "created", ms(T_A) + n) for n in range(2)])
    site.host.inject(ISSUE_PATH, 503, times=10_000)
    connection = Redis.from_url(redis_url)

    with pytest.raises(HostError):
        jobs.process_event(first)  # its own job (its batch failed): the site refuses it
    wait = throttle.current(connection, site.tenant_id)
    assert wait is not None and wait.status == 503  # so the site's other events wait too
    asked = len(site.host.calls_to(ISSUE_PATH))
    with pytest.raises(jobs.SiteWaiting):
        jobs.process_event(second)
    assert len(site.host.calls_to(ISSUE_PATH)) == asked
    with site.db.session() as session:
        assert session.get(WebhookEvent, second).attempts == 0
    connection.close()


def test_refusals_of_one_episode_count_once_and_a_retry_after_is_no_failure(redis_url: str) -> None:
    connection = Redis.from_url(redis_url)
    tenant = 9_001
    connection.delete(throttle.key(tenant))
    first = throttle.record(connection, tenant, 503, None)
    ends = throttle.current(connection, tenant)
    # The batches of concurrent drains are refused at the same moment: one failure, one wait.
    for _ in range(3):
        assert throttle.record(connection, tenant, 503, None) <= first
    again = throttle.current(connection, tenant)
    assert ends is not None and again == ends and again.failures == 1
    # The site's own schedule: a longer Retry-After lengthens the wait without counting a failure.
    assert throttle.record(connection, tenant, 429, 60) == 60
    wait = throttle.current(connection, tenant)
    assert wait is not None and wait.status == 429 and wait.failures == 1 and wait.until > ends.until
    _time_is_up(connection, tenant)
    assert throttle.record(connection, tenant, 503, None) == 2 * throttle.FIRST_BACKOFF  # the next in a row
    connection.delete(throttle.key(tenant))
    connection.close()


def test_a_drain_that_finds_the_site_waiting_leaves_a_drain_for_the_end_of_the_wait(
    sqlite_url: str, make_site: Any, redis_url: str
) -> None:
    from rq.registry import ScheduledJobRegistry

    from jobs.core import get_queue

    site = make_site(sqlite_url, redis_url=redis_url)
    shown = load_issues(site, 1)
    ids = store_events(site, site.tenant_id, "jira", [comment_event(shown[0], "created", ms(T_A))])
    connection = Redis.from_url(redis_url)
    # A wait no drain scheduled itself after: an event's own job met the refusal (or rq's
    # scheduler, which counts whole seconds, started the drain scheduled for it a moment early).
    throttle.record(connection, site.tenant_id, 429, retry_after=3)
    until = throttle.current(connection, site.tenant_id).until  # type: ignore[union-attr]

    assert jobs.drain_events(site.tenant_id) == 0  # a webhook's drain meanwhile
    assert _untouched(site, ids)
    registry = ScheduledJobRegistry(queue=get_queue(connection))
    [scheduled] = [j for j in registry.get_job_ids() if j.startswith(relay.drain_job_id(site.tenant_id))]
    assert registry.get_scheduled_time(scheduled).timestamp() >= until
    connection.close()
