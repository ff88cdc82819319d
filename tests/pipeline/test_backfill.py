"""Backfill: complete, resumable after a kill, one per tenant, honouring 429/503."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import pytest
from redis import Redis
from rq.job import Job
from rq.serializers import JSONSerializer
from sqlalchemy import func, select, update

from connect.db import utcnow
from connect.host_client import PACE
from jobs import pipeline as jobs
from plugin.models.content import Item
from plugin.models.pipeline import BackfillState
from plugin.pipeline import backfill
from tests.conftest import ROOT
from tests.pipeline.conftest import Site
from tests.pipeline.test_relay import run_worker
from tests.sandbox_site import install_into

ACTIVEMQ_ISSUES = 4649


def state(site: Site) -> BackfillState:
    with site.db.session() as session:
        return session.scalar(
            select(BackfillState).where(BackfillState.tenant_id == site.tenant_id)
        )


def stored_keys(site: Site) -> list[str]:
    with site.db.session() as session:
        return list(session.scalars(select(Item.key).where(Item.tenant_id == site.tenant_id)))


def unfilled(site: Site) -> list[int]:
    with site.db.session() as session:
        return backfill.items_without_suggestions(session, site.tenant_id, 100)


def start_cli_backfill(site: Site) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": site.database_url, "INFLOW_APP_KEY": site.host.app_key}
    return subprocess.Popen(
        [sys.executable, "-m", "plugin.cli", "backfill", "--tenant", site.auth.client_key],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for_progress(site: Site, at_least: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = state(site)
        if current is not None and current.items_done >= at_least:
            return current.items_done
        time.sleep(0.05)
    raise AssertionError("the backfill made no progress")


def test_activemq_backfill_killed_midway_resumes_from_its_checkpoint_and_stores_every_issue_once(
    sqlite_url: str, make_site: Any
) -> None:
    site = make_site(sqlite_url)
    keys = site.host.load_jira_dataset("apache-activemq")
    assert len(keys) == ACTIVEMQ_ISSUES
    worker = start_cli_backfill(site)
    try:
        wait_for_progress(site, 2000)
        running = state(site)
        # Throughput of the CLI process (the fake site serves from this one).
        rate = running.items_done / (utcnow() - running.started_at).total_seconds()
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    killed_at = state(site)
    assert 2000 <= killed_at.items_done < ACTIVEMQ_ISSUES and killed_at.checkpoint.get("next")
    searches_before = len(site.host.calls_to("/rest/api/3/search/jql"))

    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)

    stored = stored_keys(site)
    assert len(stored) == len(set(stored)) == ACTIVEMQ_ISSUES and set(stored) == set(keys)
    done = state(site)
    assert done.status == "done" and done.resumed_from_checkpoint == 1 and done.runs == 2
    resumed = site.host.calls_to("/rest/api/3/search/jql")[searches_before:]
    assert dict(resumed[0].query).get("nextPageToken") == killed_at.checkpoint["next"]
    assert len(resumed) == -(-(ACTIVEMQ_ISSUES - killed_at.items_done) // backfill.JIRA_PAGE)
    # Throughput is measured by `make bench ONLY=backfill`, never asserted in a test.
    print(f"backfill ran at {rate:.0f} issues/s")


def test_backfill_waits_out_429_retry_after_and_completes(sqlite_url: str, make_site: Any) -> None:
    site = make_site(sqlite_url)
    keys = site.host.load_jira_dataset("apache-zookeeper", limit=250)
    site.host.inject("/rest/api/3/search/jql", 429, times=2, retry_after=1)
    started = time.monotonic()
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    assert time.monotonic() - started >= 2.0  # two Retry-After: 1 waits
    statuses = [c.status for c in site.host.calls_to("/rest/api/3/search/jql")]
    assert statuses[:3] == [429, 429, 200]
    assert sorted(stored_keys(site)) == sorted(keys)


@pytest.mark.parametrize("after_pages", [1, 3])  # mid-way, and after the last page was written
def test_a_restart_asked_for_while_a_backfill_runs_starts_it_over(
    sqlite_url: str, make_site: Any, after_pages: int
) -> None:
    site = make_site(sqlite_url)
    keys = site.host.load_jira_dataset("apache-zookeeper", limit=250)  # three pages
    pages: list[int] = []

    def restart_once(done: int, total: int | None) -> None:
        pages.append(done)
        if len(pages) == after_pages:  # the admin presses "Restart" while the run goes on
            with site.db.session() as session:
                backfill.request_backfill(session, site.tenant_id, restart=True)

    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for, progress=restart_once)
    firsts = [c for c in site.host.calls_to("/rest/api/3/search/jql") if not c.param("nextPageToken")]
    assert len(firsts) == 2  # the first page was read again
    current = state(site)
    assert current.status == "done" and current.items_done == len(keys)  # counted once, from zero
    assert sorted(stored_keys(site)) == sorted(keys)


def test_a_retry_after_too_long_to_wait_fails_the_run_visibly_and_the_next_run_resumes(
    sqlite_url: str, make_site: Any
) -> None:
    site = make_site(sqlite_url)
    keys = site.host.load_jira_dataset("apache-zookeeper", limit=250)
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    with site.db.session() as session:
        backfill.request_backfill(session, site.tenant_id, restart=True)
    site.host.inject("/rest/api/3/search/jql", 503, times=1, retry_after=3600)
    with pytest.raises(Exception, match="503"):
        backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    with site.db.session() as session:
        status = backfill.backfill_status(session, site.tenant_id)
    assert status["status"] == "failed" and "503" in status["errors"][-1]["error"]
    assert PACE.remaining(site.host.base_url()) > 3000  # this process waits the hour out
    PACE.clear()  # an hour later
    with site.db.session() as session:
        backfill.request_backfill(session, site.tenant_id)
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    assert sorted(stored_keys(site)) == sorted(keys)


def test_only_one_backfill_runs_per_tenant(sqlite_url: str, make_site: Any) -> None:
    site = make_site(sqlite_url)
    site.host.load_jira_dataset("apache-zookeeper", limit=10)
    assert backfill.acquire(site.db, site.tenant_id, backfill.new_owner())  # a live holder: us
    assert not backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    assert stored_keys(site) == []


def test_confluence_backfill_stores_pages_with_their_space_keys(
    sqlite_url: str, make_site: Any
) -> None:
    site = make_site(sqlite_url, "confluence")
    ids = site.host.load_confluence_dataset(limit=300)
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    with site.db.session() as session:
        rows = session.execute(
            select(Item.key, Item.space).where(Item.tenant_id == site.tenant_id)
        ).all()
    assert sorted(k for k, _ in rows) == sorted(ids)
    assert {space for _, space in rows} <= {"TSC", "BESU", "fabric", "iroha"}


def test_install_requests_a_backfill_that_the_worker_runs_then_stores_suggestions(
    sqlite_url: str, make_site: Any, redis_url: str
) -> None:
    site = make_site(sqlite_url, redis_url=redis_url)
    keys = site.host.load_jira_dataset("apache-zookeeper", limit=40)
    with site.app.app_context():
        site.app.extensions["inflow.lifecycle_handler"]("installed", site.tenant_id)
    with site.db.session() as session:
        assert backfill.backfill_status(session, site.tenant_id)["status"] == "queued"
    job = Job.fetch(
        f"backfill-{site.tenant_id}",
        connection=Redis.from_url(redis_url),
        serializer=JSONSerializer,
    )
    assert job.get_status() == "queued"
    run_worker(redis_url)
    with site.db.session() as session:
        status = backfill.backfill_status(session, site.tenant_id)
        count = session.scalar(select(func.count(Item.id)).where(Item.tenant_id == site.tenant_id))
    assert status["status"] == "done" and status["items_done"] == count == len(keys)
    assert unfilled(site) == []


def test_a_backfill_job_killed_after_its_last_commit_still_stores_suggestions_when_retried(
    sqlite_url: str, make_site: Any, redis_url: str
) -> None:
    site = make_site(sqlite_url, redis_url=redis_url)
    site.host.load_jira_dataset("apache-zookeeper", limit=20)
    # The job's first run: the backfill commits its end, then the worker dies before the job
    # queues the suggestions it leaves to compute. rq retries the abandoned job.
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    assert not jobs.run_backfill(site.tenant_id)  # the retry: nothing left to read
    assert Job.fetch(f"suggestions-{site.tenant_id}", connection=Redis.from_url(redis_url),
                     serializer=JSONSerializer).get_status() == "queued"
    run_worker(redis_url)
    assert unfilled(site) == []


def test_a_backfill_job_that_cannot_queue_its_suggestions_fails_so_that_rq_retries_it(
    sqlite_url: str, make_site: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(sqlite_url, redis_url=redis_url)
    site.host.load_jira_dataset("apache-zookeeper", limit=5)
    monkeypatch.setattr(jobs, "enqueue_unique", lambda *args, **kwargs: False)  # Redis away
    with pytest.raises(RuntimeError, match="not queued"):
        jobs.run_backfill(site.tenant_id)


def test_cli_backfill_shows_progress_on_stderr_and_rejects_unknown_tenants(
    sqlite_url: str, make_site: Any
) -> None:
    site = make_site(sqlite_url)
    site.host.load_jira_dataset("apache-zookeeper", limit=150)
    env = {**os.environ, "DATABASE_URL": site.database_url, "INFLOW_APP_KEY": site.host.app_key}
    command = [sys.executable, "-m", "plugin.cli", "backfill", "--tenant"]
    done = subprocess.run(
        [*command, site.auth.client_key],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "150/150 items" in done.stderr and "backfill done: 150 items" in done.stderr
    unknown = subprocess.run(
        [*command, "no-such-site"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert unknown.returncode == 2 and "no tenant" in unknown.stderr


def _fill_queued(site: Site, redis_url: str) -> bool:
    connection = Redis.from_url(redis_url)
    if not connection.exists(f"rq:job:suggestions-{site.tenant_id}"):
        return False
    job = Job.fetch(f"suggestions-{site.tenant_id}", connection=connection, serializer=JSONSerializer)
    return job.get_status() == "queued"


def test_cli_backfill_queues_the_suggestions_for_the_workers(
    sqlite_url: str, make_site: Any, redis_url: str
) -> None:
    site = make_site(sqlite_url, redis_url=redis_url)
    site.host.load_jira_dataset("apache-zookeeper", limit=20)
    env = {**os.environ, "DATABASE_URL": site.database_url, "INFLOW_APP_KEY": site.host.app_key,
           "REDIS_URL": redis_url}
    done = subprocess.run([sys.executable, "-m", "plugin.cli", "backfill", "--tenant", site.auth.client_key],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "suggestions: queued for the workers" in done.stderr
    run_worker(redis_url)
    assert unfilled(site) == []


def test_reconciliation_queues_the_fill_for_items_left_without_suggestions_an_hour_on(
    sqlite_url: str, make_site: Any, redis_url: str
) -> None:
    site = make_site(sqlite_url, redis_url=redis_url)
    site.host.load_jira_dataset("apache-zookeeper", limit=20)
    # Read with no fill queued after it (as `inflow backfill` without Redis, or a fill that failed for good).
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    jobs.reconcile_tenant(site.tenant_id)
    assert not _fill_queued(site, redis_url)  # just written: their refresh may still come
    with site.db.session() as session:
        session.execute(update(Item).where(Item.tenant_id == site.tenant_id)
                        .values(indexed_at=utcnow() - timedelta(hours=2)))
    jobs.reconcile_tenant(site.tenant_id)
    assert _fill_queued(site, redis_url)
    run_worker(redis_url)
    assert unfilled(site) == []
    jobs.reconcile_tenant(site.tenant_id)
    assert not _fill_queued(site, redis_url)  # every item has its suggestions: nothing queued


def test_a_fill_stores_every_item_of_its_own_tenant_among_others_on_the_database(
    sqlite_url: str, make_site: Any
) -> None:
    site = make_site(sqlite_url)
    jira = site.host.load_jira_dataset("apache-zookeeper", limit=30)
    assert backfill.run_backfill(site.db, site.tenant_id, jobs.client_for)
    wiki = install_into(site.host, site.db, "confluence")  # its items stored after Jira's
    site.host.load_confluence_dataset(limit=30)
    assert backfill.run_backfill(site.db, wiki.tenant_id, jobs.client_for)

    assert backfill.fill_suggestions(site.db, wiki.tenant_id) == 30
    with site.db.session() as session:
        assert backfill.items_without_suggestions(session, wiki.tenant_id, 100) == []
        assert len(backfill.items_without_suggestions(session, site.tenant_id, 100)) == len(jira)
    assert backfill.fill_suggestions(site.db, wiki.tenant_id) == 0  # idempotent
