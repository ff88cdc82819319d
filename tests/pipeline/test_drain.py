"""Batches: a tenant's events applied many per transaction, with the one-by-one outcome."""

from __future__ import annotations

import random
import threading
from typing import Any

from redis import Redis
from rq.job import Job
from rq.serializers import JSONSerializer
from sqlalchemy import select

from connect.models import WebhookEvent
from jobs import pipeline as jobs
from plugin.models.content import Item
from plugin.pipeline import events, fetch, relay
from tests.pipeline.conftest import Site, v2_issue
from tests.pipeline.test_events import (
    T_A,
    add_tenant,
    final_state,
    in_order,
    jira_time,
    ms,
    snapshot,
    store_events,
)
from tests.pipeline.test_relay import (
    assert_applied_on_second_attempt,
    kill_worker_mid_read,
    retry_abandoned,
    run_worker,
)


def test_one_batch_of_shuffled_duplicated_events_gives_the_in_order_state(
    database_url: str, make_site: Any
) -> None:
    site = make_site(database_url)
    script, expected = in_order(site)
    client = site.client()
    for seed in (1, 2):
        tenant_id = add_tenant(site, seed)
        ids = store_events(site, tenant_id, "jira", script + script)
        random.Random(seed).shuffle(ids)
        cut = len(ids) // 3  # two batches, each with events of the same items
        for batch in (ids[:cut], ids[cut:]):
            with site.db.session() as session:
                applied = events.process_events(session, tenant_id, batch, lambda t: client)
            assert applied == len(batch)
        assert final_state(site, tenant_id) == expected


def updates(site: Site, count: int, items: int, extra: list | None = None
            ) -> tuple[list[int], dict[str, str]]:
    """`count` stored issue updates over `items` issues (then `extra` events); returns their ids
    and each issue's newest title."""
    issues = [v2_issue(f"AMQ-{n}", 5000 + n, f"Issue {n}", jira_time(T_A)) for n in range(items)]
    site.host.load_jira_issues(issues)
    script, newest = [], {}
    rng = random.Random(7)
    for _ in range(count):
        issue = issues[rng.randrange(items)]
        stamp = ms(T_A) + rng.randrange(10_000_000)
        title = f"{issue['key']} at {stamp}"
        moment = T_A.fromtimestamp(stamp / 1000, T_A.tzinfo)
        script.append(("jira:issue_updated", {"issue": snapshot(issue, title, moment)}, stamp))
        if newest.get(issue["key"], ("", -1))[1] <= stamp:
            newest[issue["key"]] = (title, stamp)
    ids = store_events(site, site.tenant_id, "jira", script + (extra or []))
    return ids, {key: title for key, (title, _) in newest.items()}


def titles(site: Site) -> dict[str, str]:
    with site.db.session() as session:
        return dict(session.execute(select(Item.key, Item.title)).all())


def test_two_workers_draining_one_tenant_apply_each_event_once_and_converge(
    database_url: str, make_site: Any, redis_url: str, monkeypatch: Any
) -> None:
    site = make_site(database_url, redis_url=redis_url)  # refreshes are queued, not run
    monkeypatch.setattr(jobs, "DRAIN_SECONDS", 120.0)
    ids, newest = updates(site, 300, 25)
    errors: list[BaseException] = []

    def drain() -> None:
        try:
            jobs.drain_events(site.tenant_id)
        except BaseException as exc:  # noqa: BLE001  (reported by the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    with site.db.session() as session:
        rows = session.execute(
            select(WebhookEvent.processed_at, WebhookEvent.attempts).where(WebhookEvent.id.in_(ids))
        ).all()
    assert all(processed is not None and attempts == 1 for processed, attempts in rows)
    assert titles(site) == newest


def test_a_failing_event_gets_its_own_retrying_job_and_the_rest_of_its_batch_is_applied(
    sqlite_url: str, make_site: Any, redis_url: str
) -> None:
    site = make_site(sqlite_url, redis_url=redis_url)
    comment = {"id": "9", "author": {"accountId": "carol"}, "body": "x", "created": jira_time(T_A)}
    ids, newest = updates(site, 30, 10, [
        ("comment_created", {"comment": comment, "issue": {"id": "5001", "key": "AMQ-1"}},
         ms(T_A))])
    broken = ids.pop()
    site.host.inject(fetch.BULK_PATH, 500, times=1000)
    connection = Redis.from_url(redis_url)
    assert jobs.enqueue_drain(connection, site.tenant_id)
    run_worker(redis_url)
    assert titles(site) == newest
    with site.db.session() as session:
        event = session.get(WebhookEvent, broken)
        assert event.processed_at is None and event.error and event.attempts == 2
        assert session.scalar(select(WebhookEvent.id).where(
            WebhookEvent.id.in_(ids), WebhookEvent.processed_at.is_(None))) is None
    job = Job.fetch(relay.event_job_id(broken), connection=connection, serializer=JSONSerializer)
    assert job.get_status() == "scheduled"  # retried with back-off, then rq's failed registry
    assert job.retries_left == jobs.EVENT_RETRY.max - 1
    connection.close()


def test_a_drain_whose_worker_is_killed_leaves_its_batch_to_the_relay_with_the_right_result(
    sqlite_url: str, make_site: Any, redis_url: str
) -> None:
    site = make_site(sqlite_url, redis_url=redis_url)
    comment = {"id": "5", "author": {"accountId": "carol"}, "body": "Same",
               "created": jira_time(T_A)}
    site.host.load_jira_issues([v2_issue("AMQ-1", 1001, "Broker drops messages", jira_time(T_A),
                                         comment={"comments": [comment], "total": 1})])
    [event_id] = store_events(site, site.tenant_id, "jira", [
        ("comment_created", {"comment": comment, "issue": {"id": "1001", "key": "AMQ-1"}},
         ms(T_A))])
    connection = Redis.from_url(redis_url)
    assert jobs.enqueue_drain(connection, site.tenant_id)
    kill_worker_mid_read(site, sqlite_url, redis_url, fetch.BULK_PATH)
    retry_abandoned(connection, redis_url)  # the drain again: the claimed event is not its any more
    relayed = jobs.relay_pending_events(grace_seconds=0)
    if not relayed:  # on a loaded machine the retry may still have been scheduled, not yet run
        run_worker(redis_url)
        relayed = jobs.relay_pending_events(grace_seconds=0)
    assert relayed == 1  # so it gets its own job
    run_worker(redis_url)
    connection.close()
    assert_applied_on_second_attempt(site, event_id, "Same")
