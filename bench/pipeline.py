"""Pipeline: webhooks POSTed over HTTP to the web server, processed by real worker processes.

Throughput: a batch of `jira:issue_updated` webhooks (full issue with comments, as Jira sends
them) is stored while no worker runs; then 1 (and later 2) worker processes start and we count
events processed per second from the rows' own `processed_at` times (first to last, so worker
start-up is not counted). Latency: with one worker running, a new issue whose text repeats an
existing item is POSTed as `jira:issue_created`, and the reuse API is polled until the new item is
stored and that earlier item is among its suggestions.
"""
from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import corpus
from bench.common import Row, Size, latency_rows, log, peak_rss_mb, timed_loop, wait_until
from bench.http import Client, adopt_site, host_token, start_fake_site
from bench.seed import TenantInfo, fresh_dir, open_database, seeded_database
from bench.servers import postgres, valkey, web, workers

NAME = "pipeline"
DEFAULT_BACKENDS = ("sqlite", "postgresql")
FRESH_BUDGET_S = 300.0
MIN_EVENTS_PER_S = 300
FRESH_P95_S = 2.0
PHASE_CAP_S = 180.0  # a slow pipeline is measured over this window rather than waited out
POLL_S = 0.02


def run(size: Size, backends: tuple[str, ...] = ("sqlite",), **_: object) -> list[Row]:
    """Latency on the embedded defaults (SQLite); throughput with 1 and 2 workers per backend."""
    rows: list[Row] = []
    for backend in backends:
        if backend == "sqlite":
            rows += run_on(f"sqlite:///{fresh_dir('pipeline-sqlite') / 'inflow.db'}", backend, size,
                           latency=True)
        else:
            with postgres() as url:
                rows += run_on(url, backend, size, latency=False)
    return rows


def run_on(url: str, backend: str, size: Size, latency: bool) -> list[Row]:
    """Seed, start the fake site, Valkey and the web server, then measure each phase."""
    tenant = seeded_database(url, size.items)
    site = start_fake_site(size.items)
    try:
        db = open_database(url, create=False)
        tenant = adopt_site(db, tenant, site)
        with valkey() as redis_url:
            env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "INFLOW_BASE_URL": "https://inflow.bench",
                   "INFLOW_AUTH_SERVER_URL": site.url, "INFLOW_LOG_LEVEL": "warning"}
            with web(env, workers=1 if size.tiny else 2) as (base, _proc):
                phases = Phases(db, base, tenant, env, size, f"[{backend}]", site)
                # The freshness samples reuse the single worker the first phase started.
                rows = phases.throughput(1, then=phases.freshness if latency else None)
                rows += [] if size.tiny else phases.throughput(2)
        db.dispose()
        return rows
    finally:
        site.stop()


def webhook_payload(issue: dict[str, Any], event: str, at: datetime) -> dict[str, Any]:
    """A Jira Cloud issue webhook body (REST v2 issue shape, with comments)."""
    return {"timestamp": int(at.timestamp() * 1000), "webhookEvent": f"jira:{event}",
            "issue_event_type_name": event, "user": {"accountId": "bench-user"}, "issue": issue}


