"""Queue names, the Redis connection, the per-process database, and safe enqueueing."""
from __future__ import annotations

import functools
import logging
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.job import Job
from rq.serializers import JSONSerializer

from connect.db import Database
from plugin.config import Settings

log = logging.getLogger(__name__)

# Queue names live here only, in the order workers take from them. `inflow` is the main queue
# (webhook events, questions); `inflow-refresh` recomputes stored suggestions after changes, so a
# burst of events is applied first and each item's refresh (coalesced) follows; `inflow-bulk`
# takes backfills so they never delay fresh webhook events.
QUEUE_DEFAULT = "inflow"
QUEUE_REFRESH = "inflow-refresh"
QUEUE_BULK = "inflow-bulk"
QUEUES = (QUEUE_DEFAULT, QUEUE_REFRESH, QUEUE_BULK)

DEFAULT_TIMEOUT = 600


@functools.lru_cache(maxsize=8)
def redis_connection(url: str) -> Redis:
    """One Redis client per URL per process."""
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)


def get_queue(connection: Redis, name: str = QUEUE_DEFAULT) -> Queue:
    """An rq queue using the JSON serializer (jobs take JSON-safe arguments)."""
    return Queue(name, connection=connection, serializer=JSONSerializer)


@functools.lru_cache(maxsize=1)
def _database_for(url: str) -> Database:
    return Database(url)


def database(settings: Settings | None = None) -> Database:
    """The worker process's Database, built once from the environment."""
    settings = settings or Settings.from_env()
    return _database_for(settings.database_url)


LIVE_STATUSES = ("queued", "started", "scheduled", "deferred")


def job_status(connection: Redis, job_id: str) -> str | None:
    """The job's status, or None when there is no such job (or it cannot be read)."""
    if not connection.exists(f"rq:job:{job_id}"):
        return None
    try:
        job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
        status = job.get_status(refresh=True)
    except Exception:  # noqa: BLE001  (a half-written job hash counts as absent)
        return None
    return getattr(status, "value", status)


def is_live(connection: Redis, job_id: str) -> bool:
    """True when a job with this id is waiting or running."""
    return job_status(connection, job_id) in LIVE_STATUSES


def enqueue_unique(connection: Redis, func: str, *args: Any, job_id: str,
                   queue: str = QUEUE_DEFAULT, retry: Retry | None = None,
                   timeout: int = DEFAULT_TIMEOUT) -> bool:
    """Enqueue unless a job with that id is waiting or running; False when Redis is down.

    Callers rely on the outbox relay (stored events are the truth) rather than on this
    call succeeding.
    """
    try:
        if is_live(connection, job_id):
            return True
        get_queue(connection, queue).enqueue(
            func, *args, job_id=job_id, retry=retry or Retry(max=3, interval=[30, 300, 1800]),
            job_timeout=timeout, failure_ttl=7 * 24 * 3600, result_ttl=3600)
        return True
    except RedisError as exc:
        log.warning("enqueue of %s skipped, Redis unavailable: %s", job_id, exc)
        return False
