"""Redis full (maxmemory reached, noeviction): webhooks are still stored and acknowledged,
enqueues fail softly, and the relay catches up by itself once memory frees."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import func, select

from connect.models import WebhookEvent
from jobs import pipeline as jobs
from jobs.core import QUEUE_DEFAULT, get_queue
from tests.conftest import ROOT
from tests.matching.helpers import database
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


def _wait_for_line(proc: subprocess.Popen, text: str, timeout: float = 30.0) -> str:
    """Read the process's output until a line holds `text`; what was read."""
    assert proc.stdout is not None
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode(errors="replace")
        seen.append(line)
        if text in line:
            return "".join(seen)
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"no line with {text!r} in:\n{''.join(seen)[-3000:]}")


def test_a_worker_that_redis_refuses_waits_for_room_and_works_on(
    sqlite_url: str, redis_url: str, full_redis: Redis, index_dir: Path
) -> None:
    database(sqlite_url)
    queue = get_queue(full_redis, QUEUE_DEFAULT)
    proc = subprocess.Popen([sys.executable, "-m", "plugin.cli", "worker", "--schedule", "none"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": sqlite_url})
    try:
        queue.enqueue("tests.pipeline.redis_jobs.fill_redis")  # the end of this job cannot be recorded
        _wait_for_line(proc, "waiting for room")
        time.sleep(2)
        assert proc.poll() is None, "the worker exited instead of waiting"
        full_redis.config_set("maxmemory", "0")  # memory freed
        _wait_for_line(proc, "takes writes again")
        queue.enqueue("tests.pipeline.redis_jobs.note_done", "after-room")
        deadline = time.monotonic() + 30
        while not full_redis.exists("after-room") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert full_redis.exists("after-room"), "the worker did not work on"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0
