"""A verdict re-ranks the viewed item's stored suggestions: soon with Redis, at once without."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connect.models import WebhookEvent
from jobs import pipeline as jobs
from jobs.core import redis_connection
from plugin.matching import precompute
from plugin.models.content import Item
from tests.pipeline.test_events import T_A, host_view, snapshot
from tests.pipeline.test_refresh import two_issue_site, two_stored_issues
from tests.pipeline.test_relay import post_webhook, run_worker

VIEWERS = ("carol", "dave", "erin")


def _ids(site: Any) -> tuple[int, int]:
    """The viewed issue (AMQ-2) and its one suggestion (AMQ-1)."""
    with site.db.session() as session:
        ids = dict(session.execute(select(Item.key, Item.id)).tuples().all())
    return ids["AMQ-2"], ids["AMQ-1"]


def _reasons(site: Any, item_id: int, target_id: int) -> list[str]:
    """Why the stored suggestions of the item give the target, as last stored."""
    with site.db.session() as session:
        stored = precompute.stored_suggestions(session, site.tenant_id, item_id)
    assert stored is not None
    [suggestion] = [s for s in stored["reuse"] if s.item_id == target_id]
    return list(suggestion.reasons)


def _helped(site: Any, target_id: int, viewer: str) -> int:
    """A viewer says the target helped, on AMQ-2's panel."""
    response = site.app.test_client().post(
        "/api/feedback", json={"source": "jira", "key": "AMQ-2", "target_item_id": target_id,
                               "verdict": "helped"}, headers=site.auth.context_headers(sub=viewer))
    return int(response.status_code)


def test_verdicts_queue_one_refresh_of_the_viewed_item_and_its_reasons_follow(
    database_url: str, make_site: Any, redis_url: str
) -> None:
    site = two_stored_issues(make_site(database_url, redis_url=redis_url), redis_url)
    viewed, target = _ids(site)
    assert not any("helped" in reason for reason in _reasons(site, viewed, target))
    for viewer in VIEWERS:
        assert _helped(site, target, viewer) == 200
    connection = redis_connection(redis_url)
    assert [int(m) for m in connection.zrange(jobs.refresh_key(site.tenant_id), 0, -1)] == [viewed]
    waiting = [k.decode().removeprefix("rq:job:") for k in connection.keys("rq:job:refresh-*")]
    assert waiting == [f"refresh-{site.tenant_id}"]  # one for the burst of verdicts
    assert not any("helped" in reason for reason in _reasons(site, viewed, target))  # not yet
    run_worker(redis_url)
    assert "helped 3 people before" in _reasons(site, viewed, target)
    assert connection.zcard(jobs.refresh_key(site.tenant_id)) == 0


def test_without_redis_a_verdict_refreshes_the_viewed_item_at_once(
    database_url: str, make_site: Any
) -> None:
    site = two_issue_site(make_site(database_url))
    for n, key in enumerate(("AMQ-1", "AMQ-2"), start=1):
        issue = host_view(site, key)
        assert post_webhook(site, n, snapshot(issue, issue["fields"]["summary"], T_A)) < 300
    with site.db.session() as session:
        events = session.scalars(select(WebhookEvent.id).order_by(WebhookEvent.id)).all()
    for event_id in events:
        jobs.process_event(event_id)  # no Redis: each refreshes its item there and then
    viewed, target = _ids(site)
    assert not any("helped" in reason for reason in _reasons(site, viewed, target))
    assert _helped(site, target, VIEWERS[0]) == 200
    assert "helped 1 person before" in _reasons(site, viewed, target)