class Phases:
    """The measurements, sharing one web server and database."""

    def __init__(self, db, base: str, tenant: TenantInfo, env: dict[str, str], size: Size,
                 label: str, site) -> None:
        self.db, self.base, self.tenant, self.env, self.size, self.label = db, base, tenant, env, size, label
        self.site = site
        self.client = Client(base, timeout=600)
        self.rng = random.Random(21)
        self.clock = datetime.now(UTC) + timedelta(days=1)  # newer than any stored version

    def post(self, event: str, issue: dict[str, Any]) -> float:
        """POST one signed webhook; returns the seconds the web server took to accept it."""
        self.clock += timedelta(milliseconds=1)
        issue["fields"]["updated"] = self.clock.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
        path = f"/webhooks/jira/{event}"
        token = host_token(self.tenant, "POST", path, sub=None, ttl=600)
        headers = {"Authorization": f"JWT {token}", "X-Atlassian-Webhook-Identifier": uuid.uuid4().hex}
        t0 = time.perf_counter()
        status, body, _ = self.client.post_json(path, webhook_payload(issue, event, self.clock), headers)
        elapsed = time.perf_counter() - t0
        if status not in (200, 202):
            raise RuntimeError(f"webhook answered {status}: {body[:300]!r}")
        return elapsed

    def _updated_issue(self) -> dict[str, Any]:
        index = self.rng.randrange(self.size.items)
        issue = corpus.jira_issue(index)
        comments = issue["fields"]["comment"]["comments"]
        author, body = self.rng.choice(corpus.pools().comments)
        comments.append({"id": uuid.uuid4().hex[:10], "author": author, "body": body,
                         "created": issue["fields"]["created"]})
        issue["fields"]["comment"]["total"] = len(comments)
        return issue

    def throughput(self, worker_count: int, then: Callable[[], list[Row]] | None = None) -> list[Row]:
        """Events/s by `worker_count` worker processes over a stored backlog of issue updates.

        `then` runs while those workers are still up (after the backlog is dropped).
        """
        from sqlalchemy import func, select

        from connect.models import WebhookEvent

        n = self.size.pipeline_events
        with self.db.session() as session:
            floor = session.scalar(select(func.max(WebhookEvent.id))) or 0
        log(f"pipeline {self.label}: posting {n} issue_updated webhooks")
        issues = [self._updated_issue() for _ in range(n)]
        t0 = time.perf_counter()
        accept = [self.post("issue_updated", issue) for issue in issues]
        intake_s = time.perf_counter() - t0
        log(f"pipeline {self.label}: {worker_count} worker(s) processing")
        with workers(self.env, count=worker_count) as procs:
            done = self._wait_processed(floor, n)
            memory = max(peak_rss_mb(p.pid) for p in procs)
            stats = self._processed_stats(floor)
            self._drop_leftovers()
            later = then() if then is not None else []
        rated, span = stats["rated"], stats["span_s"]
        rate = rated / span if rated > 0 and span > 0 else 0.0
        note = (f"{stats['count']}/{n} events processed"
                + ("" if done else f" (window capped at {PHASE_CAP_S:.0f} s)")
                + "; rate from first to last processed_at (a batch's events share its start"
                " time, so the last batch is not counted)" + f"; {stats['errors']} with errors")
        rows = [Row(NAME, f"{self.label} events/s, {worker_count} worker process(es), issue updates at "
                          f"{self.size.items:,} items", round(rate, 1), "events/s",
                    target=f">= {MIN_EVENTS_PER_S} events/s" if worker_count == 1 else "",
                    passed=(rate >= MIN_EVENTS_PER_S) if worker_count == 1 else None, note=note,
                    extra=stats),
                Row(NAME, f"{self.label} worker peak resident memory ({worker_count} worker(s))",
                    round(memory, 1), "MiB", note="VmHWM of the worker process (its job forks not included)")]
        if worker_count == 1:
            rows.append(Row(NAME, f"{self.label} webhook intake (one client, sequential)",
                            round(n / intake_s, 1), "requests/s",
                            note="POST /webhooks/jira/issue_updated -> 202, event stored and enqueued"))
            rows += latency_rows(NAME, f"{self.label} webhook accept time", accept)
        return rows + later

    def _wait_processed(self, floor: int, n: int) -> bool:
        from sqlalchemy import func, select

        from connect.models import WebhookEvent

        def finished() -> bool:
            with self.db.session() as session:
                return (session.scalar(select(func.count()).where(
                    WebhookEvent.id > floor, WebhookEvent.processed_at.is_not(None))) or 0) >= n
        return wait_until(finished, timeout=PHASE_CAP_S, interval=0.25)

    def _processed_stats(self, floor: int) -> dict[str, Any]:
        """Count, errors and span of processed_at; `rated` excludes the last batch.

        A batch's events share the processed_at of its start, so the span from the first to the
        last value covers the work of every event but those of the last batch.
        """
        from sqlalchemy import func, select

        from connect.models import WebhookEvent

        done = (WebhookEvent.id > floor, WebhookEvent.processed_at.is_not(None))
        with self.db.session() as session:
            first, last, count = session.execute(select(
                func.min(WebhookEvent.processed_at), func.max(WebhookEvent.processed_at),
                func.count()).where(*done)).one()
            at_last = session.scalar(select(func.count()).where(
                *done, WebhookEvent.processed_at == last)) or 0
            errors = session.scalar(select(func.count()).where(
                WebhookEvent.id > floor, WebhookEvent.error.is_not(None))) or 0
        span = (_aware(last) - _aware(first)).total_seconds() if count else 0.0
        return {"count": int(count or 0), "rated": int(count or 0) - int(at_last),
                "span_s": span, "errors": int(errors)}

    def _drop_leftovers(self) -> None:
        """Empty the queues (and stale-item sets) so a backlog does not spill into the next phase."""
        from jobs.core import QUEUES, get_queue, redis_connection
        from jobs.pipeline import REFRESH_PREFIX

        connection = redis_connection(self.env["REDIS_URL"])
        for name in QUEUES:
            get_queue(connection, name).empty()
        for key in connection.scan_iter(match=REFRESH_PREFIX + "*"):
            connection.delete(key)

    def freshness(self) -> list[Row]:
        """Webhook-to-fresh-suggestion latency, with the one worker of the first phase running."""
        misses = 0

        def sample(k: int) -> float:
            nonlocal misses
            seconds = self._one_fresh(k)
            time.sleep(0.1)
            if seconds is None:
                misses += 1
                return 30.0
            return seconds

        if not self.size.tiny:
            self._wait_worker_ready()
        samples, counted = timed_loop(self.size.latency_samples, sample, FRESH_BUDGET_S, minimum=5)
        note = ("POST jira:issue_created (a new issue repeating an earlier one) -> the reuse API for the "
                "new issue shows it stored with that earlier issue suggested; web server + Valkey + "
                f"1 worker + {self.label.strip('[]')}; {counted}; {misses} not fresh within 30 s "
                "(counted as 30 s)")
        return latency_rows(NAME, f"{self.label} webhook-to-fresh-suggestion", samples,
                            target_ms=FRESH_P95_S * 1000, note=note)

    def _wait_worker_ready(self) -> None:
        """One event through the pipeline first, so worker start-up is not a latency sample."""
        self._one_fresh(-1, timeout=120.0)

    def _one_fresh(self, k: int, timeout: float = 30.0) -> float | None:
        original = self.rng.randrange(self.size.items)
        source = corpus.jira_issue(original)
        issue = corpus.jira_issue(self.size.items + 1000 + k + 1, seed=77, project="FRESH")
        issue["id"] = str(900000 + k + 1)
        issue["key"] = f"FRESH-{uuid.uuid4().hex[:6].upper()}"
        for field in ("summary", "description"):
            issue["fields"][field] = source["fields"][field]
        issue["fields"]["created"] = self.clock.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        self.site.load_jira_issues([issue])  # the issue exists on the site, so viewers may see it
        api = f"/api/content/jira/{issue['key']}/reuse"
        token = host_token(self.tenant, "GET", api, sub="bench-viewer-0", context=True)
        poller = Client(self.base)
        t0 = time.perf_counter()
        self.post("issue_created", issue)
        try:
            while time.perf_counter() - t0 < timeout:
                status, body, _ = poller.get(api, headers={"Authorization": f"JWT {token}"})
                if status == 200 and _is_fresh(json.loads(body), source["key"]):
                    return time.perf_counter() - t0
                time.sleep(POLL_S)
            return None
        finally:
            poller.close()


def _is_fresh(data: dict[str, Any], expected_key: str) -> bool:
    item = data.get("item") or {}
    return bool(item.get("stored")) and any(s.get("key") == expected_key for s in data.get("suggestions", []))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

