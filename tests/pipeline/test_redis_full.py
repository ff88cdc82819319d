"""Redis full (maxmemory reached, noeviction): webhooks are still stored and acknowledged,
enqueues fail softly, and the relay catches up by itself once memory frees."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import func, select

from connect.models import WebhookEvent
from jobs import pipeline as jobs
from tests.pipeline.conftest import v2_issue
from tests.pipeline.test_drain import titles
from tests.pipeline.test_events import T_A, jira_time
from tests.pipeline.test_relay import post_webhook, run_worker


@pytest.fixture
def full_redis(redis_url: str) -> Iterator[Redis]:
    """The test's Valkey, made full on demand and given its memory back afterwards."""
    connection = Redis.from_url(redis_url)
    connection.config_set("maxmemory-policy", "noeviction")
    yield connection
    connection.config_set("maxmemory", "0")
    connection.close()


def fill(connection: Redis) -> None:
    """maxmemory below what it uses: every write that needs memory is refused with OOM."""
    used = int(connection.info("memory")["used_memory"])
    connection.config_set("maxmemory", str(used // 2))


def test_webhooks_while_redis_is_full_are_acknowledged_and_applied_once_it_has_room(
    sqlite_url: str, make_site: Any, redis_url: str, full_redis: Redis
) -> None:
    site = make_site(sqlite_url, redis_url=redis_url)
    issues = [v2_issue(f"AMQ-{n}", 100 + n, f"Broker {n} stalls", jira_time(T_A))
              for n in range(5)]
    fill(full_redis)
    with pytest.raises(Exception, match="maxmemory"):
        full_redis.set("probe", "x")  # it is full indeed

    assert [post_webhook(site, n, issue) for n, issue in enumerate(issues)] == [202] * 5
    assert jobs.relay_pending_events(grace_seconds=0) == 0  # enqueue refused: nothing raised
    with site.db.session() as session:
        assert session.scalar(select(func.count()).where(
            WebhookEvent.processed_at.is_(None))) == 5  # stored: the outbox holds them

    full_redis.config_set("maxmemory", "0")  # memory freed
    assert jobs.relay_pending_events(grace_seconds=0) == 5
    run_worker(redis_url)
    assert titles(site) == {i["key"]: i["fields"]["summary"] for i in issues}
