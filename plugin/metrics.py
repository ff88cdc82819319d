"""Prometheus `/metrics`: request latency, queue depth, job failures, suggestions served and used.

Request latency is a histogram observed in every web process. Under several web workers set
PROMETHEUS_MULTIPROC_DIR (an empty folder, wiped at each start) so each worker writes its samples
there and any worker's scrape sums them all. Everything else is read on scrape from where it
already lives, so it is right whichever process answers: queue depth and failed jobs from rq in
Redis, unprocessed webhook events and the panels' own adoption records (suggestions shown and
used) from the database.

Access: with INFLOW_METRICS_TOKEN set, a scrape must send `Authorization: Bearer <token>`;
without it, only direct scrapes from this machine (loopback, no proxy headers) are answered.
"""
from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, abort, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from plugin.views import renewal

log = logging.getLogger(__name__)

# Panel views should answer in tens of milliseconds; the top buckets catch host timeouts.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUEST_SECONDS = Histogram(
    "inflow_http_request_duration_seconds", "Time to answer an HTTP request, by route",
    ["method", "endpoint", "status"], buckets=BUCKETS, registry=None)
SCRAPE_CACHE_SECONDS = 15.0  # database counts are recomputed at most this often per process


class StateCollector(Collector):
    """Queue depth, failed jobs, pending events and adoption counts, read on scrape."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Any]] = (0.0, [])

    def collect(self) -> Iterator[Any]:
        with self._lock:
            at, families = self._cached
            if time.monotonic() - at > SCRAPE_CACHE_SECONDS:
                families = list(self._queues()) + list(self._database())
                self._cached = (time.monotonic(), families)
        yield from families

    def _queues(self) -> Iterator[Any]:
        url = self.app.extensions.get("inflow.redis_url")
        depth = GaugeMetricFamily("inflow_queue_depth", "Jobs waiting in each rq queue", labels=["queue"])
        failed = GaugeMetricFamily("inflow_job_failures", "Jobs in rq's failed registry (kept 7 days)",
                                   labels=["queue"])
        up = GaugeMetricFamily("inflow_redis_up", "1 when Redis answered this scrape")
        if url:
            from redis.exceptions import RedisError
            from rq.registry import FailedJobRegistry

            from jobs.core import QUEUES, get_queue, redis_connection

            try:
                for name in QUEUES:
                    queue = get_queue(redis_connection(url), name)
                    depth.add_metric([name], queue.count)
                    failed.add_metric([name], FailedJobRegistry(queue=queue).count)
                up.add_metric([], 1)
            except RedisError as exc:
                log.warning("metrics: Redis unavailable: %s", exc)
                up.add_metric([], 0)
        yield from (depth, failed, up)

    def _database(self) -> Iterator[Any]:
        from sqlalchemy import func, select
        from sqlalchemy.exc import SQLAlchemyError

        from connect.models import WebhookEvent
        from plugin.models.social import PanelEvent

        pending = GaugeMetricFamily("inflow_webhook_events_pending",
                                    "Stored webhook events not yet processed")
        served = GaugeMetricFamily("inflow_suggestions_served", "Panel views that showed suggestions "
                                   "(adoption records kept in the database)", labels=["panel"])
        used = GaugeMetricFamily("inflow_suggestions_used", "Suggestions acted on: helped, asked, linked "
                                 "(adoption records kept in the database)", labels=["panel"])
        try:
            with self.app.extensions["inflow.db"].session() as session:
                pending.add_metric([], session.scalar(select(func.count()).where(
                    WebhookEvent.processed_at.is_(None))) or 0)
                rows = session.execute(select(PanelEvent.panel, PanelEvent.kind, func.count())
                                       .where(PanelEvent.kind.in_(("shown", "used")))
                                       .group_by(PanelEvent.panel, PanelEvent.kind)).all()
        except SQLAlchemyError as exc:
            log.warning("metrics: database unavailable: %s", exc)
            return
        for panel, kind, count in rows:
            (served if kind == "shown" else used).add_metric([panel], count)
        yield from (pending, served, used)


def registry_for(app: Flask) -> CollectorRegistry:
    """A registry with the request histogram (summed over processes when multiprocess) and state."""
    registry = CollectorRegistry()
    # prometheus_client reads the same variable itself, to write each process's samples there.
    if app.config.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REQUEST_SECONDS)
    registry.register(app.extensions["inflow.metrics_state"])
    return registry


def _allowed() -> bool:
    """Token when one is configured; otherwise only direct scrapes from this machine."""
    token = current_app.config.get("INFLOW_METRICS_TOKEN")
    if token:
        sent = request.headers.get("Authorization", "")
        return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())
    if request.headers.get("X-Forwarded-For") or request.headers.get("Forwarded"):
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def metrics_view() -> Response:
    """The Prometheus text exposition."""
    if not _allowed():
        abort(404)
    # content_type: CONTENT_TYPE_LATEST names its charset already (a mimetype would get another).
    return Response(generate_latest(registry_for(current_app)), content_type=CONTENT_TYPE_LATEST)


def _start_timer() -> None:
    g.inflow_request_started = time.perf_counter()


@functools.lru_cache(maxsize=4096)
def _request_timer(method: str, endpoint: str, status: int) -> Any:
    # The histogram's child per label set, looked up once: `.labels()` on every request was a
    # measurable share of a cached panel view. Labels are bounded (route names, methods, codes).
    return REQUEST_SECONDS.labels(method, endpoint, str(status))


def _observe(response: Response) -> Response:
    started = g.get("inflow_request_started")
    # A cached view renewed in the background is no request anyone made.
    if started is not None and request.endpoint != "inflow_metrics" and not renewal.renewing():
        endpoint = request.endpoint or "unmatched"  # route names, never raw paths: bounded labels
        observe_request(request.method, endpoint, response.status_code, started)
    return response


def observe_request(method: str, endpoint: str, status: int, started: float) -> None:
    """Record one answered request begun at `started` (perf_counter) in the latency histogram."""
    _request_timer(method, endpoint, status).observe(time.perf_counter() - started)


def init_app(app: Flask) -> None:
    """Time every request and serve /metrics."""
    app.extensions["inflow.metrics_state"] = StateCollector(app)
    app.before_request(_start_timer)
    app.after_request(_observe)
    app.add_url_rule("/metrics", "inflow_metrics", metrics_view, methods=["GET"])
