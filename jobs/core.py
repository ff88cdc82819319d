"""Queue names, the Redis connection, the per-process database, and safe enqueueing."""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable
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

DEFAULT_RETRY = Retry(max=5, interval=[5, 30, 120, 600, 1800])
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


def enqueue(redis_url: str | None, func: Callable[..., Any] | str, *args: Any,
            job_id: str | None = None, queue: str = QUEUE_DEFAULT,
            retry: Retry | None = DEFAULT_RETRY, timeout: int = DEFAULT_TIMEOUT,
            **options: Any) -> Job | None:
    """Enqueue a job; an existing queued job with the same id is left as it is.

    Returns None when Redis is unset or unreachable: callers rely on the outbox relay
    (stored events are the truth) rather than on this call succeeding.
    """
    if not redis_url:
        return None
    try:
        q = get_queue(redis_connection(redis_url), queue)
        if job_id is not None:
            existing = Job.fetch(job_id, connection=q.connection, serializer=JSONSerializer) \
                if q.connection.exists(f"rq:job:{job_id}") else None
            if existing is not None and existing.get_status(refresh=True) in ("queued", "scheduled", "deferred"):
                return existing
        return q.enqueue(func, *args, job_id=job_id, retry=retry, job_timeout=timeout,
                         failure_ttl=7 * 24 * 3600, result_ttl=3600, **options)
    except RedisError as exc:
        log.warning("enqueue skipped, Redis unavailable: %s", exc)
        return None
